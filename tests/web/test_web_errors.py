"""Errors users can act on (issue 17, items 6-8): each HTTP 500 the attack campaign found is now
a 4xx or 503 with a message; the body limit, the Host allowlist and the NUL refusal act before
the login check."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from web_testkit import (
    DemoPlan,
    api_client,
    build_app,
    page_csrf,
    seed_case,
    seed_plan,
    web_of,
)

from openiort.web.commands import allowed_hosts

OVERRIDE = "test: source output confirmed on the backup chamber"


def _delivery(demo: DemoPlan, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "applicator": f"{demo.plan_json['applicator_diameter_cm']:g}",
        "time_min": demo.plan_json["delivery"]["treatment_time_min"],
        "output_check_override": OVERRIDE,
    }
    body.update(over)
    return body


@pytest.mark.parametrize("time_min", ["20,15", "20.1x", "nan", "inf", "1e400"])
def test_bad_console_times_are_422_on_the_page_and_the_api(
    app: FastAPI, demo_plan: DemoPlan, time_min: str
) -> None:
    plan_id = seed_plan(app, demo_plan, seed_case(app, demo_plan.case_data), "approved")
    phys = api_client(app, "phys")
    token = page_csrf(phys, f"/plans/{plan_id}")
    page = phys.post(
        f"/plans/{plan_id}/deliveries",
        data={"csrf_token": token, "applicator": "3", "time_min": time_min},
    )
    assert page.status_code == 422 and "time min" in page.text
    api = phys.post(
        f"/api/plans/{plan_id}/deliveries", json=_delivery(demo_plan, time_min=time_min)
    )
    assert api.status_code == 422 and "time_min" in api.text


@pytest.mark.parametrize("digits", [20, 5000])
def test_huge_output_check_ids_are_422(app: FastAPI, demo_plan: DemoPlan, digits: int) -> None:
    plan_id = seed_plan(app, demo_plan, seed_case(app, demo_plan.case_data), "approved")
    phys = api_client(app, "phys")
    token = page_csrf(phys, f"/plans/{plan_id}")
    page = phys.post(
        f"/plans/{plan_id}/deliveries",
        data={"csrf_token": token, "applicator": "3", "output_check_id": "9" * digits},
    )
    assert page.status_code == 422 and "output check" in page.text
    api = phys.post(
        f"/api/plans/{plan_id}/deliveries",
        content=b'{"applicator": "3", "output_check_id": ' + b"9" * digits + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert api.status_code in (400, 422) and api.json()["detail"]  # a message, never a 500


def test_concurrent_deliveries_give_one_201_and_409s(app: FastAPI, demo_plan: DemoPlan) -> None:
    plan_id = seed_plan(app, demo_plan, seed_case(app, demo_plan.case_data), "approved")
    clients = [api_client(app, "phys") for _ in range(6)]
    start = threading.Barrier(len(clients))

    def deliver(client: TestClient) -> int:
        start.wait()
        return client.post(
            f"/api/plans/{plan_id}/deliveries", json=_delivery(demo_plan)
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        statuses = sorted(pool.map(deliver, clients))
    assert statuses.count(201) == 1 and set(statuses) <= {201, 409}, statuses
    deliveries = clients[0].get(f"/api/plans/{plan_id}/deliveries").json()
    assert len(deliveries) == 1


def test_nul_characters_are_refused_on_every_route_alike(app: FastAPI, demo_plan: DemoPlan) -> None:
    plan_id = seed_plan(app, demo_plan, seed_case(app, demo_plan.case_data), "reviewed")
    onc = api_client(app, "onc")
    r = onc.post(f"/api/plans/{plan_id}/review", json={"accept": True, "comment": "ok\u0000"})
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    token = page_csrf(onc, f"/plans/{plan_id}")
    r = onc.post(
        f"/plans/{plan_id}/review",
        data={"csrf_token": token, "decision": "accept", "comment": "ok\x00"},
    )
    assert r.status_code == 422 and "NUL" in r.text
    assert onc.get("/api/cases?q=%00").status_code == 422
    # Anonymous too: refused before the login check.
    anon = TestClient(app, base_url="http://testserver")
    assert (
        anon.post("/api/session", json={"username": "a\u0000", "password": "x"}).status_code == 422
    )


def test_a_large_anonymous_body_is_refused_before_it_is_read(app: FastAPI) -> None:
    anon = TestClient(app, base_url="http://testserver")
    big = b'{"username": "' + b"a" * (2 * 1024 * 1024) + b'", "password": "x"}'
    r = anon.post("/api/session", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "larger than the server accepts" in r.json()["detail"]


def test_unknown_host_names_are_refused(tmp_path: Any, demo_plan: DemoPlan) -> None:
    app = build_app(
        tmp_path / "w", demo_plan, allowed_hosts=allowed_hosts("127.0.0.1", ["iort.example.org"])
    )
    with TestClient(app):
        rebinding = TestClient(app, base_url="http://attacker.example")
        r = rebinding.post("/api/session", json={"username": "phys", "password": "x"})
        assert r.status_code == 400 and "host name" in r.json()["detail"]
        ok = TestClient(app, base_url="https://iort.example.org")
        assert ok.get("/login").status_code == 200
        assert TestClient(app, base_url="http://localhost:8000").get("/login").status_code == 200


@pytest.mark.parametrize(
    ("message", "status", "text"),
    [
        ("connection to server failed: Connection refused", 503, "cannot be reached"),
        ("attempt to write a readonly database", 503, "read-only"),
        ("database is locked", 503, "busy"),
    ],
)
def test_database_trouble_is_503_with_retry_after(
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    message: str,
    status: int,
    text: str,
) -> None:
    phys = api_client(app, "phys")
    web = web_of(app)

    def broken() -> Any:
        raise OperationalError("SELECT 1", {}, Exception(message))

    monkeypatch.setattr(web, "db", broken)
    caplog.set_level(logging.WARNING)
    r = phys.get("/api/cases")
    assert r.status_code == status and text in r.json()["detail"]
    assert int(r.headers["Retry-After"]) > 0
    page = phys.get("/cases")
    assert page.status_code == status and text in page.text
    # The log says why (the driver's message holds no patient data: no parameters).
    assert any(message in rec.getMessage() for rec in caplog.records)


@pytest.mark.parametrize("birth", ["2999-12-31", "1800-01-01"])
def test_implausible_birth_dates_are_refused_by_the_api_like_the_form(
    app: FastAPI, demo_plan: DemoPlan, birth: str
) -> None:
    phys = api_client(app, "phys")
    r = phys.post(
        "/api/cases",
        json={"case": demo_plan.case_data, "patient_birth_date": birth},
    )
    assert r.status_code == 422 and "plausible birth date" in r.text
