"""Signed session cookies and CSRF tokens.

The session lives in one cookie signed with the server's session key (itsdangerous): the
user's record id, a random session id, the CSRF token, when the user logged in and when the
session was last used. The cookie is HttpOnly and SameSite=Strict, and Secure (with the
``__Host-`` name prefix) when the app is served over https. Logging out puts the session id on
a deny list until the session would have expired anyway (in the database, shared by every server
process: :class:`DbRevocations`); a password change ends every older session of that user.

Every state-changing request carries the session's CSRF token, as the form field
``csrf_token`` or the header ``X-CSRF-Token`` (synchroniser-token pattern, OWASP CSRF
Prevention Cheat Sheet); a request with an ``Origin`` header from another site is refused too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Protocol

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Engine, Table, select
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response

from openiort.records.models import RevokedSession

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


class Revocations(Protocol):
    """Where revoked session ids are kept until they would have expired anyway."""

    def revoke(self, sid: str, until: float) -> None: ...

    def is_revoked(self, sid: str, now: float) -> bool: ...


class MemoryRevocations:
    """Revoked sessions of one process only (tests and single-process tools)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def revoke(self, sid: str, until: float) -> None:
        with self._lock:
            now = time.time()
            for k in [k for k, t in self._until.items() if t < now]:
                del self._until[k]
            self._until[_sid_hash(sid)] = until

    def is_revoked(self, sid: str, now: float) -> bool:
        with self._lock:
            until = self._until.get(_sid_hash(sid))
            return until is not None and until >= now


class DbRevocations:
    """Revoked sessions in the records database (table ``revoked_sessions``), so a logout on
    one server process holds on every other and over a restart.

    Looked up by primary key (the SHA-256 of the session id), never scanned; expired rows are
    deleted (by the ``expires_at`` index) whenever a row is added.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._table: Table = RevokedSession.__table__  # type: ignore[assignment]

    def revoke(self, sid: str, until: float) -> None:
        table = self._table
        now = dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.expires_at < now))
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    table.insert().values(
                        sid_sha256=_sid_hash(sid),
                        expires_at=dt.datetime.fromtimestamp(until, dt.UTC),
                    )
                )
        except IntegrityError:
            pass  # revoked already (two logouts at once): the earlier row stands

    def is_revoked(self, sid: str, now: float) -> bool:
        table = self._table
        with self.engine.connect() as conn:
            row = conn.execute(
                select(table.c.expires_at).where(table.c.sid_sha256 == _sid_hash(sid))
            ).first()
        return row is not None and row[0] >= dt.datetime.fromtimestamp(now, dt.UTC)


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


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
    revocations:
        Where logged-out sessions are kept (the web app: :class:`DbRevocations`); default,
        this process's memory.
    """

    def __init__(
        self,
        secret: bytes,
        max_age_s: int,
        idle_s: int,
        secure: bool | None,
        revocations: Revocations | None = None,
    ) -> None:
        self._serializer = URLSafeSerializer(secret, salt="openiort.web.session")
        self.max_age_s = max_age_s
        self.idle_s = idle_s
        self.secure = secure
        self.revocations: Revocations = revocations or MemoryRevocations()

    # -- reading -----------------------------------------------------------------------

    def is_secure(self, request: Request) -> bool:
        return self.secure if self.secure is not None else request.url.scheme == "https"

    def _cookie_name(self, request: Request) -> str:
        return SECURE_COOKIE_NAME if self.is_secure(request) else COOKIE_NAME

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
        if data is None:
            return None
        if data.user_id is not None:
            if now - data.login_at > self.max_age_s or now - data.seen_at > self.idle_s:
                return None
            # Only logged-in sessions are ever revoked: one lookup by key, after the cheap checks.
            if self.revocations.is_revoked(data.sid, now):
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
        """Refuse this logged-in session from now on (until it would have expired anyway).

        An anonymous session (anybody can make one) holds no rights and is not stored: the
        deny list grows only with logins, which take a password and pass the login limiter.
        """
        if data.user_id is None:
            return
        self.revocations.revoke(data.sid, data.login_at + self.max_age_s)

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
