"""One tissue's BED and EQD2 for a dose (scalar or array), with every parameter it used.

This is where a :class:`~openiort.radiobiology.parameters.Tissue` (alpha/beta, repair,
repopulation, with sources) meets the model functions of :mod:`~openiort.radiobiology.lq`;
maps, depth profiles, schedules and the report section all go through it, so that they use
and print the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import numpy as np
from numpy.typing import ArrayLike

from openiort.radiobiology._validate import FloatArray
from openiort.radiobiology.errors import RadiobiologyError
from openiort.radiobiology.inputs import (
    ACUTE_SINGLE_FRACTION,
    LQ,
    RBE_ONE,
    LqModel,
    ModelChoice,
    Rbe,
    Repopulation,
    Timing,
)
from openiort.radiobiology.lq import bed, reference_bed_per_gy
from openiort.radiobiology.parameters import ParameterRecord, Tissue, get_tissue, get_usc

RBE_DEFAULT_NOTE = "RBE = 1.0 (default): no cited RBE model is applied; set rbe to use one"


class ResponseOptions(TypedDict, total=False):
    """The keyword arguments of :func:`tissue_response`, which the maps pass on."""

    model: ModelChoice
    rbe: Rbe
    repopulation: bool


@dataclass(frozen=True)
class TissueResponse:
    """BED and EQD2 (Gy) of one tissue, with the parameters and caveats behind them."""

    tissue: Tissue
    lq_model: LqModel
    protraction_factor: float
    bed_gy: float | FloatArray
    eqd2_gy: float | FloatArray
    parameters: tuple[ParameterRecord, ...]
    warnings: tuple[str, ...]

    @property
    def model(self) -> str:
        """``"lq"``, ``"lq-l"`` or ``"usc"``."""
        return self.lq_model.kind

    @property
    def alpha_beta_gy(self) -> float:
        """alpha/beta used (for USC the one its parameters imply)."""
        return self.lq_model.curve_alpha_beta_gy

    @property
    def transition_dose_gy(self) -> float | None:
        """Transition dose used (Gy); None for LQ."""
        return self.lq_model.curve_transition_dose_gy


def tissue_response(
    total_dose_gy: ArrayLike,
    tissue: str | Tissue,
    timing: Timing = ACUTE_SINGLE_FRACTION,
    *,
    model: ModelChoice = LQ,
    rbe: Rbe = RBE_ONE,
    repopulation: bool = False,
) -> TissueResponse:
    """BED and EQD2 of ``tissue`` for a dose to water given with ``timing``.

    Parameters
    ----------
    total_dose_gy:
        Dose to water of the course (Gy): scalar or array. Never a nominal TARGIT dose.
    tissue:
        Tissue id from ``data/tissues.csv`` (``"tumour"``/``"late"`` for the defaults) or a
        :class:`Tissue`; it gives alpha/beta, the repair half-time(s) for the protraction
        factor and (tumours) the repopulation parameters.
    timing:
        Number of fractions, beam-on time of each (0 min: acute) and the overall time;
        one acute fraction by default.
    model:
        LQ (default), LQ-L with its transition dose, or USC (tumour only; the published
        H460 lung-line set unless the choice names another).
    rbe:
        RBE multiplying the dose (scalar or array broadcastable to the dose); 1.0 default.
    repopulation:
        Subtract the tissue's repopulation term over ``timing.overall_time_days`` (tumours).
    """
    t = get_tissue(tissue)
    records: list[ParameterRecord] = [
        ParameterRecord("model", model.kind, "", _model_source(model.kind), "VERIFIED (formula)")
    ]
    warnings: list[str] = []
    lq_model = _lq_model(t, model, records, warnings)
    t_min = timing.delivery_time_min
    g = lq_model.protraction_factor(t_min)
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
    if model.kind != "lq" and t_min > 0.0:
        warnings.append(
            "protraction factor applied to the quadratic part of LQ-L/USC: "
            "an approximation not validated at IORT doses"
        )
    rbe_records, rbe_note = _rbe_records(rbe)
    records.extend(rbe_records)
    if rbe_note:
        warnings.append(rbe_note)
    repop = _repopulation(t, timing, records) if repopulation else None
    value = bed(total_dose_gy, lq_model, timing, rbe=rbe, repopulation=repop)
    ref = reference_bed_per_gy(lq_model.curve_alpha_beta_gy, lq_model.curve_transition_dose_gy)
    warnings.extend(_provisional_warnings(records, t.label))
    unique_warnings = tuple(dict.fromkeys(warnings))
    return TissueResponse(t, lq_model, g, value, value / ref, tuple(records), unique_warnings)


def _lq_model(
    t: Tissue, model: ModelChoice, records: list[ParameterRecord], warnings: list[str]
) -> LqModel:
    """The tissue's :class:`LqModel` under ``model``; appends its records and caveats."""
    if model.kind == "usc":
        if t.kind != "tumour":
            raise RadiobiologyError(
                f"no USC parameters exist for late-responding tissue ({t.label}); use lq or lq-l"
            )
        uset = get_usc(model.usc)
        usc = uset.parameters
        ab = usc.alpha_beta_gy
        records.extend(uset.records)
        warnings.append(
            f"USC: {uset.caveat}. Its implied alpha/beta {ab:.2f} Gy replaces the "
            f"tissue's {t.alpha_beta_gy:g} Gy for {t.label}."
        )
    else:
        usc, ab = None, t.alpha_beta_gy
        records.append(t.alpha_beta_record())
        if t.ci95_gy is not None:
            lo, hi = t.ci95_gy
            records.append(
                ParameterRecord("alpha/beta 95% CI", f"{lo:g} to {hi:g}", "Gy", t.source, t.status)
            )
    lq_model = LqModel(
        ab, model.kind, model.transition_dose_gy, usc, t.repair.half_times_h, t.repair.weights
    )
    if lq_model.kind == "lq-l":
        assert lq_model.transition_dose_gy is not None
        records.append(
            ParameterRecord(
                "LQ-L transition dose",
                lq_model.transition_dose_gy,
                "Gy",
                "user input",
                "USER (no breast-specific value published)",
            )
        )
        warnings.append(
            "LQ-L transition dose is a free parameter: no breast-specific value "
            "was found (Astrahan, Med Phys 2008)"
        )
    return lq_model


