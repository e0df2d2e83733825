"""Several processes, one truth: ``iort serve --workers 2`` and two ``iort worker`` processes on
one PostgreSQL (a throwaway cluster, scripts/pg_test_cluster.sh), real planning. Plans are
submitted through the API; one web process and one worker are killed (SIGKILL) while jobs are
computed. Every job ends done (or failed with a reason), every poll of a job that exists is
answered (a poll that met the killed process succeeds when retried, never a 404), and no
process is left behind.
"""

from __future__ import annotations

import copy
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient
from web_testkit import (
    DEMO_CASE,
    PASSWORD,
    REPO,
    SEAL_KEY,
    SESSION_SECRET,
    USERS,
    DemoPlan,
    api_client,
    seed_case,
    stand_in_planner,
)

from openiort.records import job_queue as jq
from openiort.records import users as users_module
from openiort.records.chain import bind_key
from openiort.records.db import make_engine, prepare_database, session_scope
from openiort.web import state as web_state
from openiort.web.app import create_app
from openiort.web.worker import WorkerOutcome

# Four real plans on a busy 2-core machine: keep clear of the browser tests.
pytestmark = pytest.mark.xdist_group("browser-e2e")

PG_SCRIPT = REPO / "scripts" / "pg_test_cluster.sh"
IORT = str(Path(sys.executable).parent / "iort")
JOBS = 4
START_S = 60.0
ALL_DONE_S = 150.0  # four plans and one re-computed on two (then one) workers, 10-20 s each
HEARTBEAT_S = 0.5
STALE_AFTER_S = 4.0


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc = subprocess.run(
        ["bash", str(PG_SCRIPT), "start"], capture_output=True, text=True, timeout=180
    )
    if proc.returncode != 0:
        raise RuntimeError(f"could not start the PostgreSQL test cluster:\n{proc.stderr}")
    server_url = proc.stdout.strip().splitlines()[-1]
    cluster_dir = server_url.split("host=", 1)[1].removesuffix("/socket")
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE openiort_multi"))
    admin.dispose()
    try:
        yield server_url.replace("/postgres?", "/openiort_multi?")
    finally:
        subprocess.run(["bash", str(PG_SCRIPT), "stop", cluster_dir], timeout=60, check=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        found += kids
        frontier += kids
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _serving_pid(client_port: int, server_port: int, candidates: list[int]) -> int | None:
    """The process among ``candidates`` holding the server end of the loopback connection whose
    client end is ``client_port`` (from /proc/net/tcp and each process's open files)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        remote_port = int(fields[2].split(":")[1], 16)
        if local_port == server_port and remote_port == client_port:
            inode = fields[9]
    if inode is None:
        return None
    for pid in candidates:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def _wait_for(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _seed(url: str, jobs: int = JOBS) -> list[int]:
    """Test users and one case per job (each its own patient); the case ids."""
    from openiort.web.operations import new_case

    engine = prepare_database(url, create_schema=False)
    bind_key(engine, SEAL_KEY)
    data = yaml.safe_load(DEMO_CASE.read_text("utf-8"))
    ids = []
    with session_scope(engine) as s:
        for name, role in USERS.items():
            users_module.create_user(s, name, role, PASSWORD)
    for i in range(jobs):
        case = copy.deepcopy(data)
        case["patient"]["id"] = f"MULTI-{i:03d}"
        with session_scope(engine) as s:
            ids.append(new_case(s, users_module.get_user(s, "phys"), case).id)
    engine.dispose()
    return ids


def states_count(states: dict[str, dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for state in states.values():
        out[state["state"]] = out.get(state["state"], 0) + 1
    return out


def _poll(client: httpx.Client, url: str, counts: dict[str, int]) -> dict[str, Any]:
    """GET a job, retrying when the connection meets a killed process; never a 404."""
    for _ in range(50):
        try:
            r = client.get(url, timeout=10)
        except httpx.TransportError:
            counts["retried"] += 1
            time.sleep(0.2)
            continue
        counts["polls"] += 1
        assert r.status_code == 200, (r.status_code, r.text)
        result: dict[str, Any] = r.json()
        return result
    raise AssertionError("a poll never succeeded")


def test_two_web_processes_two_workers_survive_kills(pg_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OPENIORT_DATA_DIR": str(tmp_path / "data"),
        "OPENIORT_SEAL_KEY": SEAL_KEY.decode(),
        "OPENIORT_SESSION_SECRET": SESSION_SECRET.decode(),
        "OPENIORT_DATABASE_URL": pg_url,
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(REPO / ".numba_cache")),
    }
    files_dir = tmp_path / "plans"
    port = _free_port()
    serve_cmd = [IORT, "serve", "--port", str(port), "--workers", "2"]
    serve_cmd += ["--files-dir", str(files_dir), "--max-pending-plans", "8"]
    # An un-migrated database is refused (no race to create the schema).
    refused = subprocess.run(serve_cmd, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "iort db upgrade" in refused.stderr, refused.stderr
    upgraded = subprocess.run(
        [IORT, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
    )
    assert upgraded.returncode == 0, upgraded.stderr
    case_ids = _seed(pg_url)

    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in ("serve", "w1", "w2")}  # noqa: SIM115
    procs: dict[str, subprocess.Popen[bytes]] = {}
    worker_cmd = [IORT, "worker", "--files-dir", str(files_dir)]
    worker_cmd += ["--heartbeat-s", str(HEARTBEAT_S), "--stale-after-s", str(STALE_AFTER_S)]
    engine = make_engine(pg_url)
    descendants: set[int] = set()
    try:
        procs["serve"] = subprocess.Popen(
            serve_cmd, env=env, stdout=logs["serve"], stderr=logs["serve"]
        )
        for name in ("w1", "w2"):
            procs[name] = subprocess.Popen(
                worker_cmd, env=env, stdout=logs[name], stderr=logs[name]
            )
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            for name, p in procs.items():
                assert p.poll() is None, (
                    f"{name} stopped: " + (tmp_path / f"{name}.log").read_text()
                )
            try:
                return httpx.get(base + "/login", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        _wait_for(up, START_S, "the web processes")
        web_children = [
            pid
            for pid in _children(procs["serve"].pid)
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(web_children) >= 2, web_children

        client = httpx.Client(base_url=base)
        r = client.post("/api/session", json={"username": "phys", "password": PASSWORD})
        assert r.status_code == 200, r.text
        client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        job_ids = []
        for case_id in case_ids:
            r = client.post(f"/api/cases/{case_id}/plans")
            assert r.status_code == 202, r.text
            job_ids.append(r.json()["job_id"])

        # Kill worker w1 while it computes a job, and one web process.
        w1_id = f"{socket.gethostname()[:60]}:{procs['w1'].pid}"

        def w1_busy() -> bool:
            rows = [jq.get(engine, j) for j in job_ids]
            return any(
                r is not None and r.state == "running" and r.worker_id == w1_id for r in rows
            )

        _wait_for(w1_busy, START_S, "worker w1 to claim a job")
        victim_job = next(
            j for j in job_ids if (row := jq.get(engine, j)) is not None and row.worker_id == w1_id
        )
        # Kept-alive connections spread over both web processes: those of the process about to
        # be killed fail their next poll, which then succeeds when retried.
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        kept = []
        for _ in range(8):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", f"/api/jobs/{job_ids[0]}", headers={"Cookie": cookie})
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            kept.append(conn)
        # The web process to kill is one that serves a kept connection (the kernel may hand
        # every connection to the same process).
        served_by = {_serving_pid(conn.sock.getsockname()[1], port, web_children) for conn in kept}
        web_victim = next(pid for pid in web_children if pid in served_by)
        time.sleep(1.0)  # mid-plan
        os.kill(procs["w1"].pid, signal.SIGKILL)
        os.kill(web_victim, signal.SIGKILL)

        counts = {"polls": 0, "retried": 0, "failed_on_killed": 0}
        for conn in kept:
            try:
                conn.request("GET", f"/api/jobs/{job_ids[0]}", headers={"Cookie": cookie})
                response = conn.getresponse()
                response.read()
                assert response.status == 200
                counts["polls"] += 1
            except (OSError, http.client.HTTPException):
                counts["failed_on_killed"] += 1
                _poll(client, f"/api/jobs/{job_ids[0]}", counts)  # the retry
            finally:
                conn.close()
        states: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + ALL_DONE_S
        while True:
            states = {j: _poll(client, f"/api/jobs/{j}", counts) for j in job_ids}
            if all(s["state"] in ("done", "failed") for s in states.values()):
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.5)

        for state in states.values():
            assert state["state"] == "done" or state["message"], state
        assert all(s["state"] == "done" for s in states.values()), states
        victim = jq.get(engine, victim_job)
        assert victim is not None and victim.attempts == 2 and victim.worker_id != w1_id
        assert counts["failed_on_killed"] >= 1, counts  # the killed process had connections
        print(
            f"crash test: {JOBS} jobs, {states_count(states)}, {counts}, victim tries {victim.attempts}"
        )

        descendants = set(_children(procs["serve"].pid)) | set(_children(procs["w2"].pid))
    finally:
        engine.dispose()
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        for log in logs.values():
            log.close()
    _wait_for(lambda: not any(_alive(pid) for pid in descendants), 15, "no process left")


def test_single_server_killed_mid_plan_resumes_the_job(tmp_path: Path) -> None:
    """One `iort serve` (SQLite, its own planning process) killed with SIGKILL mid-plan: its
    planning process ends itself, the job is answered while the server is back up, and it is
    computed again to the end."""
    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    env = {
        **os.environ,
        "OPENIORT_DATA_DIR": str(tmp_path / "data"),
        "OPENIORT_SEAL_KEY": SEAL_KEY.decode(),
        "OPENIORT_SESSION_SECRET": SESSION_SECRET.decode(),
        "OPENIORT_DATABASE_URL": url,
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(REPO / ".numba_cache")),
    }
    upgraded = subprocess.run(
        [IORT, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
    )
    assert upgraded.returncode == 0, upgraded.stderr
    case_id = _seed(url, jobs=1)[0]
    port = _free_port()
    serve_cmd = [IORT, "serve", "--port", str(port), "--files-dir", str(tmp_path / "plans")]
    serve_cmd += ["--plan-heartbeat-s", str(HEARTBEAT_S), "--plan-stale-after-s", "3"]
    base = f"http://127.0.0.1:{port}"
    engine = make_engine(url)
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(serve_cmd, env=env, stdout=log, stderr=log)
    try:

        def up() -> bool:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                return httpx.get(base + "/login", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        _wait_for(up, START_S, "the server")
        client = httpx.Client(base_url=base)
        r = client.post("/api/session", json={"username": "phys", "password": PASSWORD})
        client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        r = client.post(f"/api/cases/{case_id}/plans")
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        _wait_for(
            lambda: (row := jq.get(engine, job_id)) is not None and row.state == "running",
            START_S,
            "the job to start",
        )
        pool = _children(server.pid)
        assert pool, "the server has no planning process"
        time.sleep(1.0)  # mid-plan
        server.kill()
        server.wait(10)
        _wait_for(lambda: not any(_alive(pid) for pid in pool), 15, "the orphaned planner")

        server = subprocess.Popen(serve_cmd, env=env, stdout=log, stderr=log)
        _wait_for(up, START_S, "the restarted server")
        counts = {"polls": 0, "retried": 0, "failed_on_killed": 0}
        deadline = time.monotonic() + ALL_DONE_S
        while (state := _poll(client, f"/api/jobs/{job_id}", counts))["state"] not in (
            "done",
            "failed",
        ):
            assert time.monotonic() < deadline, state
            time.sleep(0.5)
        assert state["state"] == "done" and state["plan_id"], state
        row = jq.get(engine, job_id)
        assert row is not None and row.attempts == 2
        print(f"single-server crash test: {state['state']} after {row.attempts} tries, {counts}")
    finally:
        engine.dispose()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        log.close()


def test_plan_finished_during_a_database_outage_is_stored_when_it_returns(
    pg_url: str, tmp_path: Path, demo_plan: DemoPlan
) -> None:
    """PostgreSQL stops while a plan is computed: polls get 503 with Retry-After, the computed
    plan is kept, and it is filed once the database is back."""
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE openiort_outage"))
    admin.dispose()
    url = pg_url.replace("/openiort_multi?", "/openiort_outage?")
    cluster_dir = url.split("host=", 1)[1].removesuffix("/socket")
    computing, release = threading.Event(), threading.Event()
    stand_in = stand_in_planner(demo_plan)

    def planner(case_data: dict[str, Any], out_dir: str) -> WorkerOutcome:
        computing.set()
        release.wait(60)
        outcome: WorkerOutcome = stand_in(case_data, out_dir)
        return outcome

    app = create_app(
        url,
        seal_key=SEAL_KEY,
        session_secret_key=SESSION_SECRET,
        files_dir=tmp_path / "plans",
        executor="thread",
        planner=planner,
    )
    with session_scope(web_state.web_of(app).engine) as s:
        for name, role in USERS.items():
            users_module.create_user(s, name, role, PASSWORD)
    paused = False
    with TestClient(app):
        case_id = seed_case(app, demo_plan.case_data)
        client = api_client(app, "phys")
        r = client.post(f"/api/cases/{case_id}/plans", json={})
        assert r.status_code == 202, r.text
        job_url = f"/api/jobs/{r.json()['job_id']}"
        assert computing.wait(30)
        try:
            subprocess.run(["bash", str(PG_SCRIPT), "pause", cluster_dir], check=True, timeout=60)
            paused = True
            release.set()
            time.sleep(3 * HEARTBEAT_S + 2.0)  # the plan is computed, the filing refused
            r = client.get(job_url)
            assert r.status_code == 503 and int(r.headers["retry-after"]) > 0, r.text
        finally:
            release.set()
            if paused:
                subprocess.run(
                    ["bash", str(PG_SCRIPT), "resume", cluster_dir], check=True, timeout=60
                )
        deadline = time.monotonic() + 60
        while True:
            r = client.get(job_url)
            if r.status_code == 200 and r.json()["state"] in ("done", "failed"):
                break
            assert time.monotonic() < deadline, (r.status_code, r.text)
            time.sleep(0.5)
        state = r.json()
        assert state["state"] == "done" and state["plan_id"], state
        assert client.get(f"/api/plans/{state['plan_id']}").status_code == 200
