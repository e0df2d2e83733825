"""The shipped example cases and the demo give every field the guideline engine asks for, and
TARGIT-A's verdict names every criterion that excludes a patient (age below 45 included).

Every shipped example carries its final pathology (for those planned during the lumpectomy,
entered once it was back), so every guideline decides: the trials on the preoperative findings,
the APBI guidelines and TARGIT-US's two surgical-pathology exclusions on the pathology. A case
without a pathology block may read insufficient-data only for want of pathology fields (checked
on the demo with its pathology removed).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from clinical_vignettes import INVASIVE, TARGIT_A_FACTS, reason_ids, verdict_of
from typer.testing import CliRunner

from openiort.cli import app

REPO = Path(__file__).resolve().parents[2]
DEMO = Path(str(resources.files("openiort").joinpath("data/demo_case.yaml")))
SHIPPED = [*sorted((REPO / "examples").glob("*.yaml")), DEMO]
runner = CliRunner()


def _eligibility(path: Path) -> dict[str, Any]:
    result = runner.invoke(app, ["eligibility", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_guideline_gives_a_verdict(path: Path) -> None:
    assert yaml.safe_load(path.read_text()).get("pathology") is not None, path.name
    data = _eligibility(path)
    assert len(data["verdicts"]) == 10
    for v in data["verdicts"]:
        name = f"{path.name} {v['guideline']}"
        assert v["group"] != "insufficient-data", name
        assert [*v["missing"], *v["iort_missing"]] == [], name
    assert data["pending_fields"] == [], path.name


def test_before_pathology_only_pathology_fields_are_missing(tmp_path: Path) -> None:
    data = yaml.safe_load(DEMO.read_text())
    del data["pathology"]
    case = tmp_path / "no_pathology.yaml"
    case.write_text(yaml.safe_dump(data))
    result = _eligibility(case)
    for v in result["verdicts"]:
        open_fields = [*v["missing"], *v["iort_missing"]]
        if v["kind"] == "trial" and v["guideline"] != "TARGIT-US":
            assert v["group"] != "insufficient-data", v["guideline"]
        assert all(f.startswith("pathology.") for f in open_fields), (v["guideline"], open_fields)
    assert all(p["field"].startswith("pathology.") for p in result["pending_fields"])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_targit_a_exclusion_fields_are_given(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    assert data["patient"]["prior_ipsilateral_cancer_or_rt"] is False
    assert data["preoperative"]["bilateral_cancer"] is False
    (targit,) = [v for v in _eligibility(path)["verdicts"] if v["guideline"] == "TARGIT-A"]
    assert targit["group"] in ("eligible", "not-eligible")


def test_the_demo_is_the_packaged_demo_case() -> None:
    assert (REPO / "examples" / "left_upper_outer_30mm.yaml").read_text() == DEMO.read_text()


def test_age_41_is_a_reason_of_the_targit_a_verdict(tmp_path: Path) -> None:
    data = yaml.safe_load(DEMO.read_text())
    data["patient"]["age_years"] = 41
    case = tmp_path / "age41.yaml"
    case.write_text(yaml.safe_dump(data))
    (v,) = [v for v in _eligibility(case)["verdicts"] if v["guideline"] == "TARGIT-A"]
    assert v["group"] == "not-eligible"
    (age,) = [r for r in v["reasons"] if r["rule_id"] == "targita-inc-age"]
    assert age["status"] == "not met" and age["observed"] == "patient.age_years = 41"


@pytest.mark.parametrize(
    ("changes", "others"),
    [
        ({}, set()),
        ({"preoperative.biopsy_histology": "lobular"}, {"targita-exc-core-lob"}),
        ({"preoperative.biopsy_eic": True}, {"targita-exc-core-eic"}),
        ({"preoperative.lesion_count": 2}, {"targita-exc-multi"}),
    ],
    ids=["age-only", "and-lobular", "and-eic", "and-two-lesions"],
)
def test_age_below_45_is_listed_beside_the_exclusions_that_hold(
    changes: dict[str, Any], others: set[str]
) -> None:
    v = verdict_of("TARGIT-A", INVASIVE, {"patient.age_years": 41, **changes}, TARGIT_A_FACTS)
    assert v.group == "not-eligible"
    assert {"targita-inc-age", *others} <= reason_ids(v)
    assert all(r.status in ("met", "not met") for r in v.reasons)


def test_age_below_45_is_a_reason_even_with_the_exclusion_fields_unknown() -> None:
    v = verdict_of("TARGIT-A", INVASIVE, {"patient.age_years": 41})  # no TARGIT-A facts
    assert v.group == "not-eligible" and v.missing == ()
    assert "targita-inc-age" in reason_ids(v)


# Issue 18: every trial's age criterion is listed among the reasons of a not-eligible verdict,
# beside whatever else excludes the patient (not only the first criterion found).
TARGIT_US_EIC = {"pathology.eic_pct_lumpectomy": 10.0}
TRIAL_AGE = [
    ("TARGIT-US", "targitus-inc-age", 41, {}, set()),
    (
        "TARGIT-US",
        "targitus-inc-age",
        41,
        {"pathology.centricity": "multicentric"},
        {"targitus-exc-multicentric"},
    ),
    (
        "TARGIT-US",
        "targitus-inc-age",
        41,
        {"preoperative.clinical_nodal_stage": "cN1"},
        {"targitus-exc-nodes"},
    ),
    (
        "TARGIT-US",
        "targitus-inc-age",
        44,
        {"preoperative.imaging_size_mm": 40},
        {"targitus-inc-size"},
    ),
    ("TARGIT-E", "targite-inc-age", 65, {}, set()),
    (
        "TARGIT-E",
        "targite-inc-age",
        69,
        {"preoperative.biopsy_histology": "lobular"},
        {"targite-inc-hist"},
    ),
    (
        "TARGIT-E",
        "targite-inc-age",
        65,
        {"preoperative.clinical_nodal_stage": "cN1", "preoperative.imaging_size_mm": 55},
        {"targite-inc-cn", "targite-inc-t"},
    ),
    ("ELIOT", "eliot-inc-age", 41, {}, set()),
    ("ELIOT", "eliot-inc-age", 47, {"preoperative.lesion_count": 2}, {"eliot-inc-centric"}),
    ("ELIOT", "eliot-inc-age", 76, {"preoperative.imaging_size_mm": 30}, {"eliot-inc-size"}),
    ("ELIOT", "eliot-inc-age", 80, {"preoperative.clinical_nodal_stage": "cN1"}, {"eliot-inc-cn"}),
]


@pytest.mark.parametrize(
    ("guideline", "age_rule", "age", "changes", "others"),
    TRIAL_AGE,
    ids=[f"{g}-age{a}-{'+'.join(sorted(o)) or 'alone'}" for g, _, a, _, o in TRIAL_AGE],
)
def test_trial_age_is_listed_beside_the_other_exclusions(
    guideline: str, age_rule: str, age: int, changes: dict[str, Any], others: set[str]
) -> None:
    extra = TARGIT_US_EIC if guideline == "TARGIT-US" else None
    v = verdict_of(guideline, INVASIVE, {"patient.age_years": age, **changes}, extra)
    assert v.group == "not-eligible"
    assert {age_rule, *others} <= reason_ids(v)
    (age_reason,) = [r for r in v.reasons if r.rule_id == age_rule]
    assert age_reason.status == "not met"


def test_targit_us_age_is_listed_beside_the_lumpectomy_eic_exclusion() -> None:
    v = verdict_of(
        "TARGIT-US", INVASIVE, {"patient.age_years": 41}, {"pathology.eic_pct_lumpectomy": 30.0}
    )
    assert v.group == "not-eligible"
    assert {"targitus-inc-age", "targitus-exc-eic"} <= reason_ids(v)
