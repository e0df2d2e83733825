"""The planning job queue in the database, shared by every server and worker process.

A job is a row of ``plan_jobs``: ``queued`` -> ``running`` (claimed by one worker, which
stamps ``heartbeat_at`` while it computes) -> ``done`` or ``failed``. Claiming is atomic on both
backends: ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL (workers never wait on each
other), and on SQLite (one writer at a time anyway) an ``UPDATE ... WHERE state = 'queued'``
whose row count says whether this worker won. A worker that stops heartbeating (killed,
machine lost) has its job put back in the queue by :func:`reap_stale` up to ``max_attempts``
claims, then failed with a reason the user sees. Every write after the claim names the worker,
so a worker whose job was taken from it cannot overwrite the new owner's result.

Each call opens and commits its own short transaction on the given engine.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from openiort.records.models import PlanJob, utcnow

TABLE: sa.Table = PlanJob.__table__  # type: ignore[assignment]
# A running job whose worker has not stamped it for this long is taken back.
STALE_AFTER_S = 60.0
# Claims of one job before it is failed rather than re-queued (a plan that kills its worker
# every time must not take every worker down in turn).
MAX_ATTEMPTS = 2
FINISHED_KEEP_S = 24 * 3600.0
STALE_MESSAGE = "the planning worker stopped while computing this plan"


class QueueFullError(Exception):
    """Too many plans queued or computing; ``retry_after_s`` estimates when to ask again."""

    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"the planning queue is full; try again in about {retry_after_s} s")


@dataclass(frozen=True)
class JobRow:
    """A job as read from the table (``inputs`` only when asked for)."""

    id: str
    case_id: int
    case_version: int
    user_id: int
    state: str
    attempts: int
    worker_id: str | None
    submitted_at: dt.datetime
    started_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    finished_at: dt.datetime | None
    plan_id: int | None
    result_dir: str | None
    message: str
    problems: list[str] = field(default_factory=list)
    inputs: dict[str, Any] | None = None


_ROW_COLUMNS = [c for c in TABLE.c if c.name != "inputs"]


def _row(mapping: Any, inputs: dict[str, Any] | None = None) -> JobRow:
    values = {c.name: mapping[c.name] for c in _ROW_COLUMNS}
    values["problems"] = list(values["problems"] or [])
    # Core statements skip the ORM column type's zone handling on some paths: SQLite gives
    # naive UTC back.
    for name in ("submitted_at", "started_at", "heartbeat_at", "finished_at"):
        value = values[name]
        if value is not None and value.tzinfo is None:
            values[name] = value.replace(tzinfo=dt.UTC)
    return JobRow(**values, inputs=inputs)


def active_count(engine: Engine) -> int:
    """Jobs queued or running."""
    with engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).where(TABLE.c.state.in_(("queued", "running")))
        ).scalar_one()
    return int(count)


def enqueue(
    engine: Engine,
    case_id: int,
    case_version: int,
    user_id: int,
    inputs: dict[str, Any],
    *,
    max_pending: int | None = None,
    retry_hint_s: int = 60,
) -> JobRow:
    """Queue a plan of ``inputs`` (the case data at ``case_version``).

    Raises
    ------
    QueueFullError
        When ``max_pending`` jobs are already queued or running (a soft limit: two servers
        submitting at the same instant may both get in).
    """
    now = utcnow()
    job_id = secrets.token_urlsafe(12)
    with engine.begin() as conn:
        if max_pending is not None:
            active = conn.execute(
                sa.select(sa.func.count()).where(TABLE.c.state.in_(("queued", "running")))
            ).scalar_one()
            if active >= max_pending:
                raise QueueFullError(retry_hint_s)
        conn.execute(
            TABLE.insert().values(
                id=job_id,
                case_id=case_id,
                case_version=case_version,
                user_id=user_id,
                state="queued",
                inputs=inputs,
                attempts=0,
                submitted_at=now,
                message="",
                problems=[],
            )
        )
    job = get(engine, job_id)
    assert job is not None
    return job


def get(engine: Engine, job_id: str, *, with_inputs: bool = False) -> JobRow | None:
    """The job ``job_id``, or ``None`` if there is none (or it was pruned)."""
    columns = list(TABLE.c) if with_inputs else _ROW_COLUMNS
    with engine.connect() as conn:
        row = conn.execute(sa.select(*columns).where(TABLE.c.id == job_id)).mappings().first()
    if row is None:
        return None
    return _row(row, row["inputs"] if with_inputs else None)


def position(engine: Engine, job: JobRow) -> int | None:
    """1 for the next job to be claimed; ``None`` unless queued."""
    if job.state != "queued":
        return None
    with engine.connect() as conn:
        ahead = conn.execute(
            sa.select(sa.func.count()).where(
                TABLE.c.state == "queued", TABLE.c.submitted_at < job.submitted_at
            )
        ).scalar_one()
    return int(ahead) + 1


def claim(engine: Engine, worker_id: str) -> JobRow | None:
    """Take the oldest queued job for ``worker_id`` (with its inputs), or ``None``."""
    now = utcnow()
    oldest = sa.select(TABLE.c.id).where(TABLE.c.state == "queued").order_by(TABLE.c.submitted_at)
    take = dict(
        state="running",
        worker_id=worker_id,
        started_at=now,
        heartbeat_at=now,
        attempts=TABLE.c.attempts + 1,
    )
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            job_id = conn.execute(oldest.limit(1).with_for_update(skip_locked=True)).scalar()
            if job_id is None:
                return None
            conn.execute(TABLE.update().where(TABLE.c.id == job_id).values(**take))
        else:
            job_id = None
            for candidate in conn.execute(oldest.limit(8)).scalars().all():
                won = conn.execute(
                    TABLE.update()
                    .where(TABLE.c.id == candidate, TABLE.c.state == "queued")
                    .values(**take)
                )
                if won.rowcount == 1:
                    job_id = candidate
                    break
            if job_id is None:
                return None
    return get(engine, job_id, with_inputs=True)


def _owned(job_id: str, worker_id: str) -> Any:
    return sa.and_(TABLE.c.id == job_id, TABLE.c.worker_id == worker_id, TABLE.c.state == "running")


def heartbeat(engine: Engine, job_id: str, worker_id: str) -> bool:
    """Stamp a running job; ``False`` when it is no longer this worker's (taken back)."""
    with engine.begin() as conn:
        result = conn.execute(
            TABLE.update().where(_owned(job_id, worker_id)).values(heartbeat_at=utcnow())
        )
    return result.rowcount == 1


