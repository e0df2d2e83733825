"""The web app's behaviour through its HTTP interface: login and sessions, CSRF, case entry
with validation beside the fields, concurrent edits, planning jobs, review and approval,
tampering, downloads, error pages and logs."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import io
import json
import logging
import re
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pydicom
import pypdf
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text
from starlette.requests import Request
from web_testkit import (
    PASSWORD,
    DemoPlan,
    api_client,
    build_app,
    page_csrf,
    seed_case,
    seed_plan,
    stand_in_planner,
    user,
    web_of,
)

from openiort.records import audit
from openiort.records.db import session_scope
from openiort.records.models import Plan
from openiort.records.patients import update_patient
from openiort.records.seal import canonical_json
from openiort.records.service import verify_plan_json
from openiort.records.users import set_password
from openiort.report.pdf import TreatmentChart, print_html
from openiort.web import downloads
from openiort.web.caseform import case_data_to_form
from openiort.web.operations import edit_case
from openiort.web.worker import WorkerOutcome

PATIENT_NAME = "Jane Testpatient"
BIRTH = dt.date(1963, 4, 2)


def login_form(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    token = page_csrf(client, "/login")
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": "/cases"},
        follow_redirects=False,
    )


def wait_for_job(client: TestClient, job_url: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = client.get(job_url, follow_redirects=False)
        if r.status_code == 303 or 'data-state="failed"' in r.text:
            return r
        time.sleep(0.2)
    raise AssertionError("planning job did not finish")


# ------------------------------------------------------------------------ login, sessions


def test_login_logout_and_redirect_to_login(app: FastAPI) -> None:
    client = TestClient(app)
    r = client.get("/cases/1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/cases/1"
    r = login_form(client, "phys")
    assert r.status_code == 303 and r.headers["location"] == "/cases"
    assert client.get("/cases").status_code == 200
    token = page_csrf(client)
    r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/cases", follow_redirects=False).status_code == 303


def test_session_cookie_attributes_http_and_https(app: FastAPI) -> None:
    r = login_form(TestClient(app), "view")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("openiort_session=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # served over plain http (127.0.0.1)
    secure = TestClient(app, base_url="https://testserver")
    r = login_form(secure, "view")
    cookie = r.headers["set-cookie"]
    # RFC 6265bis __Host- prefix: Secure, Path=/, no Domain.
    assert cookie.startswith("__Host-openiort_session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Domain" not in cookie
    assert secure.get("/cases").headers["strict-transport-security"]


def test_wrong_password_and_rate_limit(app: FastAPI) -> None:
    client = TestClient(app)
    r = login_form(client, "phys", "wrong password!")
    assert r.status_code == 401 and "Unknown user or wrong password" in r.text
    for _ in range(4):  # 5 failures per window allowed (WebConfig.login_max_failures)
        login_form(client, "phys", "wrong password!")
    r = login_form(client, "phys")  # even the right password is refused now
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    r = client.post("/api/session", json={"username": "phys", "password": PASSWORD})
    assert r.status_code == 429
    # Another user from another address is not locked out by these failures.
    other = TestClient(app, client=("10.0.0.9", 5000))
    assert login_form(other, "onc").status_code == 303


def test_forged_expired_and_revoked_sessions_are_refused(app: FastAPI) -> None:
    client = api_client(app, "phys")
    cookie = client.cookies["openiort_session"]
    forged = TestClient(app)
    forged.cookies.set("openiort_session", cookie[:-3] + ("AAA" if cookie[-3:] != "AAA" else "BBB"))
    assert forged.get("/api/session").status_code == 401
    replay = TestClient(app)
    replay.cookies.set("openiort_session", cookie)
    assert replay.get("/api/session").status_code == 200
    assert client.delete("/api/session").status_code == 204
    assert replay.get("/api/session").status_code == 401  # logged out: the old cookie is dead
    sessions = web_of(app).sessions
    other = api_client(app, "view")
    data = sessions.load(_request_with_cookie(other.cookies["openiort_session"]))
    assert data is not None
    later = data.seen_at + sessions.idle_s + 1
    assert sessions.load(_request_with_cookie(other.cookies["openiort_session"]), now=later) is None


def _request_with_cookie(value: str) -> Any:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "scheme": "http",
        "server": ("testserver", 80),
        "headers": [(b"cookie", f"openiort_session={value}".encode())],
        "query_string": b"",
    }
    return Request(scope)


def test_password_change_ends_older_sessions(app: FastAPI) -> None:
    client = api_client(app, "onc")
    time.sleep(1.1)  # password_changed_at must be later than the login (1 s resolution)
    with session_scope(web_of(app).engine) as s:
        set_password(s, "onc", "another good password")
    assert client.get("/api/session").status_code == 401


# ------------------------------------------------------------------------ CSRF and origin


def test_csrf_token_and_origin_are_required(app: FastAPI, demo_plan: DemoPlan) -> None:
    client = api_client(app, "phys")
    token = client.headers.pop("X-CSRF-Token")
    body = {"case": demo_plan.case_data}
    assert client.post("/api/cases", json=body).status_code == 403
    assert (
        client.post("/api/cases", json=body, headers={"X-CSRF-Token": "x" * 43}).status_code == 403
    )
    r = client.post(
        "/api/cases",
        json=body,
        headers={"X-CSRF-Token": token, "Origin": "https://evil.example"},
    )
    assert r.status_code == 403 and "another site" in r.json()["detail"]
    assert client.post("/api/cases", json=body, headers={"X-CSRF-Token": token}).status_code == 201
    # Page forms: the hidden field, checked the same way.
    form = case_data_to_form(demo_plan.case_data)
    r = client.post("/cases/new", data=form, follow_redirects=False)
    assert r.status_code == 403
    form["csrf_token"] = page_csrf(client, "/cases/new")
    assert client.post("/cases/new", data=form, follow_redirects=False).status_code == 303


def test_security_headers_and_no_external_assets(app: FastAPI) -> None:
    client = api_client(app, "view")
    r = client.get("/cases")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    for url in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        assert url.startswith("/"), f"page refers to {url}"
    static = Path(__file__).resolve().parents[2] / "src" / "openiort" / "web"
    for path in [*static.glob("static/*"), *static.glob("templates/*.html")]:
        content = path.read_text("utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", content), path
        assert "@import" not in content and "url(http" not in content, path


# ------------------------------------------------------------------------ case entry


def test_case_form_shows_messages_beside_the_fields(app: FastAPI, demo_plan: DemoPlan) -> None:
    client = api_client(app, "surg")
    form = case_data_to_form(demo_plan.case_data)
    form.update(
        {
            "csrf_token": page_csrf(client, "/cases/new"),
            "anatomy.cavity_diameter_mm": "500",  # model: 10-80 mm
            "patient.age_years": "sixty",  # not a number
            "intent.technique": "",  # required
        }
    )
    r = client.post("/cases/new", data=form)
    assert r.status_code == 422
    errors = dict(re.findall(r'data-field="([^"]+)">([^<]+)<', r.text))
    assert set(errors) == {"anatomy.cavity_diameter_mm", "patient.age_years", "intent.technique"}
    assert "less than or equal to 80" in errors["anatomy.cavity_diameter_mm"]
    assert "not a whole number" in errors["patient.age_years"]
    assert "required" in errors["intent.technique"]
    # The user's entries are kept.
    assert 'value="500"' in r.text
    assert client.get("/api/cases").json() == []


def test_case_entry_registers_patient_and_shows_verdicts(app: FastAPI, demo_plan: DemoPlan) -> None:
    client = api_client(app, "surg")
    form = case_data_to_form(demo_plan.case_data)
    form.update(
        {
            "csrf_token": page_csrf(client, "/cases/new"),
            "patient_name": PATIENT_NAME,
            "patient_birth_date": "1963-04-02",
        }
    )
    r = client.post("/cases/new", data=form, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert "Case saved." in page.text and PATIENT_NAME in page.text
    verdicts = dict(re.findall(r'data-guideline="([^"]+)">([^<]+)<', page.text))
    section = client.get(f"/api/cases/{_case_id(r)}/verdicts").json()
    assert verdicts == {v["guideline"]: v["group"] for v in section["verdicts"]}
    assert verdicts["ASTRO-2017"] == "suitable"  # demo case: 62 y, 14 mm ER+ pN0 IDC, 5 mm margin
    full = client.get(f"/cases/{_case_id(r)}/verdicts")
    assert "Guideline verdicts" in full.text and "astro17-suit-age" in full.text
    summary = client.get(f"/cases/{_case_id(r)}/summary")
    assert summary.status_code == 200 and "<html" in summary.text


def test_implausible_values_need_the_confirmation_box(app: FastAPI, demo_plan: DemoPlan) -> None:
    client = api_client(app, "surg")
    form = case_data_to_form(demo_plan.case_data)
    form.update(
        {
            "csrf_token": page_csrf(client, "/cases/new"),
            "anatomy.skin_distance_mm": "0.8",  # 0.8 cm typed as mm
            "anatomy.chest_wall_distance_mm": "0",  # excised to the fascia: not asked about
        }
    )
    r = client.post("/cases/new", data=form)
    assert r.status_code == 422
    assert 'data-testid="confirm-implausible"' in r.text and "I confirm these values" in r.text
    errors = dict(re.findall(r'data-field="([^"]+)">([^<]+)<', r.text))
    assert set(errors) == {"anatomy.skin_distance_mm"}
    assert "under 1 mm" in errors["anatomy.skin_distance_mm"]
    assert 'value="0.8"' in r.text  # the entry is kept
    assert client.get("/api/cases").json() == []
    token = re.search(r'name="confirm_implausible" value="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
    # A confirmation given for one value does not cover another typed afterwards.
    form.update({"confirm_implausible": token, "anatomy.skin_distance_mm": "0.5"})
    r = client.post("/cases/new", data=form)
    assert r.status_code == 422 and "value 0.5 mm is under 1 mm" in r.text
    form["anatomy.skin_distance_mm"] = "0.8"
    r = client.post("/cases/new", data=form, follow_redirects=False)
    assert r.status_code == 303
    case_id = _case_id(r)
    stored = client.get(f"/api/cases/{case_id}").json()["case"]["anatomy"]
    assert (stored["skin_distance_mm"], stored["chest_wall_distance_mm"]) == (0.8, 0)
    # Editing asks again: the box is never ticked in advance.
    edit = client.get(f"/cases/{case_id}/edit").text
    assert "I confirm these values" not in edit
    form = case_data_to_form(client.get(f"/api/cases/{case_id}").json()["case"])
    form.update({"csrf_token": page_csrf(client, f"/cases/{case_id}/edit"), "version": "1"})
    r = client.post(f"/cases/{case_id}/edit", data=form)
    assert r.status_code == 422 and "I confirm these values" in r.text
    form["confirm_implausible"] = token
    r = client.post(f"/cases/{case_id}/edit", data=form, follow_redirects=False)
    assert r.status_code == 303


def _case_id(redirect: Any) -> int:
    return int(redirect.headers["location"].split("/")[2].split("?")[0])


def test_concurrent_edits_conflict_instead_of_loss(app: FastAPI, demo_plan: DemoPlan) -> None:
    case_id = seed_case(app, demo_plan.case_data)
    alice, bob = api_client(app, "phys"), api_client(app, "onc")
    form_a = case_data_to_form(demo_plan.case_data)
    form_b = dict(form_a)
    form_a.update({"csrf_token": page_csrf(alice, f"/cases/{case_id}/edit"), "version": "1"})
    form_b.update({"csrf_token": page_csrf(bob, f"/cases/{case_id}/edit"), "version": "1"})
    form_a["anatomy.skin_distance_mm"] = "12"
    form_b["anatomy.chest_wall_distance_mm"] = "18"
    r = alice.post(f"/cases/{case_id}/edit", data=form_a, follow_redirects=False)
    assert r.status_code == 303
    r = bob.post(f"/cases/{case_id}/edit", data=form_b, follow_redirects=False)
    assert r.status_code == 409
    assert "someone else changed this case" in r.text and "phys" in r.text
    assert 'value="18"' in r.text  # Bob's entry kept on screen
    assert "stored now: <b>12</b>" in r.text  # and the field Alice changed is shown
    stored = alice.get(f"/api/cases/{case_id}").json()
    assert stored["version"] == 2
    assert stored["case"]["anatomy"]["skin_distance_mm"] == 12
    assert stored["case"]["anatomy"]["chest_wall_distance_mm"] == 15  # Bob's edit not written
    # Bob re-saves from the version he was shown (now 2): both edits survive.
    form_b["version"] = re.search(r'name="version" value="(\d+)"', r.text).group(1)  # type: ignore[union-attr]
    form_b["anatomy.skin_distance_mm"] = "12"
    assert (
        bob.post(f"/cases/{case_id}/edit", data=form_b, follow_redirects=False).status_code == 303
    )
    final = alice.get(f"/api/cases/{case_id}").json()["case"]["anatomy"]
    assert (final["skin_distance_mm"], final["chest_wall_distance_mm"]) == (12, 18)
    # The API answers a stale version with 409 and the current version.
    data = copy.deepcopy(demo_plan.case_data)
    r = alice.put(f"/api/cases/{case_id}", json={"case": data, "version": 1})
    assert r.status_code == 409 and r.json()["current_version"] == 3


# ------------------------------------------------------------------------ planning


def test_plan_job_through_pages(app: FastAPI, demo_plan: DemoPlan) -> None:
    case_id = seed_case(app, demo_plan.case_data)
    client = api_client(app, "phys")
    token = page_csrf(client, f"/cases/{case_id}")
    r = client.post(
        f"/cases/{case_id}/plans",
        data={"csrf_token": token, "version": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/jobs/")
    r = wait_for_job(client, r.headers["location"])
    assert r.status_code == 303
    plan_page = client.get(r.headers["location"])
    assert plan_page.status_code == 200
    assert 'data-testid="plan-status">draft' in plan_page.text
    assert "not for treatment" in plan_page.text
    # Slice images: PNGs of the viewer grid at 3 px per mm (pages.SLICE_SCALE).
    plan_id = int(r.headers["location"].rsplit("/", 1)[1])
    meta = json.loads((web_of(app).files.plan_dir(plan_id) / "viewer" / "meta.json").read_text())
    nz, ny, nx = meta["grid"]["shape_zyx"]
    png = client.get(f"/plans/{plan_id}/slices/axial/{nz // 2}.png")
    image = Image.open(io.BytesIO(png.content))
    assert image.size == (3 * nx, 3 * ny)
    assert client.get(f"/plans/{plan_id}/slices/axial/{nz}.png").status_code == 404
    assert client.get(f"/plans/{plan_id}/slices/oblique/1.png").status_code == 404


def test_plan_refused_when_case_changed_while_planning(tmp_path: Path, demo_plan: DemoPlan) -> None:
    inner = stand_in_planner(demo_plan)
    app_box: dict[str, FastAPI] = {}

    def slow_planner(case_data: dict[str, Any], out_dir: str) -> WorkerOutcome:
        # Someone saves the case while the plan is being computed.
        a = app_box["app"]
        with session_scope(web_of(a).engine) as s:
            data = copy.deepcopy(case_data)
            data["anatomy"]["skin_distance_mm"] = 11
            edit_case(s, user(s, "onc"), 1, 1, data)
        return inner(case_data, out_dir)

    app = build_app(tmp_path / "w", planner=slow_planner)
    app_box["app"] = app
    with TestClient(app):
        seed_case(app, demo_plan.case_data)
        client = api_client(app, "phys")
        job = client.post("/api/cases/1/plans", json={"version": 1}).json()
        deadline = time.monotonic() + 30
        while (state := client.get(f"/api/jobs/{job['job_id']}").json())["state"] in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert state["state"] == "failed"
        assert "changed while the plan was computed" in state["message"]
        assert client.get("/api/cases/1/plans").json() == []
        assert not list(web_of(app).files.root.glob("[0-9]*"))


def test_planning_errors_are_reported_without_details(tmp_path: Path, demo_plan: DemoPlan) -> None:
    def failing(case_data: dict[str, Any], out_dir: str) -> WorkerOutcome:
        return WorkerOutcome("error", error_type="ZeroDivisionError", where="x.py:1 in f")

    app = build_app(tmp_path / "w", planner=failing)
    with TestClient(app):
        seed_case(app, demo_plan.case_data)
        client = api_client(app, "phys")
        job = client.post("/api/cases/1/plans", json={}).json()
        for _ in range(100):
            state = client.get(f"/api/jobs/{job['job_id']}").json()
            if state["state"] == "failed":
                break
            time.sleep(0.05)
        assert state["state"] == "failed"
        assert re.fullmatch(
            r"Planning failed on the server \(reference [0-9a-f]{8}\)\.", state["message"]
        )


def test_queue_full_is_refused_with_retry_after(tmp_path: Path, demo_plan: DemoPlan) -> None:
    release = threading.Event()

    def blocked(case_data: dict[str, Any], out_dir: str) -> WorkerOutcome:
        release.wait(30)
        return WorkerOutcome("case", problems=["stopped by the test"])

    app = build_app(tmp_path / "w", planner=blocked, max_pending_plans=2)
    with TestClient(app):
        seed_case(app, demo_plan.case_data)
        client = api_client(app, "phys")
        assert client.post("/api/cases/1/plans", json={}).status_code == 202
        second = client.post("/api/cases/1/plans", json={})
        assert second.status_code == 202 and second.json()["queue_position"] == 1
        r = client.post("/api/cases/1/plans", json={})
        assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
        release.set()


# ------------------------------------------------------------------------ lifecycle


def _pdf_first_page(client: TestClient, plan_id: int) -> str:
    r = client.get(f"/plans/{plan_id}/report.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(r.content))
    assert len(reader.pages) >= 5
    return reader.pages[0].extract_text()


def _utc_minute(iso: str) -> str:
    return dt.datetime.fromisoformat(iso).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def test_review_approve_seal_and_pdf(
    app: FastAPI, demo_plan: DemoPlan, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    case_id = seed_case(app, demo_plan.case_data, patient_name=PATIENT_NAME, birth_date=BIRTH)
    # Computed by phys2, reviewed by onc, approved by phys: three people (four-eyes default).
    plan_id = seed_plan(app, demo_plan, case_id, "draft", author="phys2")
    onc, phys = api_client(app, "onc"), api_client(app, "phys")
    # The draft's PDF: the chart names the patient and says the plan is neither reviewed
    # nor approved.
    first = _pdf_first_page(phys, plan_id)
    assert "IORT treatment chart" in first and "Treatment record: draft" in first
    assert "DRAFT · not reviewed · not approved" in first
    assert "not reviewed" in first and "not approved: not for treatment" in first
    assert "do not sign for treatment" in first
    assert PATIENT_NAME in first and BIRTH.isoformat() in first
    token = page_csrf(onc, f"/plans/{plan_id}")
    r = onc.post(
        f"/plans/{plan_id}/review",
        data={"csrf_token": token, "decision": "accept", "comment": "checked"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    token = page_csrf(phys, f"/plans/{plan_id}")
    r = phys.post(
        f"/plans/{plan_id}/approve",
        data={"csrf_token": token, "password": "not my password"},
        follow_redirects=False,
    )
    assert r.headers["location"].endswith("msg=wrong-password")
    assert phys.get(f"/api/plans/{plan_id}").json()["status"] == "reviewed"
    r = phys.post(
        f"/plans/{plan_id}/approve",
        data={"csrf_token": token, "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.headers["location"].endswith("msg=approved")
    page = phys.get(f"/plans/{plan_id}").text
    assert "Approved and sealed" in page and "Seal verified" in page
    info = phys.get(f"/api/plans/{plan_id}").json()
    assert info["status"] == "approved" and info["approved_by"] == "phys"
    assert info["plan"]["seal"]["canonical_sha256"] == info["canonical_sha256"]
    # The approved plan's PDF: a chart with the patient (from the record), the device and its
    # serial (from the sealed plan), the version, who reviewed and approved it and when, and
    # lines for the physicist's and the oncologist's signatures.
    first = _pdf_first_page(phys, plan_id)
    assert "Treatment record: approved" in first and "APPROVED" in first
    assert "IORT plan report: DEMO-001" in first and "status approved" in first
    assert info["canonical_sha256"] in first.replace("\n", "")
    assert f"Name {PATIENT_NAME}" in first
    assert f"Date of birth {BIRTH.isoformat()}" in first and "Patient id DEMO-001" in first
    assert "serial TEST-XRS-0001" in first and "department data" in first
    assert f"Version {info['version_number']}" in first
    assert "Example data" not in first and "not approved" not in first
    review = info["reviews"][-1]
    assert f"reviewed onc oncologist {_utc_minute(review['at'])} checked" in first
    assert f"approved and sealed phys physicist {_utc_minute(info['approved_at'])}" in first
    assert "By signing" in first and "name date signature" in first
    assert "Medical physicist" in first and "Radiation oncologist" in first
    # One PDF of the plan is kept: the draft's, which also names the patient, is gone.
    cache = web_of(app).files.plan_dir(plan_id) / "cache"
    assert len(list(cache.glob("report-*.pdf"))) == 1
    # The patient's name and birth date go into the PDF, never into a log.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert PATIENT_NAME not in logged and BIRTH.isoformat() not in logged
    # A second approval is a lifecycle error, not a new seal.
    r = phys.post(f"/api/plans/{plan_id}/approve", json={"password": PASSWORD})
    assert r.status_code == 409


def test_cached_pdf_follows_the_record(
    app: FastAPI, demo_plan: DemoPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An approved plan's PDF is made once, and again when its chart changes (a corrected
    name, a delivery): the cached PDF always has the chart of the record as it is."""
    printed: list[str] = []

    def fake_print(report_html: str, chart: TreatmentChart | None = None) -> bytes:
        printed.append(chart.status if chart else "")
        return print_html(report_html, chart).encode("utf-8")

    monkeypatch.setattr(downloads, "html_report_to_pdf", fake_print)
    case_id = seed_case(app, demo_plan.case_data, patient_name="Jane Misspelt", birth_date=BIRTH)
    plan_id = seed_plan(app, demo_plan, case_id, "approved")
    client = api_client(app, "view")
    first = client.get(f"/plans/{plan_id}/report.pdf").content
    assert b"Jane Misspelt" in first and b"serial" in first and b"TEST-XRS-0001" in first
    assert client.get(f"/plans/{plan_id}/report.pdf").content == first
    assert printed == ["approved"]  # the second download came from the cache
    with session_scope(web_of(app).engine) as s:
        patient_id = s.get(Plan, plan_id).case.patient_id  # type: ignore[union-attr]
        update_patient(s, user(s, "phys"), patient_id, name=PATIENT_NAME)
    second = client.get(f"/plans/{plan_id}/report.pdf").content
    assert PATIENT_NAME.encode() in second and b"Jane Misspelt" not in second
    assert printed == ["approved", "approved"]
    cache = web_of(app).files.plan_dir(plan_id) / "cache"
    assert [p.read_bytes() for p in cache.glob("report-*.pdf")] == [second]
    assert "Misspelt" not in " ".join(p.name for p in cache.iterdir())


