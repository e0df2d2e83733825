"""RT Plan IOD for the three IORT techniques.

- ``xray`` (50 kV miniature x-ray source in a spherical applicator) and ``hdr`` (Ir-192 stepping
  source): RT Brachy Application Setups, one application setup with the treatment machine, the
  source, and one channel per catheter with its dwell positions (pairs of control points) and
  times. For the x-ray source the source sits at the applicator centre for the whole treatment
  time (Source Movement Type FIXED). The 50 kV source is an electronic brachytherapy source
  (docs/dicom-conformance.md, "50 kV x-rays"): Source Isotope Name ``NONE: 50 kV x-ray``, a
  half-life of 1e10 days (no decay, never 0), its strength as the water dose rate at the
  prescription point (Source Strength Units DOSE_RATE_WATER, Gy/s; Reference Air Kerma Rate 0),
  tube potential and current in the Source Description, the source serial as Source Serial
  Number and the treatment machine's Device Serial Number.
- ``electron``: RT Beams with one static electron beam: intraoperative applicator (its diameter
  and bevel), nominal energy and monitor units (fraction group, and named in the beam's
  description); gantry, collimator and couch angles are nominal (0) because the mobile IORT
  linac is docked to the applicator, not set by angles. The beam-limiting device DICOM requires
  (type 1) is the applicator's aperture, given as X and Y jaws at +-radius (the linac has no
  jaws). A second dose reference (COORDINATES) lies on the clinical axis at R90 below the gland
  surface and carries the beam dose; the shielding disc is a general accessory of the beam.

Every plan carries the prescription (RT Prescription), one fraction (RT Fraction Scheme), the
patient position (RT Patient Setup) and its approval status (Approval).

What is read of the plan (:func:`read_export_plan`): ``technique``, ``case_id``, ``status``
and the typed ``delivery`` block (:mod:`openiort.delivery`: what approval seals, at reference
conditions), with the prescription's dose definition from ``prescription``. plan.json written
before deliveries were typed has no ``delivery`` block; its top-level keys are read instead:
``prescription.dose_gy`` (or ``prescription_gy``), ``prescription.dose_definition`` (or
``prescription_definition``); x-ray: ``applicator_diameter_cm``, ``treatment_time_min``;
electron: ``monitor_units``, ``energy_mev``, ``applicator_diameter_cm``, ``bevel_deg``; HDR:
``dwell_positions_mm`` (N x 3, LPS), ``dwell_times_s`` (N), ``dwell_catheters`` (N, optional,
channel per dwell), ``source_id``, ``air_kerma_strength_u`` (U = uGy m^2/h, the strength the
dwell times were computed with), ``applicator`` (name).

Export options, beside the plan (:class:`ExportOptions`), all optional: ``treatment_machine``,
``approved_by``, ``approved_at`` (ISO 8601), ``applicator_length_mm`` (connector to distal-most
source position; the Source Applicator attributes, which DICOM ties to it, are written only when
it is given), ``applicator_centre_mm`` (x-ray, when the phantom has none), ``source_isotope``
(HDR, default Ir-192).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, ValidationError
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import RTPlanStorage, RTStructureSetStorage

from openiort.datafiles import read_data
from openiort.delivery import (
    ElectronDelivery,
    HdrDelivery,
    XrayDelivery,
    parse_delivery,
)
from openiort.io.dicom_common import StudyInfo, base_dataset, da, ds, research_comment, tm
from openiort.io.errors import DicomExportError
from openiort.plan_document import Prescription

TECHNIQUES = ("xray", "electron", "hdr")
Technique = Literal["xray", "electron", "hdr"]
S_PER_H = 3600.0
APPROVED = {"approved": "APPROVED", "delivered": "APPROVED"}
DEFAULT_ISOTOPE = "Ir-192"
XRAY_SOURCE_MODEL = "50 kV x-ray"
# Half-life (days) written for the electronic source, which does not decay: 1e10 d makes the decay
# factor over a century 1 - 2.5e-6 (a zero half-life would divide by zero in any decay check).
NO_DECAY_HALF_LIFE_DAYS = 1.0e10

FloatArray = NDArray[np.float64]


@cache
def isotope_half_lives_days() -> dict[str, float]:
    rows = read_data("openiort.io", "data/brachy_isotopes.csv").rows()
    return {row["isotope"]: float(row["half_life_days"]) for row in rows}


class ExportOptions(BaseModel):
    """What the export reads beside the plan itself (none of it is in plan.json as openiort
    writes it: the treatment record and the caller add it)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    case_id: str | None = None
    status: str | None = None
    treatment_machine: str | None = None
    approved_by: str | None = None
    approved_at: str | None = None
    applicator_length_mm: float | None = None
    applicator_centre_mm: tuple[float, float, float] | None = None
    source_isotope: str | None = None


