"""Planning jobs as the web pages and the API see them.

A plan takes 10-20 s of one core, so it never runs on the event loop: every plan request is a
row of the database queue (:mod:`openiort.records.job_queue`, through
:class:`openiort.web.db_jobs.DbJobs`), computed by a single server's own planning processes
(:mod:`openiort.web.local_planners`) or by ``iort worker`` processes, and polled from any
process. Beyond ``max_pending`` queued or computing plans a request is refused with a retry
time (:class:`QueueFullError`) rather than piling up work nobody will wait for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from openiort.records.job_queue import QueueFullError
from openiort.web.worker import WorkerOutcome

__all__ = ["Job", "JobState", "Planner", "QueueFullError"]

JobState = Literal["queued", "running", "done", "failed"]
# Typical plan time on one core, for the retry hint only.
TYPICAL_PLAN_S = 15.0


@dataclass
class Job:
    """One planning request. ``message`` and ``problems`` are fit to show the user."""

    id: str
    case_id: int
    case_version: int
    user_id: int
    submitted_at: float
    state: JobState = "queued"
    started_at: float | None = None
    finished_at: float | None = None
    plan_id: int | None = None
    message: str = ""
    problems: list[str] = field(default_factory=list)

    def to_dict(self, position: int | None = None) -> dict[str, Any]:
        now = time.time()
        end = self.finished_at or now
        return {
            "job_id": self.id,
            "case_id": self.case_id,
            "case_version": self.case_version,
            "state": self.state,
            "queue_position": position,
            "waited_s": round((self.started_at or end) - self.submitted_at, 1),
            "computing_s": round(end - self.started_at, 1) if self.started_at else 0.0,
            "plan_id": self.plan_id,
            "message": self.message,
            "problems": list(self.problems),
        }


Planner = Callable[[dict[str, Any], str], WorkerOutcome]