def test_four_eyes_rule(tmp_path: Path, demo_plan: DemoPlan) -> None:
    app = build_app(tmp_path / "w", demo_plan, require_second_person=True)
    with TestClient(app):
        case_id = seed_case(app, demo_plan.case_data)
        plan_id = seed_plan(app, demo_plan, case_id, "reviewed", author="phys")
        r = api_client(app, "phys").post(
            f"/api/plans/{plan_id}/approve", json={"password": PASSWORD}
        )
        assert r.status_code == 403
        r = api_client(app, "phys2").post(
            f"/api/plans/{plan_id}/approve", json={"password": PASSWORD}
        )
        assert r.status_code == 200


def test_tampered_plan_is_refused_and_audited(app: FastAPI, demo_plan: DemoPlan) -> None:
    case_id = seed_case(app, demo_plan.case_data)
    plan_id = seed_plan(app, demo_plan, case_id, "approved")
    client = api_client(app, "phys")
    assert client.get(f"/api/plans/{plan_id}/verify").json()["seal_ok"] is True
    # Edit the plan and its stored hash together, as someone with database access could.
    engine = web_of(app).engine
    with engine.begin() as conn:
        raw = conn.execute(
            text("SELECT plan_json FROM plans WHERE id = :i"), {"i": plan_id}
        ).scalar_one()
        data = json.loads(raw) if isinstance(raw, str) else raw
        data["treatment_time_min"] = data["treatment_time_min"] * 1.5
        new_hash = hashlib.sha256(canonical_json(data)).hexdigest()
        conn.execute(
            text("UPDATE plans SET plan_json = :j, canonical_sha256 = :h WHERE id = :i"),
            {"j": json.dumps(data), "h": new_hash, "i": plan_id},
        )
    r = client.get(f"/plans/{plan_id}")
    assert r.status_code == 409 and 'data-testid="tampered"' in r.text
    assert "must not be used or delivered" in r.text
    assert client.get(f"/api/plans/{plan_id}/verify").status_code == 409
    assert client.get(f"/plans/{plan_id}/report.pdf").status_code == 409
    assert client.get(f"/plans/{plan_id}/dicom.zip").status_code == 409
    with session_scope(engine) as s:
        events = [e.action for e in audit.entries(s, "plan", plan_id)]
    assert "tamper_detected" in events


