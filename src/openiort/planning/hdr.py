"""HDR Ir-192 brachytherapy planning for breast IORT: applicator, dwell-time optimisation,
TG-43 dose, coverage, hot spots and the TG-43 water-condition warnings.

The plan is made in five steps, each a plain function over plain data:

1. the applicator (:mod:`openiort.devices.hdr`) placed in the phantom's cavity gives the
   possible dwell positions;
2. prescription points lie at the prescription depth: on the sphere ``depth`` outside the
   balloon surface, or on the plane ``depth`` below the tissue surface under the surface
   applicator's catheters; points outside the body (air) are dropped;
3. dwell times are optimised so that the dose at the points equals the prescription, by
   non-negative least squares or by linear programming (least absolute deviation), optionally
   with a smoothness penalty on differences between neighbouring dwell times of a catheter;
   the times are then scaled so that the mean dose over the points is the prescription, and
   rounded to the afterloader's timer step
   (:mod:`openiort.planning.dwell_optimisation`);
4. the TG-43 dose (:mod:`openiort.dose.tg43`) is computed on the phantom grid with the rounded
   times;
5. coverage (target V100, V90), hot spots (V150, V200), dose at depth, structure doses and the
   warnings where TG-43's water conditions do not hold are reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import spatial

from openiort import RESEARCH_NOTICE, __version__
from openiort.anatomy.phantom import Phantom
from openiort.delivery import DeviceDataRef, HdrDelivery, HdrDwell
from openiort.devices.hdr import (
    ApplicatorError,
    BalloonApplicator,
    DwellGeometry,
    SurfaceApplicator,
    hdr_settings,
    load_source,
    water_conditions,
)
from openiort.devices.hdr_source import HdrSourceRecord, hdr_protocol
from openiort.dose.tg43 import (
    CGY_PER_GY,
    S_PER_H,
    Dwells,
    dose_rate_matrix,
    dwells_sha256,
)
from openiort.dosegrid import DoseGrid, Provenance
from openiort.engines import HdrTg43Engine
from openiort.grid import Grid
from openiort.plan_figures import HdrFigures
from openiort.planning.dwell_optimisation import (
    HdrPlanError,
    Method,
    deliverable_dwell_times,
    optimise_dwell_times,
)

# HdrPlanError lives with the optimiser (which raises it too) and is imported from here.
from openiort.planning.hdr_quality import (
    balloon_quality,
    balloon_skin_distance_mm,
    skin_distance_check,
)

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
ApplicatorKind = Literal["balloon", "surface"]
REPORT_DEPTHS_MM = (0, 5, 10, 20)


@dataclass
class HdrPlanResult:
    """An optimised HDR plan and its TG-43 dose (Gy per session, dose to water in water)."""

    delivery: HdrDelivery

    applicator: ApplicatorKind
    applicator_geometry: dict[str, object]
    source_id: str
    source_title: str
    source_status: str
    sk_u: float
    sk_is_example: bool
    prescription_gy: float
    prescription_depth_mm: float
    prescription_reference: str
    dwell_positions_mm: FloatArray
    dwell_directions: FloatArray
    dwell_catheter_index: NDArray[np.int64]  # 0-based; plan.json's dwell_catheters count from 1
    dwell_times_s: FloatArray
    method: Method
    smoothness: float
    prescription_points_gy: dict[str, float]
    target_definition: str
    target_volume_cc: float
    target_v100_percent: float
    target_v90_percent: float
    target_v150_percent: float
    target_v200_percent: float
    v150_cc: float
    v200_cc: float
    dose_at_depth_gy: dict[str, float]
    structure_max_gy: dict[str, float]
    structure_mean_gy: dict[str, float]
    grid: Grid
    dose_gy: FloatArray
    provenance: Provenance
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source_record: dict[str, Any] | None = None
    balloon_quality: dict[str, Any] | None = None

    @property
    def total_time_s(self) -> float:
        return float(self.dwell_times_s.sum())

    @property
    def treatment_time_min(self) -> float:
        return self.total_time_s / 60.0

    @property
    def trak_ugy_at_1m(self) -> float:
        """Total reference air kerma (ICRU 58/89): S_K x total dwell time, in uGy at 1 m
        (1 U = 1 uGy m^2 h^-1)."""
        return self.sk_u * self.total_time_s / S_PER_H

    def to_dose_grid(self) -> DoseGrid:
        return DoseGrid(
            grid=self.grid,
            dose_gy=self.dose_gy,
            medium="water_in_water",
            normalisation=(
                f"mean dose over the prescription points = {self.prescription_gy:g} Gy at "
                f"{self.prescription_depth_mm:g} mm from the {self.prescription_reference}, "
                "before rounding of the dwell times"
            ),
            provenance=self.provenance,
            notes=tuple(self.notes),
        )

    def figures(self) -> HdrFigures:
        """The plan figures of ``plan.json``, rounded as :meth:`to_dict` rounds them."""
        summary = self.to_dict()
        return HdrFigures.model_validate({k: summary[k] for k in HdrFigures.model_fields})

    def dwell_table(self) -> dict[str, Any]:
        """The console's dwell table: channel, position from the channel tip (mm), time (s)
        at the certificate's reference strength, and the total."""
        rows = [
            {
                "channel": d.channel,
                "from_tip_mm": round(float(d.from_tip_mm or 0.0), 1),
                "time_s": round(d.time_s, 1),
            }
            for d in self.delivery.dwells
        ]
        return {
            "rows": rows,
            "total_time_s": round(sum(r["time_s"] for r in rows), 1),
            "strength_u": self.sk_u,
            "strength_reference_utc": self.delivery.strength_reference_utc,
            "channel_length_mm": self.delivery.channel_length_mm,
        }

    def course(self) -> dict[str, Any]:
        d = self.delivery
        return {
            "fractions": d.fractions,
            "prescription_per_fraction_gy": self.prescription_gy,
            "total_prescription_gy": round(self.prescription_gy * d.fractions, 4),
            "min_interval_h": d.min_interval_h,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plan summary for ``plan.json`` and the report (no dose array)."""
        return {
            "dwell_table": self.dwell_table(),
            "course": self.course(),
            "source_record": self.source_record,
            "balloon_quality": self.balloon_quality,
            "technique": "hdr",
            "research_notice": RESEARCH_NOTICE,
            "applicator": self.applicator,
            "applicator_geometry": self.applicator_geometry,
            "source_id": self.source_id,
            "source_title": self.source_title,
            "source_data_status": self.source_status,
            "air_kerma_strength_u": self.sk_u,
            "air_kerma_strength_is_example": self.sk_is_example,
            "prescription_gy": self.prescription_gy,
            "prescription_depth_mm": self.prescription_depth_mm,
            "prescription_reference": self.prescription_reference,
            "dwell_positions_mm": self.dwell_positions_mm.round(3).tolist(),
            "dwell_directions": self.dwell_directions.round(6).tolist(),
            # Channel numbers as the afterloader and the dwell table count them (from 1).
            "dwell_catheters": (self.dwell_catheter_index + 1).tolist(),
            "dwell_times_s": self.dwell_times_s.round(3).tolist(),
            "total_time_s": round(self.total_time_s, 3),
            "treatment_time_min": round(self.treatment_time_min, 4),
            "trak_ugy_at_1m": round(self.trak_ugy_at_1m, 3),
            "optimisation": {"method": self.method, "smoothness": self.smoothness},
            "prescription_points_gy": _rounded(self.prescription_points_gy),
            "target_definition": self.target_definition,
            "target_volume_cc": round(self.target_volume_cc, 3),
            "coverage": {
                "target_v100_percent": round(self.target_v100_percent, 2),
                "target_v90_percent": round(self.target_v90_percent, 2),
            },
            "hot_spots": {
                "v150_cc": round(self.v150_cc, 3),
                "v200_cc": round(self.v200_cc, 3),
                "target_v150_percent": round(self.target_v150_percent, 2),
                "target_v200_percent": round(self.target_v200_percent, 2),
            },
            "dose_at_depth_gy": _rounded(self.dose_at_depth_gy),
            "structure_max_gy": _rounded(self.structure_max_gy),
            "structure_mean_gy": _rounded(self.structure_mean_gy),
            "dose_medium": "water_in_water (TG-43)",
            "dose_per": "session",
            "grid": self.grid.to_dict(),
            "provenance": self.provenance.to_dict(),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


def _rounded(d: dict[str, float], digits: int = 4) -> dict[str, float]:
    return {k: round(v, digits) for k, v in d.items()}


# ---------------------------------------------------------------------------------------------
# helpers on the phantom


def _positions(grid: Grid, mask: BoolArray) -> FloatArray:
    return grid.index_to_position_mm(np.argwhere(mask).astype(np.float64))


def _inside_grid(grid: Grid, points_mm: FloatArray) -> NDArray[np.bool_]:
    idx = grid.position_to_index(points_mm)
    upper = np.asarray(grid.shape, dtype=np.float64) - 0.5
    return np.all((idx >= -0.5) & (idx <= upper), axis=-1)


def _material_at(phantom: Phantom, points_mm: FloatArray) -> list[str]:
    idx = np.rint(phantom.grid.position_to_index(points_mm)).astype(np.int64)
    idx = np.clip(idx, 0, np.asarray(phantom.grid.shape) - 1)
    ids = phantom.material_ids[idx[:, 0], idx[:, 1], idx[:, 2]]
    return [phantom.materials[int(i)] for i in ids]


def _mask(phantom: Phantom, name: str) -> BoolArray:
    mask = phantom.structures.get(name)
    return np.zeros(phantom.grid.shape, dtype=bool) if mask is None else mask


def _material_mask(phantom: Phantom, name: str) -> BoolArray:
    if name not in phantom.materials:
        return np.zeros(phantom.grid.shape, dtype=bool)
    return phantom.material_mask(name)


def _required(phantom: Phantom) -> tuple[tuple[float, float, float], float, tuple[float, ...]]:
    missing = [
        name
        for name in ("applicator_centre_mm", "shaft_direction")
        if getattr(phantom, name) is None
    ]
    radius = phantom.cavity_radius_mm or phantom.applicator_radius_mm
    if radius is None:
        missing.append("cavity_radius_mm")
    if missing:
        raise HdrPlanError(
            "the phantom lacks " + ", ".join(missing) + ": an HDR applicator is placed in the "
            "cavity, which needs its centre, radius and the shaft direction"
        )
    assert phantom.applicator_centre_mm is not None and phantom.shaft_direction is not None
    return phantom.applicator_centre_mm, float(radius), phantom.shaft_direction  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# the plan


def plan_hdr(
    phantom: Phantom,
    prescription_gy: float,
    prescription_depth_mm: float,
    applicator: ApplicatorKind = "balloon",
    *,
    source_id: str | None = None,
    sk_u: float | None = None,
    smoothness: float = 0.0,
    method: Method = "nnls",
    surface_size_mm: tuple[float, float] | None = None,
    source_record: HdrSourceRecord | None = None,
    lumen_offsets_mm: tuple[float, ...] = (),
    fractions: int = 1,
    min_interval_h: float | None = None,
    applicator_model: str | None = None,
) -> HdrPlanResult:
    """Optimise an HDR plan in the phantom's cavity and compute its TG-43 dose.

    Parameters
    ----------
    phantom
        Phantom with ``applicator_centre_mm`` (cavity centre), ``cavity_radius_mm`` and
        ``shaft_direction``; structures ``target``, ``skin``, ``lung`` etc. are used when
        present.
    prescription_gy
        Dose per session at the prescription depth.
    prescription_depth_mm
        Depth of the prescription from the balloon surface (``balloon``) or below the tissue
        surface (``surface``); 0 prescribes to the applicator/tissue surface.
    applicator
        ``"balloon"`` (balloon filling the cavity, central catheter) or ``"surface"`` (flat
        multi-catheter applicator on the cavity floor).
    source_id
        TG-43 source (default from ``hdr_applicators.yaml``).
    sk_u
        Air-kerma strength at treatment in U; ``None`` uses the example strength and warns.
    smoothness, method
        See :func:`optimise_dwell_times`.
    surface_size_mm
        Surface applicator (width across, length along the catheters); default the cavity
        diameter both ways.
    source_record
        The department's source record (:mod:`openiort.devices.hdr_source`): the plan is
        computed with its model at the certificate's S_K and reference date (``source_id`` and
        ``sk_u`` must then be None).
    lumen_offsets_mm
        Off-axis lumens of a multi-lumen balloon (none: single lumen).
    fractions, min_interval_h
        The course: ``prescription_gy`` is per fraction.

    Raises
    ------
    HdrPlanError, ApplicatorError, UnknownSourceError
        For inputs that cannot give a valid plan (each message names the problem).
    """
    settings = hdr_settings()
    if not (isinstance(prescription_gy, int | float) and 0 < prescription_gy <= 100):
        raise HdrPlanError(f"prescription must be in (0, 100] Gy, got {prescription_gy!r}")
    if not (isinstance(prescription_depth_mm, int | float) and 0 <= prescription_depth_mm <= 50):
        raise HdrPlanError(
            f"prescription depth must be in [0, 50] mm, got {prescription_depth_mm!r}"
        )
    if applicator not in ("balloon", "surface"):
        raise HdrPlanError(f"unknown HDR applicator {applicator!r}; use 'balloon' or 'surface'")
    if source_record is not None:
        if source_id is not None or sk_u is not None:
            raise HdrPlanError("give the source record or a source id and S_K, not both")
        source_id, sk_u = source_record.source_model, source_record.certificate_sk_u
    if not (isinstance(fractions, int) and fractions >= 1):
        raise HdrPlanError(f"fractions must be a whole number >= 1, got {fractions!r}")
    sid = source_id or settings.default_source_id
    source = load_source(sid)
    sk_is_example = sk_u is None
    sk = settings.example_sk_u if sk_u is None else float(sk_u)
    if not (math.isfinite(sk) and sk > 0):
        raise HdrPlanError(f"air-kerma strength must be positive, got {sk_u!r} U")
    centre, radius, shaft = _required(phantom)
    grid = phantom.grid
    warnings: list[str] = []
    notes: list[str] = list(source.notes())

    device: BalloonApplicator | SurfaceApplicator
    if applicator == "balloon":
        b = settings.balloon
        device = BalloonApplicator(
            centre_mm=centre,
            radius_mm=radius,
            shaft_direction=shaft,  # type: ignore[arg-type]
            step_mm=b["step_mm"],
            wall_clearance_mm=min(b["wall_clearance_mm"], radius / 2),
            lumen_offsets_mm=tuple(float(o) for o in lumen_offsets_mm),
        )
        points = device.prescription_points(prescription_depth_mm, int(b["prescription_points"]))
        reference = "balloon surface"
        device_mask = device.inside_mask(grid)
        applicator_mask = device_mask
        if phantom.applicator_radius_mm is not None and abs(
            phantom.applicator_radius_mm - radius
        ) > max(grid.spacing_mm):
            warnings.append(
                f"The phantom's applicator radius ({phantom.applicator_radius_mm:g} mm) differs "
                f"from the cavity radius ({radius:g} mm); the balloon is modelled as filling "
                "the cavity, so structures built around the smaller applicator (the target "
                "rind) may not match the balloon."
            )
    else:
        device = SurfaceApplicator.for_cavity(centre, radius, shaft, surface_size_mm)  # type: ignore[arg-type]
        points = device.prescription_points(
            prescription_depth_mm, settings.surface["point_spacing_mm"]
        )
        reference = "tissue surface under the surface applicator"
        device_mask = device.flap_mask(grid)
        applicator_mask = _mask(phantom, "cavity") | _mask(phantom, "applicator") | device_mask
    geometry = device.dwell_geometry()
    _check_fit(grid, geometry, points)

    kept = _tissue_points(phantom, points)
    if not kept.any():
        raise HdrPlanError(
            "no prescription point lies in tissue: the prescription depth reaches beyond the "
            "body everywhere"
        )
    if not kept.all():
        warnings.append(
            f"{int((~kept).sum())} of {kept.size} prescription points lie outside the body "
            "(air) and were left out of the optimisation."
        )
    points = points[kept]
    skin_distance = None
    if isinstance(device, BalloonApplicator):
        skin_distance = balloon_skin_distance_mm(phantom, device)
        warnings.extend(skin_distance_check(skin_distance))

    rate = dose_rate_matrix(sid, points, geometry.positions_mm, geometry.directions)
    rate_gy_s = rate * sk / CGY_PER_GY / S_PER_H
    times = optimise_dwell_times(
        rate_gy_s, prescription_gy, geometry.neighbour_pairs(), smoothness, method
    )
    step = settings.dwell_time_resolution_s
    times = deliverable_dwell_times(times, rate_gy_s, prescription_gy, step)
    notes.append(
        f"Dwell times rounded to the afterloader timer step of {step:g} s; the dose is "
        "computed with the rounded times."
    )
    point_dose = rate_gy_s @ times

    dwells = Dwells(geometry.positions_mm, geometry.directions, times)
    from_tip = positions_from_tip_mm(geometry)
    protocol = hdr_protocol()
    if source_record is None:
        device_ref = DeviceDataRef(
            name=f"{source.source_id} ({source.title})",
            status="example" if sk_is_example else "department",
            version=source.reference,  # the TG-43 consensus data set the dose comes from
            sha256=source.data_sha256,
        )
    else:
        device_ref = DeviceDataRef(
            name=f"{source_record.afterloader_name}: {source.title}",
            status="department",
            version=source_record.version,
            effective_date=source_record.effective_date,
            commissioned_by=source_record.commissioned_by,
            serial=source_record.source_serial,
            sha256=source_record.sha256,
        )
        warnings.extend(source_record.warnings())
    delivery = HdrDelivery(
        device=device_ref,
        source_id=sid,
        applicator=applicator,
        air_kerma_strength_u=sk,
        strength_reference_utc=(
            None if source_record is None else source_record.certificate_reference_utc.isoformat()
        ),
        prescription_gy=float(prescription_gy),
        dwells=tuple(
            HdrDwell(
                channel=int(channel) + 1,  # afterloader channels count from 1
                position_mm=(float(p[0]), float(p[1]), float(p[2])),
                direction=(float(d[0]), float(d[1]), float(d[2])),
                time_s=float(t),
                from_tip_mm=round(float(tip), 3),
            )
            for p, d, channel, t, tip in zip(
                dwells.positions_mm,
                dwells.directions,
                geometry.catheter_index,
                times,
                from_tip,
                strict=True,
            )
        ),
        fractions=fractions,
        min_interval_h=min_interval_h,
        afterloader_name=None if source_record is None else source_record.afterloader_name,
        source_model_name=source.title,
        channel_length_mm=float(protocol["applicators"]["channel_length_mm"]),
        applicator_length_mm=float(protocol["applicators"]["applicator_length_mm"]),
        tip_offset_mm=float(protocol["applicators"]["tip_offset_mm"]),
        dose_reference_point_mm=_reference_point(points, point_dose, prescription_gy),
        applicator_model=applicator_model,
    )
    dose = HdrTg43Engine().dose_gy(delivery, phantom)

    tissue = ~applicator_mask & ~_material_mask(phantom, "air")
    target, target_definition = _target(phantom, device, prescription_depth_mm, tissue)
    if not target.any():
        raise HdrPlanError(f"the target ({target_definition}) holds no voxel of this grid")
    tv = target.sum()
    voxel_cc = grid.voxel_volume_cc

    def percent(mask: BoolArray, level: float) -> float:
        return float(100.0 * np.count_nonzero(dose[mask] >= level) / max(mask.sum(), 1))

    v150_cc = float(np.count_nonzero(dose[tissue] >= 1.5 * prescription_gy) * voxel_cc)
    v200_cc = float(np.count_nonzero(dose[tissue] >= 2.0 * prescription_gy) * voxel_cc)
    quality = None
    if isinstance(device, BalloonApplicator) and skin_distance is not None:
        quality = balloon_quality(
            phantom, dose, device, prescription_gy, v150_cc, v200_cc, skin_distance
        )
        warnings.extend(
            f"Balloon plan quality: {i['name']} {i['value_text']} exceeds the limit "
            f"({i['limit_text']}, {quality['protocol']})"
            for i in quality["indices"]
            if i["within"] is False
        )
    structure_max: dict[str, float] = {}
    structure_mean: dict[str, float] = {}
    for name, mask in phantom.structures.items():
        region = mask & tissue
        if name in ("applicator", "cavity") or not region.any():
            continue
        structure_max[name] = float(dose[region].max())
        structure_mean[name] = float(dose[region].mean())

    warnings.extend(
        water_condition_warnings(
            phantom, dose, prescription_gy, dwells, points, device_mask, applicator
        )
    )
    if sk_is_example:
        warnings.append(
            f"Air-kerma strength is the example value {sk:g} U, not a calibrated source: "
            "dwell times and treatment time scale as 1/S_K; enter the source certificate value "
            "decayed to the treatment date."
        )
    if not source.is_consensus:
        warnings.append(
            f"Source data {sid} are {source.status}, not the AAPM/ESTRO consensus dataset."
        )

    return HdrPlanResult(
        delivery=delivery,
        applicator=applicator,
        applicator_geometry=device.describe(),
        source_id=sid,
        source_title=source.title,
        source_status=source.status,
        sk_u=sk,
        sk_is_example=sk_is_example,
        prescription_gy=float(prescription_gy),
        prescription_depth_mm=float(prescription_depth_mm),
        prescription_reference=reference,
        dwell_positions_mm=geometry.positions_mm,
        dwell_directions=geometry.directions,
        dwell_catheter_index=geometry.catheter_index,
        dwell_times_s=times,
        method=method,
        smoothness=float(smoothness),
        prescription_points_gy={
            "n_points": float(points.shape[0]),
            "min": float(point_dose.min()),
            "mean": float(point_dose.mean()),
            "max": float(point_dose.max()),
        },
        target_definition=target_definition,
        target_volume_cc=float(tv * voxel_cc),
        target_v100_percent=percent(target, prescription_gy),
        target_v90_percent=percent(target, 0.9 * prescription_gy),
        target_v150_percent=percent(target, 1.5 * prescription_gy),
        target_v200_percent=percent(target, 2.0 * prescription_gy),
        v150_cc=v150_cc,
        v200_cc=v200_cc,
        dose_at_depth_gy=_dose_at_depths(sid, sk, device, geometry, times, phantom),
        structure_max_gy=structure_max,
        structure_mean_gy=structure_mean,
        grid=grid,
        dose_gy=dose,
        provenance=Provenance(
            engine="openiort.planning.hdr + openiort.dose.tg43 (AAPM TG-43U1 2D line source)",
            engine_version=__version__,
            device_data=f"{source.source_id}: {source.reference}",
            device_data_sha256=source.data_sha256,
            inputs_sha256=dwells_sha256(dwells, sid, sk),
            calibration=(
                "example air-kerma strength (not a calibrated source)"
                if sk_is_example
                else "air-kerma strength as given by the user"
                if source_record is None
                else f"certificate S_K {sk:g} U at {source_record.certificate_reference_utc:%Y-%m-%d %H:%M} UTC "
                f"(source {source_record.source_serial})"
            ),
        ),
        warnings=warnings,
        notes=notes,
        source_record=None if source_record is None else source_record.describe(),
        balloon_quality=quality,
    )


def _reference_point(
    points: FloatArray, dose_gy: FloatArray, prescription_gy: float
) -> tuple[float, float, float]:
    """The prescription point whose dose is nearest the prescription (the RT Plan's dose
    reference point)."""
    p = points[int(np.argmin(np.abs(dose_gy - prescription_gy)))]
    return (round(float(p[0]), 2), round(float(p[1]), 2), round(float(p[2]), 2))


def positions_from_tip_mm(geometry: DwellGeometry) -> FloatArray:
    """Each dwell position's distance from its channel's tip, as the afterloader counts it:
    the tip offset (``hdr_protocol.yaml``) plus the path from the channel's most distal
    possible position (each channel's positions are listed tip first)."""
    offset = float(hdr_protocol()["applicators"]["tip_offset_mm"])
    out = np.zeros(geometry.n)
    for channel in np.unique(geometry.catheter_index):
        idx = np.flatnonzero(geometry.catheter_index == channel)
        steps = np.linalg.norm(np.diff(geometry.positions_mm[idx], axis=0), axis=1)
        out[idx] = offset + np.concatenate([[0.0], np.cumsum(steps)])
    return out


def _check_fit(grid: Grid, geometry: DwellGeometry, points: FloatArray) -> None:
    if not np.all(_inside_grid(grid, geometry.positions_mm)):
        raise ApplicatorError("the applicator's dwell positions reach outside the phantom grid")
    if not np.any(_inside_grid(grid, points)):
        raise ApplicatorError("the prescription surface lies entirely outside the phantom grid")


def _tissue_points(phantom: Phantom, points: FloatArray) -> NDArray[np.bool_]:
    inside = _inside_grid(phantom.grid, points)
    materials = _material_at(phantom, points)
    return inside & np.array([m != "air" for m in materials], dtype=bool)


def _target(
    phantom: Phantom,
    device: BalloonApplicator | SurfaceApplicator,
    depth_mm: float,
    tissue: BoolArray,
) -> tuple[BoolArray, str]:
    grid = phantom.grid
    thickness = max(depth_mm, max(grid.spacing_mm))
    if isinstance(device, BalloonApplicator):
        if "target" in phantom.structures:
            return phantom.structures[
                "target"
            ] & tissue, "phantom structure 'target' outside the balloon"
        return (
            device.shell_mask(grid, thickness) & tissue,
            f"shell from the balloon surface to {thickness:g} mm (phantom has no 'target')",
        )
    slab = device.slab_mask(grid, thickness) & tissue
    if "breast" in phantom.structures:
        slab &= phantom.structures["breast"]
    return slab, (
        f"tissue under the catheter footprint ({device.width_mm:g} x {device.length_mm:g} mm) "
        f"from the tissue surface to {thickness:g} mm deep"
    )


def _dose_at_depths(
    source_id: str,
    sk_u: float,
    device: BalloonApplicator | SurfaceApplicator,
    geometry: DwellGeometry,
    times: FloatArray,
    phantom: Phantom,
) -> dict[str, float]:
    """Mean TG-43 dose (point evaluation, not voxels) at 0, 5, 10 and 20 mm depth, over the
    points of each depth surface that lie in tissue."""
    out: dict[str, float] = {}
    settings = hdr_settings()
    for depth in REPORT_DEPTHS_MM:
        if isinstance(device, BalloonApplicator):
            pts = device.prescription_points(depth, int(settings.balloon["prescription_points"]))
        else:
            pts = device.prescription_points(depth, settings.surface["point_spacing_mm"])
        keep = _tissue_points(phantom, pts)
        if not keep.any():
            continue
        rate = dose_rate_matrix(source_id, pts[keep], geometry.positions_mm, geometry.directions)
        out[str(depth)] = float((rate @ times).mean() * sk_u / CGY_PER_GY / S_PER_H)
    return out


# ---------------------------------------------------------------------------------------------
# TG-43 water conditions


def water_condition_warnings(
    phantom: Phantom,
    dose_gy: FloatArray,
    prescription_gy: float,
    dwells: Dwells,
    prescription_points_mm: FloatArray,
    device_mask: BoolArray,
    applicator: ApplicatorKind,
) -> list[str]:
    """Where TG-43's assumption of water all round fails, and what it means for the dose.

    Checks: the body surface (skin, or air outside the body) near the dwell positions (missing
    backscatter: TG-43 overestimates the dose near the skin and at the prescription depth);
    air in the cavity outside the applicator inside the dose region (air gaps, open cavity);
    lung and bone inside the dose region (TG-43 treats them as water).
    """
    conditions = water_conditions()
    grid = phantom.grid
    warnings: list[str] = []
    region = dose_gy >= float(conditions["dose_region_fraction"]) * prescription_gy
    voxel_cc = grid.voxel_volume_cc
    scatter = conditions["scatter"]
    kassas = [s for s in scatter if "balloon_diameter_cm" in s]
    kirisits = next((s for s in scatter if s.get("value_percent") == 7), None)

    surface = _mask(phantom, "skin")
    air = _material_mask(phantom, "air")
    outside_air = air & ~_mask(phantom, "cavity") & ~device_mask
    if not surface.any():
        surface = outside_air
    if surface.any():
        tree = spatial.cKDTree(_positions(grid, surface))
        dwell_gap = float(tree.query(dwells.positions_mm[dwells.times_s > 0])[0].min())
        beyond = float(tree.query(prescription_points_mm)[0].min())
        if dwell_gap <= float(conditions["skin_check_distance_mm"]):
            effect = "; ".join(
                f"{s['value']:.3f} for a {s['balloon_diameter_cm']} cm balloon" for s in kassas
            )
            ref = kassas[0]["source"] if kassas else ""
            msg = (
                f"Near skin: the body surface is {dwell_gap:.1f} mm from the nearest dwell "
                f"position and {beyond:.1f} mm beyond the nearest prescription point. TG-43 "
                "assumes full scatter in unbounded water, so it overestimates the dose near the "
                "skin and at the prescription depth where little tissue lies beyond. For "
                "balloon applicators, Monte Carlo gives full-scatter/limited-scatter dose "
                f"ratios of {effect} at 1 cm from the balloon with no tissue beyond the "
                f"prescription line ({ref})."
            )
            if kirisits:
                msg += (
                    f" Scatter conditions add a typical {kirisits['value_percent']} % (k=1) "
                    f"uncertainty for breast balloon HDR ({kirisits['source']})."
                )
            msg += " The skin dose shown is an upper estimate; model-based (TG-186) dose "
            msg += "calculation is needed for an accurate value."
            warnings.append(msg)

    cavity_air = air & _mask(phantom, "cavity") & ~device_mask & region
    if cavity_air.any():
        what = (
            "the open cavity above the surface applicator"
            if applicator == "surface"
            else "air gaps between the balloon and the cavity wall"
        )
        warnings.append(
            f"Air: {cavity_air.sum() * voxel_cc:.1f} cc of air in {what} lies where the dose "
            f"is >= {100 * conditions['dose_region_fraction']:.0f} % of the prescription. "
            "TG-43 computes as if it were water: tissue beyond air gets less scatter (dose "
            "lower than shown) and the geometry may differ from the model; fill the cavity "
            "with saline or bolus, or check with model-based dose calculation."
        )

    for name, label, meaning in (
        (
            "lung",
            "lung",
            "TG-43 treats lung (about a quarter of water's density) as water: attenuation "
            "and scatter differ, so dose in and beyond the lung is uncertain; use model-based "
            "(TG-186) dose calculation for lung dose.",
        ),
        (
            "ribs",
            "rib bone",
            "TG-43 treats bone as water: the dose to bone itself and just beyond it differs "
            "by a few per cent at Ir-192 energies; reported rib doses are water doses.",
        ),
    ):
        mask = _mask(phantom, name) & region
        if mask.any():
            warnings.append(
                f"{label.capitalize()}: {mask.sum() * voxel_cc:.1f} cc of {label} receives >= "
                f"{100 * conditions['dose_region_fraction']:.0f} % of the prescription "
                f"(TG-43 maximum {dose_gy[mask].max():.2f} Gy). {meaning}"
            )
    return warnings


def plan_hdr_from_case(
    case: Any, phantom: Phantom, applicator: ApplicatorKind = "balloon", **kwargs: Any
) -> HdrPlanResult:
    """:func:`plan_hdr` with the case's prescription and the applicator's default depth.

    ``case`` is an :class:`openiort.case.Case` with ``intent.technique == "hdr"``; keyword
    arguments go to :func:`plan_hdr` (``prescription_depth_mm`` overrides the default).
    """
    intent = case.intent
    if intent.technique != "hdr":
        raise HdrPlanError(f"intent.technique is {intent.technique!r}, not 'hdr'")
    if intent.prescription_gy is None:
        raise HdrPlanError("intent.prescription_gy: required for an HDR plan, got null")
    settings = hdr_settings()
    defaults = settings.balloon if applicator == "balloon" else settings.surface
    depth = kwargs.pop("prescription_depth_mm", defaults["default_prescription_depth_mm"])
    return plan_hdr(phantom, float(intent.prescription_gy), float(depth), applicator, **kwargs)
