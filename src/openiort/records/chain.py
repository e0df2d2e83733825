"""Record chains: the clinical record made tamper-evident (DESIGN.md, "Plan lifecycle").

Every audit entry is an event of one chain: the record of one patient (her patient row,
cases, plans, reviews, approvals, deliveries and in-vivo readings) or the department's
(users and source QA), with security events in a chain of their own. An event lists the rows
its transaction changed, each with a SHA-256 digest of the whole row as stored, and carries an
HMAC (the seal key) over its content and the HMAC of the previous event of its chain.

:func:`verify` then finds, per chain: an event deleted, inserted or edited (sequence gap,
previous-HMAC mismatch, bad HMAC), a row changed, added or deleted by anything but openiort
(its digest against the digest its latest event recorded), and a truncated tail (the newest
event of each chain is also written to a head file kept with the key, outside the database,
:mod:`openiort.records.anchor`). Rows changed through the ORM are collected by a flush hook and
attested by the next audit entry of their chain; any left at commit get a ``attest`` event of
their own, so no change made through openiort goes unrecorded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, UOWTransaction

from openiort.records import anchor
from openiort.records.errors import ConflictError, SealKeyError, TamperedRecordError
from openiort.records.models import (
    Approval,
    AuditLog,
    Case,
    Delivery,
    InVivoReading,
    IsotropyCheck,
    Patient,
    Plan,
    Review,
    SourceOutputCheck,
    User,
    utcnow,
)
from openiort.records.seal import key_id, seal_key, verification_keys

CHAIN_ALGORITHM = "openiort-chain-v1 hmac-sha256"
DEPARTMENT = "department"
SECURITY = "security"
# Views of records, one chain per user ("access:<user id>"): never a state change.
ACCESS_PREFIX = "access:"
GENESIS_ACTION = "genesis"
ATTEST_ACTION = "attest"

# Tables whose rows a patient's record holds, and the department's.
_PATIENT_MODELS: tuple[type[Any], ...] = (
    Patient,
    Case,
    Plan,
    Review,
    Approval,
    Delivery,
    InVivoReading,
)
_DEPARTMENT_MODELS: tuple[type[Any], ...] = (User, SourceOutputCheck, IsotropyCheck)
TRACKED_MODELS = _PATIENT_MODELS + _DEPARTMENT_MODELS
# Audit entities (AuditLog.entity) stored in a patient's record, by table.
_ENTITY_TABLES: dict[str, str] = {
    "patient": "patients",
    "case": "cases",
    "plan": "plans",
    "delivery": "deliveries",
    "invivo_reading": "invivo_readings",
}
# Actions that are security events: they describe, they change no record.
SECURITY_ACTIONS: frozenset[str] = frozenset({"tamper_detected", "delivery_refused", "view"})

_PENDING = "openiort_chain_pending"
HEADS_INFO = "openiort_chain_heads"
_engine_keys: weakref.WeakKeyDictionary[Engine, bytes] = weakref.WeakKeyDictionary()
_engine_heads: weakref.WeakKeyDictionary[Engine, Path | None] = weakref.WeakKeyDictionary()


def bind_key(engine: Engine, key: bytes, heads: Path | None = None) -> None:
    """Sign the chains of ``engine``'s database with ``key`` (the web app's seal key) and keep
    their heads in ``heads`` (none kept when ``None``)."""
    _engine_keys[engine] = key
    _engine_heads[engine] = heads


def heads_file_for(session: Session | Connection) -> Path | None:
    """The head file of the chains of the session's database (see :func:`bind_key`)."""
    engine = _engine(session)
    if engine in _engine_keys:
        return _engine_heads.get(engine)
    return anchor.heads_file()


def _engine(session: Session | Connection) -> Engine:
    bind = session.get_bind() if isinstance(session, Session) else session
    return bind.engine if isinstance(bind, Connection) else bind


def signing_key(session: Session | Connection) -> bytes:
    """The key that signs new events: the one bound to the engine, else the server's key."""
    return _engine_keys.get(_engine(session)) or seal_key()


