"""``iort worker``: a planning process over the database queue (openiort.web.queue_worker).

Run one or more beside ``iort serve --workers N`` (which does not plan itself), on the same
database, plan-files folder, seal key and device data files as the server. ``iort db upgrade``
must have been run first: a worker never creates nor migrates the schema.
"""

from __future__ import annotations

import logging.config
import signal
import threading
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from openiort.records.errors import RecordsError
from openiort.web.config import WebConfigError

STALE_STAGING_S = 6 * 3600.0
DATABASE_HELP = (
    "SQLAlchemy URL (default: OPENIORT_DATABASE_URL, else the SQLite file in the user data "
    "directory)."
)


def worker(
    database_url: Annotated[
        str | None, typer.Option("--database-url", help=DATABASE_HELP, show_default=False)
    ] = None,
    files_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for the plans' files (default: plans/ in the data directory)."),
    ] = None,
    xray_source_data: Annotated[
        Path | None, typer.Option(help="As `iort serve --xray-source-data`.")
    ] = None,
    electron_machine_data: Annotated[
        Path | None, typer.Option(help="As `iort serve --electron-machine-data`.")
    ] = None,
    hdr_source_data: Annotated[
        Path | None, typer.Option(help="As `iort serve --hdr-source-data`.")
    ] = None,
    heartbeat_s: Annotated[
        float, typer.Option(min=0.1, max=600, help="Seconds between heartbeats of a job.")
    ] = 5.0,
    stale_after_s: Annotated[
        float,
        typer.Option(
            min=1, max=3600, help="A job without a heartbeat for this long is taken back."
        ),
    ] = 60.0,
    max_attempts: Annotated[
        int,
        typer.Option(min=1, max=10, help="Claims of a job before it is failed, not re-queued."),
    ] = 2,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Compute queued plans (the planning process of `iort serve --workers N`)."""
    from openiort.records.anchor import heads_file
    from openiort.records.chain import bind_key
    from openiort.records.db import prepare_database
    from openiort.records.seal import seal_key
    from openiort.web.artifacts import PlanFiles
    from openiort.web.commands import log_config
    from openiort.web.config import default_files_dir
    from openiort.web.queue_worker import QueueWorker
    from openiort.web.worker import compute_plan_files, init_process, warm_up

    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter("one of debug, info, warning, error", param_hint="--log-level")
    logging.config.dictConfig(log_config(log_level))
    try:
        engine = prepare_database(database_url, create_schema=False)
        key = seal_key()
    except (RecordsError, WebConfigError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    bind_key(engine, key, heads_file())
    files = PlanFiles(files_dir if files_dir is not None else default_files_dir(), key=key)
    # A killed worker's unfinished plan folders; the live workers' are younger than this.
    files.clean_staging(older_than_s=STALE_STAGING_S)
    planner: Any = partial(
        compute_plan_files,
        source_data=None if xray_source_data is None else str(xray_source_data),
        machine_data=None if electron_machine_data is None else str(electron_machine_data),
        hdr_source_data=None if hdr_source_data is None else str(hdr_source_data),
    )
    init_process()
    warm_up()
    stop = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    QueueWorker(
        engine,
        files,
        planner,
        heartbeat_s=heartbeat_s,
        stale_after_s=stale_after_s,
        max_attempts=max_attempts,
    ).run(stop)
    engine.dispose()
