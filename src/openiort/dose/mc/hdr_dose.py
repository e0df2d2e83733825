"""The `hdr.mc` engine: TG-43 dose in the patient corrected by Ir-192 Monte Carlo.

Each dwell is a point source of the Ir-192 lines (:mod:`openiort.dose.mc.hdr_engine`) run in the
phantom's or CT's own materials, with histories in proportion to its dwell time. The same
point source in unbounded water is known once for all as a radial dose per photon
(``data/ir192_mc_water_radial.csv``, made by ``python -m openiort.dose.mc.hdr_dose``: a 40 cm
water sphere, which is unbounded water within 20 cm for Ir-192, Perez-Calatayud, Granero and
Ballester, Med Phys 2004;31:2075). Their ratio, voxel by voxel and summed over the dwells with
their times,

    CF(x) = sum_i t_i D_MC,i(x) / sum_i t_i D_MC,water(|x - p_i|),

is the Monte Carlo's heterogeneity correction: what the missing tissue beyond the skin (air),
the lung, the ribs, the breast's own composition and the balloon's fill do to the dose of a
source that TG-43 places in unbounded water. The engine's dose is the TG-43 dose (the consensus
data of the source in use, with its line-source geometry, capsule and anisotropy) times CF, and
is dose to medium in medium, since the Monte Carlo scores collision kerma in each voxel's
medium. This is the quantity published dose modification factors describe (Kassas et al.,
J Appl Clin Med Phys 2006;7(3):28: dose with full scatter over dose with finite tissue beyond
the prescription line). It also keeps what a bare point source lacks out of the result: the
source's capsule makes its emission anisotropic (TG-43's F(r, theta) of the shipped consensus
data), and a bare point source alone was measured here 50 % above TG-43 along the source axis at
1-4 cm in water (-0.3 % transverse at 5 mm; VALIDATION_HDR.md); in the ratio the same point
source stands on both sides and the anisotropy is TG-43's.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from openiort.anatomy.phantom import Phantom
from openiort.dose.mc.hdr_engine import (
    build_hdr_voxel_problem,
    hdr_shell_dose,
    shell_inverse_square_mm2,
)
from openiort.dose.mc.voxel import run_problem
from openiort.errors import OpenIortInputError

FloatArray = NDArray[np.float64]
WATER_RADIAL_FILE = "ir192_mc_water_radial.csv"
REFERENCE_SPHERE_RADIUS_MM = 200.0
# Shell edges of the water run: fine near the source, where the dose changes fastest.
REFERENCE_EDGES_MM = np.concatenate(
    [np.arange(0.0, 10.0, 0.5), np.arange(10.0, 50.0, 1.0), np.arange(50.0, 200.1, 5.0)]
)
# A dwell's share of the histories is never below this, so that every dwell has its batches.
MIN_HISTORIES_PER_DWELL = 20_000


class HdrMcInputError(OpenIortInputError):
    """Dwells the Monte Carlo cannot compute (outside the grid, negative times, no dose)."""


@dataclass(frozen=True)
class WaterRadialDose:
    """The point source in unbounded water: r^2 D per emitted photon (Gy mm^2) at shell mid-radii."""

    r_mm: FloatArray
    r2_dose_gy_mm2: FloatArray
    rel_uncertainty: FloatArray

    def dose_gy_per_photon(self, r_mm: ArrayLike) -> FloatArray:
        """D(r), log-linear in r^2 D between the shells. Below the first shell r^2 D is read
        there (inside the balloon, never tissue); beyond the last (20 cm, where the dose is
        below 0.1 % of that at 1 cm) r^2 D is held at the last shell's."""
        r = np.maximum(np.asarray(r_mm, dtype=np.float64), self.r_mm[0])
        r2d = np.exp(np.interp(r, self.r_mm, np.log(self.r2_dose_gy_mm2)))
        return np.asarray(r2d / r**2, dtype=np.float64)


@functools.cache
def water_radial_dose() -> WaterRadialDose:
    """The shipped water run (see the module's docstring)."""
    text = resources.files("openiort.dose.mc").joinpath("data", WATER_RADIAL_FILE).read_text()
    rows = [
        r for r in csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#"))
    ]
    return WaterRadialDose(
        np.array([float(r["r_mm"]) for r in rows]),
        np.array([float(r["r2_dose_gy_mm2_per_photon"]) for r in rows]),
        np.array([float(r["rel_uncertainty"]) for r in rows]),
    )


