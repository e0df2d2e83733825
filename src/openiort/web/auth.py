"""Who is asking, and may they: session to user, role checks, CSRF checks.

Pages answer an anonymous request with a redirect to the login page; the API answers 401.
Roles and what each may do are the records layer's (:mod:`openiort.records.roles`); the web
layer checks them up front so that a page never offers an action its user may not take.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import HTTPException, Request
from sqlalchemy.orm import Session

from openiort.records import roles
from openiort.records.models import User
from openiort.web.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    SessionData,
    SessionManager,
    same_origin,
    tokens_match,
)


@dataclass(frozen=True)
class UserView:
    """What pages show of the logged-in user (usable after the database session closed)."""

    id: int
    username: str
    role: str

    @staticmethod
    def of(user: User) -> UserView:
        return UserView(user.id, user.username, user.role)


class LoginRequiredError(Exception):
    """An anonymous request for a page; answered with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path
        super().__init__("login required")


def safe_next(path: str | None) -> str:
    """A local path to return to after login (never another site: no scheme, no '//')."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/cases"
    if any(ord(c) < 32 for c in path):
        return "/cases"
    return path


def login_redirect_url(next_path: str) -> str:
    # The path only: query strings are not carried (and may be long or odd).
    return "/login?next=" + quote(safe_next(next_path), safe="/")


def session_of(request: Request) -> SessionData | None:
    data = getattr(request.state, "session", None)
    return data if isinstance(data, SessionData) else None


def user_for(session_data: SessionData | None, db: Session) -> User | None:
    """The active user of a session; ``None`` if anonymous, disabled or the password changed
    since login (which ends every older session)."""
    if session_data is None or session_data.user_id is None:
        return None
    user = db.get(User, session_data.user_id)
    if user is None or not user.active:
        return None
    if user.password_changed_at.timestamp() > session_data.login_at + 1.0:
        return None
    return user


def page_user(request: Request, db: Session) -> User:
    """The logged-in user of a page request, else :class:`LoginRequiredError`."""
    user = user_for(session_of(request), db)
    if user is None:
        raise LoginRequiredError(request.url.path)
    request.state.user = UserView.of(user)
    return user


def api_user(request: Request, db: Session) -> User:
    """The logged-in user of an API request, else HTTP 401."""
    user = user_for(session_of(request), db)
    if user is None:
        raise HTTPException(
            status_code=401,
            detail="not logged in: POST /api/session with your username and password",
            headers={"WWW-Authenticate": 'Cookie realm="openiort"'},
        )
    request.state.user = UserView.of(user)
    return user


def require_role(user: User | UserView, action: str) -> None:
    """HTTP 403 unless the user's role may take ``action`` (see records.roles)."""
    if not roles.allowed(user.role, action):
        allowed = ", ".join(sorted(roles.PERMISSIONS[action]))
        raise HTTPException(
            status_code=403,
            detail=f"your role ({user.role}) may not do this; allowed roles: {allowed}",
        )


def may(user: User | UserView | None, action: str) -> bool:
    return user is not None and roles.allowed(user.role, action)


async def check_csrf(request: Request) -> None:
    """HTTP 403 unless a state-changing request carries the session's CSRF token and comes
    from this site."""
    if not same_origin(request):
        raise HTTPException(status_code=403, detail="request from another site refused")
    data = session_of(request)
    if data is None:
        if request.url.path.startswith("/api/"):
            raise HTTPException(
                status_code=401,
                detail="not logged in: POST /api/session with your username and password",
            )
        # An expired or missing session on a page form: log in again, then start over.
        raise LoginRequiredError("/cases")
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    if not tokens_match(data.csrf, given):
        raise HTTPException(
            status_code=403,
            detail="the form has expired or did not come from this site: reload and try again",
        )


def start_session(request: Request, manager: SessionManager, user_id: int) -> SessionData:
    """Log a user in: a new session (id and CSRF token) replaces the old one."""
    old = session_of(request)
    if old is not None:
        manager.revoke(old)
    data = manager.login(user_id, time.time())
    request.state.session = data
    request.state.session_changed = True
    return data


def end_session(request: Request, manager: SessionManager) -> None:
    old = session_of(request)
    if old is not None:
        manager.revoke(old)
    request.state.session = None
    request.state.session_cleared = True


def ensure_anonymous_session(request: Request) -> SessionData:
    """A session for CSRF tokens before login (the login form needs one)."""
    data = session_of(request)
    if data is None:
        data = SessionData.fresh(time.time())
        request.state.session = data
        request.state.session_changed = True
    return data
