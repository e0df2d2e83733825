"""End-to-end demo time and the table engine's throughput (voxels per second).

The engine is compared in the same run with a plain per-voxel Python baseline on a small
sub-grid, so the ratio is meaningful on a noisy machine.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from openiort.case import load_case
from openiort.cli import demo_case_path
from openiort.devices.xray import load_example_source, treatment_time
from openiort.dose import table
from openiort.pipeline import plan_case
from openiort.report.outputs import write_plan_outputs


def _best_of(n: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    case = load_case(demo_case_path())
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        plan = plan_case(case)
        t_plan = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_plan_outputs(plan, Path(tmp) / "demo")
        t_write = time.perf_counter() - t0
    print(
        f"demo end to end (library, warm imports): {t_plan + t_write:.2f} s "
        f"(plan {t_plan:.2f} s, report and files {t_write:.2f} s)"
    )

    source = load_example_source()
    t = treatment_time(source, 3.0, 20.0, "TARGIT")
    phantom = plan.phantom
    n_vox = phantom.grid.size
    t_engine = _best_of(3, lambda: table.compute(source, 3.0, t.time_min, phantom))
    print(
        f"table engine: {n_vox / 1e6:.2f} M voxels in {t_engine:.3f} s = {n_vox / t_engine / 1e6:.1f} M voxels/s"
    )

    # Baseline: the same arithmetic voxel by voxel in Python, on 20,000 voxels.
    centre = np.array(phantom.applicator_centre_mm)
    idx = np.argwhere(np.ones(phantom.grid.shape, dtype=bool))[:20000].astype(float)
    pos = phantom.grid.index_to_position_mm(idx)
    app = source.applicator(3.0)
    t0 = time.perf_counter()
    for p in pos:
        depth = max(float(np.sqrt(((p - centre) ** 2).sum())) - 15.0, 0.0)
        float(np.interp(depth, app.depth_mm, app.relative_dose_water))
    per_voxel_python = (time.perf_counter() - t0) / len(pos)
    print(
        f"per-voxel Python baseline: {1 / per_voxel_python / 1e3:.1f} k voxels/s; "
        f"vectorised engine is {per_voxel_python * n_vox / t_engine:.0f}x faster"
    )


if __name__ == "__main__":
    main()
