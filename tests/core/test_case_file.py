"""Case-file validation: good files load, each bad field gives one message naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openiort.case import CaseError, load_case, parse_case

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid(path: Path) -> None:
    case = load_case(path)
    assert case.patient.id
    assert case.intent.technique in ("xray", "electron", "hdr")


def test_examples_cover_both_sides_and_sizes() -> None:
    cases = [c for p in EXAMPLES.glob("*.yaml") if (c := load_case(p)).intent.technique == "xray"]
    assert {c.preoperative.laterality for c in cases} == {"left", "right"}
    diameters = [c.anatomy.cavity_diameter_mm for c in cases]
    assert min(diameters) <= 25 and max(diameters) >= 45  # type: ignore[operator]
    assert any((c.anatomy.skin_distance_mm or 99) < 5 for c in cases)


def _problems(data: Any) -> list[str]:
    with pytest.raises(CaseError) as info:
        parse_case(data)
    return info.value.problems


def test_missing_required_field(demo_data: dict[str, Any]) -> None:
    del demo_data["intent"]["technique"]
    assert _problems(demo_data) == ["intent.technique: required field is missing"]


def test_value_out_of_range_names_field_value_and_range(demo_data: dict[str, Any]) -> None:
    demo_data["anatomy"]["cavity_diameter_mm"] = 500
    (msg,) = _problems(demo_data)
    assert msg.startswith("anatomy.cavity_diameter_mm: value 500")
    assert "less than or equal to 80" in msg


def test_wrong_type(demo_data: dict[str, Any]) -> None:
    demo_data["patient"]["age_years"] = "sixty"
    (msg,) = _problems(demo_data)
    assert msg.startswith("patient.age_years: value 'sixty'")


def test_unknown_key_is_rejected(demo_data: dict[str, Any]) -> None:
    demo_data["anatomy"]["cavity_diamter_mm"] = 30
    (msg,) = _problems(demo_data)
    assert msg.startswith("anatomy.cavity_diamter_mm: unknown field")


def test_one_message_per_problem(demo_data: dict[str, Any]) -> None:
    demo_data["patient"]["age_years"] = 5
    demo_data["preoperative"]["clock_position"] = 13
    demo_data["intent"]["prescription_gy"] = -1
    problems = _problems(demo_data)
    assert len(problems) == 3
    assert {p.split(":")[0] for p in problems} == {
        "patient.age_years",
        "preoperative.clock_position",
        "intent.prescription_gy",
    }


def test_dose_definition_only_for_xray(demo_data: dict[str, Any]) -> None:
    demo_data["intent"]["technique"] = "electron"
    (msg,) = _problems(demo_data)
    assert "dose_definition" in msg


def test_unknown_value_stays_none(demo_data: dict[str, Any]) -> None:
    demo_data["pathology"] = None
    demo_data["preoperative"]["her2_status"] = None
    case = parse_case(demo_data)
    assert case.pathology is None and case.preoperative.her2_status is None


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="cannot read"):
        load_case(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("patient: [unclosed")
    with pytest.raises(CaseError, match="not valid YAML"):
        load_case(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(CaseError, match="mapping"):
        load_case(listy)
