"""The parameter objects a BED/EQD2 calculation takes, each checked when it is made.

* :class:`LqModel`: alpha/beta, the curve (LQ, LQ-L with its transition dose, USC with its
  :class:`USCParameters`) and the repair kinetics; what :func:`~openiort.radiobiology.lq.bed`
  needs of the tissue.
* :class:`ModelChoice`: the curve without the tissue (LQ, LQ-L, or USC naming a library set);
  the tissue-level functions (``tissue_response``, maps, schedules) combine it with a
  :class:`~openiort.radiobiology.parameters.Tissue` into an :class:`LqModel`.
* :class:`Timing`: number of fractions, beam-on time per fraction, overall time.
* :class:`Repopulation`: alpha, potential doubling time and kick-off time of the clonogens.
* :class:`Rbe`: a constant or per-voxel RBE with its source, or the dose-dependent RBE of
  Dale & Jones.

Failures raise :class:`~openiort.radiobiology.errors.RadiobiologyError` naming the parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike

from openiort.radiobiology import _validate
from openiort.radiobiology._validate import FloatArray
from openiort.radiobiology.errors import RadiobiologyError
from openiort.radiobiology.protraction import protraction_factor, repair_components
from openiort.radiobiology.repopulation import repopulation_bed_loss_gy

if TYPE_CHECKING:
    from openiort.radiobiology.parameters import USCSet

Model = Literal["lq", "lq-l", "usc"]
MODELS: tuple[str, ...] = get_args(Model)

# USC fixes alpha/beta through (alpha, D0, Dq); a caller's alpha/beta may differ from it by
# rounding of published parameters only (Park 2008's H460 set: 8.68 vs 8.60 Gy, 1 %).
USC_ALPHA_BETA_RTOL = 0.02


def check_model(model: str) -> Model:
    """The model name, or a clear error listing the known ones."""
    if model not in MODELS:
        raise RadiobiologyError(f"unknown model {model!r}; use one of {', '.join(MODELS)}")
    return model  # type: ignore[return-value]


def _check_curve(
    kind: str, transition_dose_gy: float | None, usc_given: bool
) -> tuple[Model, float | None]:
    """(model, transition dose as a float) after the checks :class:`LqModel` and
    :class:`ModelChoice` share: which curve takes a transition dose or USC parameters."""
    m = check_model(kind)
    if m == "lq" and (transition_dose_gy is not None or usc_given):
        raise RadiobiologyError(
            "transition_dose_gy and usc apply to the lq-l and usc models, not lq"
        )
    if m == "usc" and transition_dose_gy is not None:
        raise RadiobiologyError(
            "model 'usc' derives its transition dose from alpha, D0 and Dq; "
            "do not pass transition_dose_gy (use model 'lq-l' for a free transition dose)"
        )
    if m != "lq-l":
        return m, None
    if usc_given:
        raise RadiobiologyError("usc applies to model 'usc', not 'lq-l'")
    if transition_dose_gy is None:
        raise RadiobiologyError("model 'lq-l' needs transition_dose_gy (Gy)")
    return m, _validate.positive(transition_dose_gy, "transition_dose_gy", "Gy")


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


@dataclass(frozen=True)
class LqModel:
    """A tissue's dose-response curve and repair kinetics.

    Parameters
    ----------
    alpha_beta_gy:
        alpha/beta of the tissue (Gy, > 0). For USC it must match the value the USC
        parameters imply (within 2 %), which is then used.
    kind:
        ``"lq"``, ``"lq-l"`` (needs ``transition_dose_gy``) or ``"usc"`` (needs ``usc``).
    transition_dose_gy:
        LQ-L transition dose per fraction (Gy); LQ-L only.
    usc:
        USC parameters; USC only (its transition dose is derived from them).
    repair_half_time_h, repair_weights:
        Repair half-time(s) in hours and, for several, the weight of each component (sum 1),
        for the Lea-Catcheside protraction factor. None: only acute deliveries are allowed.
        Stored as tuples.
    """

    alpha_beta_gy: float
    kind: Model = "lq"
    transition_dose_gy: float | None = None
    usc: USCParameters | None = None
    repair_half_time_h: float | Sequence[float] | None = None
    repair_weights: Sequence[float] | None = None

    def __post_init__(self) -> None:
        ab = _validate.positive(self.alpha_beta_gy, "alpha_beta_gy", "Gy")
        m, dt = _check_curve(self.kind, self.transition_dose_gy, self.usc is not None)
        object.__setattr__(self, "alpha_beta_gy", ab)
        object.__setattr__(self, "transition_dose_gy", dt)
        if m == "usc":
            usc = self.usc
            if usc is None:
                raise RadiobiologyError(
                    "model 'usc' needs usc (USCParameters: alpha_per_gy, d0_gy, dq_gy)"
                )
            if abs(ab - usc.alpha_beta_gy) > USC_ALPHA_BETA_RTOL * usc.alpha_beta_gy:
                raise RadiobiologyError(
                    f"USC parameters (alpha {usc.alpha_per_gy:g}/Gy, D0 {usc.d0_gy:g} Gy, Dq "
                    f"{usc.dq_gy:g} Gy) imply alpha/beta = {usc.alpha_beta_gy:.2f} Gy, not "
                    f"{ab:g} Gy; pass alpha_beta_gy={usc.alpha_beta_gy:.2f}, or use model "
                    f"'lq-l' with transition_dose_gy={usc.transition_dose_gy:.2f} to keep the "
                    "tissue's alpha/beta"
                )
        if self.repair_half_time_h is not None:
            halves, weights = repair_components(self.repair_half_time_h, self.repair_weights)
            object.__setattr__(self, "repair_half_time_h", halves)
            object.__setattr__(self, "repair_weights", weights)
        elif self.repair_weights is not None:
            raise RadiobiologyError("repair_weights need repair_half_time_h")

    @property
    def curve_alpha_beta_gy(self) -> float:
        """alpha/beta the curve uses: the given one, or for USC the one its parameters imply."""
        return self.usc.alpha_beta_gy if self.usc is not None else self.alpha_beta_gy

    @property
    def curve_transition_dose_gy(self) -> float | None:
        """Transition dose the curve uses (Gy): None for LQ, 2 Dq / (1 - alpha D0) for USC."""
        if self.usc is not None:
            return self.usc.transition_dose_gy
        return self.transition_dose_gy

    def protraction_factor(self, delivery_time_min: float) -> float:
        """Lea-Catcheside factor G of one fraction lasting ``delivery_time_min``."""
        t = _validate.non_negative(delivery_time_min, "delivery_time_min", "min")
        if self.repair_half_time_h is None:
            if t > 0.0:
                raise RadiobiologyError(
                    f"delivery_time_min = {t:g} min needs repair_half_time_h for the "
                    "protraction factor"
                )
            return 1.0
        return float(protraction_factor(t, self.repair_half_time_h, self.repair_weights))


@dataclass(frozen=True)
class ModelChoice:
    """The dose-response curve to use, before a tissue supplies alpha/beta and repair.

    Parameters
    ----------
    kind:
        ``"lq"``, ``"lq-l"`` (with ``transition_dose_gy``) or ``"usc"`` (tumour only).
    transition_dose_gy:
        LQ-L transition dose per fraction (Gy); LQ-L only.
    usc:
        USC parameter set (library id or object); None: the published H460 lung-line set.
        USC only.
    """

    kind: Model = "lq"
    transition_dose_gy: float | None = None
    usc: str | USCSet | None = None

    def __post_init__(self) -> None:
        _, dt = _check_curve(self.kind, self.transition_dose_gy, self.usc is not None)
        object.__setattr__(self, "transition_dose_gy", dt)

    def for_tissue_kind(self, tissue_kind: str) -> ModelChoice:
        """This choice, or LQ for late-responding tissue when it is USC (no late USC set)."""
        return LQ if self.kind == "usc" and tissue_kind == "late" else self


@dataclass(frozen=True)
class Timing:
    """Fractionation and time of a course.

    Parameters
    ----------
    n_fractions:
        Number of equal fractions (whole number >= 1). Repair between fractions is taken as
        complete.
    delivery_time_min:
        Beam-on time of one fraction (min); 0 is an acute delivery.
    overall_time_days:
        First to last fraction (days); used only by a repopulation correction.
    """

    n_fractions: int = 1
    delivery_time_min: float = 0.0
    overall_time_days: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_fractions", _validate.n_fractions(self.n_fractions))
        t = _validate.non_negative(self.delivery_time_min, "delivery_time_min", "min")
        object.__setattr__(self, "delivery_time_min", t)
        if self.overall_time_days is not None:
            days = _validate.non_negative(self.overall_time_days, "overall_time_days", "d")
            object.__setattr__(self, "overall_time_days", days)


@dataclass(frozen=True)
class Repopulation:
    """Clonogen repopulation: BED loss ln 2 max(0, T - T_k) / (alpha T_d).

    Parameters
    ----------
    alpha_per_gy:
        LQ alpha of the tumour (1/Gy).
    doubling_time_days:
        Potential (effective) doubling time of the clonogens (days).
    kickoff_time_days:
        Time after the start of treatment at which repopulation begins (days).
    """

    alpha_per_gy: float
    doubling_time_days: float
    kickoff_time_days: float = 0.0

    def __post_init__(self) -> None:
        _validate.positive(self.alpha_per_gy, "alpha_per_gy (repopulation)", "1/Gy")
        _validate.positive(self.doubling_time_days, "doubling_time_days", "d")
        _validate.non_negative(self.kickoff_time_days, "kickoff_time_days", "d")

    def bed_loss_gy(self, overall_time_days: float) -> float:
        """BED lost over ``overall_time_days`` (Gy, >= 0)."""
        return repopulation_bed_loss_gy(
            overall_time_days, self.alpha_per_gy, self.doubling_time_days, self.kickoff_time_days
        )


@dataclass(frozen=True, eq=False)
class Rbe:
    """Relative biological effectiveness applied to the physical dose.

    Parameters
    ----------
    value:
        RBE multiplying the dose: a number or an array broadcastable to the dose (e.g. one
        value per voxel or depth); 1.0 by default. Checked, and kept as a float64 array in
        ``array``.
    source:
        Where the value comes from; None: ``"user input"`` (or the default for 1.0).
    rbe_max, rbe_min:
        Dose-dependent RBE of Dale & Jones (Int J Radiat Oncol Biol Phys 1999;43:639):
        BED = n [RBE_max d + G RBE_min^2 d^2 / (alpha/beta)]; LQ only, with ``value`` 1.0.
    """

    value: ArrayLike = 1.0
    source: str | None = None
    rbe_max: float | None = None
    rbe_min: float | None = None
    array: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            r = np.asarray(self.value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise RadiobiologyError("rbe must be a number or an array of numbers") from exc
        if r.size == 0 or not np.all(np.isfinite(r)) or np.min(r) <= 0.0:
            raise RadiobiologyError("rbe must be finite and > 0")
        object.__setattr__(self, "array", r)
        if self.rbe_max is None and self.rbe_min is None:
            return
        if self.rbe_max is None or self.rbe_min is None:
            raise RadiobiologyError("give rbe_max and rbe_min together (Dale & Jones RBE)")
        if r.ndim != 0 or float(r) != 1.0:
            raise RadiobiologyError("give either rbe or (rbe_max, rbe_min), not both")
        object.__setattr__(self, "rbe_max", _validate.positive(self.rbe_max, "rbe_max", ""))
        object.__setattr__(self, "rbe_min", _validate.positive(self.rbe_min, "rbe_min", ""))

    @property
    def dale_jones(self) -> bool:
        """True for the dose-dependent RBE (rbe_max, rbe_min)."""
        return self.rbe_max is not None


# the defaults of the calculation functions
LQ = ModelChoice()
ACUTE_SINGLE_FRACTION = Timing()
RBE_ONE = Rbe()
