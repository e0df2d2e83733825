"""Helpers of the web-app tests (imported by name: unique, so independent of pytest's import
mode; ``conftest.py`` puts this folder on ``sys.path``).

The demo case is planned once per test session (about 10-20 s); every test that needs a plan
files a copy of it (hard links, so a copy costs nothing) as a new plan record. Apps use a
SQLite file in a temporary folder, cheap argon2 parameters and a stand-in planner that
returns the session's plan at once; only the browser test runs the real planning worker.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from openiort.case import Case, parse_case
from openiort.pipeline import plan_case
from openiort.plan import PlanResult
from openiort.records import service
from openiort.records import users as users_module
from openiort.records.db import session_scope
from openiort.records.models import User
from openiort.web import state
from openiort.web.app import create_app
from openiort.web.state import WebApp
from openiort.web.worker import WorkerOutcome, write_plan_files

REPO = Path(__file__).resolve().parents[2]
DEMO_CASE = REPO / "src" / "openiort" / "data" / "demo_case.yaml"
# Approvable plans need department device data: the test department's x-ray source.
DEPARTMENT_SOURCE = REPO / "tests" / "data" / "department_xray_source" / "source.yaml"
PASSWORD = "correct horse battery"
SEAL_KEY = b"web-tests-seal-key-not-for-production-000000"
SESSION_SECRET = b"web-tests-session-secret-not-for-production-00"
USERS = {
    "phys": "physicist",
    "phys2": "physicist",
    "onc": "oncologist",
    "surg": "surgeon",
    "view": "viewer",
}


@dataclass(frozen=True)
class DemoPlan:
    """The demo case planned once: the results object and its files."""

    case_data: dict[str, Any]
    case: Case
    result: PlanResult
    folder: Path
    plan_json: dict[str, Any]


def cheap_hasher() -> PasswordHasher:
    # Test-only argon2 parameters: the production profile costs ~0.5 s per hash here.
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def plan_demo(folder: Path) -> DemoPlan:
    """Plan the demo case and write its files into ``folder``."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))
    data = yaml.safe_load(DEMO_CASE.read_text("utf-8"))
    case = parse_case(data)
    result = plan_case(case, DEPARTMENT_SOURCE)
    plan_json = write_plan_files(result, case, folder)
    return DemoPlan(data, case, result, folder, plan_json)


def link_tree(src: Path, dst: Path) -> None:
    """Copy a plan folder with hard links (the files are never written in place)."""
    shutil.copytree(src, dst, copy_function=os.link, ignore=shutil.ignore_patterns("cache"))


def stand_in_planner(demo: DemoPlan) -> Any:
    """A planner returning the demo plan for any case (filed under that case's patient)."""

    def plan(case_data: dict[str, Any], out_dir: str) -> WorkerOutcome:
        out = Path(out_dir)
        out.rmdir()  # the staging folder is created empty
        link_tree(demo.folder, out)
        plan_json = copy.deepcopy(demo.plan_json)
        plan_json["case_id"] = case_data["patient"]["id"]
        return WorkerOutcome("ok", plan_json, seconds=0.0)

    return plan


def build_app(root: Path, demo: DemoPlan | None = None, **kwargs: Any) -> FastAPI:
    """An app on a fresh SQLite database in ``root`` with the test users."""
    root.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "files_dir": root / "plans",
        "session_secret_key": SESSION_SECRET,
        "executor": "thread",
    }
    if demo is not None:
        options["planner"] = stand_in_planner(demo)
    options.update(kwargs)
    app = create_app(f"sqlite:///{root / 'records.sqlite3'}", seal_key=SEAL_KEY, **options)
    with session_scope(web_of(app).engine) as s:
        for name, role in USERS.items():
            users_module.create_user(s, name, role, PASSWORD)
    return app


def web_of(app: FastAPI) -> WebApp:
    return state.web_of(app)


def user(s: Any, username: str) -> User:
    return users_module.get_user(s, username)


def seed_case(
    app: FastAPI,
    data: dict[str, Any],
    username: str = "phys",
    patient_name: str | None = None,
    birth_date: dt.date | None = None,
) -> int:
    """File a case (and its patient, with name and birth date, on first sight); its record id."""
    from openiort.web.operations import new_case

    with session_scope(web_of(app).engine) as s:
        return new_case(s, user(s, username), copy.deepcopy(data), patient_name, birth_date).id


def seed_plan(
    app: FastAPI,
    demo: DemoPlan,
    case_id: int,
    status: str = "draft",
    author: str = "phys",
    daily_output_check: bool = True,
) -> int:
    """File the demo plan as a new version of a case and bring it to ``status``; an approved
    x-ray plan's source gets a passing output check of the day (factor 1) unless
    ``daily_output_check`` is False (a delivery is refused without one)."""
    web = web_of(app)
    with session_scope(web.engine) as s:
        case = service.get_case(s, case_id)
        plan_json = copy.deepcopy(demo.plan_json)
        plan_json["case_id"] = case.patient.external_id
        plan = service.store_plan(s, user(s, author), case_id, plan_json)
        plan_id = plan.id
    link_tree(demo.folder, web.files.plan_dir(plan_id))
    if status in ("reviewed", "approved"):
        with session_scope(web.engine) as s:
            service.review_plan(s, user(s, "onc"), plan_id)
    if status == "approved":
        with session_scope(web.engine) as s:
            service.approve_plan(s, user(s, "phys2"), plan_id, key=SEAL_KEY)
        serial = (demo.plan_json.get("delivery") or {}).get("device", {}).get("serial")
        if daily_output_check and demo.plan_json.get("technique") == "xray" and serial:
            record_factor_check(app, serial, 1.0)
    return plan_id


def record_factor_check(app: FastAPI, serial: str, factor: float) -> None:
    """A passing output check of the day of source ``serial`` giving ``factor``."""
    from openiort.records.qa import record_xray_output_check

    with session_scope(web_of(app).engine) as s:
        record_xray_output_check(
            s,
            user(s, "phys"),
            source_serial=serial,
            chamber_serial="TEST-CHAMBER",
            reading=10.0 * factor,
            reference_reading=10.0,
            unit="nC",
            pressure_hpa=1013.25,
            temperature_c=20.0,
            tolerance_pct=5.0,
        )


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def api_client(app: FastAPI, username: str | None) -> TestClient:
    """A client logged in through the API (``None``: anonymous) with its CSRF header set."""
    client = TestClient(app, base_url="http://testserver")
    if username is not None:
        r = client.post("/api/session", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def page_csrf(client: TestClient, path: str = "/cases") -> str:
    r = client.get(path)
    assert r.status_code == 200, r.text
    match = CSRF_INPUT.search(r.text)
    assert match, "page without a CSRF token"
    return match.group(1)
