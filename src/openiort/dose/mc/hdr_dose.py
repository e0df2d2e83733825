"""The `hdr.mc` engine: Ir-192 dose to medium in medium (TG-186) by photon Monte Carlo.

Two methods, chosen by the source in use:

**Source model** (sources with a core and capsule model in ``data/hdr_source_capsules.yaml``).
Each dwell's source, oriented along its catheter (cable to tip), emits the Ir-192 lines from
its iridium core through its steel capsule (:mod:`openiort.dose.mc.hdr_capsule`) into the
phantom's or CT's own materials, with histories in proportion to the dwell time. The dose per
emitted photon becomes Gy through the same model's air-kerma strength per emitted photon
(photons leaving the source across its transverse axis, in vacuo): a dwell of t hours at S_K
units emits t S_K / (S_K per photon) photons. TG-43 is not used; in water this reproduces the
source's consensus TG-43 dose (dose-rate constant, g_L(r), F(r, theta); VALIDATION_HDR.md).

**Correction** (any other source). Each dwell is a point source of the Ir-192 lines run in the
phantom's materials, and the same point source in unbounded water is known once for all as a
radial dose per photon (``data/ir192_mc_water_radial.csv``, made by
``python -m openiort.dose.mc.hdr_dose``: a 40 cm water sphere, unbounded water within 20 cm
for Ir-192, Perez-Calatayud, Granero and Ballester, Med Phys 2004;31:2075). Their ratio, voxel
by voxel and summed over the dwells with their times,

    CF(x) = sum_i t_i D_MC,i(x) / sum_i t_i D_MC,water(|x - p_i|),

is the heterogeneity correction of what the missing tissue beyond the skin (air), the lung,
the ribs, the breast's own composition and the balloon's fill do to a source that TG-43 places
in unbounded water; the dose is TG-43 (with the source's line geometry, capsule and
anisotropy) times CF. A bare point source alone was measured 50 % above TG-43 along the
source axis at 1-4 cm in water, which is why it is used only in this ratio. This is the
quantity published dose modification factors describe (Kassas et al., J Appl Clin Med Phys
2006;7(3):28: dose with full scatter over dose with finite tissue beyond the prescription line).
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from openiort.anatomy.phantom import Phantom
from openiort.dose.mc.hdr_capsule import (
    AirKermaStrength,
    air_kerma_strength_per_photon,
    capsule_arrays,
    source_emission,
)
from openiort.dose.mc.hdr_capsule_data import known_sources
from openiort.dose.mc.hdr_engine import (
    build_hdr_voxel_problem,
    hdr_shell_dose,
    ir192_source_arrays,
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
#: Photons run out of the source for its S_K per photon (0.2 % statistical uncertainty).
SK_HISTORIES = 4_000_000
SECONDS_PER_HOUR = 3600.0


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
    """The engine's dose (Gy), its ratio to TG-43, its uncertainty and how it was made."""

    dose_gy: FloatArray
    correction: FloatArray  # dose / TG-43 dose
    rel_uncertainty: FloatArray
    histories: int
    #: "source model": absolute dose from the modelled source (core and capsule) and S_K;
    #: "correction": TG-43 x the point-source heterogeneity correction
    method: Literal["source model", "correction"]
    #: S_K per photon emitted in the core (U h), for the source model; 0 otherwise
    air_kerma_strength_per_photon_u_h: float = 0.0


