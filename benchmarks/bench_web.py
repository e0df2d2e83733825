"""Bounded load test of the web app: ``iort serve`` on 127.0.0.1 under concurrent users.

Starts the server in its own process on a free port with a throwaway SQLite database, one
approved plan of the demo case (computed here first) and one planning worker. Then, for a
fixed time, simulated users, each an httpx async client with its own session, work the app:
most view (case list, case, plan page, dose-slice images, plan JSON through the API), some
ask for new plans and follow their jobs. Static-file requests measured in the same run are
the baseline. Prints requests per second, latency percentiles per kind of request, the error
count, refusals by design (planning queue full) and the plans completed. Never fails on time.

Usage: ``python benchmarks/bench_web.py [--users 50] [--planners 5] [--duration 30]``
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
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


def _seed(root: Path) -> tuple[str, int, int, int]:
    """Database with users, the demo case and its approved plan; (url, case, plan, slices)."""
    data = yaml.safe_load(DEMO_CASE.read_text("utf-8"))
    print("planning the demo case once for the plan pages ...", flush=True)
    t0 = time.perf_counter()
    result = plan_case(parse_case(data))
    files = root / "plans"
    staging = root / "staging"
    plan_json = write_plan_files(result, parse_case(data), staging)
    print(f"  planned and written in {time.perf_counter() - t0:.1f} s", flush=True)
    url = f"sqlite:///{root / 'records.sqlite3'}"
    engine = prepare_database(url)
    bind_key(engine, SEAL_KEY.encode())  # the server's key signs the record chains
    # Cheap argon2 parameters for the benchmark's own accounts only (logins are not measured).
    users_module.use_password_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    with session_scope(engine) as s:
        for name, role in (("phys", "physicist"), ("onc", "oncologist"), ("view", "viewer")):
            users_module.create_user(s, name, role, PASSWORD)
    with session_scope(engine) as s:
        phys = users_module.get_user(s, "phys")
        case_id = new_case(s, phys, copy.deepcopy(data)).id
        plan = service.store_plan(s, phys, case_id, plan_json)
        plan_id = plan.id
    with session_scope(engine) as s:
        service.review_plan(s, users_module.get_user(s, "phys"), plan_id)
    with session_scope(engine) as s:  # a second person approves (four-eyes rule)
        service.approve_plan(s, users_module.get_user(s, "onc"), plan_id, key=SEAL_KEY.encode())
    engine.dispose()
    files.mkdir()
    os.replace(staging, files / str(plan_id))
    return url, case_id, plan_id, int(result.phantom.grid.shape[0])


def _start_server(root: Path, url: str, port: int) -> subprocess.Popen[bytes]:
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
        "log_level='warning')\n"
    )
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log, stderr=log)


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
    r = await client.post("/api/session", json={"username": username, "password": PASSWORD})
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


def _report(stats: Stats, duration_s: float, drained_s: float, users: int, planners: int) -> None:
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


async def _run(
    base: str, users: int, planners: int, duration_s: float, ids: tuple[int, int, int]
) -> None:
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
    _report(stats, duration_s, stats.last_answer - start, users, planners)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--planners", type=int, default=5)
    parser.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args()
    if not 1 <= args.planners <= args.users or args.duration <= 0:
        parser.error("need 1 <= planners <= users and a positive duration")
    with tempfile.TemporaryDirectory(prefix="openiort-bench-web-") as tmp:
        root = Path(tmp)
        url, case_id, plan_id, n_slices = _seed(root)
        port = _free_port()
        proc = _start_server(root, url, port)
        base = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(_wait_ready(base, proc))
            asyncio.run(
                _run(base, args.users, args.planners, args.duration, (case_id, plan_id, n_slices))
            )
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