@dataclass(frozen=True)
class XraySettings:
    applicator_diameter_cm: float
    treatment_time_s: float
    source_model: str
    source_serial: str | None = None


@dataclass(frozen=True)
class ElectronDisc:
    """The shielding disc under the gland, exported as a general accessory of the beam."""

    type: str
    diameter_mm: float | None
    depth_mm: float | None
    layers: str  # "2 mm aluminium + 4 mm lead", empty when the plan does not say


@dataclass(frozen=True)
class ElectronSettings:
    monitor_units: float
    energy_mev: float
    applicator_diameter_cm: float
    bevel_deg: float
    machine_name: str | None = None
    entry_point_mm: tuple[float, float, float] | None = None  # clinical axis at the gland surface
    axis: tuple[float, float, float] | None = None  # into the tissue
    r90_depth_mm: float | None = None  # below the gland surface (bolus excepted), water
    disc: ElectronDisc | None = None


@dataclass(frozen=True)
class HdrSettings:
    positions_mm: FloatArray  # N x 3, LPS
    times_s: FloatArray  # N
    channels: NDArray[np.int64]  # N, catheter of each dwell
    air_kerma_strength_u: float
    source_id: str
    applicator: str
    # From the typed delivery and the department's source record (None in older plans).
    strength_reference: datetime | None = None
    source_model_name: str | None = None
    source_serial: str | None = None
    afterloader_name: str | None = None
    channel_length_mm: float | None = None
    applicator_length_mm: float | None = None
    tip_offset_mm: float | None = None
    applicator_model: str | None = None
    dose_reference_point_mm: tuple[float, float, float] | None = None
    fractions: int = 1


Settings = XraySettings | ElectronSettings | HdrSettings


@dataclass(frozen=True)
class ExportPlan:
    """What the RT Plan is made of, read once from a plan's JSON (:func:`read_export_plan`)."""

    technique: Technique
    prescription_gy: float
    dose_definition: str
    settings: Settings
    options: ExportOptions
    typed: bool  # from the typed delivery block (False: top-level keys of an older plan.json)


def _fail_validation(exc: ValidationError, block: str | None = None) -> DicomExportError:
    """The first error, named by its key (under ``block``, when given)."""
    first = exc.errors()[0]
    where = ".".join([*([block] if block else []), *(str(p) for p in first["loc"])])
    return DicomExportError(f"plan.json: {where or 'plan'}: {first['msg']}")


def _fail_delivery(exc: ValidationError) -> DicomExportError:
    """The first error of a delivery block, named by its key under ``delivery``."""
    first = exc.errors()[0]
    parts = [str(p) for p in first["loc"][1:]]  # without parse_delivery's own wrapper
    if parts and parts[0] in TECHNIQUES:  # the union's branch
        parts = parts[1:]
    return DicomExportError(f"plan.json: {'.'.join(['delivery', *parts])}: {first['msg']}")


def _positive(value: float, key: str) -> float:
    if not np.isfinite(value) or value <= 0:
        raise DicomExportError(f"plan.json: {key} must be a positive number, got {value!r}")
    return float(value)


def _bevel(value: float, key: str) -> float:
    if not 0 <= value < 90:
        raise DicomExportError(f"plan.json: {key} must be in [0, 90), got {value}")
    return float(value)


def _settings_of(delivery: XrayDelivery | ElectronDelivery | HdrDelivery) -> Settings:
    """The console settings of a typed delivery (validated by its model)."""
    if isinstance(delivery, XrayDelivery):
        return XraySettings(
            applicator_diameter_cm=delivery.applicator_diameter_cm,
            treatment_time_s=delivery.treatment_time_min * 60.0,
            source_model=XRAY_SOURCE_MODEL,
            source_serial=delivery.device.serial,
        )
    if isinstance(delivery, ElectronDelivery):
        place = delivery.placement
        disc = None
        if place.disc_type is not None:
            disc = ElectronDisc(place.disc_type, place.disc_diameter_mm, place.disc_depth_mm, "")
        return ElectronSettings(
            monitor_units=float(delivery.monitor_units),
            energy_mev=delivery.energy_mev,
            applicator_diameter_cm=delivery.applicator_diameter_cm,
            bevel_deg=delivery.bevel_deg,
            machine_name=delivery.device.name,
            entry_point_mm=place.entry_point_mm,
            axis=place.axis,
            disc=disc,
        )
    reference = delivery.strength_reference_utc
    return HdrSettings(
        positions_mm=np.array([d.position_mm for d in delivery.dwells], dtype=np.float64),
        times_s=np.array([d.time_s for d in delivery.dwells], dtype=np.float64),
        channels=np.array([d.channel for d in delivery.dwells], dtype=np.int64),
        air_kerma_strength_u=delivery.air_kerma_strength_u,
        source_id=delivery.source_id,
        applicator=delivery.applicator,
        strength_reference=None if reference is None else datetime.fromisoformat(reference),
        source_model_name=delivery.source_model_name,
        source_serial=delivery.device.serial,
        afterloader_name=delivery.afterloader_name,
        channel_length_mm=delivery.channel_length_mm,
        applicator_length_mm=delivery.applicator_length_mm,
        tip_offset_mm=delivery.tip_offset_mm,
        applicator_model=delivery.applicator_model,
        dose_reference_point_mm=delivery.dose_reference_point_mm,
        fractions=delivery.fractions,
    )