def run_water_radial_dose(histories: int, seed: int = 1) -> WaterRadialDose:
    """The point source at the centre of a 40 cm water sphere, dose in shells."""
    edges = REFERENCE_EDGES_MM
    shells = hdr_shell_dose(
        [(REFERENCE_SPHERE_RADIUS_MM, "water")], edges, histories, seed, n_batches=10
    )
    r2d = shells.dose_gy_per_photon / shell_inverse_square_mm2(edges)
    return WaterRadialDose(0.5 * (edges[1:] + edges[:-1]), r2d, shells.rel_unc)


@dataclass(frozen=True)
class HdrMcDose:
    """TG-43 x the Monte Carlo heterogeneity correction (Gy), the correction, its uncertainty."""

    dose_gy: FloatArray
    correction: FloatArray
    rel_uncertainty: FloatArray
    histories: int


def compute(
    phantom: Phantom,
    positions_mm: ArrayLike,
    times_s: ArrayLike,
    tg43_dose_gy: FloatArray,
    *,
    histories: int,
    seed: int = 1,
    n_batches: int = 10,
    scheduler_address: str | None = None,
    use_dask: bool = False,
    progress: bool = False,
) -> HdrMcDose:
    """The dwells' (``positions_mm`` as (x, y, z) rows, ``times_s``) dose in ``phantom``:
    ``tg43_dose_gy`` (their TG-43 dose on the phantom's grid) x CF."""
    positions = np.asarray(positions_mm, dtype=np.float64).reshape(-1, 3)
    times = np.asarray(times_s, dtype=np.float64).ravel()
    if positions.shape[0] != times.size:
        raise HdrMcInputError("one dwell time per dwell position is needed", source="hdr.mc")
    if np.any(~np.isfinite(times)) or np.any(times < 0) or times.sum() <= 0:
        raise HdrMcInputError(
            "dwell times must be finite, non-negative and not all zero", source="hdr.mc"
        )
    grid = phantom.grid
    if tg43_dose_gy.shape != grid.shape:
        raise HdrMcInputError("the TG-43 dose must be on the phantom's grid", source="hdr.mc")
    water = water_radial_dose()
    z_mm, y_mm, x_mm = grid.axes_mm()
    mc = np.zeros(grid.shape, dtype=np.float64)
    variance = np.zeros(grid.shape, dtype=np.float64)
    reference = np.zeros(grid.shape, dtype=np.float64)
    used = 0
    share = times / times.sum()
    for i in np.flatnonzero(times > 0):
        x, y, z = (float(v) for v in positions[i])
        n = max(round(float(histories * share[i])), MIN_HISTORIES_PER_DWELL)
        result = run_problem(
            build_hdr_voxel_problem(phantom, (x, y, z)),
            grid.shape,
            grid.voxel_volume_cc * 1000.0,
            n,
            seed + int(i),
            n_batches,
            scheduler_address=scheduler_address,
            use_dask=use_dask,
            progress=progress,
        )
        dwell = result.dose_medium_gy_per_photon * times[i]
        mc += dwell
        variance += (dwell * result.rel_unc_medium) ** 2
        r_mm = np.sqrt(
            (z_mm[:, None, None] - z) ** 2
            + (y_mm[None, :, None] - y) ** 2
            + (x_mm[None, None, :] - x) ** 2
        )
        reference += water.dose_gy_per_photon(r_mm) * times[i]
        used += result.histories
    correction = mc / reference
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(mc > 0, np.sqrt(variance) / mc, 0.0)
    return HdrMcDose(tg43_dose_gy * correction, correction, rel, used)


def main() -> None:
    parser = argparse.ArgumentParser(description="Make the Ir-192 MC water radial dose file.")
    parser.add_argument("--histories", type=int, default=20_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    ref = run_water_radial_dose(args.histories, args.seed)
    out = io.StringIO()
    out.write(
        "# r^2 D per emitted photon of the bare Ir-192 point source (NNDC lines >= 10 keV) at\n"
        "# the centre of a 40 cm water sphere, collision kerma in 0.5-5 mm shells (r_mm: shell\n"
        f"# mid-radius); {args.histories:.0e} histories, seed {args.seed}; made by\n"
        "# `python -m openiort.dose.mc.hdr_dose` (openiort.dose.mc.hdr_engine.hdr_shell_dose).\n"
        "r_mm,r2_dose_gy_mm2_per_photon,rel_uncertainty\n"
    )
    for r, d, u in zip(ref.r_mm, ref.r2_dose_gy_mm2, ref.rel_uncertainty, strict=True):
        out.write(f"{r:g},{d:.6e},{u:.2e}\n")
    path = Path(__file__).parent / "data" / WATER_RADIAL_FILE
    path.write_text(out.getvalue(), encoding="utf-8")
    print(f"{path}: {ref.r_mm.size} shells, r2D(10.5 mm) = {ref.r2_dose_gy_mm2[20]:.4e} Gy mm2")


if __name__ == "__main__":
    main()
