"""DICOM C-STORE of a directory of objects to a PACS or record-and-verify system (pynetdicom).

Only DICOM Part 10 files are sent (a plan folder's report and plan.json are left out; a plan
folder's ``dicom/`` is used when the folder itself holds none). Every file is read and checked
before the network is touched, so a corrupt file means nothing is sent. One association carries
everything: a C-ECHO (Verification) first, then the C-STOREs; no separate test connection. Errors name the peer and say what happened: unreachable (no TCP connection), association
rejected (with the peer's reason), aborted, a SOP class the peer does not accept, or a store
that the peer answered with a failure status.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from openiort.io.dataset import read_dataset
from openiort.io.errors import DicomImportError, DicomSendError

DEFAULT_CALLING_AE = "OPENIORT"
_DESTINATION = re.compile(
    r"^(?P<ae>[^@\\]{1,16})@(?P<host>[^:@\s]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$"
)
# C-STORE statuses that are warnings (PS3.4 B.2.3): stored, with coercion or a data mismatch.
WARNING_STATUSES = {0x0001, 0xB000, 0xB006, 0xB007}


@dataclass(frozen=True)
class Destination:
    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class StoreResult:
    path: Path
    sop_class_uid: str
    status: int

    @property
    def ok(self) -> bool:
        return self.status == 0x0000 or self.status in WARNING_STATUSES


def parse_destination(to: str) -> Destination:
    """``AE@HOST:PORT`` -> Destination; raises DicomSendError when malformed."""
    match = _DESTINATION.match(to.strip())
    if not match:
        raise DicomSendError(f"destination {to!r} is not AE@HOST:PORT (AE title 1-16 characters)")
    ae = match["ae"].strip()
    if not ae or not ae.isascii() or not ae.isprintable():
        raise DicomSendError(f"AE title {match['ae']!r} must be 1-16 printable ASCII characters")
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise DicomSendError(f"port {port} out of range 1-65535")
    return Destination(ae, match["host"].strip("[]"), port)


def is_dicom_file(path: Path) -> bool:
    """A DICOM Part 10 file: 128-byte preamble then ``DICM`` (PS3.10 7.1)."""
    try:
        with path.open("rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def dicom_files(directory: Path) -> list[Path]:
    """The DICOM files of ``directory`` (non-recursive; other files, such as a plan folder's
    report, are left out), or of its ``dicom/`` folder when it holds none itself (a plan
    folder written by ``iort plan --dicom``)."""
    if not directory.is_dir():
        raise DicomImportError(f"{directory}: not a directory")
    files = sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.upper() != "DICOMDIR"
    )
    found = [p for p in files if is_dicom_file(p)]
    if not found and (directory / "dicom").is_dir():
        return dicom_files(directory / "dicom")
    if not found:
        raise DicomImportError(f"{directory}: no DICOM files to send")
    return found


def _load(directory: Path) -> list[tuple[Path, Dataset]]:
    loaded = []
    for path in dicom_files(directory):
        dataset = read_dataset(path)
        for keyword in ("SOPClassUID", "SOPInstanceUID"):
            if not dataset.get(keyword):
                raise DicomImportError(f"{path}: missing {keyword}; not a storable DICOM object")
        meta = getattr(dataset, "file_meta", None)
        if meta is None or not meta.get("TransferSyntaxUID"):
            raise DicomImportError(f"{path}: no transfer syntax in the file meta information")
        loaded.append((path, dataset))
    return loaded


@contextmanager
def _quiet_pynetdicom() -> Iterator[None]:
    """pynetdicom logs dataset details at some levels; keep them out of the logs."""
    logger = logging.getLogger("pynetdicom")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def send_directory(
    directory: str | Path,
    to: str | Destination,
    calling_ae_title: str = DEFAULT_CALLING_AE,
    timeout_s: float = 30.0,
) -> list[StoreResult]:
    """C-STORE every DICOM file of ``directory`` (non-recursive) to ``to`` (``AE@HOST:PORT``).

    Returns one result per file (all successful or warning statuses).

    Raises
    ------
    DicomImportError
        A file that is not a readable DICOM object (nothing is sent).
    DicomSendError
        Unreachable peer, rejected or aborted association, a SOP class the peer does not
        accept, or failure statuses (the message lists the files).
    """
    dest = to if isinstance(to, Destination) else parse_destination(to)
    loaded = _load(Path(directory))
    ae = AE(ae_title=calling_ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    contexts: dict[str, set[str]] = {}
    for _, dataset in loaded:
        syntax = str(dataset.file_meta.TransferSyntaxUID)
        contexts.setdefault(str(dataset.SOPClassUID), set()).add(syntax)
    if len(contexts) > 127:  # one presentation context is Verification's
        raise DicomSendError(f"{len(contexts)} SOP classes: more than one association can carry")
    ae.add_requested_context(Verification)
    for sop_class, syntaxes in contexts.items():
        offered = [UID(s) for s in sorted(syntaxes)]
        for fallback in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            if fallback not in offered:
                offered.append(fallback)
        ae.add_requested_context(sop_class, offered)

    results: list[StoreResult] = []
    with _quiet_pynetdicom():
        connected: list[bool] = []
        assoc = ae.associate(
            dest.host,
            dest.port,
            ae_title=dest.ae_title,
            evt_handlers=[(evt.EVT_CONN_OPEN, lambda _event: connected.append(True))],
        )
        if not connected:
            raise DicomSendError(f"{dest}: peer unreachable (no TCP connection)")
        if assoc.is_rejected:
            reason = ""
            if assoc.acceptor.primitive is not None:
                primitive = assoc.acceptor.primitive
                reason = (
                    f" (result {primitive.result_str}, source {primitive.source_str}, "
                    f"reason {primitive.reason_str})"
                )
            raise DicomSendError(f"{dest}: association rejected{reason}; check the AE titles")
        if not assoc.is_established:
            raise DicomSendError(f"{dest}: association aborted or not accepted by the peer")
        failures: list[str] = []
        try:
            verification = [
                c for c in assoc.accepted_contexts if c.abstract_syntax == Verification and c.as_scu
            ]
            if verification:  # Verification inside the storage association (when accepted)
                echo = assoc.send_c_echo()
                if not echo or int(echo.get("Status", -1)) != 0x0000:
                    raise DicomSendError(f"{dest}: the peer did not answer the C-ECHO")
            for path, dataset in loaded:
                try:
                    status = assoc.send_c_store(dataset)
                except ValueError as exc:  # no accepted presentation context for the class
                    failures.append(f"{path.name}: not accepted ({exc})")
                    continue
                except RuntimeError as exc:
                    failures.append(f"{path.name}: association lost ({exc})")
                    break
                if not status or "Status" not in status:
                    failures.append(f"{path.name}: no response (timeout or abort)")
                    if not assoc.is_established:
                        break
                    continue
                result = StoreResult(path, str(dataset.SOPClassUID), int(status.Status))
                if not result.ok:
                    failures.append(f"{path.name}: status 0x{result.status:04X}")
                results.append(result)
        finally:
            if assoc.is_established:
                assoc.release()
    if failures:
        raise DicomSendError(
            f"{dest}: {len(failures)} of {len(loaded)} objects not stored: " + "; ".join(failures)
        )
    return results