def _checked(
    positions_mm: ArrayLike, directions: ArrayLike, times_s: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Dwell positions (x, y, z rows, mm), unit directions (cable to tip) and times (s)."""
    positions = np.asarray(positions_mm, dtype=np.float64).reshape(-1, 3)
    directions_ = np.asarray(directions, dtype=np.float64).reshape(-1, 3)
    times = np.asarray(times_s, dtype=np.float64).ravel()
    if not positions.shape[0] == directions_.shape[0] == times.size:
        raise HdrMcInputError(
            "one direction and one dwell time per dwell position are needed", source="hdr.mc"
        )
    if np.any(~np.isfinite(times)) or np.any(times < 0) or times.sum() <= 0:
        raise HdrMcInputError(
            "dwell times must be finite, non-negative and not all zero", source="hdr.mc"
        )
    norms = np.linalg.norm(directions_, axis=1)
    if np.any(~np.isfinite(norms)) or np.any(norms == 0):
        raise HdrMcInputError("dwell directions must be non-zero vectors", source="hdr.mc")
    return positions, directions_ / norms[:, None], times


@functools.cache
def modelled_air_kerma_strength(source_id: str) -> AirKermaStrength:
    """S_K per photon emitted in ``source_id``'s core (fixed seed: the same on every run)."""
    emission = source_emission(source_id, ir192_source_arrays(), SK_HISTORIES, seed=1)
    return air_kerma_strength_per_photon(emission)


def compute(
    phantom: Phantom,
    positions_mm: ArrayLike,
    directions: ArrayLike,
    times_s: ArrayLike,
    tg43_dose_gy: FloatArray,
    *,
    source_id: str,
    air_kerma_strength_u: float,
    histories: int,
    seed: int = 1,
    n_batches: int = 10,
    scheduler_address: str | None = None,
    use_dask: bool = False,
    progress: bool = False,
    method: Literal["auto", "source model", "correction"] = "auto",
) -> HdrMcDose:
    """The dwells' dose in ``phantom``, dose to medium in medium.

    Where ``source_id`` has a modelled core and capsule (``data/hdr_source_capsules.yaml``)
    the dose is the Monte Carlo's own: dose per emitted photon of each dwell's source, oriented
    along its direction, times the photons it emits (its time x ``air_kerma_strength_u`` / the
    modelled S_K per photon). Otherwise it is ``tg43_dose_gy`` (the dwells' TG-43 dose on the
    phantom's grid) x the point-source heterogeneity correction CF (module docstring).
    ``method`` ("auto", "source model" or "correction") forces one of the two.
    """
    positions, unit_directions, times = _checked(positions_mm, directions, times_s)
    grid = phantom.grid
    if tg43_dose_gy.shape != grid.shape:
        raise HdrMcInputError("the TG-43 dose must be on the phantom's grid", source="hdr.mc")
    if not np.isfinite(air_kerma_strength_u) or air_kerma_strength_u <= 0:
        raise HdrMcInputError("the air-kerma strength must be positive", source="hdr.mc")
    if method not in ("auto", "source model", "correction"):
        raise HdrMcInputError(f"unknown hdr.mc method {method!r}", source="hdr.mc")
    modelled = source_id in known_sources() and method != "correction"
    if method == "source model" and not modelled:
        raise HdrMcInputError(
            f"no core and capsule model for source {source_id!r}; modelled: "
            + ", ".join(known_sources()),
            source="hdr.mc",
        )
    water = None if modelled else water_radial_dose()
    sk = modelled_air_kerma_strength(source_id) if modelled else None
    z_mm, y_mm, x_mm = grid.axes_mm()
    mc = np.zeros(grid.shape, dtype=np.float64)
    variance = np.zeros(grid.shape, dtype=np.float64)
    reference = np.zeros(grid.shape, dtype=np.float64)
    used = 0
    share = times / times.sum()
    for i in np.flatnonzero(times > 0):
        x, y, z = (float(v) for v in positions[i])
        n = max(round(float(histories * share[i])), MIN_HISTORIES_PER_DWELL)
        capsule = capsule_arrays(source_id, unit_directions[i]) if modelled else None
        result = run_problem(
            build_hdr_voxel_problem(phantom, (x, y, z), capsule=capsule),
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
        if water is not None:
            r_mm = np.sqrt(
                (z_mm[:, None, None] - z) ** 2
                + (y_mm[None, :, None] - y) ** 2
                + (x_mm[None, None, :] - x) ** 2
            )
            reference += water.dose_gy_per_photon(r_mm) * times[i]
        used += result.histories
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(mc > 0, np.sqrt(variance) / mc, 0.0)
        if sk is not None:
            # photons emitted = t (h) x S_K (U) / S_K per photon (U h)
            dose = mc / SECONDS_PER_HOUR * air_kerma_strength_u / sk.ugy_m2_per_photon
            ratio = np.where(tg43_dose_gy > 0, dose / tg43_dose_gy, 0.0)
            return HdrMcDose(dose, ratio, rel, used, "source model", sk.ugy_m2_per_photon)
        correction = mc / reference
    return HdrMcDose(tg43_dose_gy * correction, correction, rel, used, "correction")


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
