"""Every number of a case is finite and within a physical range (issue 17): NaN, infinity and
absurd magnitudes such as a cavity centre at 1e308 mm are refused by the case model itself,
with the field named, so the command line, the web form and the API refuse them alike."""

from __future__ import annotations

import copy
import json
import math
import typing
from pathlib import Path
from typing import Any

import annotated_types
import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from openiort.case import COORDINATE_LIMIT_MM, Case, CaseError, parse_case
from openiort.cli import app, demo_case_path

runner = CliRunner()


def _demo() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(demo_case_path().read_text())
    return copy.deepcopy(data)


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(CaseError) as info:
        parse_case(data)
    return info.value.problems


@pytest.mark.parametrize(
    "centre",
    [
        [1e308, 0.0, 0.0],
        [0.0, -1000.5, 0.0],
        [0.0, 0.0, 2e4],
    ],
)
def test_absurd_cavity_centre_is_refused_with_the_field_named(centre: list[float]) -> None:
    data = _demo()
    data["anatomy"]["cavity_centre_mm"] = centre
    (problem,) = _problems(data)
    assert problem.startswith("anatomy.cavity_centre_mm: value ")
    assert f"+-{COORDINATE_LIMIT_MM:g} mm" in problem


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_cavity_centre_is_refused(bad: float) -> None:
    data = _demo()
    data["anatomy"]["cavity_centre_mm"] = [10.0, bad, 0.0]
    (problem,) = _problems(data)
    assert problem.startswith("anatomy.cavity_centre_mm.1: ")
    assert "finite" in problem


def test_a_real_cavity_centre_at_the_limit_is_kept() -> None:
    data = _demo()
    data["anatomy"]["cavity_centre_mm"] = [-1000.0, 12.5, 1000.0]
    assert parse_case(data).anatomy.cavity_centre_mm == (-1000.0, 12.5, 1000.0)


def _float_fields(model: type[BaseModel], prefix: str) -> list[tuple[str, list[Any]]]:
    """(dotted path, bound metadata) of every float field, nested blocks included."""
    found: list[tuple[str, list[Any]]] = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        args = [a for a in typing.get_args(ann) if a is not type(None)] or [ann]
        for arg in args:
            meta = list(info.metadata)
            if typing.get_origin(arg) is typing.Annotated:
                arg, *extra = typing.get_args(arg)
                for m in extra:
                    meta += m.metadata if isinstance(m, FieldInfo) else [m]
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                found += _float_fields(arg, f"{prefix}{name}.")
            elif arg is float:
                found.append((f"{prefix}{name}", meta))
    return found


FLOAT_FIELDS = _float_fields(Case, "")


def test_every_float_field_of_the_case_has_finite_bounds() -> None:
    """A new float field without bounds would let 1e308 through: each needs both."""
    assert len(FLOAT_FIELDS) > 20
    for path, meta in FLOAT_FIELDS:
        lower = [m for m in meta if isinstance(m, annotated_types.Ge | annotated_types.Gt)]
        upper = [m for m in meta if isinstance(m, annotated_types.Le | annotated_types.Lt)]
        assert lower and upper, f"{path} has no lower and upper bound"


@pytest.mark.parametrize("path", [p for p, _ in FLOAT_FIELDS])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_every_float_field_refuses_non_finite_values(path: str, bad: float) -> None:
    data = _demo()
    block, _, name = path.rpartition(".")
    target = data
    for part in block.split("."):
        target = target.setdefault(part, {})
    target[name] = bad
    problems = _problems(data)
    assert any(p.startswith(f"{path}: value {bad!r}") for p in problems), problems


def test_cli_refuses_absurd_centre_exit_2_one_line(tmp_path: Path) -> None:
    data = _demo()
    data["anatomy"]["cavity_centre_mm"] = [1e308, 0.0, 0.0]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["eligibility", str(bad)])
    assert result.exit_code == 2, result.output
    assert "anatomy.cavity_centre_mm" in result.output and "1000 mm" in result.output
    assert "Traceback" not in result.output


def test_cli_refuses_nan_from_a_json_case(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    data = _demo()
    data["anatomy"]["skin_distance_mm"] = "NaN-placeholder"
    bad.write_text(json.dumps(data).replace('"NaN-placeholder"', "NaN"))
    result = runner.invoke(app, ["eligibility", str(bad)])
    assert result.exit_code == 2, result.output
    assert "anatomy.skin_distance_mm" in result.output and "finite" in result.output
