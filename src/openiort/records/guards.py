"""Session-level guards: sealed plans and records of what happened are never changed in place.

Registered on every :class:`~sqlalchemy.orm.Session` when :mod:`openiort.records` is imported.
They stop the application (or a careless script using the ORM) from editing an approved
plan, reversing a plan's status, or editing or deleting audit entries, approvals, reviews and
deliveries. Direct SQL bypasses them; the seal (:mod:`openiort.records.seal`) catches that.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction

from openiort.records.errors import LifecycleError
from openiort.records.models import (
    Approval,
    AuditLog,
    Delivery,
    InVivoReading,
    IsotropyCheck,
    Plan,
    Review,
    SourceOutputCheck,
)

# What a sealed plan may still change: its status (approved -> delivered) and delivery time.
_MUTABLE_WHEN_SEALED: frozenset[str] = frozenset({"status", "delivered_at", "row_version"})
_STATUS_ORDER = {"draft": 0, "reviewed": 1, "approved": 2, "delivered": 3}
_APPEND_ONLY = (
    AuditLog,
    Approval,
    Review,
    Delivery,
    InVivoReading,
    SourceOutputCheck,
    IsotropyCheck,
)


def _committed(obj: Any, attr: str) -> Any:
    history = inspect(obj).attrs[attr].history
    if history.deleted:
        return history.deleted[0]
    if history.unchanged:
        return history.unchanged[0]
    return getattr(obj, attr)


def _check_plan(plan: Plan) -> None:
    state = inspect(plan)
    old_status = _committed(plan, "status")
    new_status = plan.status
    if _STATUS_ORDER.get(new_status, -1) < _STATUS_ORDER.get(old_status, -1):
        raise LifecycleError(
            f"plan {plan.id}: status cannot go back from {old_status} to {new_status}; "
            "store a new version instead"
        )
    if old_status in ("approved", "delivered"):
        changed = [
            a.key
            for a in state.attrs
            if a.key not in _MUTABLE_WHEN_SEALED
            and a.history.has_changes()
            and a.key in {c.key for c in state.mapper.column_attrs}
        ]
        if changed:
            raise LifecycleError(
                f"plan {plan.id} is {old_status} and sealed: {', '.join(sorted(changed))} "
                "cannot be changed; store the change as a new plan version"
            )


def _before_flush(session: Session, _ctx: UOWTransaction, _instances: Any) -> None:
    for obj in session.dirty:
        if not session.is_modified(obj, include_collections=False):
            continue
        if isinstance(obj, Plan):
            _check_plan(obj)
        elif isinstance(obj, _APPEND_ONLY):
            raise LifecycleError(
                f"{type(obj).__name__} {obj.id} is a record of what happened and cannot be changed"
            )
    for obj in session.deleted:
        if isinstance(obj, (Plan, *_APPEND_ONLY)):
            raise LifecycleError(
                f"{type(obj).__name__} {obj.id} is part of the treatment record and cannot be deleted"
            )


def install() -> None:
    """Register the guards on all sessions (idempotent)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
