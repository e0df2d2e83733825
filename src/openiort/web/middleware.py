"""Per-request session handling and the security headers of every response."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from openiort.web.state import web_of

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def install_session_middleware(app: FastAPI) -> None:
    """Load the session before each request, write it back after, and set the headers."""

    @app.middleware("http")
    async def session_and_headers(request: Request, call_next: Any) -> Response:
        web = web_of(request)
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
