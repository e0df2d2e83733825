"""C-STORE to a real peer (dcmtk's storescp) and clear errors when the peer refuses."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pydicom
import pytest
import typer
from pydicom.uid import CTImageStorage
from pynetdicom import AE, evt
from typer.testing import CliRunner

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid
from openiort.io.commands import send
from openiort.io.dicom_export import export_plan
from openiort.io.errors import DicomImportError, DicomSendError
from openiort.io.send import parse_destination, send_directory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"storescp exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("storescp did not start listening")


@pytest.fixture
def storescp(tmp_path: Path, require_tool: Callable[[str], str]) -> Iterator[tuple[int, Path]]:
    """dcmtk's storescp on a free port of 127.0.0.1, storing exactly what it receives."""
    tool = require_tool("storescp")
    received = tmp_path / "received"
    received.mkdir()
    port = free_port()
    process = subprocess.Popen(
        [
            tool,
            "--aetitle",
            "PACS",
            "--output-directory",
            str(received),
            "--bit-preserving",
            "--acse-timeout",
            "10",
            "--socket-timeout",
            "20",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, process)
        yield port, received
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def exported(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    when: datetime,
    make_plan: Callable[[str], dict[str, Any]],
) -> Path:
    out = tmp_path / "export"
    export_plan(
        phantom,
        dose,
        make_plan("hdr"),
        out,
        patient_name="Müller^Zoë",
        patient_id="RT-1",
        when=when,
    )
    return out


def by_instance(files: list[Path]) -> dict[str, pydicom.Dataset]:
    datasets = [pydicom.dcmread(f) for f in files]
    return {str(d.SOPInstanceUID): d for d in datasets}


def test_storescp_receives_every_object_identical(
    storescp: tuple[int, Path], exported: Path
) -> None:
    port, received = storescp
    sent = sorted(exported.iterdir())
    results = send_directory(exported, f"PACS@127.0.0.1:{port}", timeout_s=20)
    assert len(results) == len(sent) and all(r.status == 0 for r in results)
    got = by_instance(sorted(received.iterdir()))
    expected = by_instance(sent)
    assert set(got) == set(expected)
    for uid, original in expected.items():
        copy = got[uid]
        # The data set (everything but the file meta, which the receiver writes) is identical,
        # element for element, pixel data and contours included.
        assert copy == original, original.Modality


def test_send_command_reports_and_exits_zero(storescp: tuple[int, Path], exported: Path) -> None:
    port, received = storescp
    app = typer.Typer()
    app.command()(send)
    result = CliRunner().invoke(app, [str(exported), "--to", f"PACS@127.0.0.1:{port}"])
    assert result.exit_code == 0, result.output
    assert f"stored {len(list(exported.iterdir()))} objects" in result.output
    assert len(list(received.iterdir())) == len(list(exported.iterdir()))


def test_corrupt_file_means_nothing_is_sent(storescp: tuple[int, Path], exported: Path) -> None:
    port, received = storescp
    victim = exported / "CT_0003.dcm"
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(DicomImportError, match=r"CT_0003\.dcm"):
        send_directory(exported, f"PACS@127.0.0.1:{port}")
    app = typer.Typer()
    app.command()(send)
    result = CliRunner().invoke(app, [str(exported), "--to", f"PACS@127.0.0.1:{port}"])
    assert result.exit_code == 2
    assert "error:" in result.output and "CT_0003.dcm" in result.output
    assert "Traceback" not in result.output
    assert list(received.iterdir()) == []


def test_unreachable_peer(exported: Path) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(DicomSendError, match="unreachable"):
        send_directory(exported, f"PACS@127.0.0.1:{port}", timeout_s=5)
    app = typer.Typer()
    app.command()(send)
    result = CliRunner().invoke(app, [str(exported), "--to", f"PACS@127.0.0.1:{port}"])
    assert result.exit_code == 1  # the peer, not the input
    assert "unreachable" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, [str(exported), "--to", "PACS-127.0.0.1"])
    assert result.exit_code == 2 and "AE@HOST:PORT" in result.output


def test_rejected_association_and_refused_sop_class(exported: Path) -> None:
    """A pynetdicom SCP that checks the called AE title and only stores CT images."""
    port = free_port()
    scp = AE(ae_title="RECORDS")
    scp.require_called_aet = True
    scp.add_supported_context(CTImageStorage)
    stored: list[str] = []

    def on_store(event: evt.Event) -> int:
        stored.append(str(event.dataset.SOPInstanceUID))
        return 0x0000

    server = scp.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    try:
        with pytest.raises(DicomSendError, match="association rejected"):
            send_directory(exported, f"WRONG@127.0.0.1:{port}", timeout_s=10)
        assert stored == []
        with pytest.raises(DicomSendError, match=r"3 of 23 objects not stored.*RP\.dcm"):
            send_directory(exported, f"RECORDS@127.0.0.1:{port}", timeout_s=10)
        assert len(stored) == 20  # the CT images went through
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    "bad", ["PACS127.0.0.1:104", "PACS@127.0.0.1", "A_TITLE_LONGER_THAN_16@h:104", "PACS@h:70000"]
)
def test_bad_destinations(bad: str) -> None:
    with pytest.raises(DicomSendError):
        parse_destination(bad)


def test_destination_parsed() -> None:
    dest = parse_destination("ARIA_RV@10.1.2.3:104")
    assert (dest.ae_title, dest.host, dest.port) == ("ARIA_RV", "10.1.2.3", 104)
