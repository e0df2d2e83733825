"""Electron IORT: point-dose interpolation throughput and 3D dose in a phantom.

The numba trilinear kernel behind ``ElectronBeam.relative_dose`` is compared in the same run with
scipy's ``RegularGridInterpolator`` on the same data and points (the baseline), so the ratio is
meaningful on a noisy machine. Prints throughputs; never fails on time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy.interpolate import RegularGridInterpolator

from openiort.anatomy.materials import get_material
from openiort.anatomy.phantom import Phantom
from openiort.devices.electron import get_disc, load_electron_device
from openiort.dose.electron import DiscPlacement, compute_dose
from openiort.grid import Grid


def _best_of(n: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _water_phantom(spacing_mm: float) -> Phantom:
    grid = Grid.centred((0.0, 40.0, 0.0), (120.0, 100.0, 120.0), spacing_mm)
    materials = ("water",)
    mid = np.zeros(grid.shape, dtype=np.uint8)
    density = np.full(grid.shape, get_material("water").density_g_cm3, dtype=np.float32)
    return Phantom(grid, mid, density, materials, {}, shaft_direction=(0.0, -1.0, 0.0))


def main() -> None:
    t0 = time.perf_counter()
    device = load_electron_device()
    print(f"device load (hash check of the packaged beam file): {time.perf_counter() - t0:.3f} s")
    beam = device.beam(6, 30, 10)
    beam.relative_dose(0.0, 0.0, 10.0)  # compile / load the numba cache

    rng = np.random.default_rng(1)
    n = 1_000_000
    nx, ny, nd = beam.dose_mc.shape
    hi = np.array(beam.origin_mm) + np.array(beam.spacing_mm) * (np.array([nx, ny, nd]) - 1)
    lo = np.array(beam.origin_mm)
    lo[2] = 0.0
    pts = lo + rng.random((n, 3)) * (hi - lo)
    pts[:, 2] = np.maximum(pts[:, 2], beam.origin_mm[2])  # stay inside the baseline's domain
    x, y, d = pts[:, 0].copy(), pts[:, 1].copy(), pts[:, 2].copy()

    t_numba = _best_of(3, lambda: beam.relative_dose(x, y, d))
    axes = [
        beam.origin_mm[i] + beam.spacing_mm[i] * np.arange(s)
        for i, s in enumerate(beam.dose_mc.shape)
    ]
    rgi = RegularGridInterpolator(axes, beam.dose_mc)
    t_scipy = _best_of(3, lambda: rgi(pts))
    ours = beam.relative_dose(x, y, d)
    ref = 100.0 * rgi(pts) / beam.mc_axis_max
    print(f"point-dose interpolation, {n:,} points ({beam.key}):")
    print(f"  numba kernel            {n / t_numba:14,.0f} points/s")
    print(f"  scipy RegularGridInterp {n / t_scipy:14,.0f} points/s (baseline)")
    print(f"  ratio                   {t_scipy / t_numba:14.1f} x")
    print(f"  largest difference      {np.abs(ours - ref).max():14.2e} % of the axis maximum")

    for spacing in (2.0, 1.0):
        phantom = _water_phantom(spacing)
        disc = DiscPlacement(get_disc("al_pb"), depth_mm=20.0, diameter_mm=80.0)

        def run(p: Phantom = phantom, dsc: DiscPlacement = disc) -> None:
            compute_dose(beam, p, (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), dose_max_gy=23.3, disc=dsc)

        t = _best_of(2, run)
        print(
            f"3D dose with density scaling and disc, {phantom.grid.size:,} voxels at "
            f"{spacing:g} mm: {t:.2f} s ({phantom.grid.size / t:,.0f} voxels/s)"
        )


if __name__ == "__main__":
    main()
