"""Users: registration, argon2 password hashes, authentication and role changes.

Passwords are hashed with argon2id (argon2-cffi's defaults, the RFC 9106 low-memory profile)
and never stored, logged or put in audit entries. User administration is done by the server's
administrator (``iort user ...``); the acting user, where given, is recorded in the audit log.
"""

from __future__ import annotations

import contextlib
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openiort.records import audit
from openiort.records.errors import NotFoundError, RecordsValueError
from openiort.records.models import User, utcnow
from openiort.records.roles import check_role

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
# NIST SP 800-63B (2017), section 5.1.1.2: memorised secrets of at least 8 characters.
MIN_PASSWORD_CHARS = 8
# Bounds the hashing work one request can cause.
MAX_PASSWORD_CHARS = 1024

_hasher = PasswordHasher()
# A hash of a random password, verified against for unknown users so that a login attempt
# takes as long whether or not the username exists.
_dummy_hash: str | None = None


def use_password_hasher(hasher: PasswordHasher) -> None:
    """Replace the argon2 hasher (tests use cheaper parameters; never do so in production)."""
    global _hasher, _dummy_hash
    _hasher = hasher
    _dummy_hash = None


def _check_password(password: str) -> None:
    if not isinstance(password, str):
        raise RecordsValueError("password: must be text")
    if len(password) < MIN_PASSWORD_CHARS:
        raise RecordsValueError(f"password: must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise RecordsValueError(f"password: must be at most {MAX_PASSWORD_CHARS} characters")
    if password.strip() != password:
        raise RecordsValueError("password: must not begin or end with white space")


def _check_username(username: str) -> None:
    if not USERNAME_PATTERN.fullmatch(username or ""):
        raise RecordsValueError(
            f"username: {username!r} must be 2-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def find_user(session: Session, username: str) -> User | None:
    """The user called ``username`` (case-insensitive), or ``None``."""
    return session.scalars(
        select(User).where(func.lower(User.username) == username.lower())
    ).one_or_none()


def get_user(session: Session, username: str) -> User:
    """The user called ``username``; :class:`NotFoundError` if there is none."""
    user = find_user(session, username)
    if user is None:
        raise NotFoundError(f"no user named {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    """All users, by username."""
    return list(session.scalars(select(User).order_by(User.username)))


def create_user(
    session: Session, username: str, role: str, password: str, *, actor: User | None = None
) -> User:
    """Register a user.

    Parameters
    ----------
    username:
        2-64 letters, digits, ``.``, ``_`` or ``-``; unique regardless of case.
    role:
        ``physicist``, ``oncologist``, ``surgeon`` or ``viewer``.
    password:
        At least 8 characters; stored only as an argon2id hash.
    actor:
        The administrator acting, recorded in the audit log (``None``: the server's command line).

    Raises
    ------
    RecordsValueError
        For a malformed username, an unknown role, a weak password or a taken username.
    """
    _check_username(username)
    check_role(role)
    _check_password(password)
    if find_user(session, username) is not None:
        raise RecordsValueError(f"username: {username!r} is already taken")
    user = User(username=username, role=role, password_hash=_hasher.hash(password), active=True)
    session.add(user)
    session.flush()
    audit.record(session, actor, "create", "user", user.id, {"username": username, "role": role})
    return user


def verify_password(user: User, password: str) -> bool:
    """Whether ``password`` is ``user``'s password (constant-time; ``False`` on any mismatch)."""
    try:
        return bool(_hasher.verify(user.password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or ``None``.

    Takes about as long for an unknown username as for a wrong password. A hash made with
    older argon2 parameters is upgraded on a successful login.
    """
    global _dummy_hash
    user = find_user(session, username)
    if user is None or not user.active:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash("not a password: timing equaliser")
        with contextlib.suppress(VerificationError, InvalidHashError):
            _hasher.verify(_dummy_hash, password)
        return None
    if not verify_password(user, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def set_password(
    session: Session, username: str, password: str, *, actor: User | None = None
) -> User:
    """Replace a user's password."""
    user = get_user(session, username)
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    user.password_changed_at = utcnow()
    audit.record(session, actor, "set_password", "user", user.id, {"username": user.username})
    return user


def set_role(session: Session, username: str, role: str, *, actor: User | None = None) -> User:
    """Change a user's role."""
    user = get_user(session, username)
    check_role(role)
    old = user.role
    user.role = role
    audit.record(
        session,
        actor,
        "set_role",
        "user",
        user.id,
        {"username": user.username, "role": {"from": old, "to": role}},
    )
    return user


def set_active(session: Session, username: str, active: bool, *, actor: User | None = None) -> User:
    """Enable or disable a user (users are never deleted: audit entries refer to them)."""
    user = get_user(session, username)
    user.active = active
    audit.record(
        session,
        actor,
        "enable" if active else "disable",
        "user",
        user.id,
        {"username": user.username},
    )
    return user
