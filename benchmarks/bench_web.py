"""Bounded load test of the web app: ``iort serve`` on 127.0.0.1 under concurrent users.

Starts the server in its own process on a free port with a throwaway SQLite database, one
approved plan of the demo case (computed here first) and one planning worker. Then, for a
fixed time, simulated users, each an httpx async client with its own session, work the app:
most view (case list, case, plan page, dose-slice images, plan JSON through the API), some
ask for new plans and follow their jobs. Static-file requests measured in the same run are
the baseline. Prints requests per second, latency percentiles per kind of request, the error
count, refusals by design (planning queue full) and the plans completed. Never fails on time.

The same load is run twice in one run, on copies of the same seeded database: against one
server process (planning in its own worker pool), then against ``iort serve --workers 2`` with
one ``iort worker`` (the same planning capacity; jobs in the database queue), and the two
figures are printed side by side. Both runs on a throwaway PostgreSQL cluster
(scripts/pg_test_cluster.sh; ``--database sqlite`` for SQLite files, where several processes
contend for SQLite's single writer).

Usage: ``python benchmarks/bench_web.py [--users 50] [--planners 5] [--duration 30]
[--processes 1,2] [--database postgresql|sqlite]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml
from argon2 import PasswordHasher

from openiort.case import parse_case
from openiort.pipeline import plan_case
from openiort.records import service
from openiort.records import users as users_module
from openiort.records.chain import bind_key
from openiort.records.db import prepare_database, session_scope
from openiort.web.operations import new_case
from openiort.web.worker import write_plan_files

REPO = Path(__file__).resolve().parents[1]
DEMO_CASE = REPO / "src" / "openiort" / "data" / "demo_case.yaml"
DEPARTMENT_SOURCE = REPO / "tests" / "data" / "department_xray_source" / "source.yaml"
PASSWORD = "benchmark password 1"
SEAL_KEY = "bench-seal-key-not-for-production-0123456789"
SESSION_SECRET = "bench-session-secret-not-for-production-0123"
START_TIMEOUT_S = 120.0


@dataclass
class Stats:
    stop: float = 0.0  # no request starts after this (perf_counter)
    last_answer: float = 0.0
    latencies_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refused: int = 0
    plans_done: int = 0
    plans_failed: int = 0
    plan_seconds: list[float] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Demo:
    """The demo case planned once, its files in ``folder``."""

    data: dict[str, Any]
    plan_json: dict[str, Any]
    folder: Path
    n_slices: int


def _plan_demo(root: Path) -> Demo:
    data = yaml.safe_load(DEMO_CASE.read_text("utf-8"))
    print("planning the demo case once for the plan pages ...", flush=True)
    t0 = time.perf_counter()
    # Department device data: plans of the example source cannot be approved.
    result = plan_case(parse_case(data), DEPARTMENT_SOURCE)
    folder = root / "demo-plan"
    plan_json = write_plan_files(result, parse_case(data), folder)
    print(f"  planned and written in {time.perf_counter() - t0:.1f} s", flush=True)
    return Demo(data, plan_json, folder, int(result.phantom.grid.shape[0]))


def _seed(root: Path, url: str, demo: Demo) -> tuple[int, int]:
    """Users, the demo case and its approved plan in the database ``url`` (files under
    ``root / "plans"``); (case id, plan id)."""
    engine = prepare_database(url)
    bind_key(engine, SEAL_KEY.encode())  # the server's key signs the record chains
    # Cheap argon2 parameters for the benchmark's own accounts only (logins are not measured).
    users_module.use_password_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    with session_scope(engine) as s:
        for name, role in (("phys", "physicist"), ("onc", "oncologist"), ("view", "viewer")):
            users_module.create_user(s, name, role, PASSWORD)
    with session_scope(engine) as s:
        phys = users_module.get_user(s, "phys")
        case_id = new_case(s, phys, copy.deepcopy(demo.data)).id
        plan = service.store_plan(s, phys, case_id, copy.deepcopy(demo.plan_json))
        plan_id = plan.id
    with session_scope(engine) as s:
        service.review_plan(s, users_module.get_user(s, "phys"), plan_id)
    with session_scope(engine) as s:  # a second person approves (four-eyes rule)
        service.approve_plan(s, users_module.get_user(s, "onc"), plan_id, key=SEAL_KEY.encode())
    engine.dispose()
    (root / "plans").mkdir(parents=True)
    shutil.copytree(demo.folder, root / "plans" / str(plan_id))
    return case_id, plan_id


@contextlib.contextmanager
def _databases(kind: str, root: Path, names: list[str]) -> Iterator[dict[str, str]]:
    """One empty database per name: SQLite files, or on a throwaway PostgreSQL cluster
    (scripts/pg_test_cluster.sh, as the tests use)."""
    if kind == "sqlite":
        yield {n: f"sqlite:///{root / n / 'records.sqlite3'}" for n in names}
        return
    script = REPO / "scripts" / "pg_test_cluster.sh"
    proc = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"could not start a PostgreSQL cluster:\n{proc.stderr}")
    server_url = proc.stdout.strip().splitlines()[-1]
    cluster_dir = server_url.split("host=", 1)[1].removesuffix("/socket")
    try:
        admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for n in names:
                conn.execute(sa.text(f"CREATE DATABASE bench_{n.replace('-', '_')}"))
        admin.dispose()
        yield {n: server_url.replace("/postgres?", f"/bench_{n.replace('-', '_')}?") for n in names}
    finally:
        subprocess.run(["bash", str(script), "stop", cluster_dir], check=False)


def _start_server(
    root: Path, url: str, port: int, processes: int = 1
) -> list[subprocess.Popen[bytes]]:
    """The server (``processes`` web processes) and, for more than one, an ``iort worker``."""
    env = {
        **os.environ,
        "OPENIORT_DATA_DIR": str(root / "data"),
        "OPENIORT_SEAL_KEY": SEAL_KEY,
        "OPENIORT_SESSION_SECRET": SESSION_SECRET,
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(REPO / ".numba_cache")),
    }
    code = (
        "from pathlib import Path\n"
        "from openiort.web.commands import serve\n"
        f"serve(host='127.0.0.1', port={port}, database_url={url!r}, "
        f"files_dir=Path({str(root / 'plans')!r}), plan_workers=1, max_pending_plans=4, "
        "four_eyes=None, ssl_certfile=None, ssl_keyfile=None, forwarded_allow_ips=None, "
        f"log_level='warning', workers={processes})\n"
    )
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed with the process
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log, stderr=log)]
    if processes > 1:
        worker = [sys.executable, "-m", "openiort.cli", "worker", "--database-url", url]
        worker += ["--files-dir", str(root / "plans"), "--log-level", "warning"]
        procs.append(subprocess.Popen(worker, env=env, stdout=log, stderr=log))
    return procs


async def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:
        while True:
            try:
                if (await client.get("/login")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            await asyncio.sleep(0.3)


async def _login(client: httpx.AsyncClient, username: str) -> None:
    # Parallel logins from one address are let through a few at a time (openiort.web.ratelimit
    # reserves each attempt's place; at most a few password hashes at once): wait and retry.
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        r = await client.post("/api/session", json={"username": username, "password": PASSWORD})
        if r.status_code not in (429, 503) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2 + random.random() * 0.3)
    r.raise_for_status()
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]


async def _timed(
    stats: Stats, kind: str, client: httpx.AsyncClient, method: str, url: str, **kw: Any
) -> httpx.Response | None:
    t0 = time.perf_counter()
    if t0 >= stats.stop:
        return None
    try:
        r = await client.request(method, url, **kw)
    except httpx.HTTPError:
        stats.errors[kind] += 1
        return None
    now = time.perf_counter()
    stats.latencies_s[kind].append(now - t0)
    stats.last_answer = max(stats.last_answer, now)
    if r.status_code == 503 and kind == "plan request":
        stats.refused += 1
    elif r.status_code >= 400:
        stats.errors[kind] += 1
    return r


async def _viewer(
    base: str, stats: Stats, stop: float, case_id: int, plan_id: int, n_slices: int, seed: int
) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        await _login(client, "view")
        while time.perf_counter() < stop:
            await _timed(stats, "case list", client, "GET", "/cases")
            await _timed(stats, "case page", client, "GET", f"/cases/{case_id}")
            await _timed(stats, "plan page", client, "GET", f"/plans/{plan_id}")
            for _ in range(5):  # scrolling through slices
                axis = rng.choice(("axial", "coronal", "sagittal"))
                index = rng.randrange(0, n_slices // 2)
                await _timed(
                    stats,
                    "slice image",
                    client,
                    "GET",
                    f"/plans/{plan_id}/slices/{axis}/{index}.png",
                )
            await _timed(stats, "API plan", client, "GET", f"/api/plans/{plan_id}")
            await _timed(stats, "static (baseline)", client, "GET", "/static/app.css")


async def _planner(base: str, stats: Stats, stop: float, case_id: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        await _login(client, "phys")
        while time.perf_counter() < stop:
            r = await _timed(
                stats, "plan request", client, "POST", f"/api/cases/{case_id}/plans", json={}
            )
            if r is None or r.status_code != 202:
                await asyncio.sleep(float(r.headers.get("retry-after", 5)) if r is not None else 5)
                continue
            job = r.json()["job_id"]
            t0 = time.perf_counter()
            while time.perf_counter() < stop:
                await asyncio.sleep(1.0)
                s = await _timed(stats, "job status", client, "GET", f"/api/jobs/{job}")
                if s is None or s.status_code != 200:
                    break
                state = s.json()["state"]
                if state == "done":
                    stats.plans_done += 1
                    stats.plan_seconds.append(time.perf_counter() - t0)
                    break
                if state == "failed":
                    stats.plans_failed += 1
                    break


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def _report(
    stats: Stats, duration_s: float, drained_s: float, users: int, planners: int
) -> tuple[float, float, float, int]:
    """Print the run's table; (requests/s, p50 ms, p99 ms, errors) of all requests."""
    total = sum(len(v) for v in stats.latencies_s.values())
    errors = sum(stats.errors.values())
    print(
        f"\n{users} concurrent users ({planners} planning) on 127.0.0.1: requests started "
        f"during {duration_s:.0f} s, last answer {drained_s:.1f} s after the start; rates per "
        f"{duration_s:.0f} s window"
    )
    print(
        f"{'request':<20}{'count':>7}{'req/s':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}"
    )
    for kind, lat in sorted(stats.latencies_s.items(), key=lambda kv: -len(kv[1])):
        ms = [v * 1000 for v in lat]
        print(
            f"{kind:<20}{len(lat):>7}{len(lat) / duration_s:>8.1f}{_percentile(ms, 50):>9.1f}"
            f"{_percentile(ms, 90):>9.1f}{_percentile(ms, 99):>9.1f}{max(ms):>9.1f}"
            f"{stats.errors.get(kind, 0):>8}"
        )
    all_ms = [v * 1000 for lat in stats.latencies_s.values() for v in lat]
    print(
        f"{'all':<20}{total:>7}{total / duration_s:>8.1f}{_percentile(all_ms, 50):>9.1f}"
        f"{_percentile(all_ms, 90):>9.1f}{_percentile(all_ms, 99):>9.1f}{max(all_ms):>9.1f}{errors:>8}"
    )
    base = stats.latencies_s.get("static (baseline)")
    page = stats.latencies_s.get("plan page")
    if base and page:
        print(
            f"plan page / static file median latency: "
            f"{statistics.median(page) / statistics.median(base):.1f}x (same run)"
        )
    print(f"errors: {errors} (transport failures and unexpected 4xx/5xx answers)")
    print(f"refused by design (planning queue full, 503 + Retry-After): {stats.refused}")
    done = (
        f", {statistics.median(stats.plan_seconds):.1f} s median from request"
        if stats.plan_seconds
        else ""
    )
    print(f"plans computed during the run: {stats.plans_done} (failed {stats.plans_failed}){done}")
    return (
        total / duration_s,
        _percentile(all_ms, 50),
        _percentile(all_ms, 99),
        errors,
    )


