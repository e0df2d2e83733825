"""Planning jobs in the database queue (``iort serve --workers N`` with ``iort worker``): any
web process answers for any job; a worker's stalled job is taken back and computed again."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_testkit import (
    SEAL_KEY,
    SESSION_SECRET,
    DemoPlan,
    api_client,
    build_app,
    seed_case,
    stand_in_planner,
    web_of,
)

from openiort.records import job_queue as jq
from openiort.records.db import upgrade
from openiort.records.errors import SchemaError
from openiort.web.app import create_app
from openiort.web.queue_worker import QueueWorker


def _external_app(root: Path, demo: DemoPlan) -> object:
    root.mkdir(parents=True, exist_ok=True)
    upgrade(f"sqlite:///{root / 'records.sqlite3'}")  # `iort db upgrade` first
    return build_app(root, demo, external_planning=True)


def test_external_planning_refuses_an_empty_database(tmp_path: Path, demo_plan: DemoPlan) -> None:
    with pytest.raises(SchemaError, match="iort db upgrade"):
        build_app(tmp_path / "web", demo_plan, external_planning=True)


def test_jobs_in_the_database_answered_by_any_process(tmp_path: Path, demo_plan: DemoPlan) -> None:
    app = _external_app(tmp_path / "web", demo_plan)
    # A second web process on the same database and files.
    other = create_app(
        f"sqlite:///{tmp_path / 'web' / 'records.sqlite3'}",
        seal_key=SEAL_KEY,
        files_dir=tmp_path / "web" / "plans",
        session_secret_key=SESSION_SECRET,
        external_planning=True,
    )
    web = web_of(app)  # type: ignore[arg-type]
    case_id = seed_case(app, copy.deepcopy(demo_plan.case_data))  # type: ignore[arg-type]
    with TestClient(app), TestClient(other):  # type: ignore[arg-type]
        client = api_client(app, "phys")  # type: ignore[arg-type]
        r = client.post(f"/api/cases/{case_id}/plans")
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["state"] == "queued" and job["queue_position"] == 1
        poll = api_client(other, "onc")  # type: ignore[arg-type]
        assert poll.get(f"/api/jobs/{job['job_id']}").json()["state"] == "queued"
        worker = QueueWorker(web.engine, web.files, stand_in_planner(demo_plan), worker_id="w1")
        assert worker.run_once() and not worker.run_once()
        done = poll.get(f"/api/jobs/{job['job_id']}").json()
        assert done["state"] == "done" and done["plan_id"] is not None, done
        assert (web.files.plan_dir(done["plan_id"]) / "plan.json").exists()
        assert client.get("/api/jobs/no-such-job").status_code == 404


def test_stalled_job_taken_back_and_computed(tmp_path: Path, demo_plan: DemoPlan) -> None:
    app = _external_app(tmp_path / "web", demo_plan)
    web = web_of(app)  # type: ignore[arg-type]
    case_id = seed_case(app, copy.deepcopy(demo_plan.case_data))  # type: ignore[arg-type]
    with TestClient(app):  # type: ignore[arg-type]
        client = api_client(app, "phys")  # type: ignore[arg-type]
        job_id = client.post(f"/api/cases/{case_id}/plans").json()["job_id"]
        assert jq.claim(web.engine, "killed-worker") is not None  # claimed, then never beats
        worker = QueueWorker(web.engine, web.files, stand_in_planner(demo_plan), stale_after_s=0.0)
        assert worker.run_once()
        done = client.get(f"/api/jobs/{job_id}").json()
        assert done["state"] == "done", done
        row = jq.get(web.engine, job_id)
        assert row is not None and row.attempts == 2


def test_case_error_fails_the_job_with_its_problems(tmp_path: Path, demo_plan: DemoPlan) -> None:
    from openiort.web.worker import WorkerOutcome

    app = _external_app(tmp_path / "web", demo_plan)
    web = web_of(app)  # type: ignore[arg-type]
    case_id = seed_case(app, copy.deepcopy(demo_plan.case_data))  # type: ignore[arg-type]
    with TestClient(app):  # type: ignore[arg-type]
        client = api_client(app, "phys")  # type: ignore[arg-type]
        job_id = client.post(f"/api/cases/{case_id}/plans").json()["job_id"]

        def refuse(_data: dict[str, object], _out: str) -> WorkerOutcome:
            return WorkerOutcome("case", problems=["depth: too deep"])

        assert QueueWorker(web.engine, web.files, refuse).run_once()
        failed = client.get(f"/api/jobs/{job_id}").json()
        assert failed["state"] == "failed" and failed["problems"] == ["depth: too deep"]
        assert failed["message"]


def test_a_worker_removes_only_old_staging_folders(tmp_path: Path) -> None:
    """`iort worker` clears a killed worker's unfinished plan folders, never a live one's."""
    import os
    import time

    from openiort.web.artifacts import PlanFiles

    files = PlanFiles(tmp_path / "plans", key=SEAL_KEY)
    old, live = files.new_staging_dir(), files.new_staging_dir()
    (old / "dose.npy").write_bytes(b"x")
    week_ago = time.time() - 7 * 24 * 3600
    os.utime(old, (week_ago, week_ago))
    files.clean_staging(older_than_s=6 * 3600)
    assert not old.exists() and live.exists()
