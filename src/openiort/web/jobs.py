"""Planning jobs: queued, run in worker processes, stored as plan records when done.

A plan takes 10-20 s of one core, so it never runs on the event loop. :class:`PlanQueue`
keeps at most ``workers`` plans computing and ``max_pending`` queued or computing in all;
beyond that a request is refused with a retry time (:class:`QueueFullError`) rather than piling up
work nobody will wait for. Each job's state can be polled; when a job finishes, the
``finish`` callback (the app's) stores the plan and moves its files into place.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import logging
import multiprocessing
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from openiort.web.artifacts import PlanFiles
from openiort.web.worker import WorkerOutcome, compute_plan_files, init_process, warm_up

logger = logging.getLogger("openiort.web.jobs")

JobState = Literal["queued", "running", "done", "failed"]
FINISHED_JOB_KEEP_S = 3600.0
# Typical plan time on one core, for the retry hint only.
TYPICAL_PLAN_S = 15.0


class QueueFullError(Exception):
    """Too many plans queued; ``retry_after_s`` estimates when to ask again."""

    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"the planning queue is full; try again in about {retry_after_s} s")


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


FinishCallback = Callable[[Job, WorkerOutcome, Path], None]
Planner = Callable[[dict[str, Any], str], WorkerOutcome]


class PlanQueue:
    """Runs the planner (:func:`openiort.web.worker.compute_plan_files`) for queued jobs.

    A process executor needs a planner importable by name (a module-level function).
    """

    def __init__(
        self,
        files: PlanFiles,
        finish: FinishCallback,
        workers: int = 1,
        max_pending: int = 4,
        kind: Literal["process", "thread"] = "process",
        planner: Planner = compute_plan_files,
    ) -> None:
        self.files = files
        self.planner = planner
        self.finish = finish
        self.workers = workers
        self.max_pending = max_pending
        self.kind = kind
        self._jobs: dict[str, Job] = {}
        self._pending: deque[tuple[Job, dict[str, Any]]] = deque()
        self._running = 0
        self._lock = threading.Lock()
        self._executor: cf.Executor | None = None
        self._finisher = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="plan-store")
        self._finisher_closed = False
        self._closed = False

    # -- life cycle ---------------------------------------------------------------------

    def _new_executor(self) -> cf.Executor:
        if self.kind == "thread":
            return cf.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="plan")
        # spawn: the server's threads and open database connections never reach a worker.
        context = multiprocessing.get_context("spawn")
        return cf.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=context, initializer=init_process
        )

    def start(self) -> None:
        """Start the workers and have them import the planning code before the first plan.

        May follow :meth:`shutdown` (an app's lifespan can run more than once, in tests).
        """
        with self._lock:
            if self._executor is not None:
                return
            self._closed = False
            if self._finisher_closed:
                self._finisher = cf.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="plan-store"
                )
                self._finisher_closed = False
            self._executor = self._new_executor()
            if self.kind == "process":
                for _ in range(self.workers):
                    self._executor.submit(warm_up)

    def shutdown(self) -> None:
        """Stop taking jobs, cancel queued ones and wait for running plans to end."""
        with self._lock:
            self._closed = True
            for job, _ in self._pending:
                self._fail(job, "the server stopped before this plan was computed")
            self._pending.clear()
            executor = self._executor
            self._executor = None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        self._finisher.shutdown(wait=True)
        self._finisher_closed = True

    # -- jobs ---------------------------------------------------------------------------

    def _prune(self, now: float) -> None:
        old = [
            k
            for k, j in self._jobs.items()
            if j.finished_at is not None and now - j.finished_at > FINISHED_JOB_KEEP_S
        ]
        for k in old:
            del self._jobs[k]

    def submit(
        self, case_id: int, case_version: int, user_id: int, case_data: dict[str, Any]
    ) -> Job:
        """Queue a plan of ``case_data`` (the case record's data at ``case_version``).

        Raises
        ------
        QueueFullError
            When ``max_pending`` plans are already queued or computing.
        """
        now = time.time()
        with self._lock:
            if self._closed or self._executor is None:
                raise QueueFullError(60)
            self._prune(now)
            active = self._running + len(self._pending)
            if active >= self.max_pending:
                waves = active // self.workers + 1
                raise QueueFullError(int(waves * TYPICAL_PLAN_S))
            job = Job(
                id=secrets.token_urlsafe(12),
                case_id=case_id,
                case_version=case_version,
                user_id=user_id,
                submitted_at=now,
            )
            self._jobs[job.id] = job
            self._pending.append((job, case_data))
            started = self._dispatch_locked()
        self._watch(started)
        return job

    def accepting(self) -> bool:
        """Whether a new plan would be queued now (started, not closed, not full)."""
        with self._lock:
            active = self._running + len(self._pending)
            return not self._closed and self._executor is not None and active < self.max_pending

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int | None:
        """1 for the next job to start; ``None`` unless queued."""
        with self._lock:
            for i, (j, _) in enumerate(self._pending):
                if j is job:
                    return i + 1
        return None

    def active_count(self) -> int:
        with self._lock:
            return self._running + len(self._pending)

    # -- internals ----------------------------------------------------------------------

    def _fail(self, job: Job, message: str, problems: list[str] | None = None) -> None:
        job.state = "failed"
        job.message = message
        job.problems = list(problems or [])
        job.finished_at = time.time()

    def _dispatch_locked(self) -> list[tuple[cf.Future[WorkerOutcome], Job, Path]]:
        """Start queued jobs on free workers (call with the lock held; then :meth:`_watch`)."""
        started = []
        while self._pending and self._running < self.workers and self._executor is not None:
            job, case_data = self._pending.popleft()
            staging = self.files.new_staging_dir()
            job.state = "running"
            job.started_at = time.time()
            self._running += 1
            try:
                future = self._executor.submit(self.planner, case_data, str(staging))
            except (BrokenProcessPool, RuntimeError):
                self._executor = self._new_executor()
                future = self._executor.submit(self.planner, case_data, str(staging))
            started.append((future, job, staging))
        return started

    def _watch(self, started: list[tuple[cf.Future[WorkerOutcome], Job, Path]]) -> None:
        # Outside the lock: a future already done runs its callback in this thread.
        for future, job, staging in started:
            future.add_done_callback(functools.partial(self._computed, job, staging))

    def _computed(self, job: Job, staging: Path, future: cf.Future[WorkerOutcome]) -> None:
        try:
            outcome = future.result()
        except cf.CancelledError:
            outcome = WorkerOutcome("error", error_type="Cancelled")
        except BrokenProcessPool:
            outcome = WorkerOutcome("error", error_type="BrokenProcessPool")
            with self._lock:
                if not self._closed:
                    self._executor = self._new_executor()
        except Exception as exc:  # the worker returns outcomes; this is a transport failure
            outcome = WorkerOutcome("error", error_type=type(exc).__name__)
        with self._lock:
            self._running -= 1
            started = [] if self._closed else self._dispatch_locked()
        self._watch(started)
        try:
            self._finisher.submit(self._store, job, outcome, staging)
        except RuntimeError:  # shutting down
            self.files.discard(staging)
            self._fail(job, "the server stopped before this plan was stored")

    def _store(self, job: Job, outcome: WorkerOutcome, staging: Path) -> None:
        try:
            self.finish(job, outcome, staging)
        except Exception as exc:  # the callback reports its own errors; never lose the job
            logger.error("storing a plan failed: %s", type(exc).__name__)
            self._fail(job, "the plan could not be stored")
        finally:
            if job.state not in ("done", "failed"):
                self._fail(job, "the plan could not be stored")
            if job.finished_at is None:
                job.finished_at = time.time()
            if staging.exists():
                self.files.discard(staging)
