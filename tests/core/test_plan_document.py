"""plan.json is typed at its source: each technique's figures, and one document per technique.

A key renamed in a planner, a misspelt top-level key or a section of an unknown name fails
where plan.json is made (``PlanResult.to_json_dict``), not later in a reader.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ConfigDict, ValidationError
from reference_plans import case_names, case_path, stored_json

from openiort.case import load_case
from openiort.plan import PlanResult
from openiort.plan_document import (
    ElectronPlanDocument,
    HdrPlanDocument,
    XrayPlanDocument,
    parse_plan_document,
)
from openiort.plan_figures import FIGURES_OF, HdrFigures, XrayFigures
from openiort.planning.xray import plan_xray

DOCUMENTS = {"xray": XrayPlanDocument, "electron": ElectronPlanDocument, "hdr": HdrPlanDocument}
ONE_PER_TECHNIQUE = ("left_upper_outer_30mm", "left_electron_eliot", "left_hdr_balloon_30mm")


@pytest.fixture(scope="module")
def xray_plan() -> PlanResult:
    return plan_xray(load_case(case_path("left_upper_outer_30mm")), spacing_mm=2.0)


@pytest.mark.parametrize("name", case_names())
def test_every_stored_output_reads_as_its_techniques_document(name: str) -> None:
    stored = stored_json(name)
    document = parse_plan_document(stored)
    technique = stored["technique"]
    assert type(document) is DOCUMENTS[technique]
    assert document.delivery.technique == technique
    # A document is also its technique's figures: readers take the figures from it.
    assert isinstance(document, FIGURES_OF[technique])
    assert document.treatment_time_min == stored["treatment_time_min"]


@pytest.mark.parametrize("name", ONE_PER_TECHNIQUE)
def test_a_misspelt_top_level_key_is_refused(name: str) -> None:
    stored = stored_json(name)
    misspelt = copy.deepcopy(stored)
    misspelt["treatment_time_mins"] = misspelt.pop("treatment_time_min")
    with pytest.raises(ValidationError, match="treatment_time_mins"):
        parse_plan_document(misspelt)
    unknown_section = copy.deepcopy(stored)
    unknown_section["radiobiolgy"] = unknown_section["radiobiology"]
    with pytest.raises(ValidationError, match="radiobiolgy"):
        parse_plan_document(unknown_section)


def test_the_figures_must_be_the_techniques() -> None:
    xray = stored_json("left_upper_outer_30mm")
    electron = stored_json("left_electron_eliot")
    swapped = {**xray, "technique": "electron", "delivery": electron["delivery"]}
    with pytest.raises(ValidationError, match="monitor_units"):
        parse_plan_document(swapped)  # an x-ray plan's figures under an electron document


@pytest.mark.parametrize("name", ONE_PER_TECHNIQUE)
def test_the_figures_refuse_a_renamed_key(name: str) -> None:
    stored = stored_json(name)
    figures = FIGURES_OF[stored["technique"]]
    fields: dict[str, Any] = {k: stored[k] for k in figures.model_fields}
    assert figures.model_validate(fields).model_dump(mode="json") == fields  # None kept
    fields["treatment_time_mins"] = fields.pop("treatment_time_min")
    with pytest.raises(ValidationError) as info:
        figures.model_validate(fields)
    assert {e["loc"][0] for e in info.value.errors()} == {
        "treatment_time_min",
        "treatment_time_mins",
    }


def test_hdr_figures_hold_one_entry_per_dwell() -> None:
    stored = stored_json("left_hdr_balloon_30mm")
    fields = {k: stored[k] for k in HdrFigures.model_fields}
    fields["dwell_catheters"] = fields["dwell_catheters"][:-1]
    with pytest.raises(ValidationError, match="dwell_catheters has 4"):
        HdrFigures.model_validate(fields)


def test_a_key_renamed_in_a_planner_fails_in_to_json_dict(xray_plan: PlanResult) -> None:
    plan = copy.copy(xray_plan)
    assert parse_plan_document(plan.to_json_dict()).technique == "xray"

    # A planner that builds its figures without validating them and renames a key:
    renamed = dict(plan.details)
    renamed["treatment_time_mins"] = renamed.pop("treatment_time_min")
    plan.details = XrayFigures.model_construct(**renamed)
    with pytest.raises(ValidationError, match="treatment_time_min"):
        plan.to_json_dict()

    # A planner whose figures carry a key plan.json does not have:
    class WithExtra(XrayFigures):
        model_config = ConfigDict(extra="allow")

    plan.details = WithExtra(**dict(xray_plan.details), applicator_diameter_mm=30.0)
    with pytest.raises(ValidationError, match="applicator_diameter_mm"):
        plan.to_json_dict()


def test_a_section_of_an_unknown_name_fails_in_to_json_dict(xray_plan: PlanResult) -> None:
    plan = copy.copy(xray_plan)
    plan.sections = {"radiobiolgy": {"notice": "misspelt"}}
    with pytest.raises(ValidationError, match="radiobiolgy"):
        plan.to_json_dict()


def test_a_plan_refuses_the_figures_of_another_technique(xray_plan: PlanResult) -> None:
    stored = stored_json("left_hdr_balloon_30mm")
    hdr = HdrFigures.model_validate({k: stored[k] for k in HdrFigures.model_fields})
    fields = {f: getattr(xray_plan, f) for f in xray_plan.__dataclass_fields__}
    with pytest.raises(TypeError, match="XrayFigures, got HdrFigures"):
        PlanResult(**{**fields, "details": hdr})


def test_iort_schema_plan_publishes_the_strict_document() -> None:
    import json

    import jsonschema
    from typer.testing import CliRunner

    from openiort.cli import app

    result = CliRunner().invoke(app, ["schema", "--plan"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert {b["$ref"].rsplit("/", 1)[1] for b in schema["oneOf"]} == {
        "XrayPlanDocument",
        "ElectronPlanDocument",
        "HdrPlanDocument",
    }
    plan = stored_json("left_electron_eliot")
    jsonschema.validate(plan, schema)
    plan["monitor_unit"] = plan.pop("monitor_units")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(plan, schema)
