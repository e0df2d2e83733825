"""Errors raised by the records layer.

Every error carries a message fit to show a user: it names the record and the problem and
never includes patient names. The web layer maps them onto HTTP statuses:
:class:`NotFoundError` 404, :class:`PermissionDeniedError` 403, :class:`ConflictError` and
:class:`LifecycleError` 409, :class:`TamperedPlanError` 409 (and an alert), any other
:class:`ValueError` 422.
"""

from __future__ import annotations

import datetime as dt

from openiort.errors import OpenIortInputError


class RecordsError(Exception):
    """Base class of every error raised by :mod:`openiort.records`."""


class RecordsValueError(RecordsError, OpenIortInputError):
    """Bad input: a missing or malformed value, named in the message."""


class NotFoundError(RecordsError, LookupError):
    """The requested record does not exist."""


class PermissionDeniedError(RecordsError, PermissionError):
    """The acting user's role does not allow the action."""


class LifecycleError(RecordsError, ValueError):
    """An illegal plan status transition (for example approving a draft)."""


class ExampleDataError(LifecycleError):
    """A plan computed with example device data: it may be shown, never approved."""


class ConflictError(RecordsError):
    """A record changed since the user loaded it: their edit would overwrite another's.

    Attributes
    ----------
    entity, entity_id:
        The record that moved.
    expected_version, current_version:
        The version the user edited and the version now stored.
    changed_by, changed_at:
        Who made the intervening change and when (``None`` where unknown).
    message:
        Replaces the standard message where the conflict is not an edit of a form.
    """

    def __init__(
        self,
        entity: str,
        entity_id: int,
        expected_version: int,
        current_version: int | None,
        changed_by: str | None,
        changed_at: dt.datetime | None,
        message: str | None = None,
    ) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.expected_version = expected_version
        self.current_version = current_version
        self.changed_by = changed_by
        self.changed_at = changed_at
        who = changed_by if changed_by is not None else "another user"
        when = (
            f" at {changed_at.astimezone(dt.UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC"
            if changed_at is not None
            else ""
        )
        now = f"version {current_version}" if current_version is not None else "a newer version"
        if message is not None:
            super().__init__(message)
            return
        super().__init__(
            f"{entity} {entity_id} was changed by {who}{when} while you were editing version "
            f"{expected_version} (it is now {now}); your changes were not saved. Reload the "
            f"{entity}, review the other change and enter yours again."
        )


class TamperedPlanError(RecordsError):
    """A stored plan no longer matches its seal: it must not be used or delivered."""

    def __init__(self, plan_id: int, reason: str) -> None:
        self.plan_id = plan_id
        self.reason = reason
        super().__init__(f"plan {plan_id} failed its seal check and is refused: {reason}")


class TamperedRecordError(RecordsError):
    """A patient's record (or the department's) fails its chain check: nothing is done with
    it until the break is explained (docs/deployment.md, "A record that does not verify")."""

    def __init__(self, patient_id: int, reason: str) -> None:
        self.patient_id = patient_id
        self.reason = reason
        super().__init__(
            f"the record of patient record {patient_id} does not verify and is refused: {reason}"
        )


class SealKeyError(RecordsError):
    """The server's seal key is missing, too short or unsafely stored."""


class DeliveryCheckError(RecordsValueError):
    """Values entered at the console do not match the approved plan.

    Attributes
    ----------
    mismatches:
        One line per mismatching setting, each naming the setting, the value entered and the
        value the plan requires.
    """

    def __init__(self, plan_id: int, mismatches: list[str]) -> None:
        self.plan_id = plan_id
        self.mismatches = list(mismatches)
        super().__init__(
            f"delivery refused: the console settings do not match approved plan {plan_id}: "
            + "; ".join(mismatches)
        )


class SchemaError(RecordsError):
    """The database schema is not at the revision this version of openiort expects."""
