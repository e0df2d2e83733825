"""Logging that never carries patient data.

URLs hold record ids only (never a patient's id or name), and the access log writes the
route's template (``/cases/{case_id}``) rather than the path, and no query string. An
unexpected error is logged as its type and the code locations it passed through, never its
message or local values (which may quote a case), under a reference the user is shown.
"""

from __future__ import annotations

import logging
import secrets
import time
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

logger = logging.getLogger("openiort.web")
access_logger = logging.getLogger("openiort.web.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def error_reference() -> str:
    """A short random reference shown to the user and written to the log with the error."""
    return secrets.token_hex(4)


def database_cause(exc: BaseException) -> str:
    """``Type: first line`` of the database driver's own message (SQLAlchemy's wrapper adds the
    statement and its parameters, which may hold patient data; the driver's message does not)."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip()
    return f"{type(cause).__name__}: {text.splitlines()[0][:300] if text else ''}"


def code_locations(exc: BaseException) -> str:
    """``file:line in function`` for each frame of the traceback, without any message."""
    frames = traceback.extract_tb(exc.__traceback__)
    return " <- ".join(
        f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in reversed(frames)
    )


def log_unexpected(exc: BaseException, reference: str, route: str) -> None:
    """Log an unexpected error by type and location only."""
    logger.error(
        "unexpected %s (ref %s) at %s: %s",
        type(exc).__name__,
        reference,
        route,
        code_locations(exc),
    )


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "(static)" if str(scope.get("path", "")).startswith("/static/") else "(no route)"


class AccessLogMiddleware:
    """One line per request: method, route template, status, duration. No path, no query."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            access_logger.info(
                "%s %s %d %.1f ms",
                scope.get("method", "?"),
                route_template(scope),
                status["code"],
                (time.perf_counter() - started) * 1000.0,
            )