def _keys(session: Session | Connection) -> dict[str, bytes]:
    keys = verification_keys()
    bound = _engine_keys.get(_engine(session))
    if bound is not None:
        keys[key_id(bound)] = bound
    return keys


def patient_chain(patient_id: int) -> str:
    return f"patient:{patient_id}"


def row_key(table: str, row_id: int) -> str:
    return f"{table}/{row_id}"


# ------------------------------------------------------------------ digests and HMACs


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _canonical(data: Any) -> bytes:
    # Both sides are this code: sorted keys and Python's float repr are canonical enough.
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_plain
    ).encode("ascii")


def row_digest(table: Table, row: Mapping[Any, Any]) -> str:
    """SHA-256 of every column of a row as stored (the columns of ``table`` only).

    Empty (NULL) columns are left out, so that a later migration adding a nullable column
    does not change the digests of the rows already recorded.
    """
    content = {c.name: _plain(row[c.name]) for c in table.columns if row[c.name] is not None}
    return hashlib.sha256(_canonical([table.name, content])).hexdigest()


def _entry_content(entry: AuditLog) -> dict[str, Any]:
    return {
        "algorithm": CHAIN_ALGORITHM,
        "chain": entry.chain,
        "seq": entry.chain_seq,
        "prev": entry.prev_hmac,
        "at": _plain(entry.at),
        "recorded_at": _plain(entry.recorded_at),
        "user_id": entry.user_id,
        "username": entry.username,
        "action": entry.action,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "summary": entry.summary,
        "rows": entry.rows,
        "key_id": entry.key_id,
    }


