"""`iort export PLAN --dicom OUT` of the shipped electron example: the RT Plan read back.

The export reads the plan's typed delivery (what approval seals); plan.json written before
deliveries were typed (the release database's plans) exports from its top-level keys.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pydicom
import pytest
import typer
from typer.testing import CliRunner

from openiort.anatomy.phantom import Phantom
from openiort.case import load_case
from openiort.delivery import ElectronDelivery
from openiort.dosegrid import DoseGrid
from openiort.io.commands import export
from openiort.io.dicom_export import export_plan
from openiort.io.errors import DicomExportError
from openiort.io.plan_dir import PLAN_DIR_KEYS, PLAN_JSON, write_plan_dir
from openiort.io.rtplan_writer import ElectronSettings, read_export_plan
from openiort.pipeline import plan_case
from openiort.plan_document import ElectronPlanDocument, parse_plan_document

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "left_electron_eliot.yaml"
RELEASE_PLAN = REPO / "tests" / "records" / "data" / "plan_electron.json"


@pytest.fixture(scope="module")
def electron_plan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example electron plan written as ``iort plan`` writes its plan directory."""
    plan = plan_case(load_case(EXAMPLE))
    folder = tmp_path_factory.mktemp("electron") / "plan"
    write_plan_dir(folder, plan.to_json_dict(), plan.phantom, plan.dose)
    return folder