def test_swapped_plan_files_are_refused(app: FastAPI, demo_plan: DemoPlan) -> None:
    case_id = seed_case(app, demo_plan.case_data)
    plan_id = seed_plan(app, demo_plan, case_id, "approved")
    report = web_of(app).files.plan_dir(plan_id) / "report.html"
    content = report.read_text("utf-8").replace("20.15 min", "10.15 min")
    report.unlink()  # a hard link to the shared demo file: replace, never write in place
    report.write_text(content, "utf-8")
    r = api_client(app, "view").get(f"/plans/{plan_id}/report.pdf")
    assert r.status_code == 409 and "does not match the SHA-256" in r.text


# ------------------------------------------------------------------------ downloads


def test_downloads_json_and_dicom(app: FastAPI, demo_plan: DemoPlan) -> None:
    case_id = seed_case(app, demo_plan.case_data)
    plan_id = seed_plan(app, demo_plan, case_id, "approved")
    client = api_client(app, "view")
    r = client.get(f"/plans/{plan_id}/plan.json")
    assert "attachment" in r.headers["content-disposition"]
    data = r.json()
    assert data["status"] == "approved" and data["seal"]["plan_id"] == plan_id
    verify_plan_json(data, key=b"web-tests-seal-key-not-for-production-000000")
    r = client.get(f"/plans/{plan_id}/dicom.zip?anonymise=true")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = zf.namelist()
        rtplan = pydicom.dcmread(io.BytesIO(zf.read("dicom/RP.dcm")))
        ct = pydicom.dcmread(io.BytesIO(zf.read(next(n for n in names if "CT_" in n))))
    assert {"dicom/RS.dcm", "dicom/RD.dcm", "dicom/RP.dcm", "plan.json"} <= set(names)
    assert rtplan.ApprovalStatus == "APPROVED"
    assert rtplan.PatientID != "DEMO-001" and ct.PatientID == rtplan.PatientID  # de-identified


