"""Schemathesis against the published OpenAPI description: generated requests to every API
operation, logged in as a physicist (the role allowed the most), must never get a server
error, and every answer must match the documented schema of its status code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from web_testkit import DemoPlan, api_client, build_app, seed_case, seed_plan

# Bounded: about 20 operations x this many examples keeps the run under a minute on 2 cores.
MAX_EXAMPLES = 20
# A request for a download not made yet waits for it (10-20 s on a busy 2-core machine).
REQUEST_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory, demo_plan: DemoPlan) -> Iterator[FastAPI]:
    # No login throttling or queue bound here: generated wrong passwords would lock the
    # test's own login, and generated plan requests would fill the queue (503 by design).
    app = build_app(
        tmp_path_factory.mktemp("fuzz"),
        demo_plan,
        login_max_failures=10**9,
        max_pending_plans=10**6,
    )
    with TestClient(app):
        case_id = seed_case(app, demo_plan.case_data)
        approved = seed_plan(app, demo_plan, case_id, "approved")
        seed_plan(app, demo_plan, case_id, "reviewed")
        seed_plan(app, demo_plan, case_id, "draft")
        # Make the approved plan's PDF and DICOM zip now (10-20 s each on a busy machine), so
        # that generated requests for them are answered from the cache.
        client = api_client(app, "view")
        for download in ("report.pdf", "dicom.zip"):
            r = client.get(f"/api/plans/{approved}/{download}")
            assert r.status_code == 200
        yield app


@pytest.fixture(scope="module")
def auth(fuzz_app: FastAPI) -> dict[str, str]:
    """Session cookie and CSRF header of a logged-in physicist (refreshed after a logout)."""
    headers: dict[str, str] = {}
    _login(fuzz_app, headers)
    return headers


def _login(app: FastAPI, headers: dict[str, str]) -> None:
    client = api_client(app, "phys")
    headers["Cookie"] = f"openiort_session={client.cookies['openiort_session']}"
    headers["X-CSRF-Token"] = client.headers["X-CSRF-Token"]


@pytest.fixture(scope="module")
def api_schema(fuzz_app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/api/openapi.json", fuzz_app)


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every API operation, from the routers alone (no database needed).

    Parametrised here rather than with ``schemathesis.pytest.from_fixture``, whose lazy
    loader does not run under pytest 9 (schemathesis 4.32).
    """
    from openiort.web import api, qa_routes

    probe = FastAPI()
    probe.include_router(api.router)
    probe.include_router(qa_routes.api_router)
    return [
        (method.upper(), path)
        for path, methods in probe.openapi()["paths"].items()
        for method in methods
    ]


@pytest.mark.parametrize(("method", "path"), _operations(), ids=lambda v: str(v))
def test_api_has_no_server_errors(
    method: str, path: str, api_schema: Any, fuzz_app: FastAPI, auth: dict[str, str]
) -> None:
    operation = api_schema[path][method]

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        case.call_and_validate(
            headers=dict(auth),
            timeout=REQUEST_TIMEOUT_S,
            checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
        )
        if method == "DELETE" and path == "/api/session":
            _login(fuzz_app, auth)

    run()


def test_openapi_lists_every_api_route(fuzz_app: FastAPI) -> None:
    published = TestClient(fuzz_app).get("/api/openapi.json").json()
    assert published["info"]["title"] == "openiort"
    paths = set(published["paths"])
    for route in fuzz_app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/api/") and path not in ("/api/openapi.json", "/api/docs"):
            assert path in paths, f"{path} missing from the OpenAPI description"
