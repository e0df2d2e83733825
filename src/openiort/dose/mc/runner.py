"""Run a transport problem in independent batches: local threads or a Dask cluster.

Batch ``b`` draws its random numbers from a key derived from ``(seed, b)`` only (see
:mod:`openiort.dose.mc.rng`), each batch is transported by one thread from start to end, and
batch results are merged strictly in batch order. The answer is therefore bit-for-bit the same
whatever the number of threads, and the same on a Dask cluster as locally.

Local runs use a thread pool over the compiled kernels (they release the GIL), show a rich
progress bar and stop cleanly on Ctrl-C (:class:`SimulationInterruptedError`, nothing merged or
written). ``scheduler_address`` sends the batches to a Dask scheduler; ``use_dask=True`` without
an address starts a local cluster on 127.0.0.1.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from openiort.dose.mc.kernel_common import BALANCE_SLOTS
from openiort.dose.mc.rng import batch_key
from openiort.dose.mc.scoring import BatchAccumulator
from openiort.errors import OpenIortInputError

FloatArray = NDArray[np.float64]
CHUNK_HISTORIES = 20_000  # photons per kernel call: the granularity of progress and Ctrl-C
MAX_HISTORIES = 10**12


class SimulationInterruptedError(Exception):
    """The user stopped a Monte Carlo run (Ctrl-C); no partial result was kept."""


class RunSettingsError(OpenIortInputError):
    """Histories, batches, seed or worker settings that cannot be run."""


class TransportProblem(Protocol):
    """What the runner needs from a geometry: tally shapes and a kernel call."""

    description: str

    def tally_shapes(self) -> tuple[tuple[int, ...], ...]: ...

    def tally_dtypes(self) -> tuple[type[np.floating], ...]: ...

    def transport(
        self,
        key: np.uint64,
        first: int,
        stop: int,
        batch_size: int,
        tallies: tuple[FloatArray, ...],
        balance: FloatArray,
    ) -> None: ...


def batch_sizes(histories: int, n_batches: int) -> int:
    """Histories per batch (equal batches; the total is rounded up to a multiple)."""
    if isinstance(histories, bool) or not isinstance(histories, int | np.integer):
        raise RunSettingsError(f"histories must be an integer, got {histories!r}")
    if isinstance(n_batches, bool) or not isinstance(n_batches, int | np.integer):
        raise RunSettingsError(f"n_batches must be an integer, got {n_batches!r}")
    if n_batches < 2:
        raise RunSettingsError(f"at least 2 batches are needed for an uncertainty, got {n_batches}")
    if histories < n_batches or histories > MAX_HISTORIES:
        raise RunSettingsError(
            f"histories must be between n_batches ({n_batches}) and {MAX_HISTORIES:g}, got {histories}"
        )
    return math.ceil(histories / n_batches)


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise RunSettingsError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def run_batch(
    problem: TransportProblem,
    seed: int,
    batch: int,
    n_histories: int,
    stop: threading.Event | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> tuple[tuple[FloatArray, ...], FloatArray] | None:
    """Transport one whole batch; None if ``stop`` was set before it finished."""
    key = batch_key(seed, batch)
    tallies = tuple(
        np.zeros(s, dtype=d)
        for s, d in zip(problem.tally_shapes(), problem.tally_dtypes(), strict=True)
    )
    balance = np.zeros(BALANCE_SLOTS)
    first = 0
    while first < n_histories:
        if stop is not None and stop.is_set():
            return None
        last = min(first + CHUNK_HISTORIES, n_histories)
        problem.transport(key, first, last, n_histories, tallies, balance)
        if on_chunk is not None:
            on_chunk(last - first)
        first = last
    return tallies, balance


class _Progress:
    """A rich progress bar over histories (or nothing when disabled)."""

    def __init__(self, enabled: bool, total: int, description: str) -> None:
        self.enabled = enabled
        self.done = 0
        self._lock = threading.Lock()
        self._bar = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            self._task = self._bar.add_task(description, total=total)
            self._bar.start()

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n

    def refresh(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def default_workers() -> int:
    return max(
        1,
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
    )


def run_batches(
    problem: TransportProblem,
    histories: int,
    seed: int,
    n_batches: int,
    *,
    workers: int | None = None,
    scheduler_address: str | None = None,
    use_dask: bool = False,
    progress: bool = False,
) -> BatchAccumulator:
    """Run ``n_batches`` batches and merge them in batch order."""
    seed = check_seed(seed)
    per_batch = batch_sizes(histories, n_batches)
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise RunSettingsError(f"workers must be a positive integer, got {workers!r}")
    acc = BatchAccumulator(problem.tally_shapes(), per_batch)
    if scheduler_address is not None or use_dask:
        _run_dask(problem, seed, n_batches, per_batch, acc, scheduler_address, workers, progress)
    else:
        _run_threads(
            problem, seed, n_batches, per_batch, acc, workers or default_workers(), progress
        )
    return acc


def _merge_ready(
    acc: BatchAccumulator, pending: dict[int, tuple[tuple[FloatArray, ...], FloatArray]]
) -> None:
    while acc.n_batches in pending:
        tallies, balance = pending.pop(acc.n_batches)
        acc.add(tallies, balance)


def _run_threads(
    problem: TransportProblem,
    seed: int,
    n_batches: int,
    per_batch: int,
    acc: BatchAccumulator,
    workers: int,
    progress: bool,
) -> None:
    stop = threading.Event()
    bar = _Progress(progress, n_batches * per_batch, problem.description)
    pending: dict[int, tuple[tuple[FloatArray, ...], FloatArray]] = {}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openiort-mc")
    futures: dict[Future[tuple[tuple[FloatArray, ...], FloatArray] | None], int] = {}
    try:
        next_batch = 0
        # keep at most ``workers`` batches in flight so finished tallies are merged promptly
        while next_batch < min(workers, n_batches):
            futures[pool.submit(run_batch, problem, seed, next_batch, per_batch, stop, bar.add)] = (
                next_batch
            )
            next_batch += 1
        while futures:
            done, _ = wait(list(futures), timeout=0.2, return_when=FIRST_COMPLETED)
            bar.refresh()
            for fut in done:
                b = futures.pop(fut)
                result = fut.result()
                if result is None:
                    continue
                pending[b] = result
                _merge_ready(acc, pending)
                if next_batch < n_batches:
                    futures[
                        pool.submit(run_batch, problem, seed, next_batch, per_batch, stop, bar.add)
                    ] = next_batch
                    next_batch += 1
        bar.refresh()
    except KeyboardInterrupt:
        stop.set()
        raise SimulationInterruptedError(
            f"Monte Carlo run interrupted after {acc.n_batches} of {n_batches} batches; no result was kept"
        ) from None
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()


def _run_dask(
    problem: TransportProblem,
    seed: int,
    n_batches: int,
    per_batch: int,
    acc: BatchAccumulator,
    scheduler_address: str | None,
    workers: int | None,
    progress: bool,
) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - dask is a declared dependency
        raise RunSettingsError("Dask scaling needs the 'dask[distributed]' package") from exc
    cluster = None
    if scheduler_address is not None:
        try:
            client = Client(scheduler_address, timeout="5s")
        except OSError as exc:
            raise RunSettingsError(
                f"cannot reach the Dask scheduler at {scheduler_address}: {exc}"
            ) from None
    else:
        # threads in this process, talking over TCP on the loopback interface only
        cluster = LocalCluster(
            n_workers=workers or 2,
            threads_per_worker=1,
            processes=False,
            protocol="tcp",
            host="127.0.0.1",
            dashboard_address=None,
        )
        client = Client(cluster)
    bar = _Progress(progress, n_batches * per_batch, problem.description + " (dask)")
    pending: dict[int, tuple[tuple[FloatArray, ...], FloatArray]] = {}
    futures = []
    try:
        shared = client.scatter(problem, broadcast=True)
        token = f"{time.time_ns():x}"
        futures = [
            client.submit(
                run_batch, shared, seed, b, per_batch, pure=False, key=f"openiort-mc-{token}-{b}"
            )
            for b in range(n_batches)
        ]
        index = {f.key: b for b, f in enumerate(futures)}
        for fut in as_completed(futures):
            result = fut.result()
            if result is None:  # pragma: no cover - remote batches have no stop flag
                raise RuntimeError("a Dask batch returned no result")
            pending[index[fut.key]] = result
            bar.add(per_batch)
            bar.refresh()
            _merge_ready(acc, pending)
    except KeyboardInterrupt:
        client.cancel(futures)
        raise SimulationInterruptedError(
            f"Monte Carlo run on Dask interrupted after {acc.n_batches} of {n_batches} batches; no result was kept"
        ) from None
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
    if acc.n_batches != n_batches:  # pragma: no cover - defensive
        raise RuntimeError(f"only {acc.n_batches} of {n_batches} Dask batches were merged")