# ------------------------------------------------------------------------ errors and logs


def test_unexpected_error_page_has_no_trace_and_log_no_patient_data(
    app: FastAPI,
    demo_plan: DemoPlan,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    case_id = seed_case(app, demo_plan.case_data)
    client = api_client(app, "phys")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("patient DEMO-001 Jane Testpatient broke it")

    monkeypatch.setattr("openiort.web.operations.build_clinical_section", broken)
    caplog.set_level(logging.DEBUG)
    for path in (f"/cases/{case_id}", f"/api/cases/{case_id}/verdicts"):
        r = client.get(path)
        assert r.status_code == 500
        assert (
            "Traceback" not in r.text and "DEMO-001" not in r.text and "RuntimeError" not in r.text
        )
        assert re.search(r"reference [0-9a-f]{8}", r.text)
    logged = "\n".join(
        rec.getMessage() for rec in caplog.records if rec.name.startswith("openiort")
    )
    assert "RuntimeError" in logged and "DEMO-001" not in logged and "Jane" not in logged


def test_logs_hold_no_patient_data_through_a_whole_flow(
    app: FastAPI, demo_plan: DemoPlan, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = api_client(app, "phys")
    form = case_data_to_form(demo_plan.case_data)
    form.update({"csrf_token": page_csrf(client, "/cases/new"), "patient_name": PATIENT_NAME})
    r = client.post("/cases/new", data=form, follow_redirects=False)
    case_id = _case_id(r)
    client.get(f"/cases/{case_id}")
    job = client.post(f"/api/cases/{case_id}/plans", json={}).json()
    for _ in range(200):
        state = client.get(f"/api/jobs/{job['job_id']}").json()
        if state["state"] in ("done", "failed"):
            break
        time.sleep(0.05)
    plan_id = state["plan_id"]
    client.post(f"/api/plans/{plan_id}/review", json={})
    client.post(f"/api/plans/{plan_id}/approve", json={"password": PASSWORD})
    client.get(f"/plans/{plan_id}")
    client.get(f"/plans/{plan_id}/plan.json")
    server_records = [r for r in caplog.records if not r.name.startswith("httpx")]
    assert any(r.name == "openiort.web.access" for r in server_records)
    text_logged = "\n".join(r.getMessage() for r in server_records)
    for secret in ("DEMO-001", PATIENT_NAME, "Jane"):
        assert secret not in text_logged


# ------------------------------------------------------------------------ delivery


def test_delivery_checked_interrupted_and_completed(app: FastAPI, demo_plan: DemoPlan) -> None:
    case_id = seed_case(app, demo_plan.case_data)
    plan_id = seed_plan(app, demo_plan, case_id, "approved")
    phys = api_client(app, "phys")
    # The sealed delivery holds the exact time (plan.json's top-level copy is rounded to 0.001 min).
    planned_min = demo_plan.plan_json["delivery"]["treatment_time_min"]
    diameter = f"{demo_plan.plan_json['applicator_diameter_cm']:g}"
    token = page_csrf(phys, f"/plans/{plan_id}")
    # Wrong applicator and a time 1 min off: refused, each setting named, nothing recorded.
    r = phys.post(
        f"/plans/{plan_id}/deliveries",
        data={"csrf_token": token, "applicator": "4.5", "time_min": f"{planned_min + 1:.4f}"},
    )
    assert r.status_code == 422 and 'data-testid="delivery-errors"' in r.text
    errors = re.findall(r"<li>([^<]+)</li>", r.text.split('data-testid="delivery-errors"')[1])
    assert any(e.startswith("applicator") for e in errors)
    assert any(e.startswith("treatment time") for e in errors)
    assert phys.get(f"/api/plans/{plan_id}/deliveries").json() == []
    # Interrupted after 5 min: recorded, the remainder is what is left of the time.
    r = phys.post(
        f"/api/plans/{plan_id}/deliveries",
        json={
            "applicator": diameter,
            "time_min": planned_min,
            "interrupted": True,
            "given_time_min": 5.0,
        },
    )
    assert r.status_code == 201, r.text
    first = r.json()
    # Remaining time = planned - given (records.delivery), to the rounding of the JSON.
    assert first["remaining_time_s"] == pytest.approx(planned_min * 60 - 300, abs=1e-6)
    assert first["delivered_fraction"] == pytest.approx(5.0 / planned_min, rel=1e-9)
    page = phys.get(f"/plans/{plan_id}").text
    assert "interrupted" in page and f"{(planned_min - 5):.2f} min" in page
    # The remainder, entered at the console through the page form, completes the plan.
    r = phys.post(
        f"/plans/{plan_id}/deliveries",
        data={
            "csrf_token": token,
            "applicator": diameter,
            "time_min": f"{planned_min - 5:.6f}",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("msg=delivered")
    info = phys.get(f"/api/plans/{plan_id}").json()
    assert info["status"] == "delivered"
    deliveries = phys.get(f"/api/plans/{plan_id}/deliveries").json()
    assert [d["sequence"] for d in deliveries] == [1, 2]
    assert deliveries[-1]["cumulative_fraction"] == pytest.approx(1.0, abs=1e-9)
    assert "Delivered in full" in phys.get(f"/plans/{plan_id}").text


def test_example_data_plan_cannot_be_approved_on_any_route(
    app: FastAPI, demo_plan: DemoPlan
) -> None:
    """A plan computed with example device data is refused at approval by the API and by the
    page, with why and what to load; it stays reviewed."""
    plan_json = copy.deepcopy(demo_plan.plan_json)
    plan_json["delivery"]["device"].update(status="example", name="TG-292 example XRS")
    example = dataclasses.replace(demo_plan, plan_json=plan_json)
    case_id = seed_case(app, demo_plan.case_data)
    plan_id = seed_plan(app, example, case_id, "reviewed")
    phys = api_client(app, "phys")
    r = phys.post(f"/api/plans/{plan_id}/approve", json={"password": PASSWORD})
    assert r.status_code == 409
    assert "example device data" in r.text and "commissioning data" in r.text
    token = page_csrf(phys, f"/plans/{plan_id}")
    page = phys.post(f"/plans/{plan_id}/approve", data={"csrf_token": token, "password": PASSWORD})
    assert page.status_code == 409 and "example device data" in page.text
    assert phys.get(f"/api/plans/{plan_id}").json()["status"] == "reviewed"
