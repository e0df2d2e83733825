"""``iort serve``: run the web app with uvicorn.

Register in the main CLI with ``app.command("serve")(serve)``.

The server listens on 127.0.0.1 by default. On a network address, serve it over https:
give ``--ssl-certfile`` and ``--ssl-keyfile``, or put it behind a TLS-terminating proxy and
pass ``--forwarded-allow-ips`` with the proxy's address so that the proxy's
``X-Forwarded-Proto: https`` marks the session cookie Secure.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import logging.config
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from openiort.records.errors import RecordsError
from openiort.web.config import WebConfigError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# `iort serve --workers N`: the app's options, for each web process (app_from_environment).
SERVE_OPTIONS_ENV = "OPENIORT_SERVE_OPTIONS"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def log_config(level: str) -> dict[str, Any]:
    """Logging for the server: openiort's own loggers and uvicorn's start-up messages only
    (uvicorn's access log is off: it would write request paths; openiort's access log writes
    route templates)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "openiort": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def allowed_hosts(host: str, extra: list[str] | None) -> tuple[str, ...]:
    """The Host names ``iort serve`` answers to: the listening address, loopback names, and
    those given (``--allowed-host``, ``OPENIORT_ALLOWED_HOSTS``); DNS rebinding defeated."""
    names = [host, "localhost", "127.0.0.1", "[::1]", *(extra or [])]
    names += [h for h in os.environ.get("OPENIORT_ALLOWED_HOSTS", "").split(",") if h.strip()]
    return tuple(dict.fromkeys(n.strip() for n in names))


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="SQLAlchemy URL (default: OPENIORT_DATABASE_URL, else the SQLite file in the "
            "user data directory).",
            show_default=False,
        ),
    ] = None,
    files_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for the plans' files (default: plans/ in the data directory)."),
    ] = None,
    plan_workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Planning processes (one core each) of a single-process server; with "
            "--workers above 1 plans are computed by `iort worker` processes instead.",
        ),
    ] = 1,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Web server processes. Above 1, jobs go to the database queue and are "
            "computed by `iort worker` processes started beside the server; run "
            "`iort db upgrade` first (an un-migrated database is refused).",
        ),
    ] = 1,
    plan_heartbeat_s: Annotated[
        float,
        typer.Option(min=0.1, max=600, help="Seconds between heartbeats of a plan computed here."),
    ] = 5.0,
    plan_stale_after_s: Annotated[
        float,
        typer.Option(
            min=1,
            max=3600,
            help="A job without a heartbeat for this long (its server was killed) is "
            "computed again, at most twice in all, then failed with a reason.",
        ),
    ] = 60.0,
    max_pending_plans: Annotated[
        int, typer.Option(min=1, max=1000, help="Plans queued or computing at once.")
    ] = 4,
    four_eyes: Annotated[
        bool | None,
        typer.Option(
            "--four-eyes/--no-four-eyes",
            help="Refuse approval by the plan's author or reviewer (the default: the "
            "department's setting, on unless turned off, audited, with `iort db setting "
            "four-eyes off --reason ...`).",
            show_default=False,
        ),
    ] = None,
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="TLS certificate (PEM): serve https directly.")
    ] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(help="Proxy addresses trusted for X-Forwarded-Proto/For (comma-separated)."),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="A host name the server answers to (repeat for several; the name in the "
            "department's URL). Always allowed: the --host address and localhost. Also "
            "OPENIORT_ALLOWED_HOSTS (comma-separated).",
            show_default=False,
        ),
    ] = None,
    idle_logout_min: Annotated[
        int,
        typer.Option(
            "--idle-logout-min",
            min=1,
            max=24 * 60,
            envvar="OPENIORT_IDLE_LOGOUT_MIN",
            help="Log a session off after this many minutes without a request (shared "
            "theatre workstations).",
        ),
    ] = 30,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    xray_source_data: Annotated[
        Path | None,
        typer.Option(
            help="The department's 50 kV source commissioning file (without it x-ray plans "
            "use the example source and cannot be approved)."
        ),
    ] = None,
    electron_machine_data: Annotated[
        Path | None,
        typer.Option(
            help="The department's electron machine file (docs/electron-machine-data.md; "
            "without it electron plans use the example machine and cannot be approved)."
        ),
    ] = None,
    hdr_source_data: Annotated[
        Path | None,
        typer.Option(
            help="The department's HDR source record (openiort.devices.hdr_source; without "
            "it HDR plans use the example source and cannot be approved). It is the current "
            "source: after a source exchange, the day's dwell times are rescaled to it."
        ),
    ] = None,
    hdr_other_source_data: Annotated[
        list[Path] | None,
        typer.Option(
            help="A further HDR source record a delivery may choose by its serial (another "
            "afterloader, or the source before an exchange); repeat for several."
        ),
    ] = None,
    dicom_settings: Annotated[
        Path | None,
        typer.Option(
            "--dicom-settings",
            help="The department's DICOM settings file (UID root, institution, machine names; "
            "docs/dicom-conformance.md). Default: OPENIORT_DICOM_SETTINGS, else the defaults. "
            "Shown on the settings page; used by DICOM downloads.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the web app (case entry, verdicts, plans, approval, downloads) with uvicorn."""
    import uvicorn

    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter("one of debug, info, warning, error", param_hint="--log-level")
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise typer.BadParameter(
            "give both --ssl-certfile and --ssl-keyfile, or neither", param_hint="--ssl-keyfile"
        )
    if four_eyes is False:
        typer.echo(
            "error: --no-four-eyes is refused: a department turns the four-eyes rule off "
            "with `iort db setting four-eyes off --reason TEXT`, which the audit log records",
            err=True,
        )
        raise typer.Exit(2)
    logging.config.dictConfig(log_config(log_level))
    tls = ssl_certfile is not None
    if not _is_loopback(host) and not tls and forwarded_allow_ips is None:
        typer.echo(
            f"warning: serving plain http on {host}: passwords and patient data cross the "
            "network unencrypted. Use --ssl-certfile/--ssl-keyfile or a TLS proxy.",
            err=True,
        )
    options: dict[str, Any] = {
        "database_url": database_url,
        "files_dir": None if files_dir is None else str(files_dir),
        "secure_cookies": True if tls else None,
        "plan_workers": plan_workers,
        "max_pending_plans": max_pending_plans,
        "external_planning": workers > 1,
        "plan_heartbeat_s": plan_heartbeat_s,
        "plan_stale_after_s": plan_stale_after_s,
        "require_second_person": four_eyes,
        "allowed_hosts": list(allowed_hosts(host, allowed_host)),
        "idle_logout_s": idle_logout_min * 60,
        "xray_source_data": None if xray_source_data is None else str(xray_source_data),
        "electron_machine_data": None
        if electron_machine_data is None
        else str(electron_machine_data),
        "hdr_source_data": None if hdr_source_data is None else str(hdr_source_data),
        "hdr_other_source_data": [str(p) for p in hdr_other_source_data or ()],
        "dicom_settings": None if dicom_settings is None else str(dicom_settings),
    }
    try:
        # Several processes: each builds its app from the options (uvicorn needs an import
        # string); this one checks first that it would start, so errors are said once.
        application: Any = app_from_options(options)
    except (RecordsError, WebConfigError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if workers > 1:
        application.state.web.engine.dispose()
        os.environ[SERVE_OPTIONS_ENV] = json.dumps(options)
        application = f"{__name__}:app_from_environment"
    scheme = "https" if tls else "http"
    typer.echo(f"openiort web app on {scheme}://{host}:{port}/ (Ctrl-C to stop)", err=True)
    if workers > 1:
        typer.echo(
            f"{workers} web processes; plans are computed by `iort worker` processes "
            "(start at least one on this database)",
            err=True,
        )
    uvicorn.run(
        application,
        factory=workers > 1,
        workers=workers if workers > 1 else None,
        host=host,
        port=port,
        access_log=False,
        log_config=log_config(log_level),
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
        server_header=False,
    )


def app_from_options(options: dict[str, Any]) -> Any:
    """The web app of `iort serve`'s ``options`` (JSON-safe values)."""
    from openiort.web.app import create_app

    kwargs = dict(options)
    kwargs["allowed_hosts"] = tuple(kwargs["allowed_hosts"])
    kwargs["hdr_other_source_data"] = tuple(kwargs["hdr_other_source_data"])
    return create_app(kwargs.pop("database_url"), **kwargs)


def app_from_environment() -> Any:
    """The app factory of each process of `iort serve --workers N`."""
    return app_from_options(json.loads(os.environ[SERVE_OPTIONS_ENV]))
