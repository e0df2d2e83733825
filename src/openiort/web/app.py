"""The application factory: settings, database, middleware, error pages, routes.

``create_app()`` gives a FastAPI app ready for uvicorn (``iort serve``). Everything that would
make an error page show a stack trace, or the log show patient data, is settled here: errors
are answered with a message and a reference, and logged by type and code location only.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jinja2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

import openiort
from openiort.errors import OpenIortInputError
from openiort.records import service
from openiort.records.db import prepare_database, session_scope
from openiort.records.errors import (
    ConflictError,
    DeliveryCheckError,
    LifecycleError,
    NotFoundError,
    PermissionDeniedError,
    RecordsError,
    RecordsValueError,
    TamperedPlanError,
)
from openiort.records.models import User
from openiort.records.seal import seal_key as records_seal_key
from openiort.web import safelog
from openiort.web.artifacts import PlanFiles, PlanFilesError
from openiort.web.auth import LoginRequiredError, login_redirect_url, may, session_of
from openiort.web.config import WebConfig, default_files_dir, session_secret
from openiort.web.jobs import Job, Planner, PlanQueue, QueueFullError
from openiort.web.ratelimit import LoginRateLimiter
from openiort.web.sessions import SessionManager
from openiort.web.slices import ViewerCache, ViewerError
from openiort.web.worker import WorkerOutcome, compute_plan_files

logger = logging.getLogger("openiort.web")

TECHNIQUE_LABELS = {
    "xray": "50 kV x-rays",
    "electron": "electrons",
    "hdr": "HDR brachytherapy",
}
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
PNG_CACHE_ITEMS = 2000


class LruCache:
    """A small thread-safe least-recently-used cache (rendered images, verdicts)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[Any, threading.Lock] = {}

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def lock_for(self, key: Any) -> threading.Lock:
        """A lock for computing ``key`` once when many threads miss it at the same time."""
        with self._lock:
            lock = self._key_locks.get(key)
            if lock is None:
                if len(self._key_locks) > 4 * self.size:
                    self._key_locks.clear()  # only in-flight computations need their locks
                lock = self._key_locks[key] = threading.Lock()
            return lock

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def verdict_class(group: str) -> str:
    """CSS class of a guideline verdict group: good, warn, bad or unknown."""
    g = group.lower()
    if g.startswith("insufficient"):
        return "unknown"
    if g.startswith(("not", "unsuitable", "high", "out-of-scope", "exclu")):
        return "bad"
    if g.startswith(("cautionary", "conditional", "intermediate")):
        return "warn"
    return "good"


def fmt_time(when: dt.datetime | None) -> str:
    if when is None:
        return ""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def console_text(plan_json: dict[str, Any]) -> str:
    """One line of console settings for plan lists."""
    from openiort.records.plan_data import planned_delivery

    try:
        p = planned_delivery(plan_json)
    except RecordsValueError:
        return ""
    parts = [p.applicator]
    if p.energy_mev:
        parts.append(f"{p.energy_mev:g} MeV")
    if p.monitor_units:
        parts.append(f"{p.monitor_units:g} MU")
    if p.time_s:
        parts.append(f"{p.time_s / 60:.2f} min")
    return ", ".join(parts)


def audit_text(summary: Any) -> str:
    """A short, readable line for an audit entry's summary (field names and values)."""
    if not isinstance(summary, dict):
        return ""
    parts: list[str] = []
    for key, value in summary.items():
        if key == "changed" and isinstance(value, dict):
            parts.append(
                "changed "
                + ", ".join(
                    f"{k}: {v.get('from')!r} → {v.get('to')!r}" if isinstance(v, dict) else k
                    for k, v in list(value.items())[:8]
                )
                + (" …" if len(value) > 8 else "")
            )
        elif key == "added" and isinstance(value, dict):
            parts.append(f"{len(value)} fields set")
        elif key == "removed" and isinstance(value, list) and value:
            parts.append("cleared " + ", ".join(map(str, value[:8])))
        elif isinstance(value, dict) and {"from", "to"} <= set(value):
            parts.append(f"{key} {value['from']} → {value['to']}")
        elif key == "mismatches" and isinstance(value, list):
            parts.append("refused: " + "; ".join(map(str, value)))
        elif isinstance(value, str | int | float | bool) or value is None:
            parts.append(f"{key} {value}")
    return "; ".join(parts)


