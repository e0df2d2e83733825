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

The parameters come as the objects of :mod:`~openiort.radiobiology.inputs`: an
:class:`~openiort.radiobiology.inputs.LqModel` (alpha/beta, curve, repair), a ``Timing``,
an ``Rbe`` and optionally a ``Repopulation``.
"""

from __future__ import annotations

from typing import TypedDict, Unpack

import numpy as np
from numpy.typing import ArrayLike

from openiort.radiobiology import _validate
from openiort.radiobiology._validate import FloatArray
from openiort.radiobiology.errors import RadiobiologyError
from openiort.radiobiology.inputs import (
    ACUTE_SINGLE_FRACTION,
    RBE_ONE,
    LqModel,
    Rbe,
    Repopulation,
    Timing,
)

REFERENCE_DOSE_PER_FRACTION_GY = 2.0  # definition of EQD2


class BedOptions(TypedDict, total=False):
    """The keyword arguments of :func:`bed`, which :func:`eqd2` passes on."""

    rbe: Rbe
    repopulation: Repopulation | None


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
    model: LqModel,
    timing: Timing = ACUTE_SINGLE_FRACTION,
    *,
    rbe: Rbe = RBE_ONE,
    repopulation: Repopulation | None = None,
) -> float | FloatArray:
    """Biologically effective dose (Gy) of ``total_dose_gy`` in equal fractions.

    Parameters
    ----------
    total_dose_gy:
        Physical dose to water of the whole course (Gy), scalar or array (e.g. a dose grid).
    model:
        alpha/beta, curve (LQ, LQ-L, USC) and repair kinetics of the tissue.
    timing:
        Number of fractions and beam-on time of each (the Lea-Catcheside factor G; 0 min is
        acute); one acute fraction by default. Repair between fractions is complete.
    rbe:
        RBE multiplying the physical dose, or the Dale & Jones RBE (LQ only); 1.0 by default.
    repopulation:
        Optional repopulation term (tumour) over ``timing.overall_time_days``, which it
        then needs. BED is floored at 0 where repopulation outweighs the dose.

    Returns
    -------
    float or ndarray
        BED in Gy, with the shape of ``total_dose_gy`` (broadcast with ``rbe.array``).
    """
    scalar = np.ndim(total_dose_gy) == 0 and rbe.array.ndim == 0
    dose = _validate.dose_array(total_dose_gy, "total_dose_gy")
    n = timing.n_fractions
    ab = model.curve_alpha_beta_gy
    g = model.protraction_factor(timing.delivery_time_min)
    d = dose / n
    if rbe.dale_jones:
        per_fraction = _dale_jones_per_fraction(d, ab, model, g, rbe)
    else:
        d_eff = rbe.array * d
        per_fraction = d_eff + g * quadratic_term(d_eff, model.curve_transition_dose_gy) / ab
    result = n * per_fraction
    if repopulation is not None:
        if timing.overall_time_days is None:
            raise RadiobiologyError("repopulation needs timing.overall_time_days")
        loss = repopulation.bed_loss_gy(timing.overall_time_days)
        if loss > 0.0:
            result = np.maximum(result - loss, 0.0)
    return _validate.as_output(np.asarray(result, dtype=np.float64), scalar)


def eqd2(
    total_dose_gy: ArrayLike,
    model: LqModel,
    timing: Timing = ACUTE_SINGLE_FRACTION,
    **options: Unpack[BedOptions],
) -> float | FloatArray:
    """Equivalent dose in acute 2 Gy fractions (Gy); same arguments as :func:`bed`.

    The reference 2 Gy fractions are of the reference radiation (RBE 1), acute, and carry
    no repopulation correction: a repopulation loss given here lowers the EQD2.
    """
    value = bed(total_dose_gy, model, timing, **options)
    return value / reference_bed_per_gy(model.curve_alpha_beta_gy, model.curve_transition_dose_gy)


def reference_bed_per_gy(alpha_beta_gy: float, transition_dose_gy: float | None = None) -> float:
    """BED per Gy of acute 2 Gy fractions: 1 + 2/(alpha/beta) when d_T >= 2 Gy."""
    ab = _validate.positive(alpha_beta_gy, "alpha_beta_gy", "Gy")
    d_ref = np.array([REFERENCE_DOSE_PER_FRACTION_GY])
    q = float(quadratic_term(d_ref, transition_dose_gy)[0])
    return (REFERENCE_DOSE_PER_FRACTION_GY + q / ab) / REFERENCE_DOSE_PER_FRACTION_GY


def _dale_jones_per_fraction(
    d: FloatArray, ab: float, model: LqModel, g: float, rbe: Rbe
) -> FloatArray:
    if model.kind != "lq":
        raise RadiobiologyError("the Dale & Jones RBE (rbe_max, rbe_min) is defined for lq only")
    assert rbe.rbe_max is not None and rbe.rbe_min is not None
    result: FloatArray = rbe.rbe_max * d + g * rbe.rbe_min**2 * d * d / ab
    return result
