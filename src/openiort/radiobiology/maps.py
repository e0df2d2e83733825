"""EQD2 maps of dose grids, EQD2 versus depth, and EQD2 summation of IORT and EBRT."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Unpack

import numpy as np
from numpy.typing import ArrayLike

from openiort.dosegrid import DoseGrid
from openiort.radiobiology import _validate
from openiort.radiobiology._validate import FloatArray
from openiort.radiobiology.errors import RadiobiologyError
from openiort.radiobiology.inputs import ACUTE_SINGLE_FRACTION, Timing
from openiort.radiobiology.parameters import ParameterRecord, Tissue
from openiort.radiobiology.response import ResponseOptions, TissueResponse, tissue_response

WATER_MEDIA = ("water_in_water", "water_in_medium")

# Relative step of the central difference that propagates a Monte Carlo dose uncertainty
# through the (smooth, at most quadratic) EQD2 function; a numerical choice, not physics.
_UNCERTAINTY_STEP = 1e-4


def _refuse_nominal_targit(normalisation: str) -> None:
    text = normalisation.upper()
    if "TARGIT" in text and "V4.0" not in text and "WATER" not in text:
        raise RadiobiologyError(
            f"dose normalised as {normalisation!r} looks like a nominal TARGIT dose; "
            "radiobiology needs dose to water (V4.0 calibration or Monte Carlo)"
        )


def eqd2_map(
    dose: DoseGrid,
    tissue: str | Tissue = "tumour",
    timing: Timing = ACUTE_SINGLE_FRACTION,
    **options: Unpack[ResponseOptions],
) -> DoseGrid:
    """EQD2 (Gy) of every voxel of a dose grid, as a new :class:`DoseGrid`.

    Parameters
    ----------
    dose:
        Physical dose to water. Per session (``per_session``): each of the
        ``timing.n_fractions`` sessions delivers it; otherwise it is the course total, split
        evenly.
    tissue, timing, **options:
        As in :func:`~openiort.radiobiology.response.tissue_response` (``model``, ``rbe``,
        ``repopulation``); ``rbe`` may hold an array of the grid's shape.

    Returns
    -------
    DoseGrid
        EQD2 of the whole course (``per_session=False``) on the same grid; its
        normalisation and notes name the tissue, model and every parameter used. A Monte
        Carlo relative uncertainty is propagated to first order.
    """
    _refuse_nominal_targit(dose.normalisation)
    n = timing.n_fractions
    total = dose.dose_gy * n if dose.per_session else dose.dose_gy

    def response(total_dose_gy: FloatArray) -> TissueResponse:
        return tissue_response(total_dose_gy, tissue, timing, **options)

    resp = response(total)
    eq = np.asarray(resp.eqd2_gy, dtype=np.float64)
    if eq.shape != dose.grid.shape:
        raise RadiobiologyError(f"rbe shape does not broadcast to the grid {dose.grid.shape}")
    rel_unc = None
    if dose.rel_uncertainty is not None:
        h = _UNCERTAINTY_STEP
        up = np.asarray(response(total * (1 + h)).eqd2_gy)
        down = np.asarray(response(total * (1 - h)).eqd2_gy)
        with np.errstate(divide="ignore", invalid="ignore"):
            elasticity = np.where(eq > 0, (up - down) / (2 * h * eq), 0.0)
        rel_unc = elasticity * dose.rel_uncertainty
    medium_note = (
        ()
        if dose.medium in WATER_MEDIA
        else ("dose to medium: the LQ parameters come from clinical dose-to-water data",)
    )
    notes = (
        *dose.notes,
        f"EQD2 from {dose.normalisation} ({dose.medium_label}), {n} fraction(s)",
        *medium_note,
        *(rec.describe() + f" [{rec.status}; {rec.source}]" for rec in resp.parameters),
        *resp.warnings,
    )
    return DoseGrid(
        grid=dose.grid,
        dose_gy=eq,
        medium=dose.medium,
        normalisation=_normalisation(resp, n),
        provenance=dose.provenance,
        rel_uncertainty=rel_unc,
        per_session=False,
        notes=notes,
    )


def _normalisation(resp: TissueResponse, n: int) -> str:
    extra = f", d_T {resp.transition_dose_gy:.2f} Gy" if resp.transition_dose_gy else ""
    return (
        f"EQD2 (Gy), {resp.tissue.label}: alpha/beta {resp.alpha_beta_gy:.3g} Gy, "
        f"model {resp.model}{extra}, {n} fraction(s), G {resp.protraction_factor:.3f}"
    )


def eqd2_sum(first: DoseGrid, second: DoseGrid | float) -> DoseGrid:
    """Sum of EQD2 maps on the same grid (EQD2 adds for the same tissue and model).

    ``second`` may be a number: the EQD2 of a whole-breast EBRT schedule taken as uniform,
    which the notes of the result say.
    """
    for g in (first, second):
        if isinstance(g, DoseGrid) and not g.normalisation.startswith("EQD2"):
            raise RadiobiologyError("eqd2_sum adds EQD2 maps (from eqd2_map), not physical dose")
    if isinstance(second, DoseGrid):
        if second.grid != first.grid:
            raise RadiobiologyError("EQD2 maps on different grids; resample one first")
        if _tissue_part(first.normalisation) != _tissue_part(second.normalisation):
            raise RadiobiologyError("EQD2 maps for different tissues or alpha/beta do not add")
        total = first.dose_gy + second.dose_gy
        note = f"plus {second.normalisation}"
        unc = None
        if first.rel_uncertainty is not None or second.rel_uncertainty is not None:
            var = np.zeros_like(total)
            for g in (first, second):
                if g.rel_uncertainty is not None:
                    var += (g.rel_uncertainty * g.dose_gy) ** 2
            with np.errstate(divide="ignore", invalid="ignore"):
                unc = np.where(total > 0, np.sqrt(var) / total, 0.0)
    else:
        add = _validate.non_negative(second, "EBRT EQD2", "Gy")
        total = first.dose_gy + add
        note = f"plus {add:.2f} Gy EQD2 of whole-breast EBRT, assumed uniform"
        unc = None
        if first.rel_uncertainty is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                unc = np.where(total > 0, first.rel_uncertainty * first.dose_gy / total, 0.0)
    return replace(
        first,
        dose_gy=total,
        rel_uncertainty=unc,
        notes=(*first.notes, note),
        normalisation=f"{first.normalisation}; summed",
    )


def _tissue_part(normalisation: str) -> str:
    return normalisation.split(", model")[0]


@dataclass(frozen=True)
class DepthEQD2:
    """EQD2 and BED of one tissue along depth from the applicator surface."""

    depth_mm: FloatArray
    dose_water_gy: FloatArray
    bed_gy: FloatArray
    eqd2_gy: FloatArray
    protraction_factor: float
    alpha_beta_gy: float
    tissue: Tissue
    parameters: tuple[ParameterRecord, ...]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "tissue_id": self.tissue.tissue_id,
            "tissue": self.tissue.label,
            "depth_mm": self.depth_mm.tolist(),
            "dose_water_gy": self.dose_water_gy.tolist(),
            "bed_gy": self.bed_gy.tolist(),
            "eqd2_gy": self.eqd2_gy.tolist(),
            "protraction_factor": self.protraction_factor,
            "alpha_beta_gy": self.alpha_beta_gy,
            "parameters": [p.to_dict() for p in self.parameters],
            "warnings": list(self.warnings),
        }


def depth_profile(depth_mm: ArrayLike, dose_water_gy: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Checked depth (mm, >= 0, strictly increasing) and dose arrays of equal length."""
    depth = _validate.dose_array(depth_mm, "depth_mm", "mm")
    dose = _validate.dose_array(dose_water_gy, "dose_water_gy")
    if depth.ndim != 1 or dose.shape != depth.shape or depth.size == 0:
        raise RadiobiologyError(
            f"depth_mm and dose_water_gy must be 1-D of equal length (got {depth.shape} and "
            f"{dose.shape})"
        )
    if np.any(np.diff(depth) <= 0):
        raise RadiobiologyError("depth_mm must be strictly increasing")
    return depth, dose


