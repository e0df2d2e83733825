"""Every route of the API and of the pages, for every role and for an anonymous client.

Expected: anonymous API requests get 401 and anonymous page requests a redirect to the login
page; a role that records.roles does not allow an action gets 403 (pages and API alike); an
allowed role gets the route's success status. Reading needs only a login. Each case acts on
records of its own (a fresh case and plan), except the downloads, which share one approved
plan so that its PDF and DICOM zip are made once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from web_testkit import (
    PASSWORD,
    DemoPlan,
    api_client,
    build_app,
    seed_case,
    seed_plan,
    web_of,
)

from openiort.records.roles import PERMISSIONS

ROLES = ("anonymous", "phys", "onc", "surg", "view")
ROLE_OF = {"phys": "physicist", "onc": "oncologist", "surg": "surgeon", "view": "viewer"}


@dataclass
class World:
    app: FastAPI
    demo: DemoPlan
    shared_plan: int
    shared_case: int
    clients: dict[str, TestClient] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, demo_plan: DemoPlan) -> Iterator[World]:
    app = build_app(tmp_path_factory.mktemp("authz"), demo_plan)
    with TestClient(app):
        # Roles are tested here, not the four-eyes rule (test_web_flows): the department
        # turns it off so that the plan's author and reviewer may approve too.
        from openiort.records.db import session_scope
        from openiort.records.department import set_setting

        with session_scope(web_of(app).engine) as s:
            set_setting(s, "four-eyes", False, reason="authorisation tests: roles only")
        case_id = seed_case(app, demo_plan.case_data)
        plan_id = seed_plan(app, demo_plan, case_id, "approved")
        w = World(app, demo_plan, plan_id, case_id)
        w.clients = {r: api_client(app, None if r == "anonymous" else r) for r in ROLES}
        yield w


def _fresh_case(w: World) -> int:
    data = copy.deepcopy(w.demo.case_data)
    return seed_case(w.app, data)


Setup = Callable[[World], dict[str, Any]]


def _ids_case(w: World) -> dict[str, Any]:
    return {"case_id": _fresh_case(w)}


def _ids_draft(w: World) -> dict[str, Any]:
    case_id = _fresh_case(w)
    return {"case_id": case_id, "plan_id": seed_plan(w.app, w.demo, case_id, "draft")}


def _ids_reviewed(w: World) -> dict[str, Any]:
    case_id = _fresh_case(w)
    return {"case_id": case_id, "plan_id": seed_plan(w.app, w.demo, case_id, "reviewed")}


def _ids_approved(w: World) -> dict[str, Any]:
    case_id = _fresh_case(w)
    return {"case_id": case_id, "plan_id": seed_plan(w.app, w.demo, case_id, "approved")}


def _console(w: World, ids: dict[str, Any]) -> dict[str, Any]:
    """The demo plan's console settings, as a correct entry."""
    pj = w.demo.plan_json
    return {"applicator": f"{pj['applicator_diameter_cm']:g}", "time_min": pj["treatment_time_min"]}


def _console_form(w: World) -> dict[str, str]:
    return {k: str(v) for k, v in _console(w, {}).items()}


def _ids_shared(w: World) -> dict[str, Any]:
    return {"case_id": w.shared_case, "plan_id": w.shared_plan}


def _ids_job(w: World) -> dict[str, Any]:
    web = web_of(w.app)
    case_id = _fresh_case(w)
    job = web.jobs.submit(case_id, 1, 1, w.demo.case_data)
    return {"case_id": case_id, "job_id": job.id}