def finish(
    engine: Engine,
    job_id: str,
    worker_id: str,
    *,
    state: str,
    plan_id: int | None = None,
    result_dir: str | None = None,
    message: str = "",
    problems: list[str] | None = None,
) -> bool:
    """Record a running job's outcome (``done`` or ``failed``); ``False`` when the job is no
    longer this worker's, so nothing was written."""
    if state not in ("done", "failed"):
        raise ValueError(f"a job finishes done or failed, not {state!r}")
    with engine.begin() as conn:
        result = conn.execute(
            TABLE.update()
            .where(_owned(job_id, worker_id))
            .values(
                state=state,
                plan_id=plan_id,
                result_dir=result_dir,
                message=message,
                problems=list(problems or []),
                finished_at=utcnow(),
                inputs={},  # the case data is in the case record; not kept twice
            )
        )
    return result.rowcount == 1


def reap_stale(
    engine: Engine,
    *,
    stale_after_s: float = STALE_AFTER_S,
    max_attempts: int = MAX_ATTEMPTS,
    now: dt.datetime | None = None,
) -> tuple[int, int]:
    """Take back running jobs whose worker stopped heartbeating: re-queue those claimed fewer
    than ``max_attempts`` times, fail the others with :data:`STALE_MESSAGE`.

    Returns (re-queued, failed).
    """
    now = now or utcnow()
    cutoff = now - dt.timedelta(seconds=stale_after_s)
    stale = sa.and_(TABLE.c.state == "running", TABLE.c.heartbeat_at < cutoff)
    with engine.begin() as conn:
        requeued = conn.execute(
            TABLE.update()
            .where(stale, TABLE.c.attempts < max_attempts)
            .values(state="queued", worker_id=None, started_at=None, heartbeat_at=None)
        ).rowcount
        failed = conn.execute(
            TABLE.update()
            .where(stale, TABLE.c.attempts >= max_attempts)
            .values(
                state="failed",
                message=f"{STALE_MESSAGE} ({max_attempts} tries); please plan again",
                finished_at=now,
                inputs={},
            )
        ).rowcount
    return int(requeued), int(failed)


def prune(
    engine: Engine, *, keep_s: float = FINISHED_KEEP_S, now: dt.datetime | None = None
) -> int:
    """Delete jobs finished more than ``keep_s`` ago (their plans are in the records)."""
    cutoff = (now or utcnow()) - dt.timedelta(seconds=keep_s)
    with engine.begin() as conn:
        result = conn.execute(
            TABLE.delete().where(
                TABLE.c.state.in_(("done", "failed")), TABLE.c.finished_at < cutoff
            )
        )
    return int(result.rowcount)
