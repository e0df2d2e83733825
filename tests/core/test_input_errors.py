"""One error root: every input error is an OpenIortInputError with its problem lines; a broken
case of every technique exits 2 with those lines on the command line (never a traceback) and
reaches the web app's planning job as the same lines."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import openiort
from openiort.case import CaseError
from openiort.cli import app
from openiort.errors import OpenIortInputError
from openiort.web.worker import compute_plan_files

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

# Errors that are not about input: an interrupted run, a login or a full queue, a conflict
# between users, a broken seal, the PDF renderer refusing a network resource.
NOT_INPUT_ERRORS = {
    "SimulationInterruptedError",
    "LoginRequiredError",
    "QueueFullError",
    "PdfError",
    "ExampleDataError",  # a lifecycle refusal (HTTP 409), not malformed input
    "RecordsError",
    "NotFoundError",
    "PermissionDeniedError",
    "LifecycleError",
    "ConflictError",
    "TamperedPlanError",
    "TamperedRecordError",  # an integrity refusal (HTTP 409), not malformed input
    "_RefusedError",  # the HTTP guard's internal signal, answered as 400/413/422 at once
    "HashSlotsBusyError",  # the server is busy checking passwords (HTTP 503)
    "SealKeyError",
    "SchemaError",
    "DatabaseUnavailableError",  # a computed plan waiting for the database (filed when back)
}


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "examples" / name).read_text())
    return data


# One broken case per technique, each with the words its message must contain.
BROKEN = {
    "xray": (
        "left_upper_outer_30mm.yaml",
        {"cavity_diameter_mm": None},
        "anatomy.cavity_diameter_mm: required for x-ray planning",
    ),
    "electron-no-thickness": (
        "left_electron_eliot.yaml",
        {"target_thickness_mm": None},
        "needs anatomy.target_thickness_mm",
    ),
    "electron-too-thick": (
        "left_electron_eliot.yaml",
        {"target_thickness_mm": 45},
        "not suitable for electron IORT",
    ),
    "hdr": (
        "left_hdr_balloon_30mm.yaml",
        {"cavity_diameter_mm": None},
        "anatomy.cavity_diameter_mm: required for HDR planning",
    ),
}


def _broken_case(key: str) -> tuple[dict[str, Any], str]:
    example, anatomy, expected = BROKEN[key]
    data = _example(example)
    data["anatomy"].update(anatomy)
    return data, expected


@pytest.mark.parametrize("key", sorted(BROKEN))
def test_broken_case_exits_2_with_its_problem_and_writes_nothing(key: str, tmp_path: Path) -> None:
    data, expected = _broken_case(key)
    case_file = tmp_path / "case.yaml"
    case_file.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    result = runner.invoke(app, ["plan", str(case_file), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "nothing was written" in result.output
    assert expected in result.output
    assert not out.exists()


@pytest.mark.parametrize("key", sorted(BROKEN))
def test_web_planning_job_gets_the_same_problem_lines(key: str, tmp_path: Path) -> None:
    data, expected = _broken_case(key)
    outcome = compute_plan_files(data, str(tmp_path / "staging"))
    assert outcome.kind == "case", outcome
    assert any(expected in p for p in outcome.problems)


def _error_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(openiort.__path__, "openiort."):
        if ".migrations" in info.name:
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, Exception)
                and obj.__module__ == module.__name__
            ):
                found[f"{obj.__module__}.{name}"] = obj
    return list(found.values())


def test_every_input_error_inherits_the_root() -> None:
    classes = _error_classes()
    assert len(classes) > 30  # the walk saw the package, not an empty list
    strays = [
        c.__qualname__
        for c in classes
        if c.__name__ not in NOT_INPUT_ERRORS and not issubclass(c, OpenIortInputError)
    ]
    assert strays == []


def test_problems_survive_pickling_across_processes() -> None:
    error = CaseError("case.yaml", ["first problem", "second problem"])
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is CaseError
    assert again.problems == ["first problem", "second problem"]
    assert again.source == "case.yaml"
    assert str(again) == str(error)


def test_a_plain_message_is_one_problem() -> None:
    error = OpenIortInputError("the applicator does not fit")
    assert error.problems == ["the applicator does not fit"]
    assert error.source == "OpenIortInputError"
    assert isinstance(error, ValueError)  # callers that catch ValueError still do