def _case_body(w: World, ids: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(w.demo.case_data)
    data["patient"]["id"] = f"AUTHZ-{ids.get('n', 0)}"
    return {"case": data}


def _put_body(w: World, ids: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(w.demo.case_data)
    data["anatomy"]["skin_distance_mm"] = 12
    return {"case": data, "version": 1}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    action: str | None  # records.roles action needed; None: any logged-in user
    ok: int
    setup: Setup = _ids_shared
    json: Callable[[World, dict[str, Any]], Any] | None = None
    form: dict[str, str] | None = None
    anonymous: int | None = None  # status for an anonymous client when not the default
    done: str | None = None  # also right: a redirect here once the (instant) job is done


API_ROUTES = [
    Route("GET", "/api/session", None, 200),
    Route("DELETE", "/api/session", None, 204),
    Route("GET", "/api/cases", None, 200),
    Route("POST", "/api/cases", "case.write", 201, _ids_case, json=_case_body),
    Route("GET", "/api/cases/{case_id}", None, 200, _ids_case),
    Route("PUT", "/api/cases/{case_id}", "case.write", 200, _ids_case, json=_put_body),
    Route("GET", "/api/cases/{case_id}/verdicts", None, 200),
    Route("GET", "/api/cases/{case_id}/plans", None, 200),
    Route("POST", "/api/cases/{case_id}/plans", "plan.write", 202, _ids_case, json=lambda w, i: {}),
    Route("GET", "/api/jobs/{job_id}", None, 200, _ids_job),
    Route("GET", "/api/plans/{plan_id}", None, 200),
    Route(
        "POST",
        "/api/plans/{plan_id}/review",
        "plan.review",
        200,
        _ids_draft,
        json=lambda w, i: {"accept": True},
    ),
    Route(
        "POST",
        "/api/plans/{plan_id}/approve",
        "plan.approve",
        200,
        _ids_reviewed,
        json=lambda w, i: {"password": PASSWORD},
    ),
    Route("GET", "/api/plans/{plan_id}/verify", None, 200),
    Route("GET", "/api/plans/{plan_id}/deliveries", None, 200),
    Route(
        "POST",
        "/api/plans/{plan_id}/deliveries",
        "delivery.record",
        201,
        _ids_approved,
        json=_console,
    ),
    # The day's console values: any logged-in user who can see the plan; nothing is stored.
    Route(
        "POST",
        "/api/plans/{plan_id}/console",
        None,
        200,
        json=lambda w, i: {"output_factor": 1.0},
    ),
    Route("GET", "/api/plans/{plan_id}/report.pdf", None, 200),
    Route("GET", "/api/plans/{plan_id}/dicom.zip", None, 200),
    Route("GET", "/api/plans/{plan_id}/plan.json", None, 200),
    Route("GET", "/api/openapi.json", None, 200, anonymous=200),
    Route(
        "POST",
        "/api/session",
        None,
        200,
        json=lambda w, i: {"username": "view", "password": PASSWORD},
        anonymous=200,
    ),
]

PAGE_ROUTES = [
    Route("GET", "/cases", None, 200),
    Route("GET", "/cases/new", "case.write", 200),
    Route(
        "POST",
        "/cases/new",
        "case.write",
        303,
        form={"patient.id": "PAGE-NEW", "intent.technique": "xray"},
    ),
    Route("GET", "/cases/{case_id}", None, 200, _ids_case),
    Route("GET", "/cases/{case_id}/edit", "case.write", 200, _ids_case),
    Route(
        "POST",
        "/cases/{case_id}/edit",
        "case.write",
        303,
        _ids_case,
        form={"version": "1", "patient.id": "DEMO-001", "intent.technique": "xray"},
    ),
    Route("GET", "/cases/{case_id}/verdicts", None, 200),
    Route("GET", "/cases/{case_id}/summary", None, 200),
    Route("POST", "/cases/{case_id}/plans", "plan.write", 303, _ids_case, form={"version": "1"}),
    Route("GET", "/jobs/{job_id}", None, 200, _ids_job, done="/plans/"),
    Route("GET", "/plans/{plan_id}", None, 200),
    Route("GET", "/plans/{plan_id}/slices/axial/5.png", None, 200),
    Route(
        "POST",
        "/plans/{plan_id}/review",
        "plan.review",
        303,
        _ids_draft,
        form={"decision": "accept"},
    ),
    Route(
        "POST",
        "/plans/{plan_id}/approve",
        "plan.approve",
        303,
        _ids_reviewed,
        form={"password": PASSWORD},
    ),
    Route("POST", "/plans/{plan_id}/deliveries", "delivery.record", 303, _ids_approved, form={}),
    Route("POST", "/plans/{plan_id}/console", None, 200, form={"session_output_factor": "1.0"}),
    Route("GET", "/plans/{plan_id}/report.html", None, 200),
    Route("GET", "/plans/{plan_id}/report.pdf", None, 200),
    Route("GET", "/plans/{plan_id}/dicom.zip", None, 200),
    Route("GET", "/plans/{plan_id}/plan.json", None, 200),
    Route("GET", "/api/docs", None, 200),
    Route("GET", "/settings", None, 200),
    Route("GET", "/cases/{case_id}/ct-import", None, 200, _ids_case),
    # no file / no import / no confirmed mapping: the allowed roles get the page's refusal
    Route("POST", "/cases/{case_id}/ct-import", "case.write", 422, _ids_case, form={}),
    Route("POST", "/cases/{case_id}/ct-import/mapping", "case.write", 409, _ids_case, form={}),
    Route("POST", "/cases/{case_id}/ct-import/plan", "plan.write", 409, _ids_case, form={}),
    Route("POST", "/logout", None, 303),
]


def _expected(route: Route, role: str, api: bool) -> int:
    if role == "anonymous":
        if route.anonymous is not None:
            return route.anonymous
        return 401 if api else 303
    if route.action is not None and ROLE_OF[role] not in PERMISSIONS[route.action]:
        return 403
    return route.ok


def _call(w: World, route: Route, role: str) -> tuple[Any, dict[str, Any]]:
    ids = route.setup(w)
    ids.setdefault("n", id(ids))
    client = w.clients[role]
    if route.method in ("POST", "DELETE") and route.path in ("/api/session", "/logout"):
        # Logging in or out must not spend the shared clients' sessions.
        client = api_client(w.app, None if role == "anonymous" else role)
    path = route.path.format(**ids)
    kwargs: dict[str, Any] = {"follow_redirects": False}
    if route.json is not None:
        kwargs["json"] = route.json(w, ids)
    if route.form is not None:
        form = dict(route.form)
        if route.path.endswith("/deliveries"):
            form.update(_console_form(w))
        form["csrf_token"] = client.headers.get("X-CSRF-Token", "")
        kwargs["data"] = form
    return client.request(route.method, path, **kwargs), ids


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", API_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_api_route_authorisation(world: World, route: Route, role: str) -> None:
    response, _ = _call(world, route, role)
    expected = _expected(route, role, api=True)
    assert response.status_code == expected, response.text[:300]
    if expected in (401, 403):
        assert "detail" in response.json()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", PAGE_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_page_route_authorisation(world: World, route: Route, role: str) -> None:
    response, _ = _call(world, route, role)
    expected = _expected(route, role, api=False)
    if route.done and role != "anonymous" and response.status_code == 303:
        assert response.headers["location"].startswith(route.done)
        return
    assert response.status_code == expected, response.text[:300]
    if role == "anonymous":
        assert response.headers["location"].startswith("/login")
    if expected == 403:
        assert "Not allowed" in response.text
    if route.path.endswith("/approve") and expected == 303 and role != "anonymous":
        assert response.headers["location"].endswith("msg=approved")


def test_every_route_is_covered(world: World) -> None:
    """A route added to the app without an authorisation case here fails this test."""
    covered = {(r.method, r.path) for r in API_ROUTES + PAGE_ROUTES}
    covered |= {("GET", "/"), ("GET", "/login"), ("POST", "/login")}  # public by design
    for route in world.app.routes:
        if not isinstance(route, APIRoute):
            continue
        for method in route.methods - {"HEAD", "OPTIONS"}:
            path = route.path.replace("{axis}/{index}.png", "axial/5.png")
            assert (method, path) in covered, f"{method} {route.path} has no authorisation test"


def test_viewer_cannot_approve_even_with_password(world: World) -> None:
    ids = _ids_reviewed(world)
    r = world.clients["view"].post(
        f"/api/plans/{ids['plan_id']}/approve", json={"password": PASSWORD}
    )
    assert r.status_code == 403
    r = world.clients["phys"].get(f"/api/plans/{ids['plan_id']}")
    assert r.json()["status"] == "reviewed"


def test_disabled_user_loses_access(world: World, tmp_path: Path) -> None:
    from openiort.records.db import session_scope
    from openiort.records.users import set_active

    client = api_client(world.app, "surg")
    assert client.get("/api/cases").status_code == 200
    with session_scope(web_of(world.app).engine) as s:
        set_active(s, "surg", False)
    try:
        assert client.get("/api/cases").status_code == 401
    finally:
        with session_scope(web_of(world.app).engine) as s:
            set_active(s, "surg", True)
        world.clients["surg"] = api_client(world.app, "surg")
