"""The planning of a single ``iort serve`` process: ``workers`` loops over the database queue
(:class:`openiort.web.queue_worker.QueueWorker`, in threads of the server), each computing its
plan in a process of the server's own pool (or in the thread itself, for tests).

The jobs are rows of the database like those of ``iort worker``, so a server killed while it
plans loses nothing: at its next start its loops find the job without a heartbeat, take it back
and compute it again (or fail it with a reason, after the allowed tries), and a poll of the job
is answered all along. A stopped server leaves its queued jobs queued for the next start.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import threading
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal

from sqlalchemy import Engine

from openiort.records import job_queue as jq
from openiort.web.artifacts import PlanFiles
from openiort.web.jobs import Planner
from openiort.web.queue_worker import HEARTBEAT_S, QueueWorker, default_worker_id
from openiort.web.worker import WorkerOutcome, init_pool_process, warm_up

logger = logging.getLogger("openiort.web.local_planners")


class LocalPlanners:
    """``workers`` queue loops of this process; ``start``/``shutdown`` follow the app's life."""

    def __init__(
        self,
        engine: Engine,
        files: PlanFiles,
        planner: Planner,
        *,
        workers: int = 1,
        kind: Literal["process", "thread"] = "process",
        heartbeat_s: float = HEARTBEAT_S,
        stale_after_s: float = jq.STALE_AFTER_S,
        max_attempts: int = jq.MAX_ATTEMPTS,
    ) -> None:
        self.engine = engine
        self.files = files
        self.planner = planner
        self.workers = workers
        self.kind = kind
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.max_attempts = max_attempts
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._executor: cf.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _new_executor(self) -> cf.ProcessPoolExecutor:
        # spawn: the server's threads and open database connections never reach a worker.
        return cf.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_pool_process,
        )

    def _compute(self, inputs: dict[str, Any], staging: str) -> WorkerOutcome:
        """Run the planner on the pool (its process may die: the pool is replaced)."""
        if self.kind == "thread":
            return self.planner(inputs, staging)
        with self._lock:
            if self._executor is None:
                self._executor = self._new_executor()
            executor = self._executor
        try:
            return executor.submit(self.planner, inputs, staging).result()
        except BrokenProcessPool:
            with self._lock:
                if self._executor is executor and not self._stop.is_set():
                    self._executor = self._new_executor()
            return WorkerOutcome("error", error_type="BrokenProcessPool")

    def start(self) -> None:
        """Start the loops (and have the pool import the planning code before the first plan).
        May follow :meth:`shutdown`: an app's lifespan can run more than once, in tests."""
        if self._threads:
            return
        self._stop.clear()
        if self.kind == "process":
            with self._lock:
                self._executor = self._new_executor()
                for _ in range(self.workers):
                    self._executor.submit(warm_up)
        base = default_worker_id()
        for i in range(self.workers):
            loop = QueueWorker(
                self.engine,
                self.files,
                self._compute,
                worker_id=f"{base}:{i}",
                heartbeat_s=self.heartbeat_s,
                stale_after_s=self.stale_after_s,
                max_attempts=self.max_attempts,
            )
            thread = threading.Thread(
                target=loop.run, args=(self._stop, self.wake), name=f"plan-{i}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def shutdown(self) -> None:
        """Finish the plans being computed; queued ones stay queued for the next start."""
        self._stop.set()
        self.wake.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
