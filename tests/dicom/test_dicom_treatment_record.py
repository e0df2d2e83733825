"""RT Brachy Treatment Record of deliveries recorded by hand (issue 16, "what comes back"):
an interrupted session and its remainder, each referencing the RT Plan, dciodvfy-clean, the
same instance when written again (never two records of one delivery)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pydicom
import pytest

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid
from openiort.io.dicom_export import export_plan
from openiort.io.errors import DicomExportError
from openiort.io.treatment_record_writer import (
    MANUAL_DESCRIPTION,
    RecordedDelivery,
    write_treatment_records,
)

SESSIONS = [
    RecordedDelivery(1, datetime(2026, 12, 7, 9, 30), 0.4, interrupted=True, operator="TECH^A"),
    RecordedDelivery(
        2,
        datetime(2026, 12, 7, 9, 45),
        0.6,
        operator="TECH^A",
        remainder_of=1,
        already_delivered_fraction=0.4,
    ),
]


def test_interrupted_delivery_and_remainder_records(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
    require_tool: Callable[[str], str],
) -> None:
    export_plan(phantom, dose, make_plan("hdr"), tmp_path / "plan", when=when)
    rp = pydicom.dcmread(tmp_path / "plan" / "RP.dcm")
    planned_s = sum(
        float(c.ChannelTotalTime) for c in rp.ApplicationSetupSequence[0].ChannelSequence
    )
    files = write_treatment_records(tmp_path / "plan" / "RP.dcm", SESSIONS, tmp_path / "rec")
    records = [pydicom.dcmread(f) for f in files]
    delivered = []
    for record in records:
        report = subprocess.run(
            [require_tool("dciodvfy"), str(record.filename)], capture_output=True, text=True
        )
        errors = [x for x in (report.stdout + report.stderr).splitlines() if x.startswith("Error")]
        assert errors == [] and "RTBrachyTreatmentRecord" in report.stdout + report.stderr
        assert record.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == rp.SOPInstanceUID
        assert record.StudyInstanceUID == rp.StudyInstanceUID
        assert record.SeriesDescription == MANUAL_DESCRIPTION
        setup = record.TreatmentSessionApplicationSetupSequence[0]
        delivered.append(
            sum(float(c.DeliveredChannelTotalTime) for c in setup.RecordedChannelSequence)
        )
    first, second = records
    assert first.TreatmentSessionApplicationSetupSequence[0].TreatmentTerminationStatus == (
        "OPERATOR"
    )
    assert second.TreatmentSessionApplicationSetupSequence[0].TreatmentTerminationStatus == (
        "NORMAL"
    )
    assert second.ReferencedTreatmentRecordSequence[0].ReferencedSOPInstanceUID == (
        first.SOPInstanceUID
    )
    assert delivered == pytest.approx([0.4 * planned_s, 0.6 * planned_s], abs=1e-5)
    # written again: the same instances, so a PACS holds one record per delivery
    again = write_treatment_records(tmp_path / "plan" / "RP.dcm", SESSIONS, tmp_path / "again")
    assert [pydicom.dcmread(f).SOPInstanceUID for f in again] == [r.SOPInstanceUID for r in records]


def test_more_than_the_plan_is_refused_and_a_beam_plan_gets_a_beams_record(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    export_plan(phantom, dose, make_plan("hdr"), tmp_path / "hdr")
    too_much = RecordedDelivery(2, datetime(2026, 12, 7), 0.8, already_delivered_fraction=0.4)
    with pytest.raises(DicomExportError, match="more than the plan"):
        write_treatment_records(tmp_path / "hdr" / "RP.dcm", [too_much], tmp_path / "r1")
    assert not (tmp_path / "r1").exists()
    # An electron (beam) plan: an RT Beams Treatment Record (issue 16), MU given = 40 % of plan.
    export_plan(phantom, dose, make_plan("electron"), tmp_path / "e")
    (record,) = write_treatment_records(tmp_path / "e" / "RP.dcm", SESSIONS[:1], tmp_path / "r2")
    beam = pydicom.dcmread(record).TreatmentSessionBeamSequence[0]
    assert float(beam.DeliveredPrimaryMeterset) == pytest.approx(0.4 * 2345.6, abs=1e-6)
    assert beam.TreatmentTerminationStatus == "OPERATOR"
