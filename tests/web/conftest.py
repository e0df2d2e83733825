"""Fixtures of the web-app tests; the helpers live in ``web_testkit.py`` (see there)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from openiort.records import users as users_module

sys.path.insert(0, str(Path(__file__).resolve().parent))

from web_testkit import DemoPlan, build_app, cheap_hasher, plan_demo


@pytest.fixture(scope="session", autouse=True)
def _cheap_passwords() -> Iterator[None]:
    old = users_module._hasher
    users_module.use_password_hasher(cheap_hasher())
    yield
    users_module.use_password_hasher(old)


@pytest.fixture(scope="session")
def demo_plan(tmp_path_factory: pytest.TempPathFactory) -> DemoPlan:
    """The demo case planned once per test session (about 10-20 s)."""
    return plan_demo(tmp_path_factory.mktemp("demo") / "plan")


@pytest.fixture
def app(tmp_path: Path, demo_plan: DemoPlan) -> Iterator[FastAPI]:
    """A fresh app per test (its lifespan running)."""
    application = build_app(tmp_path / "web", demo_plan)
    with TestClient(application):
        yield application
