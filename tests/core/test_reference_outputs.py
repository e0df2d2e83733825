"""Refactors keep behaviour: every example's and the demo's plan.json against the stored one.

The stored outputs (tests/reference_outputs/) were made before the change by
`make reference-outputs`; see tests/core/reference_plans.py for the comparison rules.
"""

from __future__ import annotations

import copy

import pytest
from reference_plans import (
    DOSE_RELATIVE_TOLERANCE,
    case_names,
    differences,
    hdr_dwell_dose_difference,
    plan_json,
    stored_json,
)


@pytest.mark.parametrize("name", case_names())
def test_plan_json_equals_the_stored_reference(name: str) -> None:
    stored = stored_json(name)
    new = plan_json(name)
    found = list(differences(stored, new))
    assert not found, f"{len(found)} difference(s), first: " + "; ".join(found[:10])
    if stored["technique"] == "hdr":
        # Same dose from the dwell times, whichever optimum the solver found.
        assert hdr_dwell_dose_difference(stored, new) < DOSE_RELATIVE_TOLERANCE


def test_every_shipped_case_has_a_stored_reference() -> None:
    for name in case_names():
        stored_json(name)  # raises, naming the file and the command, when one is missing


def test_the_comparison_can_fail() -> None:
    stored = stored_json("left_upper_outer_30mm")
    changed = copy.deepcopy(stored)
    changed["prescription"]["dose_gy"] *= 1 + 1e-8  # beyond 1e-9 relative
    del changed["warnings"]
    changed["created_utc"] = "2000-01-01T00:00:00+00:00"  # ignored: a timestamp
    changed["new_typed_field"] = 1  # allowed: new fields may be added
    found = list(differences(stored, changed))
    assert any(f.startswith(".prescription.dose_gy") for f in found)
    assert ".warnings: missing" in found
    assert len(found) == 2


def test_hdr_dwell_comparison_sees_a_changed_dwell_time() -> None:
    stored = stored_json("left_hdr_balloon_30mm")
    changed = copy.deepcopy(stored)
    assert hdr_dwell_dose_difference(stored, changed) == 0.0
    changed["dwell_times_s"][0] += 1.0  # one more second on one of ~355 s: ~0.3 % near it
    assert hdr_dwell_dose_difference(stored, changed) > 1e-3


@pytest.mark.parametrize("name", case_names())
def test_stored_plan_json_follows_the_published_schema(name: str) -> None:
    import jsonschema

    from openiort.plan_document import plan_json_schema

    jsonschema.validate(stored_json(name), plan_json_schema())


def test_the_schema_refuses_a_renamed_delivery_key() -> None:
    import jsonschema

    from openiort.plan_document import plan_json_schema

    plan = copy.deepcopy(stored_json("left_electron_eliot"))
    delivery = plan["delivery"]
    delivery["applicator_cm"] = delivery.pop("applicator_diameter_cm")  # the old export bug
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(plan, plan_json_schema())


@pytest.mark.parametrize(
    "name", ["left_upper_outer_30mm", "left_electron_eliot", "left_hdr_balloon_30mm"]
)
def test_the_schema_refuses_a_misspelt_top_level_key(name: str) -> None:
    import jsonschema

    from openiort.plan_document import plan_json_schema

    schema = plan_json_schema()
    plan = copy.deepcopy(stored_json(name))
    plan["treatment_time_mins"] = plan.pop("treatment_time_min")  # a technique's figure
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(plan, schema)
    plan = copy.deepcopy(stored_json(name))
    plan["warning"] = plan.pop("warnings")  # a block every plan has
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(plan, schema)
    plan = copy.deepcopy(stored_json(name))
    plan["radiobiolgy"] = plan.pop("radiobiology")  # a report section
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(plan, schema)
    plan = copy.deepcopy(stored_json(name))
    plan["technique"] = {"xray": "hdr", "electron": "xray", "hdr": "electron"}[plan["technique"]]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(plan, schema)  # the figures and the delivery of another technique


@pytest.mark.parametrize("name", case_names())
def test_plan_json_holds_no_path_of_this_installation(name: str) -> None:
    # A plan made on one machine must compare equal on another (CI clones elsewhere).
    from reference_plans import REPO, STORED

    assert str(REPO) not in (STORED / f"{name}.plan.json").read_text(encoding="utf-8")
