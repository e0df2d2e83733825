"""Treatment records of the deliveries in openiort's records database (``iort export
--treatment-record`` and the web app's download).

Each delivery row becomes one :class:`RecordedDelivery` whose identity is the database's plan
and delivery ids, so its record has the same SOP Instance UID on every export: a PACS keeps one
record per delivery. An interrupted session's record ends where the given time or monitor units
ran out; the session that gave the remainder references it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from openiort.io.dicom_settings import stable_uid
from openiort.io.errors import DicomExportError
from openiort.io.treatment_record_writer import RecordedDelivery, write_treatment_records

EPS = 1e-9


class DeliveryRow(Protocol):
    """What is read of a delivery row (:class:`openiort.records.models.Delivery`)."""

    @property
    def id(self) -> int: ...
    @property
    def sequence(self) -> int: ...
    @property
    def interrupted(self) -> bool: ...
    @property
    def delivered_fraction(self) -> float: ...
    @property
    def cumulative_fraction(self) -> float: ...
    @property
    def delivered_at(self) -> datetime: ...


def _operator(row: object) -> str:
    user = getattr(row, "delivered_by", None)
    return str(getattr(user, "username", "") or "")


def recorded_deliveries(
    plan_id: int, rows: Sequence[DeliveryRow], fractions: int = 1, uid_root: str | None = None
) -> list[RecordedDelivery]:
    """The sessions of the record's plan ``plan_id`` as the record writer takes them.

    ``delivered_fraction`` and ``cumulative_fraction`` of a row are of the whole course
    (``fractions`` fractions); a record is of one fraction: its share of that fraction, after
    what earlier sessions of the fraction gave."""
    out: list[RecordedDelivery] = []
    previous: DeliveryRow | None = None
    for row in sorted(rows, key=lambda r: r.sequence):
        before = (row.cumulative_fraction - row.delivered_fraction) * fractions
        fraction_index = min(math.floor(before + EPS), fractions - 1)
        already = max(before - fraction_index, 0.0)
        if already < EPS:
            already = 0.0
        share = min(row.delivered_fraction * fractions, 1.0 - already)
        if share <= 0:
            raise DicomExportError(f"delivery {row.sequence}: nothing was delivered")
        remainder_of = None
        remainder_uid = None
        if previous is not None and previous.interrupted:
            remainder_of = previous.sequence
            remainder_uid = stable_uid(
                uid_root, "treatment record", _identity(plan_id, previous.id)
            )
        out.append(
            RecordedDelivery(
                sequence=row.sequence,
                delivered_at=row.delivered_at,
                delivered_fraction=share,
                interrupted=bool(row.interrupted),
                operator=_operator(row),
                remainder_of=remainder_of,
                already_delivered_fraction=already,
                identity=_identity(plan_id, row.id),
                remainder_of_uid=remainder_uid,
                fraction_number=fraction_index + 1,
            )
        )
        previous = row
    return out


def _identity(plan_id: int, delivery_id: int) -> str:
    return f"openiort records plan {plan_id} delivery {delivery_id}"


def write_record_treatment_records(
    rp_path: Path,
    plan_id: int,
    rows: Sequence[DeliveryRow],
    out_dir: Path,
    fractions: int = 1,
    uid_root: str | None = None,
    institution_name: str = "",
) -> list[Path]:
    """``RT_<sequence>.dcm`` in ``out_dir`` for each recorded delivery of the plan (none: error)."""
    if not rows:
        raise DicomExportError(f"plan {plan_id} has no recorded delivery: no treatment record")
    sessions = recorded_deliveries(plan_id, rows, fractions, uid_root)
    return write_treatment_records(
        rp_path, sessions, out_dir, uid_root=uid_root, institution_name=institution_name
    )
