"""RT Beams and RT Brachy Treatment Records (PS3.3 A.29, A.30) for deliveries recorded by hand.

Treatment records are normally written by the delivery system. An IORT delivery that no
record-and-verify system records (a mobile linac or 50 kV source, an afterloader without a
link) is entered at openiort's console; this writes it back to the hospital's systems as a
record that references the RT Plan it delivered, is marked as manually recorded (series
description; Treatment Verification Status left empty: no record-and-verify system verified it
against the plan) and carries what was delivered: an RT Brachy record for a plan with
application setups (HDR, 50 kV x-rays), an RT Beams record for a beam plan (electrons). An
interrupted delivery stops the source where the delivered time ran out, or the beam at the
MU given (Treatment Termination Status OPERATOR); its remainder is a record of its own that
references the interrupted one.

One delivery gives one record: the SOP Instance UID is derived from the delivery's identity
(the caller's, such as the record database's plan and delivery ids; else the RT Plan's instance
and the delivery's sequence number), so exporting it again gives the same instance (a PACS
keeps one), never a second record of the same delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import RTPlanStorage

from openiort.io.dataset import read_dataset
from openiort.io.dicom_common import StudyInfo, base_dataset, da, ds, save, tm
from openiort.io.dicom_settings import stable_uid
from openiort.io.errors import DicomExportError

RT_BEAMS_TREATMENT_RECORD = "1.2.840.10008.5.1.4.1.1.481.4"
RT_BRACHY_TREATMENT_RECORD = "1.2.840.10008.5.1.4.1.1.481.6"
MANUAL_DESCRIPTION = "openiort: delivery recorded manually at the console"


@dataclass(frozen=True)
class RecordedDelivery:
    """One session as entered in openiort."""

    sequence: int  # 1, 2, ... within the plan
    delivered_at: datetime
    delivered_fraction: float  # of the plan's total time (1.0 = complete)
    interrupted: bool = False
    operator: str = ""  # Operators' Name (DICOM PN)
    remainder_of: int | None = None  # sequence of the interrupted delivery this completes
    already_delivered_fraction: float = 0.0  # of the plan, by earlier sessions of this course
    # The delivery's identity in the record (e.g. "plan 12 delivery 3"): when given, the record's
    # UID derives from it, so it stays the same across exports of the plan; else from the RT
    # Plan's instance and ``sequence``.
    identity: str | None = None
    remainder_of_uid: str | None = None  # the interrupted delivery's record, when identified
    fraction_number: int = 1  # the plan's fraction this session belongs to


def _copy(item: Dataset, keywords: tuple[str, ...]) -> Dataset:
    out = Dataset()
    for k in keywords:
        if k in item:
            setattr(out, k, item[k].value)
    return out


def record_uid(
    rp: Dataset, sequence: int, uid_root: str | None, identity: str | None = None
) -> str:
    if identity is not None:
        return stable_uid(uid_root, "treatment record", identity)
    return stable_uid(uid_root, "treatment record", str(rp.SOPInstanceUID), str(sequence))


def _delivered_points(
    channel: Dataset, start_s: float, end_s: float, began: datetime
) -> tuple[list[Dataset], float]:
    """The channel's control points over the window [start_s, end_s] of its own source time
    (cumulative time weights read as fractions of the channel's total time), each stamped with
    the time the source reached it (``began``: when the window started), and the time
    delivered in the window."""
    total = float(channel.ChannelTotalTime)
    final = float(channel.get("FinalCumulativeTimeWeight", 0) or 0) or 1.0
    a, b = max(start_s, 0.0), max(min(end_s, total), max(start_s, 0.0))
    points: list[Dataset] = []
    last: tuple[str, float] | None = None
    for cp in channel.BrachyControlPointSequence:
        seconds = float(cp.CumulativeTimeWeight) / final * total
        clipped = min(max(seconds, a), b) - a
        key = (str(list(cp.get("ControlPoint3DPosition", []))), round(clipped, 6))
        if key == last:
            continue
        last = key
        at = began + timedelta(seconds=clipped)
        item = Dataset()
        item.ReferencedControlPointIndex = cp.ControlPointIndex
        item.TreatmentControlPointDate = da(at)
        item.TreatmentControlPointTime = tm(at)
        item.ControlPointRelativePosition = cp.ControlPointRelativePosition
        points.append(item)
    while len(points) < 2:
        points.append(_copy(points[0], tuple(points[0].dir())))
    return points, b - a


def _check_fractions(delivery: RecordedDelivery) -> None:
    done = delivery.already_delivered_fraction
    if not 0.0 < delivery.delivered_fraction <= 1.0 or not 0.0 <= done < 1.0:
        raise DicomExportError("delivered fractions must lie in (0, 1]")
    if done + delivery.delivered_fraction > 1.0 + 1e-9:
        raise DicomExportError("the sessions deliver more than the plan")


def _general_record(
    rp: Dataset,
    delivery: RecordedDelivery,
    study: StudyInfo,
    series_instance_uid: str,
    uid_root: str | None,
) -> Dataset:
    """Patient, study, series, equipment and RT General Treatment Record of a record of ``rp``:
    a Brachy record for a plan with application setups, else a Beams record."""
    _check_fractions(delivery)
    if study.study_instance_uid != rp.StudyInstanceUID or study.patient_id != rp.PatientID:
        raise DicomExportError("the record must be in the RT Plan's study, for its patient")
    sop_class = record_class(rp)
    out = base_dataset(
        study,
        sop_class,
        record_uid(rp, delivery.sequence, uid_root, delivery.identity),
        "RTRECORD",
        series_instance_uid,
        5,
        MANUAL_DESCRIPTION,
    )
    when = delivery.delivered_at
    out.OperatorsName = delivery.operator
    out.InstanceNumber = delivery.sequence
    out.TreatmentDate = da(when)
    out.TreatmentTime = tm(when)
    plan_ref = Dataset()
    plan_ref.ReferencedSOPClassUID = RTPlanStorage
    plan_ref.ReferencedSOPInstanceUID = rp.SOPInstanceUID
    out.ReferencedRTPlanSequence = Sequence([plan_ref])
    if delivery.remainder_of is not None:
        earlier = Dataset()
        earlier.ReferencedSOPClassUID = sop_class
        earlier.ReferencedSOPInstanceUID = delivery.remainder_of_uid or record_uid(
            rp, delivery.remainder_of, uid_root
        )
        out.ReferencedTreatmentRecordSequence = Sequence([earlier])
    return out


def record_class(rp: Dataset) -> str:
    """The record's SOP class for the RT Plan ``rp``: Brachy with application setups, else Beams."""
    return (
        RT_BRACHY_TREATMENT_RECORD
        if "ApplicationSetupSequence" in rp
        else RT_BEAMS_TREATMENT_RECORD
    )


def _machine(planned: Dataset, study: StudyInfo) -> Dataset:
    """RT Treatment Machine Record item: the planned machine, in the recording institution."""
    machine = Dataset()
    machine.TreatmentMachineName = planned.get("TreatmentMachineName", "")
    machine.Manufacturer = planned.get("Manufacturer", "")
    machine.InstitutionName = study.institution_name
    machine.ManufacturerModelName = planned.get("ManufacturerModelName", "")
    machine.DeviceSerialNumber = planned.get("DeviceSerialNumber", "")
    return machine


def build_beams_treatment_record(
    rp: Dataset,
    delivery: RecordedDelivery,
    study: StudyInfo,
    series_instance_uid: str,
    uid_root: str | None = None,
) -> Dataset:
    """The record of ``delivery`` of the external-beam RT Plan ``rp`` (the IORT electron beam):
    each beam delivered ``delivered_fraction`` of its meterset after what earlier sessions of
    the fraction gave, its control points stamped from the session's start."""
    if "BeamSequence" not in rp:
        raise DicomExportError("a beams treatment record needs an external-beam RT Plan")
    out = _general_record(rp, delivery, study, series_instance_uid, uid_root)
    when = delivery.delivered_at
    beams = list(rp.BeamSequence)
    out.TreatmentMachineSequence = Sequence([_machine(beams[0], study)])
    group = rp.FractionGroupSequence[0]
    out.ReferencedFractionGroupNumber = group.FractionGroupNumber
    out.NumberOfFractionsPlanned = group.get("NumberOfFractionsPlanned", 1)
    out.PrimaryDosimeterUnit = beams[0].get("PrimaryDosimeterUnit", "MU")
    metersets = {
        int(ref.ReferencedBeamNumber): float(ref.get("BeamMeterset", 0) or 0)
        for ref in group.get("ReferencedBeamSequence", [])
    }
    session_beams = []
    for beam in beams:
        planned_mu = metersets.get(int(beam.BeamNumber), 0.0)
        start_mu = planned_mu * delivery.already_delivered_fraction
        given_mu = planned_mu * delivery.delivered_fraction
        item = _copy(
            beam,
            (
                "BeamName",
                "BeamDescription",
                "BeamType",
                "RadiationType",
                "NumberOfWedges",
                "NumberOfCompensators",
                "NumberOfBoli",
                "NumberOfBlocks",
            ),
        )
        item.ReferencedBeamNumber = beam.BeamNumber
        item.CurrentFractionNumber = delivery.fraction_number
        item.TreatmentDeliveryType = "TREATMENT"
        item.TreatmentTerminationStatus = "OPERATOR" if delivery.interrupted else "NORMAL"
        item.TreatmentVerificationStatus = ""  # no R&V system verified it against the plan
        item.SpecifiedPrimaryMeterset = ds(round(planned_mu - start_mu, 6))
        item.DeliveredPrimaryMeterset = ds(round(given_mu, 6))
        item.BeamLimitingDeviceLeafPairsSequence = Sequence(
            [
                _copy(device, ("RTBeamLimitingDeviceType", "NumberOfLeafJawPairs"))
                for device in beam.get("BeamLimitingDeviceSequence", [])
            ]
        )
        if "ApplicatorSequence" in beam:
            item.ApplicatorSequence = Sequence(
                [
                    _copy(a, ("ApplicatorID", "ApplicatorType", "ApplicatorDescription"))
                    for a in beam.ApplicatorSequence
                ]
            )
        planned_points = list(beam.ControlPointSequence)
        first = planned_points[0]
        points = []
        for index, (cp, meterset) in enumerate(
            ((planned_points[0], 0.0), (planned_points[-1], given_mu))
        ):
            point = Dataset()
            point.ReferencedControlPointIndex = cp.ControlPointIndex
            point.TreatmentControlPointDate = da(when)  # beam-on time is not recorded
            point.TreatmentControlPointTime = tm(when)
            point.SpecifiedMeterset = ds(round(planned_mu - start_mu if index else 0.0, 6))
            point.DeliveredMeterset = ds(round(meterset, 6))
            point.DoseRateSet = ""
            point.DoseRateDelivered = ""
            if index == 0:
                for keyword in (
                    "NominalBeamEnergy",
                    "GantryAngle",
                    "GantryRotationDirection",
                    "BeamLimitingDeviceAngle",
                    "BeamLimitingDeviceRotationDirection",
                    "PatientSupportAngle",
                    "PatientSupportRotationDirection",
                    "TableTopEccentricAngle",
                    "TableTopEccentricRotationDirection",
                    "TableTopVerticalPosition",
                    "TableTopLongitudinalPosition",
                    "TableTopLateralPosition",
                ):
                    if keyword in first:
                        setattr(point, keyword, first[keyword].value)
                if "NominalBeamEnergy" in point:
                    electrons = beam.get("RadiationType") == "ELECTRON"
                    point.NominalBeamEnergyUnit = "MEV" if electrons else "MV"
            points.append(point)
        item.NumberOfControlPoints = len(points)
        item.ControlPointDeliverySequence = Sequence(points)
        session_beams.append(item)
    out.TreatmentSessionBeamSequence = Sequence(session_beams)
    return out


def build_treatment_record(
    rp: Dataset,
    delivery: RecordedDelivery,
    study: StudyInfo,
    series_instance_uid: str,
    uid_root: str | None = None,
) -> Dataset:
    """The Brachy or Beams record of ``delivery``, as the RT Plan ``rp`` is encoded."""
    if record_class(rp) == RT_BRACHY_TREATMENT_RECORD:
        return build_brachy_treatment_record(rp, delivery, study, series_instance_uid, uid_root)
    return build_beams_treatment_record(rp, delivery, study, series_instance_uid, uid_root)


def build_brachy_treatment_record(
    rp: Dataset,
    delivery: RecordedDelivery,
    study: StudyInfo,
    series_instance_uid: str,
    uid_root: str | None = None,
) -> Dataset:
    """The record of ``delivery`` of the brachytherapy-encoded RT Plan ``rp``."""
    if "ApplicationSetupSequence" not in rp:
        raise DicomExportError("a brachytherapy treatment record needs a brachytherapy RT Plan")
    out = _general_record(rp, delivery, study, series_instance_uid, uid_root)
    when = delivery.delivered_at
    out.TreatmentMachineSequence = Sequence([_machine(rp.TreatmentMachineSequence[0], study)])
    # RT Brachy Session Record
    group = rp.FractionGroupSequence[0]
    out.ReferencedFractionGroupNumber = group.FractionGroupNumber
    out.NumberOfFractionsPlanned = group.get("NumberOfFractionsPlanned", 1)
    out.BrachyTreatmentTechnique = rp.BrachyTreatmentTechnique
    out.BrachyTreatmentType = rp.BrachyTreatmentType
    sources = []
    for source in rp.SourceSequence:
        recorded = _copy(
            source,
            (
                "SourceNumber",
                "SourceType",
                "SourceManufacturer",
                "SourceSerialNumber",
                "SourceIsotopeName",
                "SourceIsotopeHalfLife",
                "SourceStrengthUnits",
                "ReferenceAirKermaRate",
                "SourceStrength",
                "SourceStrengthReferenceDate",
                "SourceStrengthReferenceTime",
            ),
        )
        for keyword in ("SourceManufacturer", "SourceSerialNumber"):  # Type 2
            if keyword not in recorded:
                setattr(recorded, keyword, "")
        sources.append(recorded)
    out.RecordedSourceSequence = Sequence(sources)
    setups = []
    for setup in rp.ApplicationSetupSequence:
        channels = list(setup.ChannelSequence)
        planned_s = sum(float(c.ChannelTotalTime) for c in channels)
        # the channels are treated in order: this delivery covers the window of source time
        # from what earlier sessions delivered to that plus its own share
        window_start = planned_s * delivery.already_delivered_fraction
        window_end = window_start + planned_s * delivery.delivered_fraction
        recorded_channels = []
        channel_start = 0.0
        elapsed = 0.0
        for channel in channels:
            points, given = _delivered_points(
                channel,
                window_start - channel_start,
                window_end - channel_start,
                when + timedelta(seconds=elapsed),
            )
            channel_start += float(channel.ChannelTotalTime)
            elapsed += given
            item = _copy(
                channel,
                (
                    "ChannelNumber",
                    "ChannelLength",
                    "SourceMovementType",
                    "SourceApplicatorNumber",
                    "SourceApplicatorID",
                    "SourceApplicatorType",
                    "SourceApplicatorName",
                    "SourceApplicatorLength",
                    "TransferTubeNumber",
                    "TransferTubeLength",
                    "ReferencedROINumber",
                    "ReferencedSourceNumber",
                ),
            )
            item.NumberOfControlPoints = len(points)
            item.BrachyControlPointDeliveredSequence = Sequence(points)
            item.SpecifiedChannelTotalTime = channel.ChannelTotalTime
            item.DeliveredChannelTotalTime = ds(round(given, 6))
            recorded_channels.append(item)
        record = _copy(
            setup,
            (
                "ApplicationSetupType",
                "ApplicationSetupName",
                "TotalReferenceAirKerma",
            ),
        )
        record.ReferencedBrachyApplicationSetupNumber = setup.ApplicationSetupNumber
        record.CurrentFractionNumber = delivery.fraction_number
        record.TreatmentDeliveryType = "TREATMENT"
        record.TreatmentTerminationStatus = "OPERATOR" if delivery.interrupted else "NORMAL"
        # Type 2, empty: no record-and-verify system verified this delivery against the plan
        record.TreatmentVerificationStatus = ""
        record.RecordedChannelSequence = Sequence(recorded_channels)
        setups.append(record)
    out.TreatmentSessionApplicationSetupSequence = Sequence(setups)
    return out


def write_treatment_records(
    rp_path: Path,
    deliveries: list[RecordedDelivery],
    out_dir: Path,
    uid_root: str | None = None,
    institution_name: str = "",
) -> list[Path]:
    """``RT_<sequence>.dcm`` for each delivery of the RT Plan in ``rp_path``, one series in the
    plan's study (nothing is written if one cannot be built)."""
    rp = read_dataset(rp_path)
    study = StudyInfo(
        patient_name=str(rp.get("PatientName", "")),
        patient_id=str(rp.get("PatientID", "")),
        when=datetime.now().astimezone().replace(microsecond=0),
        study_instance_uid=str(rp.StudyInstanceUID),
        frame_of_reference_uid=str(rp.get("FrameOfReferenceUID", "")),
        study_id=str(rp.get("StudyID", "")),
        study_description=str(rp.get("StudyDescription", "")),
        accession_number=str(rp.get("AccessionNumber", "")),
        patient_birth_date=str(rp.get("PatientBirthDate", "")),
        patient_sex=str(rp.get("PatientSex", "")),
        referring_physician_name=str(rp.get("ReferringPhysicianName", "")),
        institution_name=institution_name,
        uid_prefix=None if uid_root is None else uid_root.rstrip(".") + ".",
        study_date=str(rp.get("StudyDate", "")),
        study_time=str(rp.get("StudyTime", "")),
    )
    series = stable_uid(uid_root, "treatment records", str(rp.SOPInstanceUID))
    records = [
        (f"RT_{d.sequence:03d}.dcm", build_treatment_record(rp, d, study, series, uid_root))
        for d in deliveries
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, dataset in records:
        save(dataset, out_dir / name)
        written.append(out_dir / name)
    return written
