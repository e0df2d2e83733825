"""``iort export --treatment-record`` (issue 16, "what comes back"): the deliveries recorded in
the records database become RT Treatment Records that reference the RT Plan, are marked as
manually recorded, pass dciodvfy, keep one instance per delivery across exports, and record an
interrupted session and its remainder (x-ray: RT Brachy; electron: RT Beams)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from openiort.anatomy.phantom import Phantom
from openiort.cli import app
from openiort.dosegrid import DoseGrid, Provenance
from openiort.grid import Grid
from openiort.io.plan_dir import write_plan_dir
from openiort.io.treatment_record_writer import MANUAL_DESCRIPTION
from openiort.records import User, approve_plan, record_delivery, review_plan, store_plan

CENTRE_MM = (0.0, 0.0, 0.0)
DCIODVFY = shutil.which("dciodvfy")


def _phantom_and_dose() -> tuple[Phantom, DoseGrid]:
    grid = Grid.centred((0.0, 0.0, 0.0), (40.0, 40.0, 40.0), 4.0)
    r = grid.distance_from_mm(CENTRE_MM)
    body = r < 19.0
    phantom = Phantom(
        grid=grid,
        material_ids=body.astype(np.uint8),
        density_g_cm3=np.where(body, 1.0, 0.0012).astype(np.float32),
        materials=("air", "water"),
        structures={"breast": body & (r > 8.0), "applicator": r <= 8.0},
        applicator_centre_mm=CENTRE_MM,
        applicator_radius_mm=8.0,
    )
    dose = DoseGrid(
        grid=grid,
        dose_gy=20.0 * (8.0 / np.maximum(r, 8.0)) ** 2,
        medium="water_in_water",
        normalisation="test",
        provenance=Provenance("test", "0", "synthetic", "0" * 64, "0" * 64, "none"),
    )
    return phantom, dose


def _errors(path: Path) -> list[str]:
    assert DCIODVFY is not None
    report = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True)
    text = report.stdout + report.stderr
    assert "TreatmentRecord" in text
    return [line for line in text.splitlines() if line.startswith("Error")]


@pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (dicom3tools) not installed")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("technique", "entry", "given"),
    [
        ("xray", {"applicator": 3.5, "time_min": 24.6}, {"given_time_min": 10.0}),
        ("electron", {"applicator": 5.0, "monitor_units": 2480}, {"given_monitor_units": 992}),
    ],
)
def test_export_writes_records_of_an_interrupted_delivery_and_its_remainder(
    technique: str,
    entry: dict[str, Any],
    given: dict[str, Any],
    tmp_path: Path,
    db_url: str,
    session: Session,
    users: dict[str, User],
    case_id: int,
    make_plan_json: Callable[..., dict[str, Any]],
) -> None:
    plan_json = make_plan_json(technique, case_id="DEMO-001")
    plan = store_plan(session, users["phys"], case_id, plan_json)
    review_plan(session, users["phys"], plan.id)
    approve_plan(session, users["onc"], plan.id)
    session.commit()
    energy = {"energy_mev": 9, "bevel_deg": 15} if technique == "electron" else {}
    record_delivery(session, users["phys"], plan.id, **entry, **energy, interrupted=True, **given)
    session.commit()
    rest = {"time_min": 14.6} if technique == "xray" else {"monitor_units": 2480 - 992}
    record_delivery(
        session, users["phys"], plan.id, applicator=entry["applicator"], **rest, **energy
    )
    session.commit()

    phantom, dose = _phantom_and_dose()
    plan_dir = tmp_path / "plan"
    write_plan_dir(plan_dir, {**plan_json, "status": "approved"}, phantom, dose)
    args = ["export", str(plan_dir), "--dicom", str(tmp_path / "out"), "--treatment-record"]
    args += ["--record-plan-id", str(plan.id), "--database-url", db_url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 treatment record(s)" in result.output
    rp = pydicom.dcmread(tmp_path / "out" / "RP.dcm")
    first, second = (pydicom.dcmread(tmp_path / "out" / f"RT_00{n}.dcm") for n in (1, 2))
    for record in (first, second):
        assert _errors(Path(record.filename)) == []
        assert record.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == rp.SOPInstanceUID
        assert record.SeriesDescription == MANUAL_DESCRIPTION
        assert record.OperatorsName == "phys"
    assert second.ReferencedTreatmentRecordSequence[0].ReferencedSOPInstanceUID == (
        first.SOPInstanceUID
    )
    if technique == "xray":
        sessions = [r.TreatmentSessionApplicationSetupSequence[0] for r in (first, second)]
        given_s = [
            sum(float(c.DeliveredChannelTotalTime) for c in s.RecordedChannelSequence)
            for s in sessions
        ]
        assert given_s == pytest.approx([600.0, 876.0], abs=1e-3)  # 10 + 14.6 min
    else:
        sessions = [r.TreatmentSessionBeamSequence[0] for r in (first, second)]
        given_mu = [float(s.DeliveredPrimaryMeterset) for s in sessions]
        assert given_mu == pytest.approx([992.0, 1488.0], abs=1e-3)
    assert [s.TreatmentTerminationStatus for s in sessions] == ["OPERATOR", "NORMAL"]

    # Records only, for the RT Plan already sent: the same two instances (never a second
    # record of one delivery).
    again = tmp_path / "again"
    args = ["export", str(plan_dir), "--dicom", str(again), "--treatment-record"]
    args += ["--record-plan-id", str(plan.id), "--database-url", db_url]
    args += ["--rtplan", str(tmp_path / "out" / "RP.dcm")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in again.iterdir()) == ["RT_001.dcm", "RT_002.dcm"]
    assert pydicom.dcmread(again / "RT_001.dcm").SOPInstanceUID == first.SOPInstanceUID


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_export_refuses_a_record_plan_of_another_case(
    tmp_path: Path,
    db_url: str,
    session: Session,
    users: dict[str, User],
    case_id: int,
    make_plan_json: Callable[..., dict[str, Any]],
) -> None:
    plan = store_plan(session, users["phys"], case_id, make_plan_json("xray"))
    session.commit()
    phantom, dose = _phantom_and_dose()
    write_plan_dir(tmp_path / "plan", make_plan_json("xray", case_id="B-2"), phantom, dose)
    args = ["export", str(tmp_path / "plan"), "--dicom", str(tmp_path / "out")]
    args += ["--treatment-record", "--record-plan-id", str(plan.id), "--database-url", db_url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "case_id" in result.output and not (tmp_path / "out").exists()