async def _run(
    base: str, users: int, planners: int, duration_s: float, ids: tuple[int, int, int]
) -> tuple[float, float, float, int]:
    case_id, plan_id, n_slices = ids
    start = time.perf_counter()
    stop = start + duration_s
    stats = Stats(stop=stop)
    tasks = [_planner(base, stats, stop, case_id) for _ in range(planners)]
    tasks += [
        _viewer(base, stats, stop, case_id, plan_id, n_slices, seed=i)
        for i in range(users - planners)
    ]
    await asyncio.gather(*tasks)
    return _report(stats, duration_s, stats.last_answer - start, users, planners)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--planners", type=int, default=5)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument(
        "--processes", default="1,2", help="web process counts to compare (comma-separated)"
    )
    parser.add_argument(
        "--database",
        choices=("postgresql", "sqlite"),
        default="postgresql",
        help="the backend of every run (several processes are meant for PostgreSQL)",
    )
    args = parser.parse_args()
    if not 1 <= args.planners <= args.users or args.duration <= 0:
        parser.error("need 1 <= planners <= users and a positive duration")
    counts = [int(n) for n in args.processes.split(",")]
    results: dict[int, tuple[float, float, float, int]] = {}
    with tempfile.TemporaryDirectory(prefix="openiort-bench-web-") as tmp:
        demo = _plan_demo(Path(tmp))
        names = [f"run-{n}" for n in counts]
        with _databases(args.database, Path(tmp), names) as urls:
            for n, name in zip(counts, names, strict=True):
                root = Path(tmp) / name
                case_id, plan_id = _seed(root, urls[name], demo)  # the same records each run
                port = _free_port()
                procs = _start_server(root, urls[name], port, n)
                base = f"http://127.0.0.1:{port}"
                extra = " + 1 iort worker" if n > 1 else ""
                print(f"\n== {n} web process(es){extra}, {args.database}")
                try:
                    asyncio.run(_wait_ready(base, procs[0]))
                    results[n] = asyncio.run(
                        _run(
                            base,
                            args.users,
                            args.planners,
                            args.duration,
                            (case_id, plan_id, demo.n_slices),
                        )
                    )
                finally:
                    _stop(procs)
    print(f"\nall requests, same run ({args.database}):")
    print(f"{'web processes':<16}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for n, (rate, p50, p99, errors) in results.items():
        print(f"{n:<16}{rate:>8.1f}{p50:>9.1f}{p99:>9.1f}{errors:>8}")


if __name__ == "__main__":
    main()
