"""Checks made on every request before anything else reads it: the Host header, the body size
and NUL characters (issue 17, items 6-8).

It runs outside the session, login and routing: a request refused here never reaches a
password check, a JSON parser or the database.

* Host: with an allowlist configured (``iort serve`` always sets one), a request naming another
  host is refused (400), which defeats DNS rebinding: a page of ``attacker.example`` that
  resolves to the server cannot log in or read answers.
* Size: a body over the limit is refused (413) from its ``Content-Length``, or as soon as a
  chunked body passes the limit, without being parsed.
* NUL: a U+0000 character in the query string or the body (raw, ``%00`` in a form, ``\\u0000``
  in JSON) is refused (422) on every route alike: PostgreSQL cannot store it in text, and no
  field of openiort needs it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from openiort.web import safelog

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# Binary uploads (a CT series with its structure set, as a zip): their own size limit, and NUL
# bytes are their content, not an attack on a text field (the route checks the archive).
DEFAULT_MAX_UPLOAD_BYTES = 200 * 1024 * 1024
UPLOAD_PATHS = re.compile(r"^/cases/[0-9]{1,10}/ct-import$")
_NUL_JSON = re.compile(rb"\\u0000", re.IGNORECASE)


class _RefusedError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail


def _host_name(raw: str) -> str:
    raw = raw.strip().lower()
    if raw.startswith("["):  # [::1]:8000
        return raw.split("]", 1)[0] + "]"
    return raw.rsplit(":", 1)[0] if raw.count(":") == 1 else raw


def _is_upload(scope: safelog.Scope) -> bool:
    return scope.get("method") == "POST" and bool(UPLOAD_PATHS.match(scope.get("path", "")))


def _has_nul(data: bytes, content_type: bytes = b"") -> bool:
    """A NUL, raw or encoded the way the content type encodes it (a ``%00`` in a JSON note
    is text, in a form it is a NUL)."""
    if b"\x00" in data:
        return True
    if b"json" in content_type:
        return bool(_NUL_JSON.search(data))
    return b"%00" in data


class RequestGuardMiddleware:
    """Host allowlist, body size limit and NUL refusal, as pure ASGI middleware."""

    def __init__(
        self,
        app: safelog.ASGIApp,
        *,
        allowed_hosts: Iterable[str] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    ) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.allowed_hosts = (
            None if allowed_hosts is None else {_host_name(h) for h in allowed_hosts}
        )
        self.max_body_bytes = max_body_bytes

    async def __call__(
        self, scope: safelog.Scope, receive: safelog.Receive, send: safelog.Send
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check_head(scope)
            if scope.get("method", "GET") in ("GET", "HEAD", "OPTIONS"):
                # Nothing to read: the app reads these (empty) bodies itself.
                await self.app(scope, receive, send)
                return
            body = await self._read_body(scope, receive)
            content_type = dict(scope.get("headers", [])).get(b"content-type", b"").lower()
            if not _is_upload(scope) and _has_nul(body, content_type):
                raise _RefusedError(422, _nul_message())
        except _RefusedError as refused:
            await _answer(scope, send, refused.status, refused.detail)
            return
        sent = False

        async def replay() -> safelog.Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _check_head(self, scope: safelog.Scope) -> None:
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        if self.allowed_hosts is not None:
            host = _host_name(headers.get("host", b"").decode("latin-1"))
            if host not in self.allowed_hosts:
                raise _RefusedError(
                    400,
                    f"this server does not answer to the host name {host[:80]!r}; use the "
                    "address the department published",
                )
        length = headers.get("content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                raise _RefusedError(400, "Content-Length is not a number") from None
            if size > self._limit(scope):
                raise _RefusedError(413, self._too_large(scope))
        if _has_nul(scope.get("query_string", b"")):
            raise _RefusedError(422, _nul_message())

    def _limit(self, scope: safelog.Scope) -> int:
        return self.max_upload_bytes if _is_upload(scope) else self.max_body_bytes

    def _too_large(self, scope: safelog.Scope) -> str:
        return (
            f"the request is larger than the server accepts ({self._limit(scope)} bytes); "
            "nothing was read"
        )

    async def _read_body(self, scope: safelog.Scope, receive: safelog.Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit(scope):
                raise _RefusedError(413, self._too_large(scope))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _nul_message() -> str:
    return (
        "a text field holds a NUL character (U+0000), which no field accepts: remove it "
        "and send again"
    )


async def _answer(scope: safelog.Scope, send: safelog.Send, status: int, detail: str) -> None:
    if str(scope.get("path", "")).startswith("/api/"):
        body = json.dumps({"detail": detail}).encode("utf-8")
        content_type = b"application/json"
    else:
        from html import escape

        body = (
            "<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Request refused</title>"
            f"<h1>Request refused</h1><p data-testid=error-message>{escape(detail)}</p></html>"
        ).encode()
        content_type = b"text/html; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