# --------------------------------------------------------------------------------------------
# plan.json written before deliveries were typed: its top-level keys


def _legacy_value(plan: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = plan.get(key)
    return default if value is None else value


def _number(plan: Mapping[str, Any], key: str, positive: bool = True) -> float:
    value = _legacy_value(plan, key)
    if value is None:
        raise DicomExportError(f"plan.json: {key} is required for a {plan.get('technique')} plan")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise DicomExportError(f"plan.json: {key} must be a number, got {value!r}") from exc
    if not np.isfinite(number):
        raise DicomExportError(f"plan.json: {key} must be a finite number, got {value!r}")
    return _positive(number, key) if positive else number


def prescription(plan: Mapping[str, Any]) -> tuple[float, str]:
    """(prescribed dose in Gy, dose definition text) of an older plan.json."""
    rx = plan.get("prescription")
    if isinstance(rx, Mapping) and rx.get("dose_gy") is not None:
        dose, definition = rx["dose_gy"], rx.get("dose_definition") or ""
    else:
        dose = _legacy_value(plan, "prescription_gy")
        definition = _legacy_value(
            plan, "prescription_definition", _legacy_value(plan, "dose_definition", "")
        )
    if dose is None:
        raise DicomExportError("plan.json: prescription.dose_gy is required")
    try:
        value = float(dose)
    except (TypeError, ValueError) as exc:
        raise DicomExportError(
            f"plan.json: prescription dose must be a number, got {dose!r}"
        ) from exc
    if not np.isfinite(value) or value <= 0:
        raise DicomExportError(f"plan.json: prescription dose must be positive, got {dose!r}")
    return value, str(definition or "")


def _legacy_settings(plan: Mapping[str, Any], technique: Technique) -> Settings:
    if technique == "xray":
        return XraySettings(
            applicator_diameter_cm=_number(plan, "applicator_diameter_cm"),
            treatment_time_s=_number(plan, "treatment_time_min") * 60.0,
            source_model=str(
                _legacy_value(plan, "source_id", _legacy_value(plan, "source", XRAY_SOURCE_MODEL))
            ),
        )
    if technique == "electron":
        return ElectronSettings(
            monitor_units=_number(plan, "monitor_units"),
            energy_mev=_number(plan, "energy_mev"),
            applicator_diameter_cm=_number(plan, "applicator_diameter_cm"),
            bevel_deg=_bevel(_number(plan, "bevel_deg", positive=False), "bevel_deg"),
        )
    positions = np.asarray(_legacy_value(plan, "dwell_positions_mm", []), dtype=np.float64)
    times = np.asarray(_legacy_value(plan, "dwell_times_s", []), dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1:] != (3,) or len(positions) == 0:
        raise DicomExportError("plan.json: dwell_positions_mm must be a non-empty N x 3 list (mm)")
    if times.shape != (len(positions),) or np.any(~np.isfinite(times)) or np.any(times < 0):
        raise DicomExportError("plan.json: dwell_times_s must hold one non-negative time per dwell")
    channels = np.asarray(
        _legacy_value(plan, "dwell_catheters", np.ones(len(positions))), dtype=np.int64
    )
    if channels.shape != (len(positions),):
        raise DicomExportError("plan.json: dwell_catheters must hold one channel per dwell")
    if channels.min() == 0:
        channels = channels + 1  # earlier releases counted catheters from 0; channels from 1
    rakr = _number(plan, "air_kerma_strength_u")  # 1 U = 1 uGy m^2/h = RAKR in uGy/h at 1 m
    source_id = str(_legacy_value(plan, "source_id", ""))
    if not source_id:
        raise DicomExportError("plan.json: source_id is required for an HDR plan")
    return HdrSettings(
        positions_mm=positions,
        times_s=times,
        channels=channels,
        air_kerma_strength_u=rakr,
        source_id=source_id,
        applicator=str(_legacy_value(plan, "applicator", "surface/balloon applicator")),
    )


def read_export_plan(plan: Mapping[str, Any]) -> ExportPlan:
    """What the RT Plan needs of ``plan``: its typed delivery, or for a plan.json written
    before deliveries were typed, its top-level keys (raises DicomExportError naming the key)."""
    technique = plan.get("technique")
    if technique not in TECHNIQUES:
        raise DicomExportError(
            f"plan.json: technique must be one of {TECHNIQUES}, got {technique!r}"
        )
    try:
        options = ExportOptions.model_validate(plan)
    except ValidationError as exc:
        raise _fail_validation(exc) from None
    if options.applicator_length_mm is not None:
        _positive(options.applicator_length_mm, "applicator_length_mm")
    if plan.get("delivery") is None:
        dose_gy, legacy_definition = prescription(plan)
        settings = _legacy_settings(plan, cast(Technique, technique))
        return ExportPlan(
            cast(Technique, technique), dose_gy, legacy_definition, settings, options, typed=False
        )
    try:
        delivery = parse_delivery(plan["delivery"])
    except ValidationError as exc:
        raise _fail_delivery(exc) from None
    if delivery.technique != technique:
        raise DicomExportError(
            f"plan.json: technique {technique!r} differs from the delivery's {delivery.technique!r}"
        )
    definition: str | None
    if isinstance(delivery, XrayDelivery):
        definition = delivery.dose_definition
    else:
        try:
            definition = Prescription.model_validate(plan.get("prescription")).dose_definition
        except ValidationError as exc:
            raise _fail_validation(exc, "prescription") from None
    settings = _settings_of(delivery)
    if isinstance(delivery, ElectronDelivery) and isinstance(settings, ElectronSettings):
        settings = _electron_extras(plan, settings, delivery.placement.bolus_mm)
    return ExportPlan(
        delivery.technique,
        delivery.prescription_gy,
        definition or "",
        settings,
        options,
        typed=True,
    )


def _electron_extras(
    plan: Mapping[str, Any], settings: ElectronSettings, bolus_mm: float
) -> ElectronSettings:
    """R90 (the dose reference's depth) and the disc's layers from the plan's figures."""
    r90 = plan.get("r90_measured_mm")
    depth = None
    if isinstance(r90, int | float) and np.isfinite(r90) and r90 - bolus_mm > 0:
        depth = float(r90) - bolus_mm
    disc = settings.disc
    figures = plan.get("disc")
    if disc is not None and isinstance(figures, Mapping):
        layers = figures.get("layers") or []
        text = " + ".join(
            f"{float(layer['thickness_mm']):g} mm {layer['material']}"
            for layer in layers
            if isinstance(layer, Mapping) and "thickness_mm" in layer and "material" in layer
        )
        disc = ElectronDisc(disc.type, disc.diameter_mm, disc.depth_mm, text)
    return ElectronSettings(
        monitor_units=settings.monitor_units,
        energy_mev=settings.energy_mev,
        applicator_diameter_cm=settings.applicator_diameter_cm,
        bevel_deg=settings.bevel_deg,
        machine_name=settings.machine_name,
        entry_point_mm=settings.entry_point_mm,
        axis=settings.axis,
        r90_depth_mm=depth,
        disc=disc,
    )


def _ref(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


def _position(values: Any) -> list[str]:
    return [ds(float(v)) for v in values]


def _brachy_channel(
    number: int,
    positions: np.ndarray,
    times_s: np.ndarray,
    movement: str,
    applicator: Mapping[str, Any] | None,
    channel_length_mm: float | None = None,
) -> Dataset:
    """One channel: a pair of control points (arrival, departure) per dwell position.

    ``applicator`` (id, type, name, length_mm, roi_number) is written when its length is known:
    DICOM requires Source Applicator Length with the other Source Applicator attributes.
    """
    steps = (
        np.linalg.norm(np.diff(positions, axis=0), axis=1) if len(positions) > 1 else np.zeros(0)
    )
    relative_mm = np.concatenate([[0.0], np.cumsum(steps)])  # from the first (distal) dwell
    cumulative = 0.0
    points = []
    for i, (pos, t) in enumerate(zip(positions, times_s, strict=True)):
        for j, weight in enumerate((cumulative, cumulative + float(t))):
            cp = Dataset()
            cp.ControlPointIndex = 2 * i + j
            cp.ControlPointRelativePosition = ds(round(float(relative_mm[i]), 3))
            cp.ControlPoint3DPosition = _position(pos)
            cp.CumulativeTimeWeight = ds(round(weight, 6))
            points.append(cp)
        cumulative += float(t)
    if len(positions) == 1:
        movement = "FIXED"  # a single dwell position: the source does not step
    channel = Dataset()
    channel.ChannelNumber = number
    # Control point relative positions count from the channel's most distal possible source
    # position (the first dwell listed); the channel length runs to the channel's tip.
    channel.ChannelLength = "" if channel_length_mm is None else ds(channel_length_mm)
    channel.ChannelTotalTime = ds(round(cumulative, 6))
    channel.SourceMovementType = movement
    if movement == "STEPWISE":
        channel.SourceApplicatorStepSize = ds(float(np.median(steps)))
    if applicator is not None:
        channel.SourceApplicatorNumber = number
        channel.SourceApplicatorID = str(applicator["id"])[:16]
        channel.SourceApplicatorType = str(applicator["type"])
        channel.SourceApplicatorName = str(applicator["name"])[:64]
        channel.SourceApplicatorLength = ds(float(applicator["length_mm"]))
        channel.ReferencedROINumber = applicator.get("roi_number") or ""
    if channel_length_mm is not None and applicator is not None:
        # One transfer tube per channel, numbered as the channel; it spans what the channel
        # length leaves beyond the applicator.
        channel.TransferTubeNumber = number
        channel.TransferTubeLength = ds(channel_length_mm - float(applicator["length_mm"]))
    else:
        channel.TransferTubeNumber = ""
    channel.ReferencedSourceNumber = 1
    channel.NumberOfControlPoints = len(points)
    channel.FinalCumulativeTimeWeight = ds(round(cumulative, 6))
    channel.BrachyControlPointSequence = Sequence(points)
    return channel


@cache
def xray_operating_point() -> tuple[float, float]:
    """(tube potential in kV, tube current in uA) of the 50 kV source (TG-292)."""
    row = read_data("openiort.io", "data/xray_source_operating_point.csv").rows()[0]
    return float(row["tube_potential_kv"]), float(row["tube_current_ua"])


def _xray_source(
    machine: Dataset,
    source: Dataset,
    settings: XraySettings,
    prescription_gy: float,
    dose_definition: str,
) -> None:
    """The 50 kV source as an electronic brachytherapy source (docs/dicom-conformance.md).

    It has no isotope, so nothing decays: the half-life is written as a value so large that a
    decay correction over any clinical interval is 1 (never 0, which a reader divides by). Its
    strength is what the plan used: the dose rate in water at the prescription point (Source
    Strength Units DOSE_RATE_WATER, Gy/s), with the Reference Air Kerma Rate 0 as the standard
    asks of a source that is not a gamma-emitting isotope."""
    kv, current_ua = xray_operating_point()
    operating = f"{kv:g} kV {current_ua:g} uA"
    machine.ManufacturerModelName = f"{kv:g} kV miniature x-ray source"[:64]
    if settings.source_serial:
        machine.DeviceSerialNumber = settings.source_serial[:64]
    source.SourceType = "POINT"
    source.SourceIsotopeName = f"NONE: {kv:g} kV x-ray"[:64]
    source.SourceIsotopeHalfLife = ds(NO_DECAY_HALF_LIFE_DAYS)
    source.ReferenceAirKermaRate = "0"
    source.SourceStrengthUnits = "DOSE_RATE_WATER"
    source.SourceStrength = ds(prescription_gy / settings.treatment_time_s)
    where = dose_definition or "prescription"
    source.SourceDescription = f"x-ray tube {operating}; strength = Gy/s in water at {where}"[:64]


def _brachy_modules(
    out: Dataset,
    plan: ExportPlan,
    when: datetime,
    applicator_centre_mm: tuple[float, float, float] | None,
    applicator_roi_number: int | None,
) -> None:
    settings, options = plan.settings, plan.options
    machine = Dataset()
    source = Dataset()
    source.SourceNumber = 1
    if isinstance(settings, XraySettings):
        diameter_cm = settings.applicator_diameter_cm
        centre = options.applicator_centre_mm or applicator_centre_mm
        if centre is None:
            raise DicomExportError(
                "x-ray plan: the applicator centre is unknown (phantom.applicator_centre_mm or "
                "plan.json applicator_centre_mm)"
            )
        positions = np.asarray([centre], dtype=np.float64).reshape(1, 3)
        times = np.array([settings.treatment_time_s])
        catheters = np.array([1])
        machine.TreatmentMachineName = (options.treatment_machine or "50 kV x-ray IORT")[:16]
        source_model = settings.source_model
        _xray_source(machine, source, settings, plan.prescription_gy, plan.dose_definition)
        rakr = 0.0  # no isotope: Total Reference Air Kerma is 0 (the strength is a water dose rate)
        applicator_id = f"sphere {diameter_cm:g} cm"
        applicator_name = f"spherical applicator {diameter_cm:g} cm diameter"
        applicator_type = "RIGID"
        movement = "FIXED"
    elif isinstance(settings, HdrSettings):
        positions, times, catheters = settings.positions_mm, settings.times_s, settings.channels
        rakr = settings.air_kerma_strength_u  # 1 U = 1 uGy m^2/h = RAKR in uGy/h at 1 m
        isotope = options.source_isotope or DEFAULT_ISOTOPE
        half_lives = isotope_half_lives_days()
        if isotope not in half_lives:
            raise DicomExportError(
                f"plan.json: source isotope {isotope!r} not one of {sorted(half_lives)}"
            )
        machine.TreatmentMachineName = (
            options.treatment_machine or settings.afterloader_name or "HDR afterloader"
        )[:16]
        source_model = settings.source_model_name or settings.source_id
        source.SourceType = "LINE"
        source.SourceIsotopeName = isotope
        source.SourceIsotopeHalfLife = ds(half_lives[isotope])
        source.ReferenceAirKermaRate = ds(rakr)
        if settings.strength_reference is not None:
            source.SourceDescription = f"{source_model}: certificate RAKR at its reference"[:64]
            if settings.source_serial:
                source.SourceSerialNumber = settings.source_serial[:64]
        else:
            source.SourceDescription = "example source: RAKR used for the dwell times"
        source.SourceStrengthUnits = "AIR_KERMA_RATE"
        applicator_name = settings.applicator_model or settings.applicator
        applicator_id = applicator_name
        applicator_type = "FLEXIBLE"
        movement = "STEPWISE"
    else:  # pragma: no cover - build_rtplan sends electron plans to _electron_modules
        raise TypeError(f"not a brachytherapy plan: {plan.technique}")
    source.SourceModelID = source_model[:16]
    if isinstance(settings, XraySettings) and settings.source_serial:
        source.SourceSerialNumber = settings.source_serial[:64]
    # A certificate's strength is stamped with the certificate's reference, never the export
    # time: a re-export must not move the same strength to a new date.
    reference = (
        settings.strength_reference
        if isinstance(settings, HdrSettings) and settings.strength_reference is not None
        else when
    )
    source.SourceStrengthReferenceDate = da(reference)
    source.SourceStrengthReferenceTime = tm(reference)
    if isinstance(settings, HdrSettings) and settings.dose_reference_point_mm is not None:
        point = out.DoseReferenceSequence[0]
        point.DoseReferenceStructureType = "COORDINATES"
        point.DoseReferencePointCoordinates = _position(settings.dose_reference_point_mm)
        point.DoseReferenceDescription = "prescription point"
    out.BrachyTreatmentTechnique = "INTRACAVITARY"
    out.BrachyTreatmentType = "HDR"
    out.TreatmentMachineSequence = Sequence([machine])
    out.SourceSequence = Sequence([source])

    applicator = None
    hdr = settings if isinstance(settings, HdrSettings) else None
    length_mm = options.applicator_length_mm or (hdr.applicator_length_mm if hdr else None)
    if length_mm is not None:
        applicator = {
            "id": applicator_id,
            "type": applicator_type,
            "name": applicator_name,
            "length_mm": length_mm,
            "roi_number": applicator_roi_number,
        }
    channels = []
    for number, catheter in enumerate(sorted(set(catheters.tolist())), start=1):
        sel = catheters == catheter
        channels.append(
            _brachy_channel(
                number,
                positions[sel],
                times[sel],
                movement,
                applicator,
                hdr.channel_length_mm if hdr else None,
            )
        )
    total_s = float(times.sum())
    setup = Dataset()
    setup.ApplicationSetupType = "INTRAOPERATIVE"
    setup.ApplicationSetupNumber = 1
    setup.ApplicationSetupName = f"IORT {plan.technique}: {applicator_name}"[:64]
    setup.TotalReferenceAirKerma = ds(rakr * total_s / S_PER_H)
    setup.ChannelSequence = Sequence(channels)
    out.ApplicationSetupSequence = Sequence([setup])


def r90_point_mm(settings: ElectronSettings) -> tuple[float, float, float] | None:
    """The dose reference point: on the clinical axis at R90 below the gland surface (LPS)."""
    if settings.entry_point_mm is None or settings.axis is None or settings.r90_depth_mm is None:
        return None
    entry = np.asarray(settings.entry_point_mm, dtype=np.float64)
    axis = np.asarray(settings.axis, dtype=np.float64)
    point = entry + settings.r90_depth_mm * axis / np.linalg.norm(axis)
    return (float(point[0]), float(point[1]), float(point[2]))


def _disc_accessory(disc: ElectronDisc) -> Dataset:
    """The shielding disc as a general accessory: it lies in the patient under the gland, not in
    the beam line, so neither a block (which needs a tray and an aperture in the head) nor a
    bolus fits it."""
    item = Dataset()
    item.GeneralAccessoryNumber = 1
    item.GeneralAccessoryID = f"DISC {disc.type}"[:16]
    parts = [f"shielding disc {disc.type}"]
    if disc.layers:
        parts.append(disc.layers)
    if disc.diameter_mm is not None:
        parts.append(f"diameter {disc.diameter_mm:.0f} mm")
    if disc.depth_mm is not None:
        parts.append(f"upper face {disc.depth_mm:.1f} mm below the gland surface")
    item.GeneralAccessoryDescription = ", ".join(parts)[:1024]
    return item


def _electron_modules(
    out: Dataset,
    settings: ElectronSettings,
    options: ExportOptions,
    isocentre_mm: tuple[float, float, float] | None,
    dose_gy: float | None = None,
    dose_reference_number: int | None = None,
) -> Dataset:
    """RT Beams module; returns the Referenced Beam item for the fraction group.

    The mobile IORT linac has no jaws: the beam-limiting device DICOM requires (type 1) is given
    as X and Y jaws at the applicator's aperture (+-radius), the applicator itself in the
    Applicator Sequence with its bevel (docs/electron-machine-data.md). ``dose_gy`` at the dose
    reference ``dose_reference_number`` (R90 on the clinical axis) is the beam's dose.
    """
    mu = settings.monitor_units
    energy = settings.energy_mev
    diameter_cm = settings.applicator_diameter_cm
    bevel = settings.bevel_deg
    applicator = Dataset()
    applicator.ApplicatorID = f"C{diameter_cm:g}B{bevel:g}"[:16]
    applicator.ApplicatorType = "INTRAOPERATIVE"
    applicator.ApplicatorDescription = (
        f"round IORT applicator {diameter_cm:g} cm, bevel {bevel:g} deg"
    )[:64]  # LO
    geometry = Dataset()
    geometry.ApplicatorApertureShape = "SYM_CIRCULAR"
    geometry.ApplicatorOpening = diameter_cm * 10.0  # FL, mm
    applicator.ApplicatorGeometrySequence = Sequence([geometry])

    cp0 = Dataset()
    cp0.ControlPointIndex = 0
    cp0.NominalBeamEnergy = ds(energy)
    cp0.GantryAngle = "0"
    cp0.GantryRotationDirection = "NONE"
    cp0.BeamLimitingDeviceAngle = "0"
    cp0.BeamLimitingDeviceRotationDirection = "NONE"
    cp0.PatientSupportAngle = "0"
    cp0.PatientSupportRotationDirection = "NONE"
    cp0.TableTopEccentricAngle = "0"
    cp0.TableTopEccentricRotationDirection = "NONE"
    cp0.TableTopVerticalPosition = ""
    cp0.TableTopLongitudinalPosition = ""
    cp0.TableTopLateralPosition = ""
    cp0.IsocenterPosition = _position(isocentre_mm) if isocentre_mm is not None else ""
    cp0.CumulativeMetersetWeight = "0"
    half_mm = diameter_cm * 5.0
    jaws = []
    for kind in ("X", "Y"):
        position = Dataset()
        position.RTBeamLimitingDeviceType = kind
        position.LeafJawPositions = [ds(-half_mm), ds(half_mm)]
        jaws.append(position)
    cp0.BeamLimitingDevicePositionSequence = Sequence(jaws)
    cp1 = Dataset()
    cp1.ControlPointIndex = 1
    cp1.CumulativeMetersetWeight = "1"
    if dose_reference_number is not None:
        for cp, coefficient in ((cp0, "0"), (cp1, "1")):
            item = Dataset()
            item.ReferencedDoseReferenceNumber = dose_reference_number
            item.CumulativeDoseReferenceCoefficient = coefficient
            cp.ReferencedDoseReferenceSequence = Sequence([item])

    beam = Dataset()
    beam.BeamNumber = 1
    beam.BeamName = "IOERT"
    beam.BeamDescription = (
        f"intraoperative electron beam {energy:g} MeV, applicator {diameter_cm:g} cm bevel "
        f"{bevel:g} deg, {mu:g} MU; angles nominal (docked mobile linac); X/Y jaws = "
        "applicator aperture"
    )
    beam.BeamType = "STATIC"
    beam.RadiationType = "ELECTRON"
    beam.TreatmentMachineName = (
        options.treatment_machine or settings.machine_name or "IORT linac"
    )[:16]
    beam.PrimaryDosimeterUnit = "MU"
    beam.TreatmentDeliveryType = "TREATMENT"
    beam.NumberOfWedges = 0
    beam.NumberOfCompensators = 0
    beam.NumberOfBoli = 0
    beam.NumberOfBlocks = 0
    beam.NumberOfControlPoints = 2
    beam.FinalCumulativeMetersetWeight = "1"
    devices = []
    for kind in ("X", "Y"):
        device = Dataset()
        device.RTBeamLimitingDeviceType = kind
        device.NumberOfLeafJawPairs = 1
        devices.append(device)
    # A mobile IORT linac has no jaws: X and Y stand for the circular applicator aperture.
    beam.BeamLimitingDeviceSequence = Sequence(devices)
    beam.ApplicatorSequence = Sequence([applicator])
    if settings.disc is not None:
        beam.GeneralAccessorySequence = Sequence([_disc_accessory(settings.disc)])
    beam.ControlPointSequence = Sequence([cp0, cp1])
    beam.ReferencedPatientSetupNumber = 1
    out.BeamSequence = Sequence([beam])

    ref = Dataset()
    ref.ReferencedBeamNumber = 1
    if dose_gy is not None:
        ref.BeamDose = ds(dose_gy)
    ref.BeamMeterset = ds(mu)
    return ref


def build_rtplan(
    plan: Mapping[str, Any] | ExportPlan,
    study: StudyInfo,
    series_instance_uid: str,
    sop_instance_uid: str,
    rtstruct_sop_instance_uid: str,
    patient_position: str,
    applicator_centre_mm: tuple[float, float, float] | None,
    applicator_roi_number: int | None = None,
    series_number: int = 4,
) -> Dataset:
    """RTPLAN dataset for an openiort plan (its JSON, or what :func:`read_export_plan` read
    of it; see the module docstring)."""
    export = plan if isinstance(plan, ExportPlan) else read_export_plan(plan)
    technique, options = export.technique, export.options
    dose_gy, definition = export.prescription_gy, export.dose_definition
    out = base_dataset(
        study,
        RTPlanStorage,
        sop_instance_uid,
        "RTPLAN",
        series_instance_uid,
        series_number,
        "openiort plan",
    )
    out.FrameOfReferenceUID = study.frame_of_reference_uid
    out.PositionReferenceIndicator = ""
    out.InstanceNumber = 1
    out.RTPlanLabel = f"IORT {technique}"[:16]
    out.RTPlanName = f"openiort {technique} IORT"
    out.RTPlanDescription = research_comment()
    out.RTPlanDate = da(study.when)
    out.RTPlanTime = tm(study.when)
    out.RTPlanGeometry = "PATIENT"
    out.PlanIntent = "CURATIVE"
    out.ReferencedStructureSetSequence = Sequence(
        [_ref(RTStructureSetStorage, rtstruct_sop_instance_uid)]
    )

    reference = Dataset()
    reference.DoseReferenceNumber = 1
    reference.DoseReferenceUID = study.uid()
    reference.DoseReferenceStructureType = "SITE"
    reference.DoseReferenceDescription = (definition or "prescription")[:64]
    reference.DoseReferenceType = "TARGET"
    reference.TargetPrescriptionDose = ds(dose_gy)
    references = [reference]
    r90_point = (
        r90_point_mm(export.settings) if isinstance(export.settings, ElectronSettings) else None
    )
    if r90_point is not None:
        # Electrons: the prescription point, on the clinical axis at the 90 % depth (R90).
        point = Dataset()
        point.DoseReferenceNumber = 2
        point.DoseReferenceUID = study.uid()
        point.DoseReferenceStructureType = "COORDINATES"
        point.DoseReferenceDescription = "R90: 90 % depth on the clinical axis"
        point.DoseReferencePointCoordinates = _position(r90_point)
        point.DoseReferenceType = "TARGET"
        point.TargetPrescriptionDose = ds(dose_gy)
        references.append(point)
    out.DoseReferenceSequence = Sequence(references)

    setup = Dataset()
    setup.PatientSetupNumber = 1
    setup.PatientPosition = patient_position
    out.PatientSetupSequence = Sequence([setup])

    group = Dataset()
    group.FractionGroupNumber = 1
    group.NumberOfFractionsPlanned = getattr(export.settings, "fractions", 1)
    if isinstance(export.settings, ElectronSettings):
        group.NumberOfBeams = 1
        group.NumberOfBrachyApplicationSetups = 0
        group.ReferencedBeamSequence = Sequence(
            [
                _electron_modules(
                    out,
                    export.settings,
                    options,
                    applicator_centre_mm,
                    dose_gy=dose_gy if r90_point is not None else None,
                    dose_reference_number=2 if r90_point is not None else None,
                )
            ]
        )
    else:
        group.NumberOfBeams = 0
        group.NumberOfBrachyApplicationSetups = 1
        ref = Dataset()
        ref.ReferencedBrachyApplicationSetupNumber = 1
        group.ReferencedBrachyApplicationSetupSequence = Sequence([ref])
        _brachy_modules(out, export, study.when, applicator_centre_mm, applicator_roi_number)
    out.FractionGroupSequence = Sequence([group])

    out.ApprovalStatus = APPROVED.get(options.status or "draft", "UNAPPROVED")
    if out.ApprovalStatus == "APPROVED":
        reviewed = study.when
        if options.approved_at:
            try:
                reviewed = datetime.fromisoformat(options.approved_at)
            except ValueError as exc:
                raise DicomExportError(
                    f"plan.json: approved_at {options.approved_at!r} is not ISO 8601"
                ) from exc
        out.ReviewDate = da(reviewed)
        out.ReviewTime = tm(reviewed)
        out.ReviewerName = options.approved_by or ""
    return out