def entry_hmac(entry: AuditLog, key: bytes) -> str:
    """The HMAC-SHA256 of an event under ``key``."""
    return hmac.new(key, _canonical(_entry_content(entry)), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------ which chain a row is in


def _patient_of(session: Session | Connection, table: str, row_id: int) -> int | None:
    t = {m.__tablename__: m.__table__ for m in _PATIENT_MODELS}
    patients, cases, plans, deliveries = t["patients"], t["cases"], t["plans"], t["deliveries"]
    if table == "patients":
        stmt = select(patients.c.id).where(patients.c.id == row_id)
    elif table == "cases":
        stmt = select(cases.c.patient_id).where(cases.c.id == row_id)
    elif table == "plans":
        stmt = select(cases.c.patient_id).join(plans, plans.c.case_id == cases.c.id)
        stmt = stmt.where(plans.c.id == row_id)
    elif table in ("plan_reviews", "plan_approvals", "deliveries"):
        child = t[table]
        stmt = (
            select(cases.c.patient_id)
            .join(plans, plans.c.case_id == cases.c.id)
            .join(child, child.c.plan_id == plans.c.id)
            .where(child.c.id == row_id)
        )
    elif table == "invivo_readings":
        readings = t[table]
        stmt = (
            select(cases.c.patient_id)
            .join(plans, plans.c.case_id == cases.c.id)
            .join(deliveries, deliveries.c.plan_id == plans.c.id)
            .join(readings, readings.c.delivery_id == deliveries.c.id)
            .where(readings.c.id == row_id)
        )
    else:
        return None
    value = session.execute(stmt).scalar_one_or_none()
    return int(value) if value is not None else None


def chain_of_row(session: Session | Connection, table: str, row_id: int) -> str:
    """The chain a row of a tracked table belongs to."""
    patient = _patient_of(session, table, row_id)
    return patient_chain(patient) if patient is not None else DEPARTMENT


def chain_of_entity(session: Session | Connection, entity: str, entity_id: int | None) -> str:
    """The chain of an audit entry about ``entity`` ``entity_id``."""
    table = _ENTITY_TABLES.get(entity)
    if table is None or entity_id is None:
        return DEPARTMENT
    return chain_of_row(session, table, entity_id)


# ------------------------------------------------------------------ writing events


def _table(name: str) -> Table:
    for model in TRACKED_MODELS:
        if model.__tablename__ == name:
            table: Table = model.__table__
            return table
    raise KeyError(name)


def _digest_now(session: Session, table_name: str, row_id: int) -> str | None:
    table = _table(table_name)
    row = session.execute(select(table).where(table.c.id == row_id)).mappings().one_or_none()
    return None if row is None else row_digest(table, row)


def _pending(session: Session) -> set[tuple[str, int]]:
    pending: set[tuple[str, int]] = session.info.setdefault(_PENDING, set())
    return pending


def _head(session: Session, chain: str) -> AuditLog | None:
    stmt = (
        select(AuditLog).where(AuditLog.chain == chain).order_by(AuditLog.chain_seq.desc()).limit(1)
    )
    return session.scalars(stmt).first()


def append(
    session: Session,
    entry: AuditLog,
    chain: str,
    rows: Mapping[str, str | None] | None = None,
    *,
    key: bytes | None = None,
) -> AuditLog:
    """Make ``entry`` the next event of ``chain``, attesting ``rows`` and the changed rows of
    that chain the session has flushed, and flush it.

    Raises
    ------
    ConflictError
        If another transaction appended to the same chain at the same moment.
    """
    session.flush()  # collect the rows this transaction changed (the flush hook)
    attested: dict[str, str | None] = dict(rows or {})
    pending = _pending(session)
    for table_name, row_id in sorted(pending):
        if chain_of_row(session, table_name, row_id) == chain:
            attested[row_key(table_name, row_id)] = _digest_now(session, table_name, row_id)
            pending.discard((table_name, row_id))
    key = signing_key(session) if key is None else key
    head = _head(session, chain)
    now = utcnow()
    entry.chain = chain
    entry.chain_seq = (head.chain_seq or 0) + 1 if head is not None else 1
    entry.prev_hmac = head.entry_hmac if head is not None else None
    entry.at = entry.at or now
    entry.recorded_at = now
    # The summary as JSON gives it back, so that the HMAC covers what is stored.
    entry.summary = json.loads(_canonical(entry.summary or {}))
    entry.rows = dict(sorted(attested.items()))
    entry.key_id = key_id(key)
    entry.entry_hmac = entry_hmac(entry, key)
    session.add(entry)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(
            "record",
            0,
            0,
            None,
            None,
            None,
            message=(
                "another change to the same record was saved at the same moment; this one was "
                "not saved: reload and try again"
            ),
        ) from None
    heads: dict[str, tuple[int, str]] = session.info.setdefault(HEADS_INFO, {})
    heads[chain] = (entry.chain_seq, entry.entry_hmac)
    return entry


def _after_flush(session: Session, _ctx: UOWTransaction) -> None:
    pending = _pending(session)
    changed = [
        *session.new,
        *(o for o in session.dirty if session.is_modified(o, include_collections=False)),
        *session.deleted,
    ]
    for obj in changed:
        if isinstance(obj, TRACKED_MODELS) and obj.id is not None:
            pending.add((type(obj).__tablename__, obj.id))


def _before_commit(session: Session) -> None:
    session.flush()
    pending = _pending(session)
    if not pending:
        return
    by_chain: dict[str, list[tuple[str, int]]] = {}
    for table_name, row_id in sorted(pending):
        by_chain.setdefault(chain_of_row(session, table_name, row_id), []).append(
            (table_name, row_id)
        )
    for chain, _rows in by_chain.items():
        # A change made without an audit entry (a password rehash at login, a script using
        # the models): recorded as what it is.
        entry = AuditLog(
            user_id=None,
            username="system",
            action=ATTEST_ACTION,
            entity="record",
            entity_id=None,
            summary={"note": "rows changed without an audit entry of their own"},
        )
        append(session, entry, chain)


def _after_commit(session: Session) -> None:
    heads: dict[str, tuple[int, str]] = session.info.pop(HEADS_INFO, {})
    session.info.pop(_PENDING, None)
    if heads:
        path = heads_file_for(session)
        if path is not None:
            anchor.advance(heads, path)


def _after_rollback(session: Session) -> None:
    session.info.pop(HEADS_INFO, None)
    session.info.pop(_PENDING, None)


def install() -> None:
    """Register the hooks on all sessions (idempotent)."""
    for name, fn in (
        ("after_flush", _after_flush),
        ("before_commit", _before_commit),
        ("after_commit", _after_commit),
        ("after_rollback", _after_rollback),
    ):
        if not event.contains(Session, name, fn):
            event.listen(Session, name, fn)


# ------------------------------------------------------------------ genesis


def _all_rows(
    conn: Session | Connection, patient_id: int | None = None
) -> dict[str, dict[str, str]]:
    """Digest of every row of the tracked tables, by chain (one patient's only, if given)."""
    t = {m.__tablename__: m.__table__ for m in TRACKED_MODELS}
    patients, cases, plans, deliveries = t["patients"], t["cases"], t["plans"], t["deliveries"]
    out: dict[str, dict[str, str]] = {}

    def add(table: Table, stmt: Any, patient_col: Any | None) -> None:
        for row in conn.execute(stmt).mappings():
            chain = DEPARTMENT if patient_col is None else patient_chain(row["_patient_id"])
            out.setdefault(chain, {})[row_key(table.name, row["id"])] = row_digest(table, row)

    def scoped(stmt: Any, col: Any) -> Any:
        return stmt if patient_id is None else stmt.where(col == patient_id)

    add(patients, scoped(select(patients, patients.c.id.label("_patient_id")), patients.c.id), 1)
    add(
        cases,
        scoped(select(cases, cases.c.patient_id.label("_patient_id")), cases.c.patient_id),
        1,
    )
    add(
        plans,
        scoped(
            select(plans, cases.c.patient_id.label("_patient_id")).join(
                cases, plans.c.case_id == cases.c.id
            ),
            cases.c.patient_id,
        ),
        1,
    )
    for name in ("plan_reviews", "plan_approvals", "deliveries"):
        child = t[name]
        stmt = (
            select(child, cases.c.patient_id.label("_patient_id"))
            .join(plans, child.c.plan_id == plans.c.id)
            .join(cases, plans.c.case_id == cases.c.id)
        )
        add(child, scoped(stmt, cases.c.patient_id), 1)
    readings = t["invivo_readings"]
    stmt = (
        select(readings, cases.c.patient_id.label("_patient_id"))
        .join(deliveries, readings.c.delivery_id == deliveries.c.id)
        .join(plans, deliveries.c.plan_id == plans.c.id)
        .join(cases, plans.c.case_id == cases.c.id)
    )
    add(readings, scoped(stmt, cases.c.patient_id), 1)
    if patient_id is None:
        for model in _DEPARTMENT_MODELS:
            add(model.__table__, select(model.__table__), None)
    _add_legacy_entries(conn, out, patient_id)
    return out


def _add_legacy_entries(
    conn: Session | Connection, out: dict[str, dict[str, str]], patient_id: int | None
) -> None:
    """Audit entries older than the chains: rows of their entity's chain, like any other."""
    table: Table = AuditLog.__table__  # type: ignore[assignment]
    stmt = select(table).where(table.c.chain.is_(None))
    if patient_id is not None:
        # Only entries about this patient's rows (the rows found above).
        ids: dict[str, set[int]] = {}
        for key in out.get(patient_chain(patient_id), {}):
            name, _, row_id = key.partition("/")
            ids.setdefault(name, set()).add(int(row_id))
        entity_of_table = {v: k for k, v in _ENTITY_TABLES.items()}
        clauses = [
            (table.c.entity == entity_of_table[name]) & table.c.entity_id.in_(sorted(values))
            for name, values in ids.items()
            if name in entity_of_table
        ]
        if not clauses:
            return
        from sqlalchemy import or_

        stmt = stmt.where(or_(*clauses))
    for row in conn.execute(stmt).mappings():
        chain = chain_of_entity(conn, row["entity"], row["entity_id"])
        if row["action"] in SECURITY_ACTIONS:
            chain = SECURITY
        out.setdefault(chain, {})[row_key(table.name, row["id"])] = row_digest(table, row)


def write_genesis(session: Session, *, key: bytes | None = None) -> int:
    """Attest every row stored so far, one ``genesis`` event per chain (at the upgrade that
    brings the chains). Returns the number of events written."""
    written = 0
    for chain, rows in sorted(_all_rows(session).items()):
        entry = AuditLog(
            user_id=None,
            username="system",
            action=GENESIS_ACTION,
            entity="record",
            entity_id=None,
            summary={"rows_attested": len(rows), "note": "records stored before the chains"},
        )
        append(session, entry, chain, rows, key=key)
        written += 1
    return written


# ------------------------------------------------------------------ verification


@dataclass
class ChainReport:
    """What :func:`verify` found in one chain: problems in the order found (first = first
    break) and how many events it checked."""

    chain: str
    events: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _label(chain: str) -> str:
    if chain.startswith("patient:"):
        return f"the record of patient record {chain.split(':', 1)[1]}"
    return f"the {chain} record"


def _check_events(
    entries: Iterable[AuditLog], keys: Mapping[str, bytes], report: ChainReport
) -> dict[str, tuple[str | None, int]]:
    """Walk a chain's events in order; the digest each row had at its latest event."""
    latest: dict[str, tuple[str | None, int]] = {}
    prev: str | None = None
    expected_seq = 1
    for entry in entries:
        report.events += 1
        seq = entry.chain_seq or 0
        where = f"event {seq} ({entry.action} {entry.entity} {entry.entity_id or ''}".rstrip()
        where += f", audit entry {entry.id})"
        if seq != expected_seq:
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}-{seq - 1}"
            report.problems.append(
                f"event(s) {missing} of {_label(report.chain)} are missing before {where}: "
                "audit entries were deleted"
            )
            return latest
        if not hmac.compare_digest(entry.prev_hmac or "", prev or ""):
            report.problems.append(
                f"{where} does not follow the event before it: an event was removed or replaced"
            )
            return latest
        key = keys.get(entry.key_id or "")
        if key is None:
            report.problems.append(
                f"{where} was signed with key id {entry.key_id}, which this server does not "
                "hold: it cannot be verified here"
            )
            return latest
        if not hmac.compare_digest(entry_hmac(entry, key), entry.entry_hmac or ""):
            report.problems.append(
                f"{where} was altered after it was written (its HMAC does not match)"
            )
            return latest
        for name, digest in (entry.rows or {}).items():
            latest[name] = (digest, seq)
        prev = entry.entry_hmac
        expected_seq = seq + 1
    return latest


