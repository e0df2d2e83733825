"""The web form and the JSON API refuse a cavity centre at 1e308 mm, NaN and infinity as the
command line does: the case model's one validation, the field named, nothing written (issue 17)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from web_testkit import api_client, build_app, page_csrf

from openiort.web.caseform import case_data_to_form

DEMO = Path(str(resources.files("openiort").joinpath("data/demo_case.yaml")))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    application = build_app(tmp_path / "web")  # no planner: cases only
    with TestClient(application):
        yield application


def _case(**anatomy: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(DEMO.read_text()))
    data["anatomy"].update(anatomy)
    return data


def test_api_refuses_a_cavity_centre_at_1e308_mm(app: FastAPI) -> None:
    client = api_client(app, "phys")
    r = client.post("/api/cases", json={"case": _case(cavity_centre_mm=[1e308, 0, 0])})
    assert r.status_code == 422, r.text
    (problem,) = r.json()["problems"]
    assert problem.startswith("case.anatomy.cavity_centre_mm: value ") and "1000 mm" in problem
    assert client.get("/api/cases").json() == []


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e309"])
def test_api_refuses_non_finite_numbers(app: FastAPI, literal: str) -> None:
    client = api_client(app, "phys")
    body = json.dumps({"case": _case(skin_distance_mm="@@")}).replace('"@@"', literal)
    r = client.post("/api/cases", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    problems = r.json()["problems"]
    assert any(p.startswith("case.anatomy.skin_distance_mm") for p in problems), problems
    assert client.get("/api/cases").json() == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1e308, 0, 0", "1000 mm"), ("0, nan, 0", "finite"), ("0, 0, 1e309", "finite")],
)
def test_form_refuses_an_absurd_cavity_centre_beside_the_field(
    app: FastAPI, value: str, expected: str
) -> None:
    client = api_client(app, "surg")
    form = case_data_to_form(_case())
    form["anatomy.cavity_centre_mm"] = value
    form["csrf_token"] = page_csrf(client, "/cases/new")
    r = client.post("/cases/new", data=form)
    assert r.status_code == 422, r.text
    errors = dict(re.findall(r'data-field="([^"]+)">([^<]+)<', r.text))
    assert set(errors) == {"anatomy.cavity_centre_mm"}, errors
    assert expected in errors["anatomy.cavity_centre_mm"]
    assert client.get("/api/cases").json() == []
