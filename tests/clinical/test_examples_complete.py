"""The shipped example cases and the demo give every field the guideline engine asks for, and
TARGIT-A's verdict names every criterion that excludes a patient (age below 45 included).

Which verdicts must be decided: the trials read the preoperative findings, so every trial
verdict must be decided for every example. The APBI guidelines read the final pathology: an
example with a pathology block must get a verdict from each of them; an example planned during
the lumpectomy, before the final pathology exists, may read insufficient-data, but only for
want of pathology fields (margins, LVSI, nodes), never for a preoperative field. TARGIT-US's
two surgical-pathology exclusions fall under the same rule (its file says so).
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
def test_every_applicable_guideline_gives_a_verdict(path: Path) -> None:
    has_pathology = yaml.safe_load(path.read_text()).get("pathology") is not None
    data = _eligibility(path)
    assert len(data["verdicts"]) == 10
    for v in data["verdicts"]:
        name = f"{path.name} {v['guideline']}"
        open_fields = [*v["missing"], *v["iort_missing"]]
        if v["kind"] == "trial" and v["guideline"] != "TARGIT-US":
            assert v["group"] != "insufficient-data", name
        if has_pathology:
            assert v["group"] != "insufficient-data", name
            assert open_fields == [], name
        else:  # before final pathology: only pathology fields may be missing
            assert all(f.startswith("pathology.") for f in open_fields), (name, open_fields)
    pending = [p["field"] for p in data["pending_fields"]]
    if has_pathology:
        assert pending == [], path.name
    else:
        assert all(f.startswith("pathology.") for f in pending), (path.name, pending)


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
