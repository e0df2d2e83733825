"""The plan-directory format and the ``iort export`` command (through a small Typer app)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import typer
from typer.testing import CliRunner

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid
from openiort.inputs.ct import load_ct_phantom
from openiort.inputs.dicom_read import read_rtdose
from openiort.io.commands import export
from openiort.io.errors import PlanDirError
from openiort.io.plan_dir import PLAN_JSON, read_plan_dir, write_plan_dir


@pytest.fixture
def plan_dir(
    tmp_path: Path,
    make_dose: Callable[..., DoseGrid],
    make_phantom: Callable[..., Phantom],
    make_plan: Callable[[str], dict[str, Any]],
) -> Path:
    phantom = make_phantom(4.0)
    write_plan_dir(tmp_path / "plan", make_plan("electron"), phantom, make_dose(phantom))
    return tmp_path / "plan"


def app() -> typer.Typer:
    application = typer.Typer()
    application.command()(export)
    return application


def test_plan_dir_round_trip(
    plan_dir: Path, make_dose: Callable[..., DoseGrid], make_phantom: Callable[..., Phantom]
) -> None:
    phantom = make_phantom(4.0)
    dose = make_dose(phantom)
    back = read_plan_dir(plan_dir)
    assert back.plan["technique"] == "electron"
    assert back.phantom.grid == phantom.grid
    assert back.phantom.materials == phantom.materials
    np.testing.assert_array_equal(back.phantom.material_ids, phantom.material_ids)
    np.testing.assert_array_equal(back.phantom.density_g_cm3, phantom.density_g_cm3)
    assert set(back.phantom.structures) == set(phantom.structures)
    for name, mask in phantom.structures.items():
        np.testing.assert_array_equal(back.phantom.structures[name], mask)
    np.testing.assert_array_equal(back.dose.dose_gy, dose.dose_gy)
    assert back.dose.medium == "water_in_water"
    assert back.dose.provenance == dose.provenance
    assert back.phantom.applicator_centre_mm == phantom.applicator_centre_mm


def test_export_command_writes_a_study(plan_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "dicom"
    result = CliRunner().invoke(
        app(),
        [
            str(plan_dir),
            "--dicom",
            str(out),
            "--patient-position",
            "FFS",
            "--patient-name",
            "DOE^JANE",
            "--patient-id",
            "P-9",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "wrote 13 DICOM objects" in result.output
    assert pydicom.dcmread(out / "RP.dcm").BeamSequence[0].RadiationType == "ELECTRON"
    assert str(pydicom.dcmread(out / "CT_0001.dcm").PatientName) == "DOE^JANE"
    back = load_ct_phantom(out, out / "RS.dcm")
    assert back.description["patient_position"] == "FFS"
    rd = read_rtdose(out / "RD.dcm")
    original = read_plan_dir(plan_dir).dose.dose_gy
    assert float(np.abs(rd.dose - original).max()) <= 0.5 * rd.dose_grid_scaling * (1 + 1e-9)


def test_export_command_anonymise(plan_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "dicom"
    result = CliRunner().invoke(
        app(), [str(plan_dir), "--dicom", str(out), "--anonymise", "--patient-name", "DOE^JANE"]
    )
    assert result.exit_code == 0, result.output
    assert "(de-identified)" in result.output
    for f in out.iterdir():
        ds = pydicom.dcmread(f)
        assert str(ds.PatientName) == "ANONYMOUS" and ds.PatientID.startswith("ANON-")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--patient-position", "SITTING"], "--patient-position"),
        (["--dose-bits", "8"], "bits"),
    ],
)
def test_export_command_bad_options(
    plan_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "dicom"
    result = CliRunner().invoke(app(), [str(plan_dir), "--dicom", str(out), *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_plan_json_without_medium_is_refused(plan_dir: Path) -> None:
    plan = json.loads((plan_dir / PLAN_JSON).read_text())
    del plan["dose_medium"]
    (plan_dir / PLAN_JSON).write_text(json.dumps(plan))
    with pytest.raises(PlanDirError, match="dose_medium"):
        read_plan_dir(plan_dir)
    plan["dose_medium"] = "water_in_water (TG-43)"
    (plan_dir / PLAN_JSON).write_text(json.dumps(plan))
    assert read_plan_dir(plan_dir).dose.medium == "water_in_water"
