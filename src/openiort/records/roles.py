"""Roles and what each may do.

Only physicists and oncologists review and approve plans; surgeons enter patients and cases;
viewers read. Daily source QA is the physicist's job. Reading needs no permission here: any
authenticated user may read, and the web layer checks authentication.
"""

from __future__ import annotations

from typing import Literal, get_args

from openiort.records.errors import PermissionDeniedError, RecordsValueError

Role = Literal["physicist", "oncologist", "surgeon", "viewer"]
ROLES: tuple[str, ...] = get_args(Role)

Action = Literal[
    "patient.write",
    "case.write",
    "plan.write",
    "plan.review",
    "plan.approve",
    "delivery.record",
    "qa.record",
]

PERMISSIONS: dict[str, frozenset[str]] = {
    "patient.write": frozenset({"physicist", "oncologist", "surgeon"}),
    "case.write": frozenset({"physicist", "oncologist", "surgeon"}),
    "plan.write": frozenset({"physicist", "oncologist"}),
    "plan.review": frozenset({"physicist", "oncologist"}),
    "plan.approve": frozenset({"physicist", "oncologist"}),
    "delivery.record": frozenset({"physicist", "oncologist"}),
    "qa.record": frozenset({"physicist"}),
}

_DESCRIPTIONS: dict[str, str] = {
    "patient.write": "register or edit patients",
    "case.write": "enter or edit cases",
    "plan.write": "store plans",
    "plan.review": "review plans",
    "plan.approve": "approve plans",
    "delivery.record": "record deliveries",
    "qa.record": "record quality-assurance checks",
}


def check_role(role: str) -> str:
    """Return ``role`` if it is one of :data:`ROLES`, else raise a clear error."""
    if role not in ROLES:
        raise RecordsValueError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    return role


def allowed(role: str, action: str) -> bool:
    """Whether ``role`` may perform ``action`` (one of :data:`PERMISSIONS`)."""
    return role in PERMISSIONS[action]


def require(username: str, role: str, active: bool, action: str) -> None:
    """Raise :class:`PermissionDeniedError` unless an active user of ``role`` may ``action``."""
    if not active:
        raise PermissionDeniedError(f"user {username} is disabled")
    if not allowed(role, action):
        who = sorted(PERMISSIONS[action])
        raise PermissionDeniedError(
            f"user {username} ({role}) may not {_DESCRIPTIONS[action]}; "
            f"allowed roles: {', '.join(who)}"
        )
