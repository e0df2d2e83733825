"""The application factory: settings, database, middleware, error handlers, routers.

``create_app()`` gives a FastAPI app ready for uvicorn (``iort serve``). It only wires the
parts together: the shared state is :mod:`~openiort.web.state`, the error answers
:mod:`~openiort.web.errorpages`, the session and headers :mod:`~openiort.web.middleware`, the
routes :mod:`~openiort.web.api` and the ``pages_*`` modules.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Literal

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import openiort
from openiort.records.anchor import configured_heads_file, heads_file
from openiort.records.chain import bind_key
from openiort.records.db import prepare_database
from openiort.records.seal import seal_key as records_seal_key
from openiort.web import (
    api,
    health,
    pages_cases,
    pages_ct_import,
    pages_delivery,
    pages_plans,
    pages_settings,
    pages_site,
    qa_routes,
    safelog,
)
from openiort.web.config import WebConfig, default_files_dir, session_secret
from openiort.web.errorpages import SafeErrorMiddleware, install_error_handlers
from openiort.web.guards import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_UPLOAD_BYTES,
    RequestGuardMiddleware,
)
from openiort.web.jobs import Planner
from openiort.web.middleware import install_session_middleware
from openiort.web.state import WebApp
from openiort.web.worker import compute_plan_files

__all__ = ["WebApp", "create_app"]

logger = logging.getLogger("openiort.web")


def create_app(
    database_url: str | None = None,
    seal_key: bytes | None = None,
    *,
    files_dir: str | Path | None = None,
    session_secret_key: bytes | None = None,
    secure_cookies: bool | None = None,
    plan_workers: int = 1,
    max_pending_plans: int = 4,
    executor: Literal["process", "thread"] = "process",
    external_planning: bool = False,
    plan_heartbeat_s: float = 5.0,
    plan_stale_after_s: float = 60.0,
    require_second_person: bool | None = None,
    allowed_hosts: tuple[str, ...] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    idle_logout_s: int | None = None,
    login_max_failures: int = 5,
    login_window_s: float = 300.0,
    xray_source_data: str | Path | None = None,
    electron_machine_data: str | Path | None = None,
    hdr_source_data: str | Path | None = None,
    hdr_other_source_data: tuple[str | Path, ...] = (),
    dicom_settings: str | Path | None = None,
    config: WebConfig | None = None,
    planner: Planner = compute_plan_files,
) -> FastAPI:
    """The openiort web app.

    Parameters
    ----------
    database_url:
        SQLAlchemy URL (default :func:`openiort.records.db.database_url`: the SQLite file in the
        data directory, or ``OPENIORT_DATABASE_URL``). An empty database gets the schema; one
        at an older revision is refused until ``iort db upgrade`` has been run.
    seal_key:
        HMAC key that seals approved plans (default :func:`openiort.records.seal.seal_key`).
    files_dir:
        Folder of the plans' files (default ``plans/`` in the data directory).
    session_secret_key:
        Key that signs session cookies (default :func:`openiort.web.config.session_secret`).
    secure_cookies:
        Force the cookies' Secure flag on or off; default: on when served over https.
    plan_workers, max_pending_plans, executor:
        Planning processes, the bound on queued plans, and process or thread workers.
    external_planning:
        Put plans in the database queue for ``iort worker`` processes instead of planning
        here (``iort serve --workers N``); the database must have been migrated beforehand
        (``iort db upgrade``): an empty one is refused rather than several processes racing
        to create the schema.
    plan_heartbeat_s, plan_stale_after_s:
        How often a plan computed here is stamped, and after how long without a stamp a job
        is taken back (see :class:`WebConfig`).
    require_second_person:
        Four-eyes rule at approval (``None``: the department's audited setting, on unless
        turned off).
    allowed_hosts, max_body_bytes:
        Host allowlist (``None``: any) and request body limit (:mod:`openiort.web.guards`).
    max_upload_bytes:
        Size limit of a CT import's zip upload (:mod:`openiort.web.ct_import`).
    idle_logout_s:
        A session unused this long is logged off (shared theatre workstations); default
        :class:`WebConfig`'s.
    login_max_failures, login_window_s:
        Login throttling (see :mod:`openiort.web.ratelimit`).
    xray_source_data:
        The department's 50 kV source commissioning file (see :class:`WebConfig`).
    electron_machine_data:
        The department's electron machine file (see :class:`WebConfig`).
    hdr_source_data:
        The department's HDR source record, its current source (see :class:`WebConfig`).
    hdr_other_source_data:
        Further HDR source records, chosen per delivery by serial (see :class:`WebConfig`).
    dicom_settings:
        The department's DICOM settings file (see :class:`WebConfig`).
    config:
        A complete :class:`WebConfig` instead of the keyword settings above.
    planner:
        What computes a plan (default :func:`openiort.web.worker.compute_plan_files`; tests
        and benchmarks give a stand-in).
    """
    if config is None:
        config = WebConfig(
            files_dir=Path(files_dir) if files_dir is not None else default_files_dir(),
            session_secret=session_secret_key or session_secret(),
            secure_cookies=secure_cookies,
            plan_workers=plan_workers,
            max_pending_plans=max_pending_plans,
            executor=executor,
            external_planning=external_planning,
            plan_heartbeat_s=plan_heartbeat_s,
            plan_stale_after_s=plan_stale_after_s,
            require_second_person=require_second_person,
            allowed_hosts=allowed_hosts,
            max_body_bytes=max_body_bytes,
            max_upload_bytes=max_upload_bytes,
            **({} if idle_logout_s is None else {"session_idle_s": idle_logout_s}),
            login_max_failures=login_max_failures,
            login_window_s=login_window_s,
            xray_source_data=Path(xray_source_data) if xray_source_data is not None else None,
            electron_machine_data=Path(electron_machine_data)
            if electron_machine_data is not None
            else None,
            hdr_source_data=Path(hdr_source_data) if hdr_source_data is not None else None,
            hdr_other_source_data=tuple(Path(p) for p in hdr_other_source_data),
            dicom_settings=Path(dicom_settings) if dicom_settings is not None else None,
        )
    engine = prepare_database(database_url, create_schema=not config.external_planning)
    key = seal_key if seal_key is not None else records_seal_key()
    # The record chains are signed with the same key; their heads are kept beside the key
    # file (or where OPENIORT_CHAIN_HEADS_FILE says).
    bind_key(engine, key, heads_file() if seal_key is None else configured_heads_file())
    web = WebApp(config, engine, key, planner)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        web.jobs.start()
        try:
            yield
        finally:
            web.jobs.shutdown()
            engine.dispose()

    app = FastAPI(
        title="openiort",
        version=openiort.__version__,
        description=(
            "Treatment records and planning for breast intraoperative radiotherapy. "
            + openiort.RESEARCH_NOTICE
            + " Log in with POST /api/session; send the returned csrf_token as the "
            "X-CSRF-Token header with every POST, PUT and DELETE."
        ),
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.web = web
    install_error_handlers(app)
    install_session_middleware(app)
    app.add_middleware(SafeErrorMiddleware)
    # Outside the session and login: a refused request is never parsed nor authenticated.
    app.add_middleware(
        RequestGuardMiddleware,
        allowed_hosts=config.allowed_hosts,
        max_body_bytes=config.max_body_bytes,
        max_upload_bytes=config.max_upload_bytes,
    )
    app.add_middleware(safelog.AccessLogMiddleware)
    app.include_router(api.router)
    app.include_router(qa_routes.api_router)
    app.include_router(health.router)
    for pages in (
        pages_site,
        pages_cases,
        pages_plans,
        pages_delivery,
        pages_settings,
        pages_ct_import,
    ):
        app.include_router(pages.router)
    app.include_router(qa_routes.page_router)
    static_dir = str(resources.files("openiort.web").joinpath("static"))
    app.mount("/static", StaticFiles(directory=static_dir), name="static")
    logger.info("openiort web app ready (pid %d)", os.getpid())
    return app
