"""The audit log: who changed which record, when, and what changed.

Entries are rows of :class:`AuditLog`, written in the same transaction as the change they
describe (so an aborted change leaves no entry), except for security events such as a failed
seal check or a refused delivery, which :func:`record_independently` commits on their own.
Summaries hold field names, and old and new values of clinical fields; they never hold a
patient's name or birth date. The application log (``logging``) gets ids and usernames only.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from openiort.records import chain
from openiort.records.db import SQLITE_BUSY_TIMEOUT_S
from openiort.records.models import AuditLog, User

logger = logging.getLogger("openiort.records")

SYSTEM_USERNAME = "system"
SIDE_WRITE_TIMEOUT_MS = 2000
# Blocks of a case whose values are never copied into the audit summary (only field names).
REDACTED_BLOCKS: frozenset[str] = frozenset({"patient"})


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def json_diff(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    redact: Iterable[str] = REDACTED_BLOCKS,
) -> dict[str, Any]:
    """A summary of the differences between two JSON objects, by dotted path.

    Parameters
    ----------
    old, new:
        The objects before and after (``old`` ``None`` for a creation).
    redact:
        Top-level blocks whose values are replaced by ``"<redacted>"`` (paths still listed).

    Returns
    -------
    dict
        ``{"changed": {path: {"from": a, "to": b}}, "added": {path: b}, "removed": [path]}``,
        empty parts left out.
    """
    redacted = set(redact)
    before = _flatten(dict(old or {}))
    after = _flatten(dict(new))

    def shown(path: str, value: Any) -> Any:
        return "<redacted>" if path.split(".", 1)[0] in redacted else value

    changed = {
        p: {"from": shown(p, before[p]), "to": shown(p, after[p])}
        for p in sorted(before.keys() & after.keys())
        if before[p] != after[p]
    }
    added = {p: shown(p, after[p]) for p in sorted(after.keys() - before.keys())}
    removed = sorted(before.keys() - after.keys())
    out: dict[str, Any] = {}
    if changed:
        out["changed"] = changed
    if added:
        out["added"] = added
    if removed:
        out["removed"] = removed
    return out


def _entry(
    actor: User | None,
    action: str,
    entity: str,
    entity_id: int | None,
    summary: Mapping[str, Any] | None,
    at: dt.datetime | None = None,
) -> AuditLog:
    return AuditLog(
        user_id=actor.id if actor is not None else None,
        username=actor.username if actor is not None else SYSTEM_USERNAME,
        action=action,
        entity=entity,
        entity_id=entity_id,
        summary=dict(summary or {}),
        at=at,
    )


def record(
    session: Session,
    actor: User | None,
    action: str,
    entity: str,
    entity_id: int | None,
    summary: Mapping[str, Any] | None = None,
    *,
    at: dt.datetime | None = None,
) -> AuditLog:
    """Add an audit entry to ``session`` (committed with the change it describes).

    The entry is the next event of its record chain (:mod:`openiort.records.chain`): it
    attests the rows of that chain the transaction has changed so far.

    Parameters
    ----------
    actor:
        The acting user; ``None`` for the server itself or an administrator's command.
    action:
        Verb such as ``create``, ``update``, ``approve``.
    entity, entity_id:
        Table-level record kind (``case``, ``plan``, ...) and its id.
    summary:
        JSON-serialisable description; must not contain patient names.
    at:
        When the event happened, if earlier than now (a delivery entered after the fact);
        the entry also keeps the time it was recorded.
    """
    entry = _entry(actor, action, entity, entity_id, summary, at)
    chain.append(session, entry, chain.chain_of_entity(session, entity, entity_id))
    logger.info("%s %s %s id=%s by %s", "audit", action, entity, entity_id, entry.username)
    return entry


def record_independently(
    session: Session,
    actor: User | None,
    action: str,
    entity: str,
    entity_id: int | None,
    summary: Mapping[str, Any] | None = None,
) -> None:
    """Commit an audit entry in its own transaction, so it survives a rollback of ``session``.

    Used for security events (a failed seal check, a refused delivery). A failure to write is
    logged, never raised: the caller is already reporting the event by raising.
    """
    logger.warning("security event: %s %s id=%s", action, entity, entity_id)
    _write_independently(session, actor, action, entity, entity_id, summary, chain.SECURITY)


def record_view(session: Session, actor: User, entity: str, entity_id: int) -> None:
    """Record that ``actor`` viewed a record (``iort audit export`` lists who viewed what).

    Written in its own transaction, on the viewer's own chain (``access:<user id>``, so that
    views by different users never wait on each other); a failure is logged, never raised.
    """
    _write_independently(
        session, actor, "view", entity, entity_id, None, f"{chain.ACCESS_PREFIX}{actor.id}"
    )


def _write_independently(
    session: Session,
    actor: User | None,
    action: str,
    entity: str,
    entity_id: int | None,
    summary: Mapping[str, Any] | None,
    chain_name: str,
) -> None:
    try:
        with Session(bind=session.get_bind()) as side:
            sqlite = side.get_bind().dialect.name == "sqlite"
            if sqlite:
                # If the caller's transaction holds SQLite's write lock this write cannot
                # proceed: give up after a moment rather than stall the request.
                side.execute(text(f"PRAGMA busy_timeout = {SIDE_WRITE_TIMEOUT_MS}"))
            else:
                side.execute(text(f"SET LOCAL lock_timeout = '{SIDE_WRITE_TIMEOUT_MS}ms'"))
            try:
                chain.append(side, _entry(actor, action, entity, entity_id, summary), chain_name)
                side.commit()
            finally:
                if sqlite:
                    side.execute(
                        text(f"PRAGMA busy_timeout = {round(SQLITE_BUSY_TIMEOUT_S * 1000)}")
                    )
                    side.commit()
    except Exception as exc:  # report, do not mask the caller's error
        logger.error(
            "could not write the audit entry for %s %s id=%s: %s",
            action,
            entity,
            entity_id,
            type(exc).__name__,
        )


def entries(
    session: Session,
    entity: str | None = None,
    entity_id: int | None = None,
    *,
    include_views: bool = False,
) -> list[AuditLog]:
    """Audit entries, oldest first, optionally for one record kind or one record; views of
    records (:func:`record_view`) only when asked for."""
    stmt = select(AuditLog).order_by(AuditLog.id)
    if not include_views:
        stmt = stmt.where(AuditLog.action != "view")
    if entity is not None:
        stmt = stmt.where(AuditLog.entity == entity)
    if entity_id is not None:
        stmt = stmt.where(AuditLog.entity_id == entity_id)
    return list(session.scalars(stmt))


def export_entry(entry: AuditLog) -> dict[str, Any]:
    """One audit entry as a JSON object for the hospital's log system (``iort audit export``):
    the event time and the recording time, who, what, which record, and its chain position and
    HMAC (a copy of the chain heads outside the database)."""
    return {
        "id": entry.id,
        "at": entry.at.isoformat() if entry.at else None,
        "recorded_at": entry.recorded_at.isoformat() if entry.recorded_at else None,
        "user_id": entry.user_id,
        "username": entry.username,
        "action": entry.action,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "summary": entry.summary,
        "chain": entry.chain,
        "chain_seq": entry.chain_seq,
        "key_id": entry.key_id,
        "hmac": entry.entry_hmac,
    }


def export_entries(session: Session, since_id: int = 0, batch: int = 1000) -> Iterable[AuditLog]:
    """Audit entries with ids above ``since_id``, oldest first, read in batches."""
    last = since_id
    while True:
        rows = list(
            session.scalars(
                select(AuditLog).where(AuditLog.id > last).order_by(AuditLog.id).limit(batch)
            )
        )
        if not rows:
            return
        yield from rows
        last = rows[-1].id
        session.expunge_all()
