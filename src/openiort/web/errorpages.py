"""Error answers: each error type mapped to a page or API JSON, and the catch-all middleware.

Errors are answered with a message and a reference, and logged by type and code location
only: no error page shows a stack trace and no log line quotes patient data.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from openiort.case import describe_case_error
from openiort.errors import OpenIortInputError
from openiort.records.errors import (
    ConflictError,
    DeliveryCheckError,
    LifecycleError,
    NotFoundError,
    PermissionDeniedError,
    RecordsValueError,
    TamperedPlanError,
    TamperedRecordError,
)
from openiort.web import safelog
from openiort.web.artifacts import PlanFilesError
from openiort.web.auth import LoginRequiredError, login_redirect_url
from openiort.web.jobs import QueueFullError
from openiort.web.slices import ViewerError
from openiort.web.state import web_of


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
    """JSON under ``/api/``, an error page elsewhere."""
    if _wants_json(request):
        body: dict[str, Any] = {"detail": detail}
        if problems:
            body["problems"] = problems
        if reference:
            body["reference"] = reference
        if extra:
            body.update(extra)
        return JSONResponse(body, status_code=status, headers=headers)
    context = {
        "title": title,
        "detail": detail,
        "problems": problems or [],
        "reference": reference,
        **(extra or {}),
    }
    response = web_of(request).render(request, template, context, status_code=status)
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


def install_error_handlers(app: FastAPI) -> None:
    """Register the answer to each error type the routes and the records layer raise."""

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
            parts = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")]
            if len(parts) > 1 and parts[0] == "case" and "msg" in e:
                # A case in an API body: worded as on the command line (value echoed, cm hint).
                problems.append("case." + describe_case_error({**e, "loc": tuple(parts[1:])}))
                continue
            problems.append(f"{'.'.join(parts) or 'request'}: {e.get('msg', 'invalid')}")
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

    @app.exception_handler(TamperedRecordError)
    async def tampered_record(request: Request, exc: TamperedRecordError) -> Response:
        return error_response(
            request,
            409,
            "Record refused",
            str(exc),
            template="tampered_record.html",
            extra={"patient_record_id": exc.patient_id, "tampered": True, "reason": exc.reason},
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

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_unavailable(request: Request, exc: Exception) -> Response:
        status, retry_s, detail = database_trouble(exc)
        return error_response(
            request,
            status,
            "Database unavailable",
            detail,
            headers={"Retry-After": str(retry_s)},
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


# Seconds a client is told to wait: a locked SQLite database frees in moments, a PostgreSQL
# server restarting takes longer, a read-only file needs an administrator.
RETRY_LOCKED_S = 2
RETRY_UNREACHABLE_S = 30
RETRY_READ_ONLY_S = 300


def database_trouble(exc: Exception) -> tuple[int, int, str]:
    """(status, Retry-After seconds, message) for a database that cannot do what was asked,
    and the cause in the log (the driver's message: SQL parameters are never in it)."""
    cause = safelog.database_cause(exc)
    lowered = cause.lower()
    if "readonly" in lowered or "read-only" in lowered or "read only" in lowered:
        status, retry, detail = (
            503,
            RETRY_READ_ONLY_S,
            "the database is read-only on the server (file permissions, a full disk or a "
            "replica): nothing was saved; tell the administrator",
        )
    elif "locked" in lowered or "busy" in lowered:
        status, retry, detail = (
            503,
            RETRY_LOCKED_S,
            "the database is busy with another change: nothing was saved; try again in a moment",
        )
    else:
        status, retry, detail = (
            503,
            RETRY_UNREACHABLE_S,
            "the database cannot be reached: nothing was saved; try again shortly (the "
            "department's downtime procedure applies if it lasts)",
        )
    safelog.logger.error("database unavailable: %s", cause)
    return status, retry, detail


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
        except (OperationalError, InterfaceError) as exc:
            # The database failed outside a route (the session's revocation check in the
            # middleware): the same 503 and Retry-After as inside one.
            if started:
                return
            status, retry_s, detail = database_trouble(exc)
            await _plain_error(scope, status, detail, {"Retry-After": str(retry_s)})(
                scope, receive, send
            )
        except Exception as exc:
            reference = safelog.error_reference()
            safelog.log_unexpected(exc, reference, safelog.route_template(scope))
            if started:
                return
            text = f"The server met an unexpected error (reference {reference})."
            await _plain_error(scope, 500, text, {}, reference)(scope, receive, send)


def _plain_error(
    scope: safelog.Scope,
    status: int,
    text: str,
    headers: dict[str, str],
    reference: str | None = None,
) -> Response:
    """An error answer made without the app (no template, no session): JSON under /api/."""
    if str(scope.get("path", "")).startswith("/api/"):
        body: dict[str, str] = {"detail": text}
        if reference is not None:
            body["reference"] = reference
        response: Response = JSONResponse(body, status_code=status, headers=headers)
    else:
        heading = "Database unavailable" if status == 503 else "Something went wrong"
        response = HTMLResponse(
            "<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error</title>"
            f"<h1>{heading}</h1><p>{html.escape(text)}</p><p><a href='/cases'>"
            "Back to the cases</a></p></html>",
            status_code=status,
            headers=headers,
        )
    response.headers["Cache-Control"] = "no-store"
    return response
