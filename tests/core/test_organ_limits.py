"""Organ-at-risk limits (evaluation/limits.py): the IORT defaults per technique, the SBRT
reference set, a department's own file, dose definitions and the limits tables.

Each expected value follows from a uniform dose (every dose metric equals it) or from the
limits files' numbers; the sources are in the files' headers.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from pathlib import Path

import jinja2
import numpy as np
import pytest

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid, Provenance
from openiort.errors import OpenIortInputError
from openiort.evaluation.dvh import compute_dvh
from openiort.evaluation.limits import (
    COLUMNS,
    TECHNIQUES,
    LimitsFileError,
    iort_default_limits,
    load_limits,
    parse_metric,
    sbrt_reference_limits,
)
from openiort.evaluation.metrics import (
    ConstraintCheck,
    check_constraints,
    evaluate,
    exceeded_limits,
)
from openiort.grid import Grid

PROVENANCE = Provenance("analytic test dose", "0", "none", "0" * 64, "0" * 64, "none")
HEADER = ",".join(COLUMNS)


def _uniform(gy: float, shape_mm: float = 20.0) -> tuple[Phantom, DoseGrid]:
    """A skin block of uniform dose (the whole grid): every dose metric is ``gy``."""
    grid = Grid.centred((0.0, 0.0, 0.0), (shape_mm, shape_mm, shape_mm), 2.0)
    skin = np.ones(grid.shape, dtype=bool)
    phantom = Phantom(
        grid=grid,
        material_ids=np.zeros(grid.shape, dtype=np.uint8),
        density_g_cm3=np.ones(grid.shape, dtype=np.float32),
        materials=("water",),
        structures={"skin": skin},
    )
    dose = DoseGrid(grid, np.full(grid.shape, gy), "water_in_medium", "analytic", PROVENANCE)
    return phantom, dose


def _write(tmp_path: Path, rows: list[str], name: str = "department_limits.csv") -> Path:
    path = tmp_path / name
    path.write_text("# our department's limits\n" + HEADER + "\n" + "\n".join(rows) + "\n")
    return path


# ------------------------------------------------------------------------- the shipped sets


def test_every_technique_has_a_cited_iort_skin_limit_and_no_sbrt_value() -> None:
    defaults = iort_default_limits()
    sbrt = {(lim.structure, lim.metric, lim.limit_value) for lim in sbrt_reference_limits().limits}
    for technique in TECHNIQUES:
        limits = defaults.for_technique(technique)
        assert any(lim.structure == "skin" for lim in limits), technique
        for lim in limits:
            assert lim.source and lim.evidence and lim.verification
            assert (lim.structure, lim.metric, lim.limit_value) not in sbrt
    (xray,) = defaults.for_technique("xray")
    assert (xray.metric, xray.limit_value, xray.limit_unit) == ("Dmax", 6.0, "Gy")
    assert xray.dose_definition == "V4.0" and "measured" in xray.published_as
    assert xray.evidence == "single series" and xray.verification == "verified: abstract"
    skin_hdr = next(lim for lim in defaults.for_technique("hdr") if lim.structure == "skin")
    assert (skin_hdr.metric, skin_hdr.limit_value, skin_hdr.limit_unit) == ("Dmax", 145.0, "%Rx")
    assert skin_hdr.evidence == "trial protocol"
    # the B-39 volumes not read in the protocol text itself are marked provisional
    provisional = {lim.metric for lim in defaults.limits if not lim.verified}
    assert provisional == {"V150%Rx", "V200%Rx"}


def test_the_sbrt_set_is_still_loadable_and_labelled_a_reference() -> None:
    sbrt = sbrt_reference_limits()
    assert "reference only" in sbrt.label and "not IORT" in sbrt.label
    values = {(lim.structure, lim.metric): lim.limit_value for lim in sbrt.limits}
    assert values[("skin", "D0.03cc")] == 26.0 and values[("skin", "D10cc")] == 23.0
    assert values[("lung", "V7.4Gy")] == 1000.0
    assert all(lim.technique == "all" for lim in sbrt.limits)
    assert len(sbrt.for_technique("electron")) == len(sbrt.limits)
    assert any("NOT IORT LIMITS" in line for line in sbrt.header)


@pytest.mark.parametrize(
    ("name", "kind", "parameter"),
    [
        ("Dmax", "max", 0.0),
        ("Dmean", "mean", 0.0),
        ("D0.03cc", "dose_at_cc", 0.03),
        ("D0.1cc", "dose_at_cc", 0.1),
        ("D1cc", "dose_at_cc", 1.0),
        ("V7.4Gy", "volume_at_gy", 7.4),
        ("V150%Rx", "volume_at_pct_rx", 150.0),
    ],
)
def test_metric_names_are_exact(name: str, kind: str, parameter: float) -> None:
    metric = parse_metric(name)
    assert (metric.kind, metric.parameter) == (kind, parameter)
    if name == "D0.03cc":
        assert metric.label == "minimum dose to the hottest 0.03 cc (near-point maximum)"


# ----------------------------------------------------------------- checks against the limits


def test_an_electron_skin_maximum_of_23_4_gy_fails_the_iort_skin_objective() -> None:
    phantom, dose = _uniform(23.4)
    _, metrics, checks = evaluate(phantom, dose, technique="electron", prescription_gy=21.0)
    (skin,) = checks
    assert metrics["skin"].max_gy == 23.4
    assert (skin.metric, skin.value, skin.limit_value, skin.passed) == ("Dmax", 23.4, 6.0, False)
    assert skin.dose_definition == "water" and skin.dose_label.endswith("Gy per fraction")
    assert skin.limit_set.startswith("openiort IORT defaults")
    (line,) = exceeded_limits(checks)
    assert line.startswith("skin Dmax = 23.40 Gy exceeds 6 Gy (water dose, per fraction;")
    # the same skin was within the SBRT "Dmax" (D0.03cc <= 26 Gy) that was the default before
    dvh = compute_dvh(dose.dose_gy, phantom.structures["skin"], dose.grid)
    reference = check_constraints(
        {"skin": dvh}, technique="electron", limits=sbrt_reference_limits()
    )
    assert next(c for c in reference if c.metric == "D0.03cc").passed


def test_a_limit_relative_to_the_prescription() -> None:
    phantom, dose = _uniform(10.0)
    dvh = compute_dvh(dose.dose_gy, phantom.structures["skin"], dose.grid)
    (skin,) = check_constraints({"skin": dvh}, technique="hdr", prescription_gy=7.0)
    # 10 Gy on 7 Gy: 142.9 % of the prescription, within B-39's 145 %
    assert skin.value == pytest.approx(100 * 10 / 7, abs=1e-4) and skin.passed
    assert skin.limit_unit == "%Rx"
    (over,) = check_constraints({"skin": dvh}, technique="hdr", prescription_gy=6.8)
    assert over.value == pytest.approx(100 * 10 / 6.8, abs=1e-4) and over.passed is False
    (unknown,) = check_constraints({"skin": dvh}, technique="hdr")
    assert unknown.value is None and unknown.passed is None
    assert "prescription" in unknown.note
    (line,) = exceeded_limits([unknown])
    assert "not checked" in line and "145 % of Rx" in line


def test_a_department_file_replaces_the_defaults_and_names_its_dose_definition(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path,
        [
            "xray,skin,Dmax,8,Gy,TARGIT,,department protocol,department,Our protocol 2025 §4",
            "xray,skin,D0.1cc,7.5,Gy,V4.0,,department protocol,department,Our protocol 2025 §4",
            "all,skin,V5Gy,50,%,water,,department protocol,department,Our protocol 2025 §5",
            "electron,skin,Dmax,10,Gy,medium,,department protocol,department,Our protocol §6",
        ],
    )
    limits = load_limits(path)
    assert limits.label.startswith("department limits (department_limits.csv, SHA-256 ")
    assert [lim.metric for lim in limits.for_technique("hdr")] == ["V5Gy"]
    phantom, water = _uniform(9.0)
    targit = DoseGrid(water.grid, water.dose_gy / 1.2, "water_in_water", "analytic", PROVENANCE)
    _, _, checks = evaluate(
        phantom, water, technique="xray", limits=limits, definitions={"TARGIT": targit}
    )
    by_metric = {c.metric: c for c in checks}
    assert set(by_metric) == {"Dmax", "D0.1cc", "V5Gy"}
    assert by_metric["Dmax"].dose_definition == "TARGIT"
    assert by_metric["Dmax"].value == pytest.approx(7.5) and by_metric["Dmax"].passed
    assert by_metric["D0.1cc"].dose_definition == "V4.0"  # the plan's own dose, for x-ray
    assert by_metric["D0.1cc"].value == pytest.approx(9.0) and not by_metric["D0.1cc"].passed
    # "water" on an x-ray plan is the V4.0 dose; % is of the structure's volume
    assert by_metric["V5Gy"].dose_definition == "V4.0" and by_metric["V5Gy"].value == 100.0
    assert all(c.limit_set == limits.label for c in checks)
    # a dose definition the plan does not have: listed, not checked, and said so
    _, _, electron = evaluate(phantom, water, technique="electron", limits=limits)
    medium = next(c for c in electron if c.metric == "Dmax")
    assert medium.passed is None and medium.value is None
    assert medium.note == "not checked: this plan has no medium dose (its dose is water)"
    assert any("not checked" in line for line in exceeded_limits(electron))


def test_a_department_file_with_errors_reports_each_one(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            "xray,skin,Dmax,-6,Gy,V4.0,,department protocol,department,ours",
            "xray,skin,DMAX,6,Gy,V4.0,,department protocol,department,ours",
            "electron,skin,D0.1cc,6,cc,TARGIT,,department protocol,department,ours",
            "hdr,skn,Dmean,6,Gy,water,,hearsay,approved,",
            "xray,skin,V10Gy,2,cc,V4.0,,department protocol,department,ours",
            "xray,skin,V10Gy,3,cc,V4.0,,department protocol,department,ours",
        ],
    )
    with pytest.raises(LimitsFileError) as caught:
        load_limits(path)
    error = caught.value
    assert isinstance(error, OpenIortInputError)
    problems = error.problems
    where = "department_limits.csv"
    assert all(where in p for p in problems)
    expected = [
        "line 3: limit_value -6 must be positive for the dose metric Dmax",
        "line 4: metric: unknown metric 'DMAX': use Dmax, Dmean, D<v>cc",
        "line 5: limit_unit 'cc' does not fit D0.1cc, a dose metric: use Gy or %Rx",
        "line 5: dose_definition 'TARGIT' is not one of water, medium for technique electron",
        "line 6: structure 'skn' is not one of breast, skin, target, chest_wall, ribs, lung, heart",
        "line 6: evidence 'hearsay' is not one of consensus",
        "line 6: verification 'approved' must start with one of verified",
        "line 6: source is empty",
        "line 8: repeats line 7 (xray skin V10Gy, V4.0)",
    ]
    assert len(problems) == len(expected)
    for text, problem in zip(expected, problems, strict=True):
        assert text in problem, (text, problem)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no header row"),
        ("technique,structure\n", "missing column(s) metric, limit_value"),
        (HEADER + ",colour\n", "unknown column(s) colour"),
        (HEADER + "\n", "the file holds no limits"),
        (HEADER + "\nxray,skin,Dmax\n", "3 values for 10 columns"),
    ],
)
def test_a_malformed_department_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "limits.csv"
    path.write_text(content)
    with pytest.raises(LimitsFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_limits(path)


def test_a_missing_department_file(tmp_path: Path) -> None:
    with pytest.raises(LimitsFileError, match="cannot be read"):
        load_limits(tmp_path / "absent.csv")


# --------------------------------------------------------------------------- limits tables


def _render(env: jinja2.Environment, constraints: Sequence[object]) -> str:
    template = env.from_string(
        '{% with limits_table_class = "list" %}{% include "organ_limits.html" %}{% endwith %}'
    )
    return template.render(constraints=constraints)


def _report_env() -> jinja2.Environment:
    folder = str(importlib.resources.files("openiort.report").joinpath("templates"))
    return jinja2.Environment(loader=jinja2.FileSystemLoader(folder), autoescape=True)


def test_the_limits_table_names_the_metric_and_its_dose_definition() -> None:
    phantom, dose = _uniform(7.0)
    _, _, iort = evaluate(phantom, dose, technique="xray", definitions={})
    dvh = compute_dvh(dose.dose_gy, phantom.structures["skin"], dose.grid)
    sbrt = check_constraints({"skin": dvh}, technique="xray", limits=sbrt_reference_limits())
    html = _render(_report_env(), [*iort, *sbrt])
    assert "<b>Dmax</b>" in html and "<b>D0.03cc</b>" in html and "<b>D10cc</b>" in html
    assert "maximum dose (hottest DVH sample" in html
    assert "minimum dose to the hottest 0.03 cc (near-point maximum)" in html
    assert "absorbed dose to water, V4.0 definition (50 kV; AAPM TG-292), Gy per fraction" in html
    assert "published as: measured skin dose" in html
    assert "EXCEEDED" in html and "within" in html
    assert "openiort IORT defaults" in html and "for reference only" in html


def test_the_web_plan_page_renders_the_same_table_for_new_and_old_plans() -> None:
    from openiort.web.formatting import template_env

    phantom, dose = _uniform(7.0)
    _, _, checks = evaluate(phantom, dose, technique="electron")
    new = [c.to_dict() for c in checks]  # the web page reads the stored plan.json
    html = _render(template_env(), new)
    assert '<table class="list">' in html and "<b>Dmax</b>" in html
    assert "absorbed dose to water, Gy per fraction" in html and "EXCEEDED" in html
    # a plan.json stored before limits named their metric and dose definition
    old = {
        "structure": "skin",
        "metric": "Dmax",
        "limit_value": 26.0,
        "limit_unit": "Gy",
        "value": 12.9,
        "passed": True,
        "source": "Siva et al. BMC Cancer 2016;16:183 Table 2",
        "verification": "verified",
    }
    html = _render(template_env(), [old])
    assert 'this "Dmax" is D0.03cc' in html and "the plan's dose" in html
    assert "12.90 Gy" in html and "within" in html


def test_a_not_checked_limit_is_shown_as_such() -> None:
    check = ConstraintCheck(
        structure="skin",
        metric="Dmax",
        limit_value=145.0,
        limit_unit="%Rx",
        value=None,
        passed=None,
        source="B-39",
        verification="verified: abstract",
        note="not checked: the limit is relative to the prescription, which is not known",
    )
    html = _render(_report_env(), [check])
    assert "NOT CHECKED" in html and "145 % of Rx" in html and "&ndash;" in html


# ------------------------------------------------------------------------ an x-ray plan


def test_an_xray_plan_checks_a_targit_limit_on_the_targit_dose(tmp_path: Path) -> None:
    from openiort.case import load_case
    from openiort.planning.xray import plan_xray

    limits = load_limits(
        _write(
            tmp_path,
            [
                "xray,skin,Dmax,6,Gy,TARGIT,,department protocol,department,ours",
                "xray,skin,Dmax,6,Gy,V4.0,,department protocol,department,ours",
            ],
        )
    )
    case = load_case(str(importlib.resources.files("openiort").joinpath("data/demo_case.yaml")))
    plan = plan_xray(case, limits=limits)
    targit, v40 = plan.constraints
    assert (targit.dose_definition, v40.dose_definition) == ("TARGIT", "V4.0")
    # the V4.0 check is on the plan's dose: the metrics table's skin max
    assert v40.value == pytest.approx(plan.metrics["skin"].max_gy, abs=1e-4)
    # TARGIT = V4.0 / (V4.0/TARGIT ratio), the ratio 1.16-1.24 between 0 and 10 mm for the
    # 3 cm applicator (TG-292 Table IV example source: 24.76 / 20 Gy at the surface,
    # 5.211 / 4.4815 Gy at 10 mm, as the plan's dose at depth gives)
    assert targit.value is not None and v40.value is not None
    assert 1.15 < v40.value / targit.value < 1.25
    assert plan.to_json_dict()["constraints"][0]["dose_definition"] == "TARGIT"


def test_iort_plan_checks_the_departments_limits_file(tmp_path: Path) -> None:
    """`iort plan --limits FILE`: the department's set replaces openiort's IORT defaults."""
    import json

    from typer.testing import CliRunner

    from openiort.cli import app

    repo = Path(__file__).resolve().parents[2]
    limits = tmp_path / "limits.csv"
    limits.write_text(
        "# Our department's skin objective for 50 kV (test)\n"
        "technique,structure,metric,limit_value,limit_unit,dose_definition,published_as,"
        "evidence,verification,source\n"
        "xray,skin,Dmax,8.0,Gy,TARGIT,nominal TARGIT dose,department protocol,department,"
        "our department 2026\n"
    )
    out = tmp_path / "plan"
    case = repo / "examples" / "left_upper_outer_30mm.yaml"
    runner = CliRunner()
    result = runner.invoke(app, ["plan", str(case), "--out", str(out), "--limits", str(limits)])
    assert result.exit_code == 0, result.output
    constraints = json.loads((out / "plan.json").read_text())["constraints"]
    assert [(c["structure"], c["limit_value"], c["passed"]) for c in constraints] == [
        ("skin", 8.0, True)
    ]
    limits.write_text(limits.read_text().replace("8.0,Gy", "-1,Gy"))
    bad = runner.invoke(
        app, ["plan", str(case), "--out", str(tmp_path / "bad"), "--limits", str(limits)]
    )
    assert bad.exit_code == 2 and not (tmp_path / "bad").exists()