_ROW_NAMES = {
    "patients": "patient",
    "cases": "case",
    "plans": "plan",
    "plan_reviews": "review",
    "plan_approvals": "approval",
    "deliveries": "delivery",
    "invivo_readings": "in-vivo reading",
    "users": "user",
    "qa_output_checks": "output check",
    "qa_isotropy_checks": "isotropy check",
    "audit_log": "audit entry",
}


def _row_label(key: str) -> str:
    name, _, row_id = key.partition("/")
    return f"{_ROW_NAMES.get(name, name)} {row_id}"


def _check_rows(
    latest: Mapping[str, tuple[str | None, int]], rows: Mapping[str, str], report: ChainReport
) -> None:
    for key in sorted(
        latest.keys() | rows.keys(), key=lambda k: (k.split("/")[0], int(k.split("/")[1]))
    ):
        recorded = latest.get(key)
        stored = rows.get(key)
        if recorded is None:
            report.problems.append(
                f"{_row_label(key)} is in the database but no event of {_label(report.chain)} "
                "records it: it was added outside openiort"
            )
        elif recorded[0] is None:
            if stored is not None:
                report.problems.append(
                    f"{_row_label(key)} was recorded as deleted (event {recorded[1]}) but exists"
                )
        elif stored is None:
            report.problems.append(
                f"{_row_label(key)} was deleted from the database (last recorded by event "
                f"{recorded[1]})"
            )
        elif not hmac.compare_digest(recorded[0], stored):
            report.problems.append(
                f"{_row_label(key)} was changed in the database after event {recorded[1]} "
                "recorded it"
            )


