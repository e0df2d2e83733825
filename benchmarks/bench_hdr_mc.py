"""Ir-192 (HDR) Monte Carlo: histories per second per core in the demo breast phantom.

The built-in demo case's phantom (1 mm voxels, skin, chest wall, ribs, lung, heart) with its
cavity filled by a saline balloon (water) and the Ir-192 source at the balloon centre: the
GammaMed HDR Plus with its core and capsule modelled, as the `hdr.mc` engine runs it
(:mod:`openiort.dose.mc.hdr_capsule`), and a bare point source. Prints:

1. photon histories per second per core (one thread, track-length collision kerma, D_m,m and
   D_w,m) of both sources, and the kV engine's rate in the same phantom and run;
2. the mean relative uncertainty over the target voxels after 2e6 histories of the modelled
   source (two threads) and the histories and time that reach 2 % there (uncertainty falls as
   1/sqrt(histories)).

Rates are thread CPU time, best and median of several runs (a neighbour on the shared cores
slows them; see bench_mc.py). Nothing here fails on time.
"""

from __future__ import annotations

import time

from bench_mc import REPEATS, per_core_rate

from openiort.anatomy.breast_phantom import build_breast_phantom
from openiort.case import load_case
from openiort.cli import demo_case_path
from openiort.dose.mc.hdr_capsule import capsule_arrays
from openiort.dose.mc.hdr_engine import build_hdr_voxel_problem
from openiort.dose.mc.runner import run_batch
from openiort.dose.mc.voxel import build_problem, run_problem
from openiort.dose.mc.xray_source import xray50_source

TARGET_UNC = 0.02
SOURCE = "GammaMed_HDR_Plus"  # the example HDR source


def main() -> None:
    case = load_case(demo_case_path())
    radius_mm = float(case.anatomy.cavity_diameter_mm or 40.0) / 2.0
    ph = build_breast_phantom(case, applicator_radius_mm=radius_mm, applicator_material="water")
    assert ph.applicator_centre_mm is not None
    print(
        f"demo case: {ph.grid.shape} voxels of 1 mm, {2 * radius_mm / 10:g} cm saline balloon, "
        f"{len(ph.materials)} media ({', '.join(ph.materials)})"
    )
    t0 = time.perf_counter()
    capsule = capsule_arrays(SOURCE, (0.0, 0.0, 1.0))
    hdr = build_hdr_voxel_problem(ph, ph.applicator_centre_mm, capsule=capsule)
    point = build_hdr_voxel_problem(ph, ph.applicator_centre_mm)
    print(f"set-up (Ir-192 tables 1 keV-1.5 MeV, majorant): {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    run_batch(hdr, 1, 0, 2000)
    print(f"compile or load from cache: {time.perf_counter() - t0:.2f} s")
    best, median = per_core_rate(hdr, 100_000)
    print(
        f"Ir-192 histories/s/core, {SOURCE} modelled, track-length collision kerma "
        f"(D_m,m + D_w,m): {best:,.0f} (best of {REPEATS}; median {median:,.0f})"
    )
    p_best, p_median = per_core_rate(point, 100_000)
    print(
        f"Ir-192 bare point source, same run: {p_best:,.0f} (best of {REPEATS}; median "
        f"{p_median:,.0f}); modelled / point {best / p_best:.2f}"
    )
    xray = build_problem(
        ph, xray50_source(ph.shaft_direction), ph.applicator_centre_mm, radius_mm, "water"
    )
    run_batch(xray, 1, 0, 2000)
    x_best, x_median = per_core_rate(xray, 100_000)
    print(
        "50 kV x-ray histories/s/core, same phantom and run (for comparison):  "
        f"{x_best:,.0f} (best of {REPEATS}; median {x_median:,.0f})"
    )

    n = 2_000_000
    t0 = time.perf_counter()
    res = run_problem(hdr, ph.grid.shape, 1.0, n, seed=5, n_batches=10, workers=2)
    wall = time.perf_counter() - t0
    target = ph.structures["target"]
    u = float(res.rel_unc_medium[target].mean())
    needed = n * (u / TARGET_UNC) ** 2
    print(
        f"{n:.0e} Ir-192 histories, 2 threads: {wall:.1f} s; mean relative uncertainty of D_m,m "
        f"over {int(target.sum())} target voxels: {100 * u:.2f} %; 2 % needs {needed:.2e} "
        f"histories, about {wall * needed / n:.1f} s"
    )


if __name__ == "__main__":
    main()
