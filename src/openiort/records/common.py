"""Helpers the record services share: role check, row fetch, comments, versioned flush."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from openiort.records import roles
from openiort.records.errors import ConflictError, NotFoundError, RecordsValueError
from openiort.records.models import Base, User

MAX_COMMENT_CHARS = 4000

_M = TypeVar("_M", bound=Base)


def require_role(actor: User, action: str) -> None:
    """Refuse (``PermissionDeniedError``) unless ``actor`` is active and its role may ``action``."""
    roles.require(actor.username, actor.role, actor.active, action)


def get_row(session: Session, model: type[_M], ident: int, what: str, *, lock: bool = False) -> _M:
    """The ``model`` row with this id; :class:`NotFoundError` naming ``what`` if none.

    ``lock`` takes a row lock (and re-reads the row) for a change guarded by a version check.
    """
    stmt = select(model).where(model.id == ident)  # type: ignore[attr-defined]
    if lock:
        # Row lock on PostgreSQL (SQLite serialises writers anyway); refresh what the
        # session holds so that the version check sees the latest committed row.
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    obj = session.scalars(stmt).one_or_none()
    if obj is None:
        raise NotFoundError(f"{what} {ident} does not exist")
    return obj


def clean_comment(comment: str | None) -> str | None:
    """A review or approval comment, stripped (``None`` when empty); at most 4000 characters."""
    if comment is None:
        return None
    if len(comment) > MAX_COMMENT_CHARS:
        raise RecordsValueError(f"comment: at most {MAX_COMMENT_CHARS} characters")
    return comment.strip() or None


def flush_versioned(session: Session, entity: str, entity_id: int, expected_version: int) -> None:
    """Flush a change to a version-counted row; :class:`ConflictError` if another saved first."""
    try:
        session.flush()
    except StaleDataError:
        # Another transaction committed between our read and our write.
        raise ConflictError(entity, entity_id, expected_version, None, None, None) from None
