"""The plan page's download of RT Treatment Records after delivery (issue 16): an interrupted
session and its remainder, recorded in the web app, come back as two records that reference
the RT Plan in the same zip, marked as manually recorded; none before a delivery."""

from __future__ import annotations

import io
import zipfile

import pydicom
import pytest
from fastapi import FastAPI
from web_testkit import DemoPlan, api_client, seed_case, seed_plan

from openiort.io.treatment_record_writer import MANUAL_DESCRIPTION


def test_treatment_records_download_after_delivery(app: FastAPI, demo_plan: DemoPlan) -> None:
    case_id = seed_case(app, demo_plan.case_data)
    plan_id = seed_plan(app, demo_plan, case_id, "approved")
    phys = api_client(app, "phys")
    assert phys.get(f"/plans/{plan_id}/treatment-records.zip").status_code == 404
    assert "treatment-records.zip" not in phys.get(f"/plans/{plan_id}").text
    planned_min = demo_plan.plan_json["delivery"]["treatment_time_min"]
    diameter = f"{demo_plan.plan_json['applicator_diameter_cm']:g}"
    for entry in (
        {"time_min": planned_min, "interrupted": True, "given_time_min": 5.0},
        {"time_min": planned_min - 5.0},
    ):
        r = phys.post(f"/api/plans/{plan_id}/deliveries", json={"applicator": diameter, **entry})
        assert r.status_code == 201, r.text
    assert f"/plans/{plan_id}/treatment-records.zip" in phys.get(f"/plans/{plan_id}").text
    r = phys.get(f"/plans/{plan_id}/treatment-records.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert sorted(zf.namelist()) == ["dicom/RP.dcm", "dicom/RT_001.dcm", "dicom/RT_002.dcm"]
        rp = pydicom.dcmread(io.BytesIO(zf.read("dicom/RP.dcm")))
        first, second = (
            pydicom.dcmread(io.BytesIO(zf.read(f"dicom/RT_00{n}.dcm"))) for n in (1, 2)
        )
    for record in (first, second):
        assert record.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == rp.SOPInstanceUID
        assert record.SeriesDescription == MANUAL_DESCRIPTION
    given = [
        sum(
            float(c.DeliveredChannelTotalTime)
            for c in r.TreatmentSessionApplicationSetupSequence[0].RecordedChannelSequence
        )
        for r in (first, second)
    ]
    assert given == pytest.approx([300.0, planned_min * 60 - 300.0], abs=1e-3)
    assert second.ReferencedTreatmentRecordSequence[0].ReferencedSOPInstanceUID == (
        first.SOPInstanceUID
    )
    # The RT Plan carries the plan's version in its label.
    assert rp.RTPlanLabel.endswith("v1")
