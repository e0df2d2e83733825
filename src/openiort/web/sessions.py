"""Signed session cookies and CSRF tokens.

The session lives in one cookie signed with the server's session key (itsdangerous): the
user's record id, a random session id, the CSRF token, when the user logged in and when the
session was last used. The cookie is HttpOnly and SameSite=Strict, and Secure (with the
``__Host-`` name prefix) when the app is served over https. Logging out puts the session id on
a deny list until the session would have expired anyway; a password change ends every older
session of that user.

Every state-changing request carries the session's CSRF token, as the form field
``csrf_token`` or the header ``X-CSRF-Token`` (synchroniser-token pattern, OWASP CSRF
Prevention Cheat Sheet); a request with an ``Origin`` header from another site is refused too.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE_NAME = "openiort_session"
SECURE_COOKIE_NAME = "__Host-openiort_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_TOKEN_BYTES = 32
# Refresh the last-seen time in the cookie at most this often (fewer Set-Cookie headers).
_TOUCH_EVERY_S = 60


@dataclass(frozen=True)
class SessionData:
    """One browser's session; ``user_id`` is ``None`` before login."""

    sid: str
    csrf: str
    user_id: int | None = None
    login_at: float = 0.0
    seen_at: float = 0.0

    @staticmethod
    def fresh(now: float) -> SessionData:
        return SessionData(
            sid=secrets.token_urlsafe(_TOKEN_BYTES),
            csrf=secrets.token_urlsafe(_TOKEN_BYTES),
            seen_at=now,
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "s": self.sid,
            "c": self.csrf,
            "u": self.user_id,
            "l": round(self.login_at, 3),
            "t": round(self.seen_at, 3),
        }

    @staticmethod
    def from_payload(data: Any) -> SessionData | None:
        try:
            return SessionData(
                sid=str(data["s"]),
                csrf=str(data["c"]),
                user_id=None if data["u"] is None else int(data["u"]),
                login_at=float(data["l"]),
                seen_at=float(data["t"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


class SessionManager:
    """Reads, checks and writes the session cookie.

    Parameters
    ----------
    secret:
        The signing key.
    max_age_s, idle_s:
        Session lifetime after login, and the longest pause between requests.
    secure:
        ``True``/``False`` to force the Secure flag, ``None`` to follow the request scheme.
    """

    def __init__(self, secret: bytes, max_age_s: int, idle_s: int, secure: bool | None) -> None:
        self._serializer = URLSafeSerializer(secret, salt="openiort.web.session")
        self.max_age_s = max_age_s
        self.idle_s = idle_s
        self.secure = secure
        self._revoked: dict[str, float] = {}
        self._lock = threading.Lock()

    # -- reading -----------------------------------------------------------------------

    def is_secure(self, request: Request) -> bool:
        return self.secure if self.secure is not None else request.url.scheme == "https"

    def _cookie_name(self, request: Request) -> str:
        return SECURE_COOKIE_NAME if self.is_secure(request) else COOKIE_NAME

    def _revoked_now(self, sid: str, now: float) -> bool:
        with self._lock:
            for k in [k for k, until in self._revoked.items() if until < now]:
                del self._revoked[k]
            return sid in self._revoked

    def load(self, request: Request, now: float | None = None) -> SessionData | None:
        """The request's valid session, or ``None`` (missing, forged, expired or revoked)."""
        now = time.time() if now is None else now
        raw = request.cookies.get(self._cookie_name(request))
        if not raw:
            return None
        try:
            data = SessionData.from_payload(self._serializer.loads(raw))
        except BadSignature:
            return None
        if data is None or self._revoked_now(data.sid, now):
            return None
        if data.user_id is not None:
            if now - data.login_at > self.max_age_s or now - data.seen_at > self.idle_s:
                return None
        elif now - data.seen_at > self.max_age_s:
            return None
        return data

    # -- writing -----------------------------------------------------------------------

    def needs_touch(self, data: SessionData, now: float) -> bool:
        return now - data.seen_at > _TOUCH_EVERY_S

    def touched(self, data: SessionData, now: float) -> SessionData:
        return replace(data, seen_at=now)

    def login(self, user_id: int, now: float | None = None) -> SessionData:
        """A new session (new id and CSRF token: no session fixation) for a user."""
        now = time.time() if now is None else now
        return replace(SessionData.fresh(now), user_id=user_id, login_at=now)

    def revoke(self, data: SessionData) -> None:
        """Refuse this session id from now on (until it would have expired anyway)."""
        with self._lock:
            self._revoked[data.sid] = time.time() + self.max_age_s

    def write(self, request: Request, response: Response, data: SessionData) -> None:
        response.set_cookie(
            self._cookie_name(request),
            self._serializer.dumps(data.to_payload()),
            max_age=self.max_age_s,
            path="/",
            secure=self.is_secure(request),
            httponly=True,
            samesite="strict",
        )

    def clear(self, request: Request, response: Response) -> None:
        response.delete_cookie(
            self._cookie_name(request),
            path="/",
            secure=self.is_secure(request),
            httponly=True,
            samesite="strict",
        )


def tokens_match(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def same_origin(request: Request) -> bool:
    """False when the request carries an ``Origin`` (or ``Referer``) of another site."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        referer = request.headers.get("referer")
        if not referer:
            return origin is None
        origin = referer
    host = request.headers.get("host", "")
    for scheme in ("http://", "https://"):
        if origin.startswith(scheme):
            rest = origin[len(scheme) :]
            return rest.split("/", 1)[0] == host
    return False
