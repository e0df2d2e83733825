"""kV Monte Carlo: histories per second per core, 2-thread speed-up, the demo case's MC plan.

1. Breast cube: a 12 cm cube of breast tissue (20 % gland) with 2 mm skin, the 3.5 cm
   applicator at its centre, 1 mm voxels (1.7 million). Prints photon histories per second
   per core (one thread, track-length scoring of D_m,m and D_w,m; and transport alone, analog
   scoring), the speed-up of two threads over one on the same histories (same seed, identical
   answers), the time for 1e7 histories, and a plan for 20 Gy (TARGIT) with the histories
   needed for a mean relative standard uncertainty under 2 % over the target voxels that
   receive at least half the prescription.
2. The built-in demo case (``iort demo``'s patient): its phantom (190 x 194 x 190 voxels of 1 mm
   with skin, chest wall, ribs, lung and heart) and its MC plan, ``iort plan DEMO --engine mc``
   end to end in a child process: time, mean uncertainty over the target voxels that receive
   at least half the prescription, and the child's peak memory.

Targets (issue 3, on the 2-core machine): >= 1e6 histories/s/core in a voxel phantom, the demo
phantom's MC plan (< 2 %) under 60 s, peak memory under 2 GB. Rates are thread CPU time; a
neighbour that loads the shared cache and memory still slows them, so each is the best and the
median of several runs. Nothing here fails on time. Results and figures before/after the speed
work: src/openiort/dose/mc/VALIDATION.md.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from openiort.anatomy.breast_phantom import build_breast_phantom
from openiort.case import load_case
from openiort.cli import demo_case_path
from openiort.devices.xray import choose_applicator, load_example_source, treatment_time
from openiort.dose.mc import engine
from openiort.dose.mc.box_phantoms import box_phantom
from openiort.dose.mc.runner import run_batch
from openiort.dose.mc.voxel import build_problem, run_problem
from openiort.dose.mc.xray_source import xray50_source

TARGET_UNC = 0.02
REPEATS = 7  # per-core rates: best (least disturbed by neighbours) and median of these


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def per_core_rate(problem, histories: int, repeats: int = REPEATS) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Best and median histories per CPU-second of the one thread that runs the batch.

    Thread CPU time, not wall clock: time the scheduler gives to other processes is not
    counted. A neighbour that loads the shared cache and memory still slows the thread (on the
    2-core machine the same run varies by up to 40 % from one minute to the next), so the best
    of several runs is the figure for the code and the median the figure for the moment.
    """
    rates = []
    for r in range(repeats):
        t0 = time.thread_time()
        run_batch(problem, 7, r + 1, histories)
        rates.append(histories / (time.thread_time() - t0))
    return max(rates), float(np.median(rates))