@pytest.fixture(scope="module")
def exported(electron_plan_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = typer.Typer()
    app.command()(export)
    out = tmp_path_factory.mktemp("electron-dicom") / "dicom"
    result = CliRunner().invoke(
        app, [str(electron_plan_dir), "--dicom", str(out), "--dose-bits", "16"]
    )
    assert result.exit_code == 0, result.output
    assert "RTPLAN" in result.output
    return out


def _document(plan_dir: Path) -> ElectronPlanDocument:
    data = json.loads((plan_dir / PLAN_JSON).read_text("utf-8"))
    document = parse_plan_document(data)  # plan.json of a plan directory is the document alone
    assert isinstance(document, ElectronPlanDocument)
    assert not set(PLAN_DIR_KEYS) & set(data)
    return document


def test_electron_rt_plan_holds_the_sealed_delivery(
    electron_plan_dir: Path, exported: Path
) -> None:
    delivery = _document(electron_plan_dir).delivery
    assert isinstance(delivery, ElectronDelivery)
    rp = pydicom.dcmread(exported / "RP.dcm")
    assert rp.Modality == "RTPLAN" and rp.ApprovalStatus == "UNAPPROVED"  # a draft
    (beam,) = rp.BeamSequence
    assert beam.RadiationType == "ELECTRON" and beam.BeamType == "STATIC"
    assert float(beam.ControlPointSequence[0].NominalBeamEnergy) == delivery.energy_mev
    (applicator,) = beam.ApplicatorSequence
    assert applicator.ApplicatorType == "INTRAOPERATIVE"
    assert applicator.ApplicatorID == f"C{delivery.applicator_diameter_cm:g}B{delivery.bevel_deg:g}"
    assert f"bevel {delivery.bevel_deg:g} deg" in applicator.ApplicatorDescription
    opening = float(applicator.ApplicatorGeometrySequence[0].ApplicatorOpening)
    assert opening == delivery.applicator_diameter_cm * 10
    (group,) = rp.FractionGroupSequence
    assert group.NumberOfBeams == 1 and group.NumberOfBrachyApplicationSetups == 0
    (referenced,) = group.ReferencedBeamSequence
    assert referenced.ReferencedBeamNumber == beam.BeamNumber
    assert float(referenced.BeamMeterset) == delivery.monitor_units
    assert float(rp.DoseReferenceSequence[0].TargetPrescriptionDose) == delivery.prescription_gy


def test_electron_export_passes_dciodvfy(
    exported: Path, require_tool: Callable[[str], str]
) -> None:
    tool = require_tool("dciodvfy")
    iods = {
        "RP.dcm": "RTPlan",
        "RS.dcm": "RTStructureSet",
        "RD.dcm": "RTDose",
        "CT_0001.dcm": "CTImage",
    }
    for name, iod in iods.items():
        result = subprocess.run(
            [tool, str(exported / name)], capture_output=True, text=True, timeout=120
        )
        report = result.stdout + result.stderr
        assert [line for line in report.splitlines() if line.startswith("Error")] == [], report
        assert iod in report  # the validator recognised the IOD: the check was real


def test_a_release_plan_without_a_delivery_exports_from_its_top_level_keys(
    electron_plan_dir: Path,
) -> None:
    release = json.loads(RELEASE_PLAN.read_text("utf-8"))
    assert "delivery" not in release
    legacy = read_export_plan(release)
    typed = read_export_plan(json.loads((electron_plan_dir / PLAN_JSON).read_text("utf-8")))
    assert not legacy.typed and typed.typed
    # the release plan's own figures (6 cm / 45 deg / 12 MeV, 1608 MU)
    assert legacy.settings == ElectronSettings(1608.0, 12.0, 6.0, 45.0)
    delivery = _document(electron_plan_dir).delivery
    assert isinstance(typed.settings, ElectronSettings) and isinstance(delivery, ElectronDelivery)
    assert (typed.settings.monitor_units, typed.settings.energy_mev) == (
        delivery.monitor_units,
        delivery.energy_mev,
    )
    assert legacy.prescription_gy == typed.prescription_gy == 21.0


def test_the_typed_delivery_is_what_the_rt_plan_shows(electron_plan_dir: Path) -> None:
    data: dict[str, Any] = json.loads((electron_plan_dir / PLAN_JSON).read_text("utf-8"))
    # The plan figures repeat the MU at top level; the RT Plan takes the sealed delivery's.
    changed = {**data, "monitor_units": 1, "energy_mev": 6}
    settings = read_export_plan(changed).settings
    assert isinstance(settings, ElectronSettings)
    delivery = data["delivery"]
    assert (settings.monitor_units, settings.energy_mev) == (
        delivery["monitor_units"],
        delivery["energy_mev"],
    )
    renamed = json.loads(json.dumps(data))
    renamed["delivery"]["applicator_cm"] = renamed["delivery"].pop("applicator_diameter_cm")
    with pytest.raises(DicomExportError, match=r"delivery\.applicator_diameter_cm: Field required"):
        read_export_plan(renamed)
    with pytest.raises(DicomExportError, match="differs from the delivery's 'electron'"):
        read_export_plan({**data, "technique": "hdr"})


def test_an_approved_record_exports_approved(
    electron_plan_dir: Path,
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
) -> None:
    """What the web app hands the export: the stored document with the record's keys."""
    data = json.loads((electron_plan_dir / PLAN_JSON).read_text("utf-8"))
    record = {
        **data,
        "status": "approved",
        "outputs_sha256": {"report.html": "0" * 64},
        "approval": {"approved_by": "physicist", "approved_at": "2026-12-07T09:30:00+00:00"},
        "approved_by": "physicist",
        "approved_at": "2026-12-07T09:30:00+00:00",
        "seal": {"algorithm": "x"},
    }
    export_plan(phantom, dose, record, tmp_path, when=when)
    rp = pydicom.dcmread(tmp_path / "RP.dcm")
    assert rp.ApprovalStatus == "APPROVED" and str(rp.ReviewerName) == "physicist"
    assert rp.ReviewDate == "20261207"
    meterset = float(rp.FractionGroupSequence[0].ReferencedBeamSequence[0].BeamMeterset)
    assert meterset == data["delivery"]["monitor_units"]


def test_electron_rt_plan_has_the_r90_dose_reference_the_beam_dose_and_the_disc(
    electron_plan_dir: Path, exported: Path
) -> None:
    data = json.loads((electron_plan_dir / PLAN_JSON).read_text("utf-8"))
    delivery = _document(electron_plan_dir).delivery
    assert isinstance(delivery, ElectronDelivery)
    rp = pydicom.dcmread(exported / "RP.dcm")
    site, point = rp.DoseReferenceSequence
    assert site.DoseReferenceStructureType == "SITE"
    assert (
        point.DoseReferenceStructureType == "COORDINATES"
        and "R90" in point.DoseReferenceDescription
    )
    # on the clinical axis, R90 (water, less the bolus) below the gland surface
    place = delivery.placement
    depth = data["r90_measured_mm"] - place.bolus_mm
    expected = [e + depth * a for e, a in zip(place.entry_point_mm, place.axis, strict=True)]
    assert [float(v) for v in point.DoseReferencePointCoordinates] == pytest.approx(expected)
    assert float(point.TargetPrescriptionDose) == delivery.prescription_gy
    (beam,) = rp.BeamSequence
    cps = beam.ControlPointSequence
    assert [cp.ReferencedDoseReferenceSequence[0].ReferencedDoseReferenceNumber for cp in cps] == [
        2,
        2,
    ]
    assert [
        float(cp.ReferencedDoseReferenceSequence[0].CumulativeDoseReferenceCoefficient)
        for cp in cps
    ] == [0.0, 1.0]
    (referenced,) = rp.FractionGroupSequence[0].ReferencedBeamSequence
    assert float(referenced.BeamDose) == delivery.prescription_gy
    assert float(referenced.BeamMeterset) == delivery.monitor_units
    assert f"{delivery.monitor_units:g} MU" in beam.BeamDescription
    assert beam.TreatmentMachineName == delivery.device.name[:16]
    # the type-1 beam-limiting device is the applicator's aperture (+-radius)
    radius = delivery.applicator_diameter_cm * 5.0
    for jaws in cps[0].BeamLimitingDevicePositionSequence:
        assert [float(v) for v in jaws.LeafJawPositions] == [-radius, radius]
    (disc,) = beam.GeneralAccessorySequence
    assert disc.GeneralAccessoryID == f"DISC {place.disc_type}"
    layers = " + ".join(
        f"{layer['thickness_mm']:g} mm {layer['material']}" for layer in data["disc"]["layers"]
    )
    assert layers in disc.GeneralAccessoryDescription
    assert f"diameter {place.disc_diameter_mm:.0f} mm" in disc.GeneralAccessoryDescription


def test_dicompyler_core_reads_the_electron_plan(exported: Path) -> None:
    import pydicom.dicomio

    if not hasattr(pydicom.dicomio, "read_file"):  # dicompyler-core 0.5.6 on pydicom 3
        pydicom.dicomio.read_file = pydicom.dcmread  # type: ignore[attr-defined]
    from dicompylercore import dicomparser  # a dev dependency: missing fails, never skips

    parser = dicomparser.DicomParser(str(exported / "RP.dcm"))
    plan = parser.GetPlan()
    assert plan["rxdose"] == 2100 and plan["brachy"] is False
    (beam,) = parser.GetReferencedBeamsInFraction().values()
    assert beam["name"] == "IOERT" and beam["dose"] == pytest.approx(2100.0)
    assert "MeV" in beam["description"]