class WebApp:
    """Everything the routes share: settings, database, sessions, jobs, files, templates."""

    def __init__(
        self,
        config: WebConfig,
        engine: Engine,
        seal_key: bytes,
        planner: Planner = compute_plan_files,
    ) -> None:
        self.config = config
        self.engine = engine
        self.seal_key = seal_key
        self.sessions = SessionManager(
            config.session_secret,
            config.session_max_age_s,
            config.session_idle_s,
            config.secure_cookies,
        )
        self.limiter = LoginRateLimiter(config.login_max_failures, config.login_window_s)
        self.files = PlanFiles(config.files_dir)
        self.files.clean_staging()
        self.jobs = PlanQueue(
            self.files,
            self._store_plan,
            workers=config.plan_workers,
            max_pending=config.max_pending_plans,
            kind=config.executor,
            planner=planner,
        )
        self.viewer = ViewerCache()
        self.png_cache = LruCache(PNG_CACHE_ITEMS)
        self.cache = LruCache(256)
        self.templates = Jinja2Templates(env=self._template_env())

    # -- database -------------------------------------------------------------------------

    @contextmanager
    def db(self) -> Iterator[Session]:
        with session_scope(self.engine) as s:
            yield s

    # -- templates ------------------------------------------------------------------------

    def _template_env(self) -> jinja2.Environment:
        report_templates = str(resources.files("openiort.report").joinpath("templates"))
        env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(
                [
                    jinja2.PackageLoader("openiort.web", "templates"),
                    jinja2.FileSystemLoader(report_templates),
                ]
            ),
            autoescape=jinja2.select_autoescape(["html"]),
        )
        env.globals.update(
            may=may,
            verdict_class=verdict_class,
            fmt_time=fmt_time,
            console_text=console_text,
            audit_text=audit_text,
            technique_labels=TECHNIQUE_LABELS,
            notice=openiort.RESEARCH_NOTICE,
            version=openiort.__version__,
        )
        return env

    def render(
        self, request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> HTMLResponse:
        data = session_of(request)
        ctx = {
            "request": request,
            "user": getattr(request.state, "user", None),
            "csrf": data.csrf if data else "",
            "message": None,
            "nav": "",
            **context,
        }
        response: HTMLResponse = self.templates.TemplateResponse(
            request, name, ctx, status_code=status_code
        )
        return response

    # -- planning results -----------------------------------------------------------------

    def _store_plan(self, job: Job, outcome: WorkerOutcome, staging: Path) -> None:
        """Called in a background thread when a worker has finished a job."""
        if outcome.kind == "case":
            job.state, job.message, job.problems = (
                "failed",
                "The case cannot be planned as entered:",
                list(outcome.problems),
            )
            job.finished_at = time.time()
            return
        if outcome.kind != "ok" or outcome.plan_json is None:
            ref = safelog.error_reference()
            logger.error(
                "planning failed: %s (ref %s) at %s", outcome.error_type, ref, outcome.where
            )
            job.state = "failed"
            job.message = f"Planning failed on the server (reference {ref})."
            job.finished_at = time.time()
            return
        adopted: Path | None = None
        try:
            with self.db() as s:
                user = s.get(User, job.user_id)
                case = service.get_case(s, job.case_id)
                if user is None:
                    raise PermissionDeniedError("the user who asked for the plan no longer exists")
                if case.version != job.case_version:
                    who = case.updated_by.username if case.updated_by else "another user"
                    raise ConflictError(
                        "case", case.id, job.case_version, case.version, who, case.updated_at
                    )
                plan = service.store_plan(s, user, job.case_id, outcome.plan_json)
                adopted = self.files.adopt(staging, plan.id)
                plan_id = plan.id
        except (RecordsError, OpenIortInputError, ValueError) as exc:
            if adopted is not None:
                self.files.discard(adopted)
            job.state = "failed"
            job.message = (
                "The case was changed while the plan was computed; compute the plan again "
                "from the current case."
                if isinstance(exc, ConflictError)
                else f"The plan was not stored: {exc}"
            )
            job.finished_at = time.time()
            return
        except Exception as exc:
            if adopted is not None:
                self.files.discard(adopted)
            ref = safelog.error_reference()
            safelog.log_unexpected(exc, ref, "store plan")
            job.state = "failed"
            job.message = f"The plan could not be stored (reference {ref})."
            job.finished_at = time.time()
            return
        job.plan_id = plan_id
        job.state = "done"
        job.finished_at = time.time()
        logger.info("plan %d stored for case %d in %.1f s", plan_id, job.case_id, outcome.seconds)


# -------------------------------------------------------------------------------- errors


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(
    request: Request,
    status: int,
    title: str,
    detail: str,
    *,
    problems: list[str] | None = None,
    reference: str | None = None,
    headers: dict[str, str] | None = None,
    template: str = "error.html",
    extra: dict[str, Any] | None = None,
) -> Response:
    if _wants_json(request):
        body: dict[str, Any] = {"detail": detail}
        if problems:
            body["problems"] = problems
        if reference:
            body["reference"] = reference
        if extra:
            body.update(extra)
        return JSONResponse(body, status_code=status, headers=headers)
    web: WebApp = request.app.state.web
    context = {
        "title": title,
        "detail": detail,
        "problems": problems or [],
        "reference": reference,
        **(extra or {}),
    }
    response = web.render(request, template, context, status_code=status)
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequiredError)
    async def login_required(request: Request, exc: LoginRequiredError) -> Response:
        return RedirectResponse(login_redirect_url(exc.next_path), status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {401: "Not logged in", 403: "Not allowed", 404: "Not found", 405: "Not allowed"}
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        return error_response(
            request,
            exc.status_code,
            titles.get(exc.status_code, "Request refused"),
            detail,
            headers=dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
            problems.append(f"{loc or 'request'}: {e.get('msg', 'invalid')}")
        status = 422 if _wants_json(request) else 400
        return error_response(
            request, status, "Bad request", "the request is not valid", problems=problems
        )

    # Errors whose message is the whole answer: (status, page title) per exception type.
    plain: dict[type[Exception], tuple[int, str]] = {
        NotFoundError: (404, "Not found"),
        ViewerError: (404, "Not found"),
        PermissionDeniedError: (403, "Not allowed"),
        LifecycleError: (409, "Not possible now"),
        PlanFilesError: (409, "Plan files refused"),
        RecordsValueError: (422, "Invalid input"),
    }

    async def plain_error(request: Request, exc: Exception) -> Response:
        # The most specific registered type, as Starlette itself chose the handler.
        status, title = next(plain[t] for t in type(exc).__mro__ if t in plain)
        return error_response(request, status, title, str(exc))

    for error_type in plain:
        app.add_exception_handler(error_type, plain_error)

    @app.exception_handler(ConflictError)
    async def conflict(request: Request, exc: ConflictError) -> Response:
        return error_response(
            request,
            409,
            "Changed by someone else",
            str(exc),
            extra={"current_version": exc.current_version, "changed_by": exc.changed_by},
        )

    @app.exception_handler(TamperedPlanError)
    async def tampered(request: Request, exc: TamperedPlanError) -> Response:
        return error_response(
            request,
            409,
            "Plan refused",
            str(exc),
            template="tampered.html",
            extra={"plan_id": exc.plan_id, "tampered": True},
        )

    @app.exception_handler(OpenIortInputError)
    async def input_error(request: Request, exc: OpenIortInputError) -> Response:
        # Any input error not mapped above: a case, device data or geometry that cannot be used.
        return error_response(
            request, 422, "Invalid input", "the input cannot be used", problems=list(exc.problems)
        )

    @app.exception_handler(DeliveryCheckError)
    async def delivery_refused(request: Request, exc: DeliveryCheckError) -> Response:
        return error_response(
            request,
            422,
            "Delivery refused",
            "the console settings do not match the approved plan; nothing was recorded",
            problems=list(exc.mismatches),
        )

    @app.exception_handler(QueueFullError)
    async def queue_full(request: Request, exc: QueueFullError) -> Response:
        return error_response(
            request,
            503,
            "Planning queue full",
            str(exc),
            headers={"Retry-After": str(exc.retry_after_s)},
        )


class SafeErrorMiddleware:
    """Answers any unhandled error with a plain message and a reference; never re-raises, so
    the server logs no traceback (which could quote patient data)."""

    def __init__(self, app: safelog.ASGIApp) -> None:
        self.app = app

    async def __call__(
        self, scope: safelog.Scope, receive: safelog.Receive, send: safelog.Send
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: safelog.Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            reference = safelog.error_reference()
            safelog.log_unexpected(exc, reference, safelog.route_template(scope))
            if started:
                return
            text = f"The server met an unexpected error (reference {reference})."
            if str(scope.get("path", "")).startswith("/api/"):
                response: Response = JSONResponse(
                    {"detail": text, "reference": reference}, status_code=500
                )
            else:
                response = HTMLResponse(
                    "<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error</title>"
                    f"<h1>Something went wrong</h1><p>{text}</p><p><a href='/cases'>Back to "
                    "the cases</a></p></html>",
                    status_code=500,
                )
            response.headers["Cache-Control"] = "no-store"
            await response(scope, receive, send)


def _install_session_middleware(app: FastAPI) -> None:
    @app.middleware("http")
    async def session_and_headers(request: Request, call_next: Any) -> Response:
        web: WebApp = request.app.state.web
        now = time.time()
        data = web.sessions.load(request, now)
        request.state.session = data
        request.state.session_changed = False
        request.state.session_cleared = False
        response: Response = await call_next(request)
        if request.state.session_cleared:
            web.sessions.clear(request, response)
        elif request.state.session_changed and request.state.session is not None:
            web.sessions.write(request, response, request.state.session)
        elif data is not None and web.sessions.needs_touch(data, now):
            web.sessions.write(request, response, web.sessions.touched(data, now))
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.url.path.startswith("/static/"):
            headers.setdefault("Cache-Control", "public, max-age=3600")
        else:
            headers.setdefault("Cache-Control", "no-store")
        if web.sessions.is_secure(request):
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


# -------------------------------------------------------------------------------- factory


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
    require_second_person: bool = False,
    login_max_failures: int = 5,
    login_window_s: float = 300.0,
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
    require_second_person:
        Four-eyes rule at approval.
    login_max_failures, login_window_s:
        Login throttling (see :mod:`openiort.web.ratelimit`).
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
            require_second_person=require_second_person,
            login_max_failures=login_max_failures,
            login_window_s=login_window_s,
        )
    engine = prepare_database(database_url)
    key = seal_key if seal_key is not None else records_seal_key()
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
    _install_error_handlers(app)
    _install_session_middleware(app)
    app.add_middleware(SafeErrorMiddleware)
    app.add_middleware(safelog.AccessLogMiddleware)

    from openiort.web import api, pages

    app.include_router(api.router)
    app.include_router(pages.router)
    static_dir = str(resources.files("openiort.web").joinpath("static"))
    app.mount("/static", StaticFiles(directory=static_dir), name="static")
    logger.info("openiort web app ready (pid %d)", os.getpid())
    return app
