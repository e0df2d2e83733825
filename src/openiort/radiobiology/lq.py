"""Biologically effective dose (BED) and EQD2 for the LQ, LQ-L and USC models.

All functions are vectorised over dose: pass a scalar or a whole dose array (e.g. a
``DoseGrid.dose_gy``). Per fraction of dose d (Gy), with alpha/beta in Gy:

* ``lq``    BED = n [d + G d^2 / (alpha/beta)]   (Fowler JF, Br J Radiol 1989;62:679)
* ``lq-l``  linear-quadratic-linear (Astrahan M, Med Phys 2008;35:4161): LQ up to the
  transition dose d_T, then continued along its tangent, i.e. d^2 is replaced by
  2 d_T d - d_T^2 for d > d_T.
* ``usc``   universal survival curve (Park C et al., Int J Radiat Oncol Biol Phys
  2008;70:847): LQ below D_T = 2 Dq / (1 - alpha D0), the multi-target terminal line
  (slope 1/D0) above it. With the USC's own beta = (1 - alpha D0)^2 / (4 D0 Dq) the line
  is the LQ tangent at D_T, so USC is LQ-L with d_T = D_T and alpha/beta = alpha/beta_USC.

G is the Lea-Catcheside protraction factor (see ``protraction``); applied to LQ-L and USC it
multiplies the quadratic part of the effect, an approximation (no validation at IORT doses
was found). EQD2 = BED / (BED per Gy of acute 2 Gy fractions under the same model), which
is BED / (1 + 2/(alpha/beta)) whenever d_T >= 2 Gy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike

from openiort.radiobiology import _validate
from openiort.radiobiology._validate import FloatArray
from openiort.radiobiology.errors import RadiobiologyError
from openiort.radiobiology.protraction import protraction_factor
from openiort.radiobiology.repopulation import repopulation_bed_loss_gy

Model = Literal["lq", "lq-l", "usc"]
MODELS: tuple[str, ...] = get_args(Model)

REFERENCE_DOSE_PER_FRACTION_GY = 2.0  # definition of EQD2

# USC fixes alpha/beta through (alpha, D0, Dq); a caller's alpha/beta may differ from it by
# rounding of published parameters only (Park 2008's H460 set: 8.68 vs 8.60 Gy, 1 %).
USC_ALPHA_BETA_RTOL = 0.02


@dataclass(frozen=True)
class USCParameters:
    """Universal-survival-curve parameters (Park et al. 2008)."""

    alpha_per_gy: float
    d0_gy: float
    dq_gy: float

    def __post_init__(self) -> None:
        a = _validate.positive(self.alpha_per_gy, "alpha_per_gy", "1/Gy")
        d0 = _validate.positive(self.d0_gy, "d0_gy", "Gy")
        _validate.positive(self.dq_gy, "dq_gy", "Gy")
        if a * d0 >= 1.0:
            raise RadiobiologyError(
                f"USC needs alpha * D0 < 1 (got {a:g}/Gy x {d0:g} Gy = {a * d0:g}): "
                "the transition dose 2 Dq / (1 - alpha D0) would not be positive"
            )

    @property
    def transition_dose_gy(self) -> float:
        """D_T = 2 Dq / (1 - alpha D0)."""
        return 2.0 * self.dq_gy / (1.0 - self.alpha_per_gy * self.d0_gy)

    @property
    def beta_per_gy2(self) -> float:
        """beta that makes the terminal line tangent to the LQ curve at D_T."""
        return (1.0 - self.alpha_per_gy * self.d0_gy) ** 2 / (4.0 * self.d0_gy * self.dq_gy)

    @property
    def alpha_beta_gy(self) -> float:
        return self.alpha_per_gy / self.beta_per_gy2


def check_model(model: str) -> Model:
    """The model name, or a clear error listing the known ones."""
    if model not in MODELS:
        raise RadiobiologyError(f"unknown model {model!r}; use one of {', '.join(MODELS)}")
    return model  # type: ignore[return-value]


def resolve_model(
    model: str,
    alpha_beta_gy: float,
    transition_dose_gy: float | None = None,
    alpha_per_gy: float | None = None,
    d0_gy: float | None = None,
    dq_gy: float | None = None,
) -> tuple[float | None, float]:
    """(transition dose or None for LQ, alpha/beta to use), after checking the parameters.

    For USC the alpha/beta returned is the one its parameters imply (the caller's value is
    checked against it), so that the terminal slope is exactly 1/D0.
    """
    m = check_model(model)
    alpha_beta_gy = _validate.positive(alpha_beta_gy, "alpha_beta_gy", "Gy")
    if m == "lq":
        if transition_dose_gy is not None or d0_gy is not None or dq_gy is not None:
            raise RadiobiologyError(
                "transition_dose_gy, d0_gy and dq_gy apply to the lq-l and usc models, not lq"
            )
        return None, alpha_beta_gy
    if m == "lq-l":
        if transition_dose_gy is None:
            raise RadiobiologyError("model 'lq-l' needs transition_dose_gy (Gy)")
        return _validate.positive(transition_dose_gy, "transition_dose_gy", "Gy"), alpha_beta_gy
    if alpha_per_gy is None or d0_gy is None or dq_gy is None:
        raise RadiobiologyError("model 'usc' needs alpha_per_gy, d0_gy and dq_gy")
    if transition_dose_gy is not None:
        raise RadiobiologyError(
            "model 'usc' derives its transition dose from alpha, D0 and Dq; "
            "do not pass transition_dose_gy (use model 'lq-l' for a free transition dose)"
        )
    usc = USCParameters(alpha_per_gy, d0_gy, dq_gy)
    if abs(alpha_beta_gy - usc.alpha_beta_gy) > USC_ALPHA_BETA_RTOL * usc.alpha_beta_gy:
        raise RadiobiologyError(
            f"USC parameters (alpha {alpha_per_gy:g}/Gy, D0 {d0_gy:g} Gy, Dq {dq_gy:g} Gy) "
            f"imply alpha/beta = {usc.alpha_beta_gy:.2f} Gy, not {alpha_beta_gy:g} Gy; pass "
            f"alpha_beta_gy={usc.alpha_beta_gy:.2f}, or use model 'lq-l' with "
            f"transition_dose_gy={usc.transition_dose_gy:.2f} to keep the tissue's alpha/beta"
        )
    return usc.transition_dose_gy, usc.alpha_beta_gy


def quadratic_term(
    dose_per_fraction_gy: FloatArray, transition_dose_gy: float | None
) -> FloatArray:
    """d^2 (LQ), or its tangent continuation 2 d_T d - d_T^2 above d_T (LQ-L, USC)."""
    d = dose_per_fraction_gy
    if transition_dose_gy is None:
        return d * d
    dt = transition_dose_gy
    return np.where(d <= dt, d * d, 2.0 * dt * d - dt * dt)


def bed(
    total_dose_gy: ArrayLike,
    n_fractions: int,
    alpha_beta_gy: float,
    model: str = "lq",
    *,
    transition_dose_gy: float | None = None,
    alpha_per_gy: float | None = None,
    d0_gy: float | None = None,
    dq_gy: float | None = None,
    delivery_time_min: float = 0.0,
    repair_half_time_h: float | Sequence[float] | None = None,
    repair_weights: Sequence[float] | None = None,
    rbe: ArrayLike = 1.0,
    rbe_max: float | None = None,
    rbe_min: float | None = None,
    overall_time_days: float | None = None,
    kickoff_time_days: float = 0.0,
    doubling_time_days: float | None = None,
    repopulation_alpha_per_gy: float | None = None,
) -> float | FloatArray:
    """Biologically effective dose (Gy) of ``total_dose_gy`` in ``n_fractions`` equal fractions.

    Parameters
    ----------
    total_dose_gy:
        Physical dose to water of the whole course (Gy), scalar or array (e.g. a dose grid).
    n_fractions:
        Number of equal fractions (whole number >= 1).
    alpha_beta_gy:
        alpha/beta of the tissue (Gy, > 0).
    model:
        ``"lq"``, ``"lq-l"`` (needs ``transition_dose_gy``) or ``"usc"`` (needs
        ``alpha_per_gy``, ``d0_gy``, ``dq_gy``; its alpha/beta must match ``alpha_beta_gy``).
    delivery_time_min, repair_half_time_h, repair_weights:
        Beam-on time of one fraction and the repair model for the Lea-Catcheside factor;
        0 min (default) is an acute delivery. Repair between fractions is assumed complete.
    rbe:
        Relative biological effectiveness multiplying the physical dose (scalar or an array
        broadcastable to the dose). 1.0 by default.
    rbe_max, rbe_min:
        Dose-dependent RBE of Dale & Jones (Int J Radiat Oncol Biol Phys 1999;43:639):
        BED = n [RBE_max d + G RBE_min^2 d^2 / (alpha/beta)]; LQ only, with ``rbe`` = 1.
    overall_time_days, kickoff_time_days, doubling_time_days, repopulation_alpha_per_gy:
        Optional repopulation term (tumour); give the first, third and fourth together.
        BED is floored at 0 where repopulation outweighs the dose.

    Returns
    -------
    float or ndarray
        BED in Gy, with the shape of ``total_dose_gy`` (broadcast with ``rbe``).
    """
    scalar = np.ndim(total_dose_gy) == 0 and np.ndim(rbe) == 0
    dose = _validate.dose_array(total_dose_gy, "total_dose_gy")
    n = _validate.n_fractions(n_fractions)
    dt, ab = resolve_model(model, alpha_beta_gy, transition_dose_gy, alpha_per_gy, d0_gy, dq_gy)
    m = check_model(model)
    g = _protraction(delivery_time_min, repair_half_time_h, repair_weights)
    d = dose / n
    if rbe_max is not None or rbe_min is not None:
        per_fraction = _dale_jones_per_fraction(d, ab, m, g, rbe, rbe_max, rbe_min)
    else:
        r = _rbe_array(rbe)
        d_eff = r * d
        per_fraction = d_eff + g * quadratic_term(d_eff, dt) / ab
    result = n * per_fraction
    loss = _repopulation_loss(
        overall_time_days, kickoff_time_days, doubling_time_days, repopulation_alpha_per_gy
    )
    if loss > 0.0:
        result = np.maximum(result - loss, 0.0)
    return _validate.as_output(np.asarray(result, dtype=np.float64), scalar)


def eqd2(
    total_dose_gy: ArrayLike,
    n_fractions: int,
    alpha_beta_gy: float,
    model: str = "lq",
    *,
    transition_dose_gy: float | None = None,
    alpha_per_gy: float | None = None,
    d0_gy: float | None = None,
    dq_gy: float | None = None,
    delivery_time_min: float = 0.0,
    repair_half_time_h: float | Sequence[float] | None = None,
    repair_weights: Sequence[float] | None = None,
    rbe: ArrayLike = 1.0,
    rbe_max: float | None = None,
    rbe_min: float | None = None,
    overall_time_days: float | None = None,
    kickoff_time_days: float = 0.0,
    doubling_time_days: float | None = None,
    repopulation_alpha_per_gy: float | None = None,
) -> float | FloatArray:
    """Equivalent dose in acute 2 Gy fractions (Gy); same arguments as :func:`bed`.

    The reference 2 Gy fractions are of the reference radiation (RBE 1), acute, and carry
    no repopulation correction: a repopulation loss given here lowers the EQD2.
    """
    value = bed(
        total_dose_gy,
        n_fractions,
        alpha_beta_gy,
        model,
        transition_dose_gy=transition_dose_gy,
        alpha_per_gy=alpha_per_gy,
        d0_gy=d0_gy,
        dq_gy=dq_gy,
        delivery_time_min=delivery_time_min,
        repair_half_time_h=repair_half_time_h,
        repair_weights=repair_weights,
        rbe=rbe,
        rbe_max=rbe_max,
        rbe_min=rbe_min,
        overall_time_days=overall_time_days,
        kickoff_time_days=kickoff_time_days,
        doubling_time_days=doubling_time_days,
        repopulation_alpha_per_gy=repopulation_alpha_per_gy,
    )
    dt, ab = resolve_model(model, alpha_beta_gy, transition_dose_gy, alpha_per_gy, d0_gy, dq_gy)
    return value / reference_bed_per_gy(ab, dt)


def reference_bed_per_gy(alpha_beta_gy: float, transition_dose_gy: float | None = None) -> float:
    """BED per Gy of acute 2 Gy fractions: 1 + 2/(alpha/beta) when d_T >= 2 Gy."""
    ab = _validate.positive(alpha_beta_gy, "alpha_beta_gy", "Gy")
    d_ref = np.array([REFERENCE_DOSE_PER_FRACTION_GY])
    q = float(quadratic_term(d_ref, transition_dose_gy)[0])
    return (REFERENCE_DOSE_PER_FRACTION_GY + q / ab) / REFERENCE_DOSE_PER_FRACTION_GY


def _protraction(
    delivery_time_min: float,
    repair_half_time_h: float | Sequence[float] | None,
    repair_weights: Sequence[float] | None,
) -> float:
    t = _validate.non_negative(delivery_time_min, "delivery_time_min", "min")
    if repair_half_time_h is None:
        if t > 0.0:
            raise RadiobiologyError(
                f"delivery_time_min = {t:g} min needs repair_half_time_h for the protraction factor"
            )
        return 1.0
    g = protraction_factor(t, repair_half_time_h, repair_weights)
    return float(g)


def _rbe_array(rbe: ArrayLike) -> FloatArray:
    try:
        r = np.asarray(rbe, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise RadiobiologyError("rbe must be a number or an array of numbers") from exc
    if r.size == 0 or not np.all(np.isfinite(r)) or np.min(r) <= 0.0:
        raise RadiobiologyError("rbe must be finite and > 0")
    return r


def _dale_jones_per_fraction(
    d: FloatArray,
    ab: float,
    model: str,
    g: float,
    rbe: ArrayLike,
    rbe_max: float | None,
    rbe_min: float | None,
) -> FloatArray:
    if rbe_max is None or rbe_min is None:
        raise RadiobiologyError("give rbe_max and rbe_min together (Dale & Jones RBE)")
    if model != "lq":
        raise RadiobiologyError("the Dale & Jones RBE (rbe_max, rbe_min) is defined for lq only")
    if np.ndim(rbe) != 0 or float(np.asarray(rbe)) != 1.0:
        raise RadiobiologyError("give either rbe or (rbe_max, rbe_min), not both")
    r_max = _validate.positive(rbe_max, "rbe_max", "")
    r_min = _validate.positive(rbe_min, "rbe_min", "")
    result: FloatArray = r_max * d + g * r_min**2 * d * d / ab
    return result


def _repopulation_loss(
    overall_time_days: float | None,
    kickoff_time_days: float,
    doubling_time_days: float | None,
    alpha_per_gy: float | None,
) -> float:
    given = [
        overall_time_days is not None,
        doubling_time_days is not None,
        alpha_per_gy is not None,
    ]
    if not any(given):
        return 0.0
    if not all(given):
        raise RadiobiologyError(
            "repopulation needs overall_time_days, doubling_time_days and "
            "repopulation_alpha_per_gy together"
        )
    assert overall_time_days is not None and doubling_time_days is not None
    assert alpha_per_gy is not None
    return repopulation_bed_loss_gy(
        overall_time_days, alpha_per_gy, doubling_time_days, kickoff_time_days
    )
