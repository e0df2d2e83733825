"""Shared fixtures for the core (x-ray pipeline) tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from openiort.case import Case, parse_case

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def demo_dict() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / "left_upper_outer_30mm.yaml").read_text())


@pytest.fixture
def demo_data() -> dict[str, Any]:
    return copy.deepcopy(demo_dict())


@pytest.fixture
def demo_case() -> Case:
    return parse_case(demo_dict())
