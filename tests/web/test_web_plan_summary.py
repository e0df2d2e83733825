"""The plan page reads a stored plan through its typed document, and plans stored by the
release before the typed deliveries (tests/records/data, as in release-0.1.0.sqlite) through
the same typed figures read from their top-level keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from openiort.plan_document import ElectronPlanDocument, HdrPlanDocument, XrayPlanDocument
from openiort.plan_figures import ElectronFigures, HdrFigures, XrayFigures
from openiort.web.pages_plans import _summary_rows, stored_plan_document, stored_plan_figures

TESTS = Path(__file__).resolve().parents[1]
STORED = {
    "xray": "left_upper_outer_30mm",
    "electron": "left_electron_eliot",
    "hdr": "left_hdr_balloon_30mm",
}
DOCUMENTS = {"xray": XrayPlanDocument, "electron": ElectronPlanDocument, "hdr": HdrPlanDocument}
FIGURES = {"xray": XrayFigures, "electron": ElectronFigures, "hdr": HdrFigures}


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


@pytest.mark.parametrize("technique", sorted(STORED))
def test_a_stored_plan_reads_as_its_document(technique: str) -> None:
    pj = _read(TESTS / "reference_outputs" / f"{STORED[technique]}.plan.json")
    # What the record keeps beside the document (web worker, export, earlier plan directories).
    pj |= {
        "outputs_sha256": {"report.html": "0" * 64},
        "applicator_centre_mm": [1.0, 2.0, 3.0],
        "dose_medium": pj["dose"]["medium"],
    }
    document = stored_plan_document(pj)
    assert type(document) is DOCUMENTS[technique]
    assert stored_plan_figures(pj, document) is document
    assert document.clinical == pj["clinical"]


def test_a_misspelt_stored_key_is_not_a_document() -> None:
    pj = _read(TESTS / "reference_outputs" / "left_upper_outer_30mm.plan.json")
    pj["second_checks"] = pj.pop("second_check")
    assert stored_plan_document(pj) is None
    assert stored_plan_figures(pj, None) is None
    assert _summary_rows(None) == []


@pytest.mark.parametrize("technique", sorted(STORED))
def test_a_release_plan_shows_its_figures(technique: str) -> None:
    release = _read(TESTS / "records" / "data" / f"plan_{technique}.json")
    assert "delivery" not in release
    assert stored_plan_document(release) is None
    figures = stored_plan_figures(release, None)
    assert type(figures) is FIGURES[technique]
    current = _read(TESTS / "reference_outputs" / f"{STORED[technique]}.plan.json")
    document = stored_plan_document(current)
    if technique == "electron":
        # The electron example moved from the intact breast to the operating-room geometry
        # (issue 13): its release plan keeps the figures it was made with.
        assert dict(_summary_rows(figures))["independent second check"] == "1596 MU (-0.7 %)"
        return
    # The release's figures are the figures of today's plan of the same example, except the
    # second check: the release's shared the primary's tables (+0.00 %), today's is the Monte
    # Carlo source model's (issue 15).
    release_rows = dict(_summary_rows(figures))
    today_rows = dict(_summary_rows(stored_plan_figures(current, document)))
    if technique == "xray":
        assert release_rows.pop("independent second check").endswith("(+0.00 %)")
        assert today_rows.pop("independent second check").endswith("(+0.04 %)")
    assert release_rows == today_rows


def test_summary_rows_by_technique() -> None:
    rows = {
        t: dict(_summary_rows(stored_plan_figures(pj, stored_plan_document(pj))))
        for t, pj in (
            (t, _read(TESTS / "reference_outputs" / f"{n}.plan.json")) for t, n in STORED.items()
        )
    }
    assert rows["xray"]["same prescription in the other definition"].endswith("Gy (V4.0)")
    # the Monte Carlo source model's time, +0.04 % from the TG-292 tables' (issue 15)
    assert rows["xray"]["independent second check"].endswith("min (+0.04 %)")
    assert rows["electron"]["independent second check"] == "1647 MU (-1.6 %)"
    assert rows["electron"]["pressure (hPa)"] == "934.7"
    assert rows["hdr"] == {
        "source": "GammaMed HDR 192Ir Plus",
        "air-kerma strength (U)": "40000.0",
        "TRAK (uGy at 1 m)": "3944.444",
        "dwell positions": "5",
        # shown since issue 14 (tissue V150 and V200 of the stored example plan)
        "V150 / V200 (tissue)": "21.8 cc / 9.3 cc",
    }