def main() -> None:
    ph = box_phantom(3.5, size_mm=120.0, spacing_mm=1.0, tissue="breast_20_80", skin_mm=2.0)
    source = xray50_source(ph.shaft_direction)
    print(f"1. breast cube: {ph.grid.shape} voxels of 1 mm, 3.5 cm applicator, breast 20/80 + skin")
    t0 = time.perf_counter()
    tle = build_problem(ph, source, ph.applicator_centre_mm, ph.applicator_radius_mm)
    analog = build_problem(
        ph, source, ph.applicator_centre_mm, ph.applicator_radius_mm, analog=True
    )
    print(f"set-up (physics tables, majorant): {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    run_batch(tle, 1, 0, 2000)
    run_batch(analog, 1, 0, 2000)
    print(f"compile or load from cache: {time.perf_counter() - t0:.2f} s")

    tle_best, tle_median = per_core_rate(tle, 300_000)
    analog_best, analog_median = per_core_rate(analog, 300_000)
    print(
        "histories/s/core, track-length scoring (D_m,m + D_w,m): "
        f"{tle_best:,.0f} (best of {REPEATS}; median {tle_median:,.0f})"
    )
    print(
        "histories/s/core, transport only (analog scoring):      "
        f"{analog_best:,.0f} (best of {REPEATS}; median {analog_median:,.0f})"
    )

    n = 2_000_000
    times = {}
    results = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        results[workers] = run_problem(
            tle, ph.grid.shape, 1.0, n, seed=5, n_batches=10, workers=workers
        )
        times[workers] = time.perf_counter() - t0
    same = np.array_equal(
        results[1].dose_medium_gy_per_photon, results[2].dose_medium_gy_per_photon
    )
    print(
        f"2-thread speed-up on {n:.0e} histories: {times[1] / times[2]:.2f} x "
        f"({times[1]:.1f} s -> {times[2]:.1f} s; identical result: {same})"
    )

    src = load_example_source()
    minutes = treatment_time(src, 3.5, 20.0, "TARGIT").time_min
    t0 = time.perf_counter()
    _, dw = engine.compute(
        ph,
        3.5,
        dwell_time_s=minutes * 60.0,
        histories=10_000_000,
        seed=11,
        workers=2,
        progress=False,
    )
    t_1e7 = time.perf_counter() - t0
    target = ph.structures["target"] & (dw.dose_gy >= 10.0)
    assert dw.rel_uncertainty is not None
    u_1e7 = float(dw.rel_uncertainty[target].mean())
    print(
        f"1e7 histories in the breast cube (2 threads, plan engine): {t_1e7:.1f} s; "
        f"mean uncertainty over {int(target.sum())} target voxels >= 10 Gy: {100 * u_1e7:.2f} %"
    )

    needed = int(min(1e8, 1e7 * (u_1e7 / (0.97 * TARGET_UNC)) ** 2))
    t0 = time.perf_counter()
    dm, dw = engine.compute(
        ph, 3.5, dwell_time_s=minutes * 60.0, histories=needed, seed=12, workers=2, progress=False
    )
    t_plan = time.perf_counter() - t0
    target = ph.structures["target"] & (dw.dose_gy >= 10.0)
    assert dw.rel_uncertainty is not None and dm.rel_uncertainty is not None
    print(
        f"MC plan, 20 Gy TARGIT ({minutes:.1f} min), {needed:.2e} histories: {t_plan:.1f} s; mean relative "
        f"uncertainty over target voxels >= 10 Gy: D_w,m {100 * dw.rel_uncertainty[target].mean():.2f} %, "
        f"D_m,m {100 * dm.rel_uncertainty[target].mean():.2f} %"
    )
    print(f"peak memory of this process: {peak_memory_mb():.0f} MB")
    demo_case()


def demo_case() -> None:
    """The demo case's phantom: per-core rate; then its MC plan end to end in a child process."""
    case = load_case(demo_case_path())
    src = load_example_source()
    diameter = choose_applicator(src, case.anatomy.cavity_diameter_mm)
    ph = build_breast_phantom(case, applicator_radius_mm=diameter * 5.0)
    print(
        f"2. demo case: {ph.grid.shape} voxels of 1 mm, {diameter:g} cm applicator, "
        f"{len(ph.materials)} media ({', '.join(ph.materials)})"
    )
    problem = build_problem(
        ph, xray50_source(ph.shaft_direction), ph.applicator_centre_mm, ph.applicator_radius_mm
    )
    run_batch(problem, 1, 0, 2000)
    best, median = per_core_rate(problem, 300_000)
    print(
        "histories/s/core, track-length scoring (D_m,m + D_w,m): "
        f"{best:,.0f} (best of {REPEATS}; median {median:,.0f})"
    )
    iort = Path(sys.executable).with_name("iort")
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        subprocess.run(
            [str(iort), "plan", str(demo_case_path()), "--engine", "xray.mc", "--out", out],
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - t0
        mc = json.loads((Path(out) / "plan.json").read_text())["engine_comparison"]
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    print(
        f"`iort plan DEMO --engine mc` end to end: {wall:.1f} s for {mc['histories']:.2e} "
        f"histories; mean relative uncertainty over target voxels >= half the prescription "
        f"{mc['mean_rel_uncertainty_target_pct']:.2f} %; peak memory {child_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
