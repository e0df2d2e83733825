"""The planning loop over the database queue (openiort.records.job_queue): `iort worker`.

Each worker process claims the oldest queued job, computes it with the same planner as the
in-process pool (:func:`openiort.web.worker.compute_plan_files`), files it with the same code
(:func:`openiort.web.results.store_outcome`) and records the outcome on the job row, which any
web process then answers polls from. While it computes, a thread stamps the job's heartbeat;
every loop also takes back jobs whose worker stopped stamping (:func:`job_queue.reap_stale`),
so a killed worker's job is computed again by another (or failed with a reason, after
``max_attempts`` claims).

A worker killed between filing the plan and marking the job done leaves a job that is computed
again: the case then has one more draft plan version, never a lost one.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from openiort.records import job_queue as jq
from openiort.records.db import session_scope
from openiort.web import safelog
from openiort.web.artifacts import PlanFiles
from openiort.web.jobs import Job, Planner
from openiort.web.results import DatabaseUnavailableError, store_outcome
from openiort.web.worker import WorkerOutcome

logger = logging.getLogger("openiort.web.queue_worker")
T = TypeVar("T")

HEARTBEAT_S = 5.0
POLL_S = 0.5
# Taking back stalled jobs is a write; an idle worker does it this often, not at every poll.
REAP_EVERY_S = 5.0
# A computed plan waiting for the database is offered again this often.
DATABASE_RETRY_S = 2.0
# Finished jobs are deleted (by any worker) once a day is past; their plans are in the records.
PRUNE_EVERY_S = 600.0


def default_worker_id() -> str:
    """``host:pid``: unique among the live workers, and says where to look for one."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}"


def job_of(row: jq.JobRow) -> Job:
    """The web layer's view of a job row."""
    return Job(
        id=row.id,
        case_id=row.case_id,
        case_version=row.case_version,
        user_id=row.user_id,
        submitted_at=row.submitted_at.timestamp(),
        state=row.state,  # type: ignore[arg-type]
        started_at=row.started_at.timestamp() if row.started_at else None,
        finished_at=row.finished_at.timestamp() if row.finished_at else None,
        plan_id=row.plan_id,
        message=row.message,
        problems=list(row.problems),
    )


