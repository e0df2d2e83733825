"""The plan's dose beside another engine's dose for the same delivery, for the report.

Any two registered engines of a technique can be compared (``iort plan --compare-with NAME``;
an x-ray Monte Carlo plan is compared with the water table by default). Data only:
:func:`build_engine_comparison` returns an :class:`EngineComparisonSection` (plan.json's
``engine_comparison``, and what the report draws); ``openiort.report`` draws its figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid
from openiort.evaluation.dvh import Dvh
from openiort.evaluation.metrics import evaluate_structures
from openiort.plan import PlanResult

COMPARED = ("target", "skin", "breast", "chest_wall", "ribs", "lung", "heart")
SHOWN_ABOVE_FRACTION_OF_MAX = 0.02  # below 2 % of the maximum a relative difference is noise
MC_TARGET_DOSE_FRACTION = 0.5  # MC uncertainty is averaged where the target gets half the Rx


@dataclass(frozen=True)
class DifferenceSlice:
    """(plan - reference) / reference in per cent on the axial slice through the applicator
    centre (the phantom's centre where there is no applicator).

    ``difference_pct[y, x]`` is NaN where it is not shown: in air, in the applicator, and where
    the reference dose is below 2 % of its maximum. ``x_mm`` and ``y_mm`` are voxel centres.
    """

    z_mm: float
    x_mm: NDArray[np.float64]
    y_mm: NDArray[np.float64]
    difference_pct: NDArray[np.float64]


@dataclass(frozen=True)
class DvhPair:
    """One structure's DVH from both engines."""

    structure: str
    reference: Dvh
    plan: Dvh


@dataclass
class EngineComparisonSection:
    """What the report shows: the two engines, their media, statistics and differences."""

    plan_engine: str
    reference_engine: str
    medium_label: str
    reference_label: str
    histories: int | None  # Monte Carlo plans: photon histories
    mean_rel_uncertainty_target_pct: float | None
    rows: list[dict[str, Any]]
    difference_slice: DifferenceSlice
    dvh_pairs: tuple[DvhPair, ...]  # the compared structures, in the order of COMPARED
    dvh_max_dose_gy: float  # the dose axis of the DVH figure
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        uncertainty = self.mean_rel_uncertainty_target_pct
        return {
            "plan_engine": self.plan_engine,
            "compared_with_engine": self.reference_engine,
            "dose_medium": self.medium_label,
            "compared_with": self.reference_label,
            "histories": self.histories,
            "mean_rel_uncertainty_target_pct": None
            if uncertainty is None
            else round(uncertainty, 3),
            "structures": self.rows,
            "notes": self.notes,
        }


def difference_slice(phantom: Phantom, plan: DoseGrid, reference: DoseGrid) -> DifferenceSlice:
    """The relative difference of ``plan`` from ``reference`` through the applicator centre."""
    grid = phantom.grid
    if phantom.applicator_centre_mm is not None:
        iz = int(np.round(grid.position_to_index(np.array(phantom.applicator_centre_mm))[0]))
    else:
        iz = grid.shape[0] // 2
    ref, test = reference.dose_gy[iz], plan.dose_gy[iz]
    shown = ref > SHOWN_ABOVE_FRACTION_OF_MAX * reference.dose_gy.max()
    if "air" in phantom.materials:
        shown &= phantom.material_ids[iz] != phantom.materials.index("air")
    if "applicator" in phantom.structures:
        shown &= ~phantom.structures["applicator"][iz]
    diff = np.where(shown, 100.0 * (test - ref) / np.maximum(ref, 1e-12), np.nan)
    z, y, x = grid.axes_mm()
    return DifferenceSlice(
        z_mm=float(z[iz]),
        x_mm=np.asarray(x, dtype=np.float64),
        y_mm=np.asarray(y, dtype=np.float64),
        difference_pct=np.asarray(diff, dtype=np.float64),
    )


def build_engine_comparison(
    phantom: Phantom,
    plan_engine: str,
    plan: DoseGrid,
    plan_dvhs: dict[str, Dvh],
    reference_engine: str,
    reference: DoseGrid,
    reference_dvhs: dict[str, Dvh],
    prescription_gy: float,
    histories: int | None = None,
) -> EngineComparisonSection:
    """Structure by structure, ``plan`` (the plan's engine) against ``reference``."""
    rows = []
    pairs = []
    for name in COMPARED:
        if name in plan_dvhs and name in reference_dvhs:
            a, b = reference_dvhs[name], plan_dvhs[name]
            pairs.append(DvhPair(name, reference=a, plan=b))
            rows.append(
                {
                    "structure": name,
                    "reference_mean_gy": round(a.mean_gy, 4),
                    "plan_mean_gy": round(b.mean_gy, 4),
                    "mean_difference_pct": round(100 * (b.mean_gy - a.mean_gy) / a.mean_gy, 2)
                    if a.mean_gy
                    else None,
                    "reference_d0_1cc_gy": round(a.dose_at_volume_cc(0.1), 4),
                    "plan_d0_1cc_gy": round(b.dose_at_volume_cc(0.1), 4),
                }
            )
    mean_unc: float | None = None
    if plan.rel_uncertainty is not None and "target" in phantom.structures:
        target = phantom.structures["target"] & (
            plan.dose_gy >= MC_TARGET_DOSE_FRACTION * prescription_gy
        )
        if target.any():
            mean_unc = float(plan.rel_uncertainty[target].mean() * 100)
    return EngineComparisonSection(
        plan_engine=plan_engine,
        reference_engine=reference_engine,
        medium_label=plan.medium_label,
        reference_label=reference.medium_label,
        histories=histories,
        mean_rel_uncertainty_target_pct=mean_unc,
        rows=rows,
        difference_slice=difference_slice(phantom, plan, reference),
        dvh_pairs=tuple(pairs),
        dvh_max_dose_gy=max(1.6 * prescription_gy, 1.0),
        notes=list(plan.notes),
    )


def compare_engines(
    plan: PlanResult,
    plan_engine: str,
    reference_engine: str,
    device: object,
    *,
    histories: int | None = None,
    **engine_options: object,
) -> EngineComparisonSection:
    """Compute ``plan``'s delivery with ``reference_engine`` on the plan's phantom and compare.

    ``device`` is the device data both engines use (the x-ray source, the electron machine;
    None for TG-43); ``engine_options`` go to :func:`openiort.engines.make_engine`.
    """
    from openiort.engines import EngineError, make_engine

    if reference_engine == plan_engine:
        raise EngineError(
            f"--compare-with: the plan is already computed with {plan_engine!r}; name another "
            "engine of the technique",
            source="--compare-with",
        )
    engine = make_engine(reference_engine, device, **engine_options)
    if engine.technique != plan.technique:
        raise EngineError(
            f"--compare-with: {reference_engine!r} computes {engine.technique} plans, not "
            f"{plan.technique}",
            source="--compare-with",
        )
    reference = engine.compute(plan.delivery, plan.phantom)
    reference_dvhs = evaluate_structures(plan.phantom, reference)
    return build_engine_comparison(
        plan.phantom,
        plan_engine,
        plan.dose,
        plan.dvhs,
        reference_engine,
        reference,
        reference_dvhs,
        plan.prescription_gy,
        histories,
    )
