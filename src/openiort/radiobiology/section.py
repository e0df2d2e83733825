"""The radiobiology section of the plan report: IORT in the currency of EBRT (EQD2).

``build_radiobiology_section`` takes the plan's depth profile of dose to water per session
and its delivery time, and returns a :class:`RadiobiologySection`: EQD2 versus depth for
tumour and late-responding tissue, the EQD2 of reference EBRT schedules, the EQD2 of the
IORT given as a boost with whole-breast EBRT, a sensitivity table, every parameter with its
source and status, the warnings, and two inline SVG figures. The Jinja2 partial
``report/templates/sections/radiobiology.html`` renders it from a variable ``section``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from openiort import RESEARCH_NOTICE
from openiort.radiobiology import _validate
from openiort.radiobiology.course import course_bed
from openiort.radiobiology.errors import RadiobiologyError
from openiort.radiobiology.figures import (
    DASHES,
    LATE_COLOUR,
    TUMOUR_COLOUR,
    HLine,
    Series,
    line_chart_svg,
)
from openiort.radiobiology.inputs import LQ, ModelChoice, Rbe, Timing
from openiort.radiobiology.maps import DepthEQD2, depth_profile, eqd2_versus_depth, rbe_at_depth
from openiort.radiobiology.parameters import (
    ParameterRecord,
    RepairModel,
    Tissue,
    data_files_sha256,
    data_rows,
    get_tissue,
)
from openiort.radiobiology.response import RBE_DEFAULT_NOTE, tissue_response
from openiort.radiobiology.schedules import (
    Schedule,
    ScheduleResult,
    evaluate_schedule,
    get_schedule,
)

TECHNIQUES = {
    "xray": "50 kV x-rays",
    "electron": "electrons",
    "hdr": "HDR brachytherapy",
}
DEFAULT_EBRT_REFERENCE = ("conventional-50-25", "START-B", "FAST-Forward", "EORTC-boost")
DEFAULT_WHOLE_BREAST = "START-B"
# report-table layout (presentation, not physics): short profiles are tabulated in full,
# dense ones at these depths
MAX_TABLE_ROWS = 12
STANDARD_TABLE_DEPTHS_MM = (0.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0)

_RBE_CONTEXT = {
    "xray": "RBE of 50 kV x-rays: in-vitro values for low-energy x-rays are above 1 "
    "(1.2-1.6 against 200-220 kV, see the RBE table), no depth-dependent model for 50 kV IORT "
    "was retrieved, so none is applied by default; an RBE above 1 raises every x-ray EQD2",
    "electron": "RBE of MeV electrons at high single doses: reported below 1 without a number "
    "(Herskind et al. Radiat Oncol 2017;12:24), RBE 1.0 used",
    "hdr": "RBE of Ir-192 taken as 1.0",
}


@dataclass(frozen=True)
class RadiobiologySection:
    """Everything the report shows about radiobiology, JSON-ready through :meth:`to_dict`."""

    technique: str
    delivery_time_min: float
    model: str
    rbe_description: str
    tumour: DepthEQD2
    late: DepthEQD2
    ebrt_reference: tuple[tuple[ScheduleResult, ScheduleResult], ...]
    whole_breast: tuple[ScheduleResult, ScheduleResult]
    boost_sum_tumour_eqd2_gy: tuple[float, ...]
    boost_sum_late_eqd2_gy: tuple[float, ...]
    table: tuple[dict[str, float], ...]
    sensitivity: tuple[dict[str, object], ...]
    parameters_tumour: tuple[ParameterRecord, ...]
    parameters_late: tuple[ParameterRecord, ...]
    rbe_context: tuple[dict[str, str], ...]
    warnings: tuple[str, ...]
    figure_svg: str
    summation_figure_svg: str
    data_files: dict[str, str]
    notice: str = RESEARCH_NOTICE
    fractions: int = 1
    # A course (HDR): BED/EQD2 at the prescription per tissue, with incomplete repair between
    # fractions (openiort.radiobiology.course); empty for one fraction.
    course: tuple[dict[str, object], ...] = ()

    @property
    def technique_label(self) -> str:
        return TECHNIQUES.get(self.technique, self.technique)

    @property
    def depth_rows(self) -> list[dict[str, float]]:
        """Table rows at the table depths: dose, BED and EQD2 of each tissue, boost sums."""
        return [dict(r) for r in self.table]

    @property
    def ebrt_rows(self) -> list[dict[str, object]]:
        """One row per reference EBRT schedule: its EQD2 and BED for each tissue."""
        return [
            {
                "schedule_id": tum.schedule.schedule_id,
                "label": tum.schedule.label,
                "eqd2_tumour_gy": tum.eqd2_gy,
                "eqd2_late_gy": late.eqd2_gy,
                "bed_tumour_gy": tum.bed_gy,
                "bed_late_gy": late.bed_gy,
                "overall_time_days": tum.overall_time_days,
                "status": tum.schedule.status,
                "source": tum.schedule.source,
            }
            for tum, late in self.ebrt_reference
        ]

    @property
    def parameter_groups(self) -> list[tuple[str, tuple[ParameterRecord, ...]]]:
        return [
            (f"Tumour: {self.tumour.tissue.label}", self.parameters_tumour),
            (f"Late-responding tissue: {self.late.tissue.label}", self.parameters_late),
        ]

    def to_dict(self, include_figures: bool = False) -> dict[str, object]:
        """Plain JSON-serialisable content for plan.json (figures only when asked)."""
        wb_t, wb_l = self.whole_breast
        out: dict[str, object] = {
            "technique": self.technique,
            "dose_definition": "dose to water per session (V4.0 calibration or Monte Carlo)",
            "delivery_time_min": self.delivery_time_min,
            "model": self.model,
            "rbe": self.rbe_description,
            "tumour": self.tumour.to_dict(),
            "late": self.late.to_dict(),
            "depth_table": self.depth_rows,
            "ebrt_reference": self.ebrt_rows,
            "boost_with_whole_breast": {
                "whole_breast_schedule": wb_t.schedule.to_dict(),
                "whole_breast_eqd2_tumour_gy": wb_t.eqd2_gy,
                "whole_breast_eqd2_late_gy": wb_l.eqd2_gy,
                "eqd2_tumour_gy": list(self.boost_sum_tumour_eqd2_gy),
                "eqd2_late_gy": list(self.boost_sum_late_eqd2_gy),
                "method": "EQD2 of the IORT at each depth plus the whole-breast schedule's "
                "EQD2 (uniform dose assumed); repair between the courses complete",
            },
            "sensitivity": list(self.sensitivity),
            "rbe_context": list(self.rbe_context),
            "warnings": list(self.warnings),
            "data_files_sha256": dict(self.data_files),
            "notice": self.notice,
            "fractions": self.fractions,
            "course": list(self.course),
        }
        if include_figures:
            out["figure_svg"] = self.figure_svg
            out["summation_figure_svg"] = self.summation_figure_svg
        return out


def _table(
    depth: np.ndarray,
    dose: np.ndarray,
    table_depths_mm: Sequence[float] | None,
    rbe: float | tuple[Sequence[float], Sequence[float]],
    tissues: tuple[Tissue, Tissue],
    model: ModelChoice,
    timing: Timing,
    wb: tuple[ScheduleResult, ScheduleResult],
) -> tuple[dict[str, float], ...]:
    if table_depths_mm is None:
        if depth.size <= MAX_TABLE_ROWS:
            z = depth
        else:
            z = np.array([v for v in STANDARD_TABLE_DEPTHS_MM if depth[0] <= v <= depth[-1]])
    else:
        z = _validate.dose_array(table_depths_mm, "table_depths_mm", "mm")
        if z.size and (z.min() < depth[0] or z.max() > depth[-1]):
            raise RadiobiologyError(
                f"table depths must lie inside the profile ({depth[0]:g}-{depth[-1]:g} mm)"
            )
    if z.size == 0:
        return ()
    d = np.interp(z, depth, dose)
    r, _ = _rbe_values(rbe, z)
    rows = []
    tum, lat = (
        eqd2_versus_depth(z, d, t, timing, model=model.for_tissue_kind(t.kind), rbe=r)
        for t in tissues
    )
    for i in range(z.size):
        rows.append(
            {
                "depth_mm": float(z[i]),
                "dose_water_gy": float(d[i]),
                "bed_tumour_gy": float(tum.bed_gy[i]),
                "eqd2_tumour_gy": float(tum.eqd2_gy[i]),
                "bed_late_gy": float(lat.bed_gy[i]),
                "eqd2_late_gy": float(lat.eqd2_gy[i]),
                "boost_sum_tumour_eqd2_gy": float(tum.eqd2_gy[i]) + wb[0].eqd2_gy,
                "boost_sum_late_eqd2_gy": float(lat.eqd2_gy[i]) + wb[1].eqd2_gy,
            }
        )
    return tuple(rows)


def _rbe_values(
    rbe: float | tuple[Sequence[float], Sequence[float]], depth: np.ndarray
) -> tuple[Rbe, str]:
    if isinstance(rbe, tuple):
        table_depth, table_rbe = rbe
        values = rbe_at_depth(depth, table_depth, table_rbe)
        return Rbe(values), (
            f"user table, {float(values.min()):.3g} to {float(values.max()):.3g} "
            "over the depths shown"
        )
    r = _validate.positive(rbe, "rbe", "")
    return Rbe(r), f"{r:g}" + (" (default)" if r == 1.0 else " (user)")


def _sensitivity(
    depth: float,
    dose: float,
    tissue: Tissue,
    model: ModelChoice,
    timing: Timing,
    rbe: Rbe,
) -> list[dict[str, object]]:
    """EQD2 at one depth when alpha/beta or the repair half-time moves across its range."""
    rows: list[dict[str, object]] = []
    rbe0 = rbe if rbe.array.ndim == 0 else Rbe(float(rbe.array.ravel()[0]))
    model = model.for_tissue_kind(tissue.kind)
    variants: list[tuple[str, str, Tissue]] = []
    if tissue.ci95_gy is not None and model.kind != "usc":
        for bound, v in zip(("low", "high"), tissue.ci95_gy, strict=True):
            if v > 0:
                variants.append(
                    (f"alpha/beta 95% CI {bound}", f"{v:g} Gy", replace(tissue, alpha_beta_gy=v))
                )
    rep = tissue.repair
    if rep.range_h is not None and len(rep.half_times_h) == 1:
        for bound, v in zip(("low", "high"), rep.range_h, strict=True):
            repair = RepairModel(
                rep.repair_id, (v,), (1.0,), None, rep.context, rep.status, rep.source
            )
            variants.append(
                (f"repair half-time range {bound}", f"{v:g} h", replace(tissue, repair=repair))
            )
    for name, value, t in variants:
        resp = tissue_response(dose, t, timing, model=model, rbe=rbe0)
        rows.append(
            {
                "tissue": tissue.label,
                "parameter": name,
                "value": value,
                "depth_mm": depth,
                "eqd2_gy": float(resp.eqd2_gy),
            }
        )
    return rows


def build_radiobiology_section(
    depth_mm: ArrayLike,
    dose_water_gy: ArrayLike,
    delivery_time_min: float,
    technique: str,
    *,
    tumour: str | Tissue = "tumour",
    late: str | Tissue = "late",
    model: ModelChoice = LQ,
    rbe: float | tuple[Sequence[float], Sequence[float]] = 1.0,
    ebrt_reference: Sequence[str] = DEFAULT_EBRT_REFERENCE,
    whole_breast_schedule: str = DEFAULT_WHOLE_BREAST,
    repopulation: bool = False,
    table_depths_mm: Sequence[float] | None = None,
    fractions: int = 1,
    interval_h: float | None = None,
    prescription_gy: float | None = None,
) -> RadiobiologySection:
    """Radiobiology of one IORT plan for the report.

    Parameters
    ----------
    depth_mm:
        Depths from the applicator surface (mm), strictly increasing.
    dose_water_gy:
        Dose to water per session at those depths (Gy; V4.0 calibration or Monte Carlo,
        never the nominal TARGIT dose).
    delivery_time_min:
        Beam-on time of the session (min): a few minutes to over an hour for 50 kV x-rays
        (applicator and source), about 2 min for electrons.
    technique:
        ``"xray"``, ``"electron"`` or ``"hdr"``.
    tumour, late:
        Tissue ids or objects (library defaults when omitted).
    model:
        LQ (default), LQ-L with its transition dose, or USC (applied to the tumour with the
        published lung-line set unless it names another; the late tissue then stays LQ).
    rbe:
        A number (1.0 default, always shown) or a (depth_mm, rbe) table interpolated at the
        depths.
    ebrt_reference:
        Library schedules whose EQD2 is drawn for comparison.
    whole_breast_schedule:
        Whole-breast schedule added to the IORT taken as a boost.
    repopulation:
        Apply the tumour repopulation term to the EBRT schedules.
    table_depths_mm:
        Depths of the report table; default: every profile depth for a short profile, else
        the standard depths inside the profile. Doses between profile points are linearly
        interpolated before the EQD2 is computed.
    fractions, interval_h, prescription_gy:
        A course (HDR): ``dose_water_gy`` is per fraction and every EQD2 is of the course
        (repair between fractions complete in the depth curves); the course's BED and EQD2
        at the prescription, with incomplete repair between fractions ``interval_h`` apart
        (twice a day), are added for both tissues.
    """
    if technique not in TECHNIQUES:
        raise RadiobiologyError(f"unknown technique {technique!r}; use {', '.join(TECHNIQUES)}")
    depth, dose = depth_profile(depth_mm, dose_water_gy)
    timing = Timing(fractions, delivery_time_min)
    t_min = timing.delivery_time_min
    tissues = get_tissue(tumour), get_tissue(late)
    if tissues[0].kind != "tumour" or tissues[1].kind != "late":
        raise RadiobiologyError("tumour must be a tumour tissue and late a late-responding one")
    rbe_values, rbe_text = _rbe_values(rbe, depth)
    tum, lat = (
        eqd2_versus_depth(
            depth, dose, t, timing, model=model.for_tissue_kind(t.kind), rbe=rbe_values
        )
        for t in tissues
    )

    def reference(sid: str | Schedule) -> tuple[ScheduleResult, ScheduleResult]:
        tum_res, late_res = (
            evaluate_schedule(
                sid,
                t,
                model=model.for_tissue_kind(t.kind),
                repopulation=repopulation and t.kind == "tumour",
            )
            for t in tissues
        )
        return tum_res, late_res

    refs = tuple(reference(sid) for sid in ebrt_reference)
    wb_schedule = get_schedule(whole_breast_schedule)
    if wb_schedule.role != "whole_breast":
        raise RadiobiologyError(f"{wb_schedule.schedule_id} is not a whole-breast schedule")
    wb = reference(wb_schedule)
    sum_t = tuple(float(v) + wb[0].eqd2_gy for v in tum.eqd2_gy)
    sum_l = tuple(float(v) + wb[1].eqd2_gy for v in lat.eqd2_gy)
    table = _table(depth, dose, table_depths_mm, rbe, tissues, model, timing, wb)
    warnings: list[str] = []
    if model.kind == "usc":
        warnings.append("USC applies to the tumour only; late-responding tissue uses LQ")
    if depth.size < 3:
        warnings.append(f"only {depth.size} depth point(s): the curves join them straight")
    if repopulation:
        warnings.append("tumour repopulation applied to the EBRT schedules (not to the IORT)")
    else:
        warnings.append("no repopulation correction (overall time ignored)")
    warnings.append(_RBE_CONTEXT[technique])
    warnings += [w for w in (*tum.warnings, *lat.warnings) if w != RBE_DEFAULT_NOTE]
    for pair in (*refs, wb):
        for res in pair:
            warnings += [w for w in res.warnings if w != RBE_DEFAULT_NOTE]
    sens = [
        row
        for t in tissues
        for row in _sensitivity(float(depth[0]), float(dose[0]), t, model, timing, rbe_values)
    ]
    figure = _figure(tum, lat, refs, technique, t_min)
    sum_figure = _summation_figure(tum, sum_t, sum_l, wb, refs, technique)
    return RadiobiologySection(
        technique=technique,
        delivery_time_min=t_min,
        model=model.kind,
        rbe_description=rbe_text,
        tumour=tum,
        late=lat,
        ebrt_reference=refs,
        whole_breast=wb,
        boost_sum_tumour_eqd2_gy=sum_t,
        boost_sum_late_eqd2_gy=sum_l,
        table=table,
        sensitivity=tuple(sens),
        parameters_tumour=tum.parameters,
        parameters_late=lat.parameters,
        rbe_context=tuple(data_rows("rbe_low_energy_xrays.csv")),
        warnings=tuple(dict.fromkeys(warnings)),
        figure_svg=figure,
        summation_figure_svg=sum_figure,
        data_files=data_files_sha256(),
        fractions=fractions,
        course=tuple(
            course_bed(prescription_gy, fractions, t, interval_h).to_dict() for t in tissues
        )
        if fractions > 1 and prescription_gy is not None
        else (),
    )


def _figure(
    tum: DepthEQD2,
    lat: DepthEQD2,
    refs: Sequence[tuple[ScheduleResult, ScheduleResult]],
    technique: str,
    t_min: float,
) -> str:
    series = [
        Series(
            f"IORT tumour (a/b {tum.alpha_beta_gy:.3g} Gy, G {tum.protraction_factor:.2f})",
            tum.depth_mm.tolist(),
            tum.eqd2_gy.tolist(),
            TUMOUR_COLOUR,
        ),
        Series(
            f"IORT late (a/b {lat.alpha_beta_gy:.3g} Gy, G {lat.protraction_factor:.2f})",
            lat.depth_mm.tolist(),
            lat.eqd2_gy.tolist(),
            LATE_COLOUR,
            dash="6 3",
        ),
    ]
    hlines = []
    for i, (rt, rl) in enumerate(refs):
        dash = DASHES[(i + 1) % len(DASHES)] or "4 2"
        name = rt.schedule.short_label
        hlines.append(HLine(f"{name}: tumour {rt.eqd2_gy:.1f}", rt.eqd2_gy, TUMOUR_COLOUR, dash))
        hlines.append(HLine(f"{name}: late {rl.eqd2_gy:.1f}", rl.eqd2_gy, LATE_COLOUR, dash))
    return line_chart_svg(
        series,
        hlines,
        title=f"EQD2 of the IORT ({TECHNIQUES[technique]}, {t_min:.1f} min) vs EBRT schedules",
        x_label="depth from the applicator surface (mm)",
        y_label="EQD2 (Gy)",
    )


def _summation_figure(
    tum: DepthEQD2,
    sum_t: Sequence[float],
    sum_l: Sequence[float],
    wb: tuple[ScheduleResult, ScheduleResult],
    refs: Sequence[tuple[ScheduleResult, ScheduleResult]],
    technique: str,
) -> str:
    wb_name = wb[0].schedule.short_label
    series = [
        Series(f"IORT + {wb_name}: tumour", tum.depth_mm.tolist(), list(sum_t), TUMOUR_COLOUR),
        Series(
            f"IORT + {wb_name}: late", tum.depth_mm.tolist(), list(sum_l), LATE_COLOUR, dash="6 3"
        ),
    ]
    hlines = [
        HLine(f"{wb_name} alone: tumour {wb[0].eqd2_gy:.1f}", wb[0].eqd2_gy, TUMOUR_COLOUR, "2 3"),
        HLine(f"{wb_name} alone: late {wb[1].eqd2_gy:.1f}", wb[1].eqd2_gy, LATE_COLOUR, "2 3"),
    ]
    for rt, rl in refs:
        if rt.schedule.role == "regimen":
            name = rt.schedule.short_label
            hlines.append(
                HLine(f"{name}: tumour {rt.eqd2_gy:.1f}", rt.eqd2_gy, TUMOUR_COLOUR, "8 3 2 3")
            )
            hlines.append(
                HLine(f"{name}: late {rl.eqd2_gy:.1f}", rl.eqd2_gy, LATE_COLOUR, "8 3 2 3")
            )
    return line_chart_svg(
        series,
        hlines,
        title=f"IORT ({TECHNIQUES[technique]}) as a boost with whole-breast EBRT: EQD2 sum",
        x_label="depth from the applicator surface (mm)",
        y_label="EQD2 (Gy)",
    )