class QueueWorker:
    """Claims jobs from the database queue and computes them, one at a time."""

    def __init__(
        self,
        engine: Engine,
        files: PlanFiles,
        planner: Planner,
        *,
        worker_id: str | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        poll_s: float = POLL_S,
        stale_after_s: float = jq.STALE_AFTER_S,
        max_attempts: int = jq.MAX_ATTEMPTS,
    ) -> None:
        self.engine = engine
        self.files = files
        self.planner = planner
        self.worker_id = worker_id or default_worker_id()
        self.heartbeat_s = heartbeat_s
        self.poll_s = poll_s
        self.stale_after_s = stale_after_s
        self.max_attempts = max_attempts
        self._pruned_at = 0.0
        self._reaped_at = -REAP_EVERY_S

    def reap(self) -> None:
        now = time.monotonic()
        if now - self._reaped_at < min(REAP_EVERY_S, self.stale_after_s / 4):
            return
        self._reaped_at = now
        requeued, failed = jq.reap_stale(
            self.engine, stale_after_s=self.stale_after_s, max_attempts=self.max_attempts
        )
        if requeued or failed:
            logger.warning("took back stalled plan jobs: %d re-queued, %d failed", requeued, failed)
        if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
            jq.prune(self.engine)
            self._pruned_at = time.monotonic()

    def run_once(self, stop: threading.Event | None = None) -> bool:
        """Take back stalled jobs, then compute one job if any is queued; ``True`` if one was."""
        self.reap()
        row = jq.claim(self.engine, self.worker_id)
        if row is None:
            return False
        self._process(row, stop or threading.Event())
        return True

    def _when_database_answers(self, action: Callable[[], T], stop: threading.Event) -> T:
        """``action()``, repeated while the database is unreachable, locked or read-only (a
        computed plan is kept, not dropped); gives up when ``stop`` is set."""
        while True:
            try:
                return action()
            except (OperationalError, InterfaceError, DatabaseUnavailableError) as exc:
                cause = exc.__cause__ if isinstance(exc, DatabaseUnavailableError) else exc
                logger.warning(
                    "database unavailable (%s) with a computed plan; kept, retrying",
                    safelog.database_cause(cause or exc),
                )
                if stop.wait(DATABASE_RETRY_S):
                    raise

    def run(self, stop: threading.Event, wake: threading.Event | None = None) -> None:
        """Work until ``stop`` is set (a job under way is finished first). ``wake``, when
        given, is set by whoever queues a job in this process, to claim it at once; whoever
        sets ``stop`` sets it too."""
        logger.info("planning worker %s started", self.worker_id)
        while not stop.is_set():
            try:
                worked = self.run_once(stop)
            except (OperationalError, InterfaceError, DatabaseUnavailableError) as exc:
                # the database away (or gone while a computed plan waited): wait, retry
                logger.error("planning worker: %s; retrying", safelog.database_cause(exc))
                worked = False
                stop.wait(5 * self.poll_s)
            except Exception as exc:  # a bug: logged without its message, never die silently
                safelog.log_unexpected(exc, safelog.error_reference(), "planning worker")
                worked = False
                stop.wait(5 * self.poll_s)
            if not worked:
                if wake is None:
                    stop.wait(self.poll_s)
                elif wake.wait(self.poll_s):
                    wake.clear()
        logger.info("planning worker %s stopped", self.worker_id)

    def _beat(self, job_id: str, done: threading.Event, lost: threading.Event) -> None:
        while not done.wait(self.heartbeat_s):
            try:
                if not jq.heartbeat(self.engine, job_id, self.worker_id):
                    lost.set()
                    return
            except Exception as exc:  # a missed beat; the next one may pass
                logger.warning("heartbeat failed: %s", type(exc).__name__)

    def _process(self, row: jq.JobRow, stop: threading.Event) -> None:
        done, lost = threading.Event(), threading.Event()
        beat = threading.Thread(
            target=self._beat, args=(row.id, done, lost), name="plan-heartbeat", daemon=True
        )
        beat.start()
        staging = self.files.new_staging_dir()
        try:
            try:
                outcome = self.planner(dict(row.inputs or {}), str(staging))
            except Exception as exc:  # the planner returns outcomes; this is a bug
                outcome = WorkerOutcome("error", error_type=type(exc).__name__)
            done.set()
            beat.join()
            owned = self._when_database_answers(
                lambda: jq.heartbeat(self.engine, row.id, self.worker_id), stop
            )
            if lost.is_set() or not owned:
                logger.warning("plan job was taken back from this worker; result dropped")
                return
            job = job_of(row)
            self._when_database_answers(
                lambda: store_outcome(
                    lambda: session_scope(self.engine), self.files, job, outcome, staging
                ),
                stop,
            )
            result_dir = str(self.files.plan_dir(job.plan_id)) if job.plan_id else None
            finished = self._when_database_answers(
                lambda: jq.finish(
                    self.engine,
                    row.id,
                    self.worker_id,
                    state="done" if job.state == "done" else "failed",
                    plan_id=job.plan_id,
                    result_dir=result_dir,
                    message=job.message or ("" if job.state == "done" else "planning failed"),
                    problems=job.problems,
                ),
                stop,
            )
            if not finished:
                logger.warning("plan job was taken back before its outcome was recorded")
        finally:
            done.set()
            if Path(staging).exists():
                self.files.discard(staging)


def wait_for_jobs(engine: Engine, job_ids: list[str], timeout_s: float) -> list[jq.JobRow]:
    """Poll until every job has finished (tests, benchmarks); the rows as last read."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = [jq.get(engine, j) for j in job_ids]
        if all(r is not None and r.state in ("done", "failed") for r in rows):
            return [r for r in rows if r is not None]
        if time.monotonic() > deadline:
            return [r for r in rows if r is not None]
        time.sleep(0.2)