def _repopulation(t: Tissue, timing: Timing, records: list[ParameterRecord]) -> Repopulation:
    """The tissue's repopulation parameters; appends them and the overall time to records."""
    if t.repopulation is None:
        raise RadiobiologyError(f"no repopulation parameters for {t.label}")
    if timing.overall_time_days is None:
        raise RadiobiologyError("repopulation needs overall_time_days")
    records.append(
        ParameterRecord("overall time", timing.overall_time_days, "d", "schedule", "INPUT")
    )
    records.extend(t.repopulation.records())
    return t.repopulation.parameters


def _model_source(model: str) -> str:
    return {
        "lq": "linear-quadratic (Fowler JF, Br J Radiol 1989;62:679)",
        "lq-l": "linear-quadratic-linear (Astrahan M, Med Phys 2008;35:4161)",
        "usc": "universal survival curve (Park C et al., Int J Radiat Oncol Biol Phys 2008;70:847)",
    }[model]


def _rbe_records(rbe: Rbe) -> tuple[list[ParameterRecord], str]:
    """The RBE's records and, for the default 1.0, the note that no RBE model is applied."""
    r = rbe.array
    source = rbe.source or "user input"
    if rbe.rbe_max is not None and rbe.rbe_min is not None:
        return [
            ParameterRecord("RBE_max (Dale & Jones)", rbe.rbe_max, "", source, "USER"),
            ParameterRecord("RBE_min (Dale & Jones)", rbe.rbe_min, "", source, "USER"),
        ], ""
    if r.ndim == 0 and float(r) == 1.0 and rbe.source is None:
        return [
            ParameterRecord("RBE", 1.0, "", "default (no cited model)", "DEFAULT")
        ], RBE_DEFAULT_NOTE
    if r.ndim == 0:
        return [ParameterRecord("RBE", float(r), "", source, "USER")], ""
    spread = f"{float(np.min(r)):.3g} to {float(np.max(r)):.3g}"
    return [ParameterRecord("RBE (varies with position)", spread, "", source, "USER")], ""


def _provisional_warnings(records: list[ParameterRecord], label: str) -> list[str]:
    out = []
    for rec in records:
        if rec.provisional and rec.status not in ("INPUT", "DERIVED", "DEFAULT"):
            out.append(f"provisional ({label}): {rec.describe()} [{rec.status}; {rec.source}]")
    return out
