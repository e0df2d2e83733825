"""Monte Carlo dose in real tissue against the water-based table engine, for the report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid
from openiort.evaluation.dvh import Dvh
from openiort.report.figures import STRUCTURE_COLOURS, svg_of

COMPARED = ("target", "skin", "breast", "chest_wall", "ribs", "lung", "heart")


@dataclass
class McComparisonSection:
    """What the report shows about the Monte Carlo plan: media, statistics, differences."""

    medium_label: str
    reference_label: str
    histories: int
    mean_rel_uncertainty_target_pct: float
    rows: list[dict[str, Any]]
    difference_map_svg: str
    dvh_svg: str
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


def _difference_map(phantom: Phantom, mc: DoseGrid, table: DoseGrid) -> str:
    grid = phantom.grid
    centre = phantom.applicator_centre_mm or (0.0, 0.0, 0.0)
    iz = int(np.round(grid.position_to_index(np.array(centre))[0]))
    ref, test = table.dose_gy[iz], mc.dose_gy[iz]
    air = phantom.material_ids[iz] == phantom.materials.index("air")
    shown = (ref > 0.02 * table.dose_gy.max()) & ~air & ~phantom.structures["applicator"][iz]
    diff = np.where(shown, 100.0 * (test - ref) / np.maximum(ref, 1e-12), np.nan)
    z, y, x = grid.axes_mm()
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    im = ax.imshow(
        diff,
        cmap="RdBu_r",
        vmin=-40,
        vmax=40,
        extent=(x[0], x[-1], y[-1], y[0]),
        interpolation="nearest",
    )
    fig.colorbar(im, ax=ax, label="(MC - table) / table (%)")
    ax.set_title(f"axial z = {z[iz]:.0f} mm: Monte Carlo vs water table", fontsize=10)
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm, posterior +)")
    return svg_of(fig)


def _dvh_overlay(mc_dvhs: dict[str, Dvh], table_dvhs: dict[str, Dvh], max_dose_gy: float) -> str:
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    for name in COMPARED:
        if name in mc_dvhs and name in table_dvhs:
            colour = STRUCTURE_COLOURS.get(name)
            ax.plot(*table_dvhs[name].curve(300, max_dose_gy), color=colour, ls="--", lw=1)
            ax.plot(*mc_dvhs[name].curve(300, max_dose_gy), color=colour, label=name)
    ax.set_xlabel("dose (Gy)")
    ax.set_ylabel("volume (%)")
    ax.set_title("solid: Monte Carlo (tissue); dashed: table engine (water)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return svg_of(fig)


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
    for name in COMPARED:
        if name in mc_dvhs and name in table_dvhs:
            a, b = table_dvhs[name], mc_dvhs[name]
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
        difference_map_svg=_difference_map(phantom, mc, table),
        dvh_svg=_dvh_overlay(mc_dvhs, table_dvhs, max(1.6 * prescription_gy, 1.0)),
        notes=list(mc.notes),
    )
