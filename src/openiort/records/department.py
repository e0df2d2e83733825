"""Department settings that change how the records behave, kept as audited events.

A setting is the newest ``setting`` entry of the audit log for its name: a change is an event of
the department's record chain (who, when, from what to what), so a setting changed behind
openiort's back breaks that chain like any other record. Unset settings take their safe default.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from openiort.records import audit
from openiort.records.errors import RecordsValueError
from openiort.records.models import AuditLog, User

SETTING_ACTION = "setting"
FOUR_EYES = "four_eyes_approval"
# name -> (default, what it means)
SETTINGS: dict[str, tuple[bool, str]] = {
    FOUR_EYES: (
        True,
        "the author of a plan and the user who accepted its review may not approve it",
    ),
}
# Names the command line accepts, besides the stored names.
ALIASES = {"four-eyes": FOUR_EYES}


def _name(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in SETTINGS:
        raise RecordsValueError(
            f"setting: unknown name {name!r}; known: {', '.join(sorted(ALIASES))}"
        )
    return name


def setting(session: Session, name: str) -> bool:
    """The department's current value of a setting (its default when never set)."""
    name = _name(name)
    entry = session.scalars(
        select(AuditLog)
        .where(AuditLog.action == SETTING_ACTION, AuditLog.entity == name)
        .order_by(AuditLog.id.desc())
        .limit(1)
    ).first()
    if entry is None or not isinstance(entry.summary.get("value"), bool):
        return SETTINGS[name][0]
    return bool(entry.summary["value"])


def set_setting(
    session: Session, name: str, value: bool, *, actor: User | None = None, reason: str = ""
) -> bool:
    """Change a setting, as an audited event of the department's record; the old value."""
    name = _name(name)
    old = setting(session, name)
    reason = reason.strip()
    if not reason:
        raise RecordsValueError("reason: say why the setting changes (it goes into the audit log)")
    if len(reason) > 500:
        raise RecordsValueError("reason: at most 500 characters")
    audit.record(
        session,
        actor,
        SETTING_ACTION,
        name,
        None,
        {"value": value, "from": old, "reason": reason},
    )
    return old