def _check_anchor(
    entries: list[AuditLog], head: tuple[int, str] | None, report: ChainReport
) -> None:
    if head is None:
        return
    seq, digest = head
    by_seq = {e.chain_seq: e for e in entries}
    entry = by_seq.get(seq)
    if entry is None:
        last = max((s for s in by_seq if s is not None), default=0)
        report.problems.append(
            f"{_label(report.chain)} ends at event {last}, but event {seq} was written (the head "
            "kept outside the database says so): its last events were deleted"
        )
    elif not hmac.compare_digest(entry.entry_hmac or "", digest):
        report.problems.append(
            f"event {seq} of {_label(report.chain)} is not the one written (the head kept "
            "outside the database differs): the chain was rewritten"
        )


def _entries(session: Session, chain: str | None) -> dict[str, list[AuditLog]]:
    stmt = select(AuditLog).where(AuditLog.chain.is_not(None))
    if chain is not None:
        stmt = stmt.where(AuditLog.chain == chain)
    out: dict[str, list[AuditLog]] = {}
    for entry in session.scalars(stmt.order_by(AuditLog.chain, AuditLog.chain_seq)):
        assert entry.chain is not None
        out.setdefault(entry.chain, []).append(entry)
    return out


# A check reads events and rows in several statements; a change committed between them by
# another request looks like a break (events older than rows). A true break stays when the
# check is made again; such a race does not.
VERIFY_ATTEMPTS = 3