def rbe_at_depth(
    depth_mm: ArrayLike, table_depth_mm: ArrayLike, table_rbe: ArrayLike
) -> FloatArray:
    """RBE at each depth, linearly interpolated in a user table (no extrapolation)."""
    d = _validate.dose_array(depth_mm, "depth_mm", "mm")
    td, tr = depth_profile(table_depth_mm, table_rbe)
    if np.min(tr) <= 0:
        raise RadiobiologyError("table RBE values must be > 0")
    if d.size and (np.min(d) < td[0] or np.max(d) > td[-1]):
        raise RadiobiologyError(
            f"RBE table covers {td[0]:g}-{td[-1]:g} mm; depths outside it were asked for"
        )
    return np.interp(d, td, tr)


def eqd2_versus_depth(
    depth_mm: ArrayLike,
    dose_water_gy: ArrayLike,
    tissue: str | Tissue = "tumour",
    timing: Timing = ACUTE_SINGLE_FRACTION,
    **options: Unpack[ResponseOptions],
) -> DepthEQD2:
    """EQD2 of a depth-dose profile (dose to water per session at each depth).

    Parameters
    ----------
    depth_mm:
        Depths from the applicator surface (mm).
    dose_water_gy:
        Dose to water per session at those depths (Gy; V4.0 or Monte Carlo, never the
        nominal TARGIT dose); each of the ``timing.n_fractions`` sessions delivers it.
    tissue, timing, **options:
        As in :func:`~openiort.radiobiology.response.tissue_response` (``model``, ``rbe``,
        ``repopulation``); ``rbe`` may hold an array with one value per depth (see
        :func:`rbe_at_depth`).
    """
    depth, dose = depth_profile(depth_mm, dose_water_gy)
    resp = tissue_response(dose * timing.n_fractions, tissue, timing, **options)
    return DepthEQD2(
        depth_mm=depth,
        dose_water_gy=dose,
        bed_gy=np.asarray(resp.bed_gy, dtype=np.float64),
        eqd2_gy=np.asarray(resp.eqd2_gy, dtype=np.float64),
        protraction_factor=resp.protraction_factor,
        alpha_beta_gy=resp.alpha_beta_gy,
        tissue=resp.tissue,
        parameters=resp.parameters,
        warnings=resp.warnings,
    )
