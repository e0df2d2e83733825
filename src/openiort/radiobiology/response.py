"""One tissue's BED and EQD2 for a dose (scalar or array), with every parameter it used.

This is where a :class:`~openiort.radiobiology.parameters.Tissue` (alpha/beta, repair,
repopulation, with sources) meets the model functions of :mod:`~openiort.radiobiology.lq`;
maps, depth profiles, schedules and the report section all go through it, so that they use
and print the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from openiort.radiobiology import _validate
from openiort.radiobiology._validate import FloatArray
from openiort.radiobiology.errors import RadiobiologyError
from openiort.radiobiology.lq import bed, check_model, reference_bed_per_gy, resolve_model
from openiort.radiobiology.parameters import (
    ParameterRecord,
    Tissue,
    USCSet,
    get_tissue,
    get_usc,
)
from openiort.radiobiology.protraction import protraction_factor

RBE_DEFAULT_NOTE = "RBE = 1.0 (default): no cited RBE model is applied; set rbe to use one"


@dataclass(frozen=True)
class TissueResponse:
    """BED and EQD2 (Gy) of one tissue, with the parameters and caveats behind them."""

    tissue: Tissue
    model: str
    alpha_beta_gy: float
    transition_dose_gy: float | None
    protraction_factor: float
    bed_gy: float | FloatArray
    eqd2_gy: float | FloatArray
    parameters: tuple[ParameterRecord, ...]
    warnings: tuple[str, ...]


def tissue_response(
    total_dose_gy: ArrayLike,
    n_fractions: int,
    tissue: str | Tissue,
    *,
    model: str = "lq",
    transition_dose_gy: float | None = None,
    usc: str | USCSet | None = None,
    delivery_time_min: float = 0.0,
    rbe: ArrayLike = 1.0,
    overall_time_days: float | None = None,
    repopulation: bool = False,
) -> TissueResponse:
    """BED and EQD2 of ``tissue`` for a dose to water in ``n_fractions`` fractions.

    Parameters
    ----------
    total_dose_gy:
        Dose to water of the course (Gy): scalar or array. Never a nominal TARGIT dose.
    n_fractions:
        Number of equal fractions.
    tissue:
        Tissue id from ``data/tissues.csv`` (``"tumour"``/``"late"`` for the defaults) or a
        :class:`Tissue`; its repair half-time(s) give the protraction factor.
    model:
        ``"lq"``, ``"lq-l"`` (with ``transition_dose_gy``) or ``"usc"`` (tumour only; the
        published H460 lung-line set unless ``usc`` names another).
    delivery_time_min:
        Beam-on time of one fraction (min); 0 for an acute delivery.
    rbe:
        RBE multiplying the dose (scalar or array broadcastable to the dose); 1.0 default.
    overall_time_days, repopulation:
        With ``repopulation=True`` the tissue's repopulation term over ``overall_time_days``
        is subtracted (tumours only).
    """
    t = get_tissue(tissue)
    m = check_model(model)
    records: list[ParameterRecord] = [
        ParameterRecord("model", m, "", _model_source(m), "VERIFIED (formula)")
    ]
    warnings: list[str] = []
    usc_kwargs: dict[str, float] = {}
    ab_in = t.alpha_beta_gy
    if m == "usc":
        if t.kind != "tumour":
            raise RadiobiologyError(
                f"no USC parameters exist for late-responding tissue ({t.label}); use lq or lq-l"
            )
        if transition_dose_gy is not None:
            raise RadiobiologyError("model 'usc' derives its transition dose; use 'lq-l' instead")
        uset = get_usc(usc)
        p = uset.parameters
        usc_kwargs = {"alpha_per_gy": p.alpha_per_gy, "d0_gy": p.d0_gy, "dq_gy": p.dq_gy}
        ab_in = p.alpha_beta_gy
        records.extend(uset.records)
        warnings.append(
            f"USC: {uset.caveat}. Its implied alpha/beta {p.alpha_beta_gy:.2f} Gy replaces the "
            f"tissue's {t.alpha_beta_gy:g} Gy for {t.label}."
        )
    else:
        records.append(t.alpha_beta_record())
        if t.ci95_gy is not None:
            lo, hi = t.ci95_gy
            records.append(
                ParameterRecord("alpha/beta 95% CI", f"{lo:g} to {hi:g}", "Gy", t.source, t.status)
            )
    dt, ab = resolve_model(m, ab_in, transition_dose_gy, **usc_kwargs)
    if m == "lq-l":
        assert dt is not None
        records.append(
            ParameterRecord(
                "LQ-L transition dose",
                dt,
                "Gy",
                "user input",
                "USER (no breast-specific value published)",
            )
        )
        warnings.append(
            "LQ-L transition dose is a free parameter: no breast-specific value "
            "was found (Astrahan, Med Phys 2008)"
        )
    t_min = _validate.non_negative(delivery_time_min, "delivery_time_min", "min")
    g = float(protraction_factor(t_min, t.repair.half_times_h, t.repair.weights))
    records.append(
        ParameterRecord(
            "delivery (beam-on) time per fraction", t_min, "min", "plan or schedule", "INPUT"
        )
    )
    records.extend(t.repair.records())
    records.append(
        ParameterRecord(
            "protraction factor G (Lea-Catcheside)", round(g, 4), "", "computed", "DERIVED"
        )
    )
    if m != "lq" and t_min > 0.0:
        warnings.append(
            "protraction factor applied to the quadratic part of LQ-L/USC: "
            "an approximation not validated at IORT doses"
        )
    rbe_rec, rbe_note = _rbe_record(rbe)
    records.append(rbe_rec)
    if rbe_note:
        warnings.append(rbe_note)
    repop_kwargs: dict[str, float] = {}
    if repopulation:
        if t.repopulation is None:
            raise RadiobiologyError(f"no repopulation parameters for {t.label}")
        if overall_time_days is None:
            raise RadiobiologyError("repopulation needs overall_time_days")
        rp = t.repopulation
        repop_kwargs = {
            "overall_time_days": _validate.non_negative(
                overall_time_days, "overall_time_days", "d"
            ),
            "kickoff_time_days": rp.kickoff_days,
            "doubling_time_days": rp.doubling_time_days,
            "repopulation_alpha_per_gy": rp.alpha_per_gy,
        }
        records.append(
            ParameterRecord("overall time", float(overall_time_days), "d", "schedule", "INPUT")
        )
        records.extend(rp.records())
    value = bed(
        total_dose_gy,
        n_fractions,
        ab,
        m,
        transition_dose_gy=dt if m == "lq-l" else None,
        delivery_time_min=t_min,
        repair_half_time_h=list(t.repair.half_times_h),
        repair_weights=list(t.repair.weights),
        rbe=rbe,
        **usc_kwargs,
        **repop_kwargs,
    )
    eq = value / reference_bed_per_gy(ab, dt)
    warnings.extend(_provisional_warnings(records, t.label))
    return TissueResponse(
        tissue=t,
        model=m,
        alpha_beta_gy=ab,
        transition_dose_gy=dt,
        protraction_factor=g,
        bed_gy=value,
        eqd2_gy=eq,
        parameters=tuple(records),
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _model_source(model: str) -> str:
    return {
        "lq": "linear-quadratic (Fowler JF, Br J Radiol 1989;62:679)",
        "lq-l": "linear-quadratic-linear (Astrahan M, Med Phys 2008;35:4161)",
        "usc": "universal survival curve (Park C et al., Int J Radiat Oncol Biol Phys 2008;70:847)",
    }[model]


def _rbe_record(rbe: ArrayLike) -> tuple[ParameterRecord, str]:
    r = np.asarray(rbe, dtype=np.float64)
    if r.ndim == 0 and float(r) == 1.0:
        return (
            ParameterRecord("RBE", 1.0, "", "default (no cited model)", "DEFAULT"),
            RBE_DEFAULT_NOTE,
        )
    if r.ndim == 0:
        return ParameterRecord("RBE", float(r), "", "user input", "USER"), ""
    if r.size == 0 or not np.all(np.isfinite(r)):
        raise RadiobiologyError("rbe must be finite and > 0")
    return (
        ParameterRecord(
            "RBE (varies with position)",
            f"{float(np.min(r)):.3g} to {float(np.max(r)):.3g}",
            "",
            "user input",
            "USER",
        ),
        "",
    )


def _provisional_warnings(records: list[ParameterRecord], label: str) -> list[str]:
    out = []
    for rec in records:
        if rec.provisional and rec.status not in ("INPUT", "DERIVED", "DEFAULT"):
            out.append(f"provisional ({label}): {rec.describe()} [{rec.status}; {rec.source}]")
    return out
