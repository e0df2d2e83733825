"""Retrieve a patient's CT series from a PACS: C-FIND (Patient Root, SERIES level), then C-GET.

C-GET brings the images back over the association that asked for them, so openiort needs no
listening port and the PACS no entry for it as a move destination (PS3.4 C.4.3). The PACS must
accept openiort's AE title for C-FIND and C-GET. Errors name the peer, never the patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
)

from openiort.io.dicom_common import save
from openiort.io.errors import DicomImportError, DicomSendError
from openiort.io.send import DEFAULT_CALLING_AE, Destination, _quiet_pynetdicom, parse_destination

PENDING = (0xFF00, 0xFF01)


@dataclass(frozen=True)
class CtSeriesInfo:
    study_instance_uid: str
    series_instance_uid: str
    description: str
    n_images: int | None


def _associate(dest: Destination, calling_ae: str, timeout_s: float, contexts: list[Any]) -> Any:
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    for context in contexts:
        ae.add_requested_context(context)
    return ae


def _established(ae: AE, dest: Destination, **kwargs: Any) -> Any:
    connected: list[bool] = []
    handlers = [
        *kwargs.pop("evt_handlers", []),
        (evt.EVT_CONN_OPEN, lambda _e: connected.append(True)),
    ]
    assoc = ae.associate(
        dest.host, dest.port, ae_title=dest.ae_title, evt_handlers=handlers, **kwargs
    )
    if not connected:
        raise DicomSendError(f"{dest}: peer unreachable (no TCP connection)")
    if assoc.is_rejected:
        raise DicomSendError(f"{dest}: association rejected; check the AE titles")
    if not assoc.is_established:
        raise DicomSendError(f"{dest}: association aborted or not accepted by the peer")
    return assoc


def find_ct_series(
    source: str | Destination,
    patient_id: str,
    calling_ae_title: str = DEFAULT_CALLING_AE,
    timeout_s: float = 30.0,
) -> list[CtSeriesInfo]:
    """The CT series the PACS holds for ``patient_id``."""
    dest = source if isinstance(source, Destination) else parse_destination(source)
    ae = _associate(
        dest, calling_ae_title, timeout_s, [PatientRootQueryRetrieveInformationModelFind]
    )
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.PatientID = patient_id
    query.Modality = "CT"
    query.StudyInstanceUID = ""
    query.SeriesInstanceUID = ""
    query.SeriesDescription = ""
    query.NumberOfSeriesRelatedInstances = ""
    found: list[CtSeriesInfo] = []
    with _quiet_pynetdicom():
        assoc = _established(ae, dest)
        try:
            for status, identifier in assoc.send_c_find(
                query, PatientRootQueryRetrieveInformationModelFind
            ):
                code = int(status.get("Status", -1)) if status else -1
                if code in PENDING and identifier is not None:
                    if str(identifier.get("Modality", "CT") or "CT") != "CT":
                        continue
                    count = identifier.get("NumberOfSeriesRelatedInstances")
                    found.append(
                        CtSeriesInfo(
                            str(identifier.get("StudyInstanceUID", "")),
                            str(identifier.get("SeriesInstanceUID", "")),
                            str(identifier.get("SeriesDescription", "") or ""),
                            int(count) if count not in (None, "") else None,
                        )
                    )
                elif code != 0x0000:
                    raise DicomSendError(f"{dest}: C-FIND failed (status 0x{code & 0xFFFF:04X})")
        finally:
            if assoc.is_established:
                assoc.release()
    return found


def fetch_ct_series(
    source: str | Destination,
    patient_id: str,
    out_dir: str | Path,
    series_instance_uid: str | None = None,
    calling_ae_title: str = DEFAULT_CALLING_AE,
    timeout_s: float = 60.0,
) -> list[Path]:
    """Retrieve one CT series of ``patient_id`` into ``out_dir`` (created; must be empty).

    Without ``series_instance_uid`` the patient must have exactly one CT series on the PACS;
    with several, the error lists them (UID, description, size) to choose from.
    """
    dest = source if isinstance(source, Destination) else parse_destination(source)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DicomImportError(f"{out}: exists and is not an empty directory")
    series = find_ct_series(dest, patient_id, calling_ae_title, timeout_s)
    if series_instance_uid is not None:
        chosen = [s for s in series if s.series_instance_uid == series_instance_uid]
        if not chosen:
            raise DicomImportError(f"{dest}: no CT series {series_instance_uid} for this patient")
    else:
        chosen = series
        if not series:
            raise DicomImportError(f"{dest}: no CT series for this patient")
        if len(series) > 1:
            listing = "; ".join(
                f"{s.series_instance_uid} ({s.description or 'no description'}, "
                f"{s.n_images if s.n_images is not None else '?'} images)"
                for s in series
            )
            raise DicomImportError(
                f"{dest}: {len(series)} CT series for this patient; choose one with --series: "
                + listing
            )
    target = chosen[0]
    ae = _associate(
        dest, calling_ae_title, timeout_s, [PatientRootQueryRetrieveInformationModelGet]
    )
    ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    received: list[Dataset] = []

    def on_store(event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # stored as openiort writes
        received.append(ds)
        return 0x0000

    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.PatientID = patient_id
    query.StudyInstanceUID = target.study_instance_uid
    query.SeriesInstanceUID = target.series_instance_uid
    with _quiet_pynetdicom():
        assoc = _established(
            ae,
            dest,
            ext_neg=[build_role(CTImageStorage, scp_role=True)],
            evt_handlers=[(evt.EVT_C_STORE, on_store)],
        )
        final = -1
        try:
            for status, _ in assoc.send_c_get(query, PatientRootQueryRetrieveInformationModelGet):
                final = int(status.get("Status", -1)) if status else -1
        finally:
            if assoc.is_established:
                assoc.release()
    if final not in (0x0000, 0xB000) or not received:
        raise DicomSendError(
            f"{dest}: C-GET of the CT series failed (status 0x{final & 0xFFFF:04X}, "
            f"{len(received)} images received)"
        )
    if target.n_images is not None and len(received) != target.n_images:
        raise DicomSendError(
            f"{dest}: C-GET returned {len(received)} of the series' {target.n_images} images"
        )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for number, ds in enumerate(
        sorted(received, key=lambda d: int(d.get("InstanceNumber", 0) or 0)), start=1
    ):
        path = out / f"CT_{number:04d}.dcm"
        save(ds, path)
        written.append(path)
    return written
