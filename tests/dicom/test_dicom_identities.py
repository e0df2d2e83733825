"""Stable identities (issue 16, part 4): one Study per case, a new Series per export, a plan
label with the plan version, the department's settings, laterality, synthetic CT marked as
such; ``iort send`` on a plan folder sends only DICOM, with its C-ECHO in the same association.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from typer.testing import CliRunner

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid
from openiort.io.dicom_export import SYNTHETIC_CT_DESCRIPTION, export_plan
from openiort.io.dicom_settings import load_settings, stable_uid
from openiort.io.errors import DicomExportError
from openiort.io.plan_dir import write_plan_dir
from openiort.io.send import send_directory

ROOT = "1.2.826.0.1.3680043.10.999"
SETTINGS_YAML = f"""\
organisation_uid_root: "{ROOT}"
institution_name: "City Hospital"
department_name: "Radiation Oncology"
station_name: "IORT-PLAN-1"
treatment_machines:
  hdr: "FLEXITRON 1"
  xray: "INTRABEAM 1"
"""


def uids_of(ds: pydicom.Dataset) -> list[str]:
    found: list[str] = []
    ds.walk(lambda _, e: found.append(str(e.value)) if e.VR == "UI" and e.value else None)
    return found


def read_all(files: list[Path]) -> dict[str, pydicom.Dataset]:
    return {f.name: pydicom.dcmread(f) for f in files}


def test_one_study_per_case_new_series_per_export_and_settings(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    (tmp_path / "dicom.yaml").write_text(SETTINGS_YAML)
    settings = load_settings(tmp_path / "dicom.yaml")
    plan = make_plan("hdr")
    first = read_all(
        export_plan(
            phantom, dose, plan, tmp_path / "a", when=when, settings=settings, plan_version=1
        )
    )
    second = read_all(
        export_plan(
            phantom, dose, plan, tmp_path / "b", when=when, settings=settings, plan_version=2
        )
    )
    studies = {str(d.StudyInstanceUID) for d in [*first.values(), *second.values()]}
    assert studies == {stable_uid(ROOT + ".", "study", "TEST-001", "TEST-001")}
    for name in ("RS.dcm", "RD.dcm", "RP.dcm", "CT_0001.dcm"):
        assert first[name].SeriesInstanceUID != second[name].SeriesInstanceUID
        assert first[name].SOPInstanceUID != second[name].SOPInstanceUID
    assert (first["RP.dcm"].RTPlanLabel, second["RP.dcm"].RTPlanLabel) == (
        "IORT HDR v1",
        "IORT HDR v2",
    )
    for ds in first.values():
        private = [
            u for u in uids_of(ds) if not pydicom.uid.UID(u).is_valid or u.startswith("2.25")
        ]
        assert not private
        assert str(ds.SOPInstanceUID).startswith(ROOT + ".")
        assert ds.InstitutionName == "City Hospital"
        assert ds.InstitutionalDepartmentName == "Radiation Oncology"
        assert ds.StationName == "IORT-PLAN-1"
    machines = {
        str(e.value) for e in first["RP.dcm"].iterall() if e.keyword == "TreatmentMachineName"
    }
    assert machines == {"FLEXITRON 1"}
    # without a version the label says when the plan was made: two plans, two labels
    a = export_plan(
        phantom, dose, plan | {"created_utc": "2026-12-07T04:06:50+00:00"}, tmp_path / "c"
    )
    b = export_plan(
        phantom, dose, plan | {"created_utc": "2026-12-08T10:00:00+00:00"}, tmp_path / "d"
    )
    labels = {pydicom.dcmread(f[-1]).RTPlanLabel for f in (a, b)}
    assert labels == {"HDR 261207-0406", "HDR 261208-1000"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('organisation_uid_root: "1.02.3"', "not a UID root"),
        ("organisation_uid_root: 1.2.3.x", "not a UID root"),
        ("treatment_machines: {proton: A}", "unknown technique"),
        ("institute: x", "unknown key"),
        ("treatment_machines: {xray: 'A NAME LONGER THAN 16'}", "1-16 characters"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(DicomExportError, match=problem):
        load_settings(path)


def test_export_of_a_plan_folder_keeps_laterality_and_marks_the_ct_synthetic(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    from openiort.cli import app

    plan = make_plan("xray") | {"phantom": {"laterality": "right"}, "dose_medium": "water_in_water"}
    write_plan_dir(tmp_path / "plan", plan, phantom, dose)
    result = CliRunner().invoke(
        app,
        ["export", str(tmp_path / "plan"), "--dicom", str(tmp_path / "out"), "--plan-version", "3"],
    )
    assert result.exit_code == 0, result.output
    ct = pydicom.dcmread(tmp_path / "out" / "CT_0001.dcm")
    assert ct.Laterality == "R"
    assert list(ct.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert ct.SeriesDescription == SYNTHETIC_CT_DESCRIPTION
    assert pydicom.dcmread(tmp_path / "out" / "RP.dcm").RTPlanLabel == "IORT kV v3"


@pytest.fixture
def recording_scp() -> Iterator[tuple[int, dict[str, int]]]:
    """A pynetdicom storage SCP on 127.0.0.1 that counts connections, echoes and stores."""
    counts = {"connections": 0, "echoes": 0, "stores": 0}
    lock = threading.Lock()

    def bump(key: str, status: int | None = None) -> Callable[[Any], int | None]:
        def handler(_event: Any) -> int | None:
            with lock:
                counts[key] += 1
            return status

        return handler

    ae = AE(ae_title="PACS")
    ae.supported_contexts = AllStoragePresentationContexts
    ae.add_supported_context(Verification)
    server = ae.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[
            (evt.EVT_CONN_OPEN, bump("connections")),
            (evt.EVT_C_ECHO, bump("echoes", 0x0000)),
            (evt.EVT_C_STORE, bump("stores", 0x0000)),
        ],
    )
    try:
        yield int(server.server_address[1]), counts
    finally:
        server.shutdown()


def test_send_a_plan_folder_sends_only_dicom_with_echo_in_one_association(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
    recording_scp: tuple[int, dict[str, int]],
) -> None:
    port, counts = recording_scp
    folder = tmp_path / "plan-output"
    files = export_plan(phantom, dose, make_plan("xray"), folder / "dicom", when=when)
    (folder / "patient-summary.html").write_text("<html></html>")
    (folder / "plan.json").write_text("{}")
    results = send_directory(folder, f"PACS@127.0.0.1:{port}")
    assert len(results) == len(files)
    assert counts == {"connections": 1, "echoes": 1, "stores": len(files)}
    # a folder of DICOM files beside other files: the others are left out
    (folder / "dicom" / "notes.txt").write_text("not DICOM")
    assert len(send_directory(folder / "dicom", f"PACS@127.0.0.1:{port}")) == len(files)
