"""The web side of the planning queue: submit and poll jobs kept in the database.

:class:`DbJobs` puts each job in the database queue (:mod:`openiort.records.job_queue`) and
answers polls from it, so any web process answers for any job and a job survives the process
that took it. A single ``iort serve`` computes them itself
(:class:`openiort.web.local_planners.LocalPlanners`); with ``iort serve --workers N`` (N > 1) no
web process plans and ``iort worker`` processes (:mod:`openiort.web.queue_worker`) compute them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from openiort.records import job_queue as jq
from openiort.web.jobs import TYPICAL_PLAN_S, Job
from openiort.web.local_planners import LocalPlanners
from openiort.web.queue_worker import job_of


class DbJobs:
    """Submit and poll planning jobs kept in the database, computed by this process's
    ``local`` planners or, without them, by ``iort worker`` processes."""

    def __init__(
        self, engine: Engine, max_pending: int = 4, local: LocalPlanners | None = None
    ) -> None:
        self.engine = engine
        self.max_pending = max_pending
        self.local = local
        self._started = False

    def start(self) -> None:
        if self.local is not None:
            self.local.start()
        self._started = True

    def shutdown(self) -> None:
        """Stop taking jobs; plans being computed here are finished, queued jobs stay queued
        (for the workers, or this server's next start)."""
        self._started = False
        if self.local is not None:
            self.local.shutdown()

    def submit(
        self, case_id: int, case_version: int, user_id: int, case_data: dict[str, Any]
    ) -> Job:
        """Queue a plan of ``case_data``; :class:`QueueFullError` when ``max_pending`` plans
        are already queued or computing."""
        retry = int((self.max_pending + 1) * TYPICAL_PLAN_S)
        row = jq.enqueue(
            self.engine,
            case_id,
            case_version,
            user_id,
            case_data,
            max_pending=self.max_pending,
            retry_hint_s=retry,
        )
        if self.local is not None:
            self.local.wake.set()
        return job_of(row)

    def get(self, job_id: str) -> Job | None:
        row = jq.get(self.engine, job_id)
        return None if row is None else job_of(row)

    def position(self, job: Job) -> int | None:
        if job.state != "queued":
            return None
        row = jq.get(self.engine, job.id)
        return None if row is None else jq.position(self.engine, row)

    def active_count(self) -> int:
        return jq.active_count(self.engine)

    def accepting(self) -> bool:
        return self._started and self.active_count() < self.max_pending
