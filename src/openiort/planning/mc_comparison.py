"""Monte Carlo dose in real tissue against the water-based table engine, for the report.

Data only: :func:`build_mc_comparison` returns a :class:`McComparisonSection` (the figures in
plan.json's ``mc_comparison`` and what the report draws); ``openiort.report`` draws its figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid
from openiort.evaluation.dvh import Dvh

COMPARED = ("target", "skin", "breast", "chest_wall", "ribs", "lung", "heart")


@dataclass(frozen=True)
class DifferenceSlice:
    """(MC - table) / table in per cent on the axial slice through the applicator centre.

    ``difference_pct[y, x]`` is NaN where it is not shown: in air, in the applicator, and where
    the table dose is below 2 % of its maximum. ``x_mm`` and ``y_mm`` are the voxel centres.
    """

    z_mm: float
    x_mm: NDArray[np.float64]
    y_mm: NDArray[np.float64]
    difference_pct: NDArray[np.float64]


@dataclass(frozen=True)
class DvhPair:
    """One structure's DVH from both engines."""

    structure: str
    table: Dvh
    mc: Dvh


@dataclass
class McComparisonSection:
    """What the report shows about the Monte Carlo plan: media, statistics, differences."""

    medium_label: str
    reference_label: str
    histories: int
    mean_rel_uncertainty_target_pct: float
    rows: list[dict[str, Any]]
    difference_slice: DifferenceSlice
    dvh_pairs: tuple[DvhPair, ...]  # the compared structures, in the order of COMPARED
    dvh_max_dose_gy: float  # the dose axis of the DVH figure
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dose_medium": self.medium_label,
            "compared_with": self.reference_label,
            "histories": self.histories,
            "mean_rel_uncertainty_target_pct": round(self.mean_rel_uncertainty_target_pct, 3),
            "structures": self.rows,
            "notes": self.notes,
        }


def difference_slice(phantom: Phantom, mc: DoseGrid, table: DoseGrid) -> DifferenceSlice:
    """The relative difference of ``mc`` from ``table`` through the applicator centre."""
    grid = phantom.grid
    centre = phantom.applicator_centre_mm or (0.0, 0.0, 0.0)
    iz = int(np.round(grid.position_to_index(np.array(centre))[0]))
    ref, test = table.dose_gy[iz], mc.dose_gy[iz]
    air = phantom.material_ids[iz] == phantom.materials.index("air")
    shown = (ref > 0.02 * table.dose_gy.max()) & ~air & ~phantom.structures["applicator"][iz]
    diff = np.where(shown, 100.0 * (test - ref) / np.maximum(ref, 1e-12), np.nan)
    z, y, x = grid.axes_mm()
    return DifferenceSlice(
        z_mm=float(z[iz]),
        x_mm=np.asarray(x, dtype=np.float64),
        y_mm=np.asarray(y, dtype=np.float64),
        difference_pct=np.asarray(diff, dtype=np.float64),
    )


def build_mc_comparison(
    phantom: Phantom,
    mc: DoseGrid,
    table: DoseGrid,
    mc_dvhs: dict[str, Dvh],
    table_dvhs: dict[str, Dvh],
    histories: int,
    prescription_gy: float,
) -> McComparisonSection:
    rows = []
    pairs = []
    for name in COMPARED:
        if name in mc_dvhs and name in table_dvhs:
            a, b = table_dvhs[name], mc_dvhs[name]
            pairs.append(DvhPair(name, table=a, mc=b))
            rows.append(
                {
                    "structure": name,
                    "table_mean_gy": round(a.mean_gy, 4),
                    "mc_mean_gy": round(b.mean_gy, 4),
                    "mean_difference_pct": round(100 * (b.mean_gy - a.mean_gy) / a.mean_gy, 2)
                    if a.mean_gy
                    else None,
                    "table_d0_1cc_gy": round(a.dose_at_volume_cc(0.1), 4),
                    "mc_d0_1cc_gy": round(b.dose_at_volume_cc(0.1), 4),
                }
            )
    unc = mc.rel_uncertainty
    target = phantom.structures["target"] & (mc.dose_gy >= 0.5 * prescription_gy)
    mean_unc = float(unc[target].mean() * 100) if unc is not None and target.any() else float("nan")
    return McComparisonSection(
        medium_label=mc.medium_label,
        reference_label=table.medium_label,
        histories=histories,
        mean_rel_uncertainty_target_pct=mean_unc,
        rows=rows,
        difference_slice=difference_slice(phantom, mc, table),
        dvh_pairs=tuple(pairs),
        dvh_max_dose_gy=max(1.6 * prescription_gy, 1.0),
        notes=list(mc.notes),
    )