def verify(session: Session, *, patient_id: int | None = None) -> list[ChainReport]:
    """Check the chains (every chain, or one patient's): one report per chain, sorted.

    Raises
    ------
    SealKeyError
        If no key is available to check the HMACs with.
    """
    reports = _verify_once(session, patient_id)
    for _ in range(VERIFY_ATTEMPTS - 1):
        if all(r.ok for r in reports):
            break
        reports = _verify_once(session, patient_id)
    return reports


def _verify_once(session: Session, patient_id: int | None) -> list[ChainReport]:
    keys = _keys(session)
    if not keys:
        raise SealKeyError("no seal key: the record chains cannot be checked")
    wanted = patient_chain(patient_id) if patient_id is not None else None
    entries = _entries(session, wanted)
    rows = _all_rows(session, patient_id)
    path = heads_file_for(session)
    heads = anchor.read_heads(path) if path is not None else {}
    chains = {wanted} if wanted is not None else set(entries) | set(rows) | set(heads)
    reports = []
    for chain in sorted(chains):
        report = ChainReport(chain)
        chain_entries = entries.get(chain, [])
        latest = _check_events(chain_entries, keys, report)
        if report.ok:
            chain_rows = rows.get(chain, {})
            # Security events describe; their chain has no rows of its own.
            _check_rows(latest, chain_rows, report)
        _check_anchor(chain_entries, heads.get(chain), report)
        reports.append(report)
    return reports


def require_intact(session: Session, patient_id: int, *, actor: User | None = None) -> None:
    """Refuse to act on a patient's record whose chain does not verify.

    Raises
    ------
    TamperedRecordError
        Naming the first break; a ``tamper_detected`` security event is written too.
    """
    (report,) = verify(session, patient_id=patient_id)
    if report.ok:
        return
    from openiort.records import audit

    audit.record_independently(
        session, actor, "tamper_detected", "patient", patient_id, {"reason": report.problems[0]}
    )
    raise TamperedRecordError(patient_id, report.problems[0])


def require_intact_plan(session: Session, plan: Plan, *, actor: User | None = None) -> None:
    """:func:`require_intact` for the patient whose record holds ``plan``."""
    patient = _patient_of(session, "plans", plan.id)
    if patient is not None:
        require_intact(session, patient, actor=actor)
