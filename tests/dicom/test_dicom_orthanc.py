"""A real PACS: Orthanc (Debian package ``orthanc``), started here in a temporary folder.

Its HTTP server refuses remote access (RemoteAccessAllowed false) and every request goes to
127.0.0.1. The tests C-STORE every object of one plan per technique and read them back over the
REST API (same attributes and values as the files sent); then retrieve a patient's CT with
``iort fetch`` (C-FIND, C-GET), plan on it and check that the new objects join its Study and
Frame of Reference.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
import yaml
from typer.testing import CliRunner

from openiort.anatomy.phantom import Phantom
from openiort.case import parse_case
from openiort.cli import app
from openiort.dosegrid import DoseGrid
from openiort.io.dicom_export import export_plan
from openiort.io.send import send_directory
from openiort.io.treatment_record_writer import RecordedDelivery, write_treatment_records
from openiort.planning.xray import plan_xray

DEMO = Path(__file__).resolve().parents[2] / "examples" / "left_upper_outer_30mm.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Orthanc:
    def __init__(self, http_port: int, dicom_port: int, log: Path) -> None:
        self.log = log
        self.http = f"http://127.0.0.1:{http_port}"
        self.dicom = f"ORTHANC@127.0.0.1:{dicom_port}"

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.http + path, timeout=30) as r:
            return bytes(r.read())

    def json(self, path: str, data: bytes | None = None) -> Any:
        request = urllib.request.Request(self.http + path, data=data)
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.loads(r.read())

    def instance(self, sop_instance_uid: str) -> pydicom.Dataset:
        (found,) = self.json("/tools/lookup", sop_instance_uid.encode())
        return pydicom.dcmread(BytesIO(self.get(f"/instances/{found['ID']}/file")))


@pytest.fixture(scope="module")
def orthanc(
    tmp_path_factory: pytest.TempPathFactory, require_tool: Callable[[str], str]
) -> Iterator[Orthanc]:
    tool = require_tool("Orthanc")
    folder = tmp_path_factory.mktemp("orthanc")
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "openiort-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "Plugins": [],
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": True,
        # openiort's AE, allowed to query and retrieve (C-FIND, C-GET) from 127.0.0.1
        "DicomModalities": {"openiort": ["OPENIORT", "127.0.0.1", 1]},
        "DicomCheckModalityHost": True,
        "StableAge": 1,
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = (folder / "orthanc.log").open("w")
    process = subprocess.Popen(
        [tool, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT, cwd=folder
    )
    server = Orthanc(http_port, dicom_port, folder / "orthanc.log")
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"Orthanc exited: {(folder / 'orthanc.log').read_text()[-2000:]}")
            try:
                server.json("/system")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("Orthanc did not start")
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def same_dataset(ours: pydicom.Dataset, theirs: pydicom.Dataset) -> list[str]:
    """Keywords of the attributes whose values differ (file meta information excepted)."""
    keys = set(ours.keys()) | set(theirs.keys())
    return sorted(
        str(ours[k].keyword if k in ours else theirs[k].keyword)
        for k in keys
        if (ours.get(k).value if k in ours else None)
        != (theirs.get(k).value if k in theirs else None)
    )


@pytest.mark.parametrize("technique", ["xray", "electron", "hdr"])
def test_orthanc_stores_every_object_unchanged(
    technique: str,
    orthanc: Orthanc,
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    files = export_plan(
        phantom, dose, make_plan(technique), tmp_path, patient_name="Müller^Zoë", when=when
    )
    # With the treatment records of an interrupted session and its rest (RT Beams for the
    # electron beam, RT Brachy for HDR and the 50 kV source).
    files += write_treatment_records(
        tmp_path / "RP.dcm",
        [
            RecordedDelivery(1, when, 0.25, interrupted=True),
            RecordedDelivery(2, when, 0.75, remainder_of=1, already_delivered_fraction=0.25),
        ],
        tmp_path,
    )
    results = send_directory(tmp_path, orthanc.dicom)
    assert len(results) == len(files) and all(r.status == 0 for r in results)
    for f in files:
        ours = pydicom.dcmread(f)
        assert same_dataset(ours, orthanc.instance(str(ours.SOPInstanceUID))) == [], f.name


@pytest.fixture(scope="module")
def patient_ct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    plan = plan_xray(parse_case(yaml.safe_load(DEMO.read_text())), spacing_mm=2.0)
    out = tmp_path_factory.mktemp("patient") / "ct"
    export_plan(
        plan.phantom,
        plan.dose,
        plan.to_json_dict(),
        out,
        patient_name="DOE^JANE",
        patient_id="DEMO-001",
    )
    (out / "RD.dcm").unlink()
    (out / "RP.dcm").unlink()
    return out


def test_fetch_a_ct_plan_on_it_and_send_back(
    orthanc: Orthanc, patient_ct: Path, tmp_path: Path
) -> None:
    send_directory(patient_ct, orthanc.dicom)
    fetched = tmp_path / "fetched"
    runner = CliRunner()
    result = runner.invoke(
        app, ["fetch", "--from", orthanc.dicom, "--patient", "DEMO-001", "--out", str(fetched)]
    )
    assert result.exit_code == 0, result.output
    originals = {str(pydicom.dcmread(f).SOPInstanceUID) for f in patient_ct.glob("CT_*.dcm")}
    got = [pydicom.dcmread(f) for f in fetched.iterdir()]
    assert {str(d.SOPInstanceUID) for d in got} == originals
    shutil.copy(patient_ct / "RS.dcm", tmp_path / "RS.dcm")
    out = tmp_path / "plan"
    result = runner.invoke(
        app,
        [
            "plan",
            str(DEMO),
            "--out",
            str(out),
            "--ct",
            str(fetched),
            "--rtstruct",
            str(tmp_path / "RS.dcm"),
            "--dicom",
        ],
    )
    assert result.exit_code == 0, result.output
    sent = send_directory(out, orthanc.dicom)  # the plan folder: its dicom/ only
    assert len(sent) == 3
    ct0 = got[0]
    for r in sent:
        ds = orthanc.instance(str(pydicom.dcmread(r.path).SOPInstanceUID))
        assert ds.StudyInstanceUID == ct0.StudyInstanceUID
        assert ds.FrameOfReferenceUID == ct0.FrameOfReferenceUID
    (study,) = orthanc.json("/tools/lookup", str(ct0.StudyInstanceUID).encode())
    series = orthanc.json(f"/studies/{study['ID']}/series")
    modalities = sorted(s["MainDicomTags"]["Modality"] for s in series)
    # the CT and its structure set, then the plan's three objects, in one study
    assert modalities == ["CT", "RTDOSE", "RTPLAN", "RTSTRUCT", "RTSTRUCT"]


def test_fetch_errors_name_the_peer(orthanc: Orthanc, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["fetch", "--from", orthanc.dicom, "--patient", "NOBODY", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2 and "no CT series" in result.output
    closed = f"ORTHANC@127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        app, ["fetch", "--from", closed, "--patient", "DEMO-001", "--out", str(tmp_path / "y")]
    )
    assert result.exit_code == 1 and "unreachable" in result.output


def test_orthanc_logged_no_error(orthanc: Orthanc) -> None:
    """No failed association (a test connection that never associates is logged as one) and no
    rejected object: Orthanc's error lines start with "E"."""
    errors = [line for line in orthanc.log.read_text().splitlines() if line.startswith("E")]
    assert errors == []
