"""TG-43 dose-engine throughput: voxels x dwells per second on a 1 mm grid.

Default case (issue 4): 100 dwell positions (10 parallel catheters 10 mm apart, 10 dwells 5 mm
apart, in a plane through the centre) on a 1 mm grid of a 12 cm cube. The numba engine runs on
the whole grid; the numpy implementation of the same formula (the baseline) runs on a slab of
the same grid in the same run, and the ratio of the two throughputs is printed with the
largest relative difference between them on that slab. Prints numbers only; never fails on
time.

Usage: python benchmarks/bench_tg43.py [--size-mm 120] [--spacing-mm 1] [--dwells 100]
       [--baseline-slices 6] [--source GammaMed_HDR_Plus] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numba
import numpy as np

from openiort.dose import tg43
from openiort.grid import Grid


def dwell_layout(n_dwells: int) -> tg43.Dwells:
    """Up to 10 dwells per catheter, catheters 10 mm apart in the z = 0 plane, along y."""
    per_catheter = min(10, n_dwells)
    n_catheters = int(np.ceil(n_dwells / per_catheter))
    positions = [
        (10.0 * (c - (n_catheters - 1) / 2), 5.0 * (k - (per_catheter - 1) / 2), 0.0)
        for c in range(n_catheters)
        for k in range(per_catheter)
    ][:n_dwells]
    directions = np.tile([0.0, 1.0, 0.0], (n_dwells, 1))
    return tg43.Dwells(np.array(positions), directions, np.full(n_dwells, 10.0))


def run(
    size_mm: float = 120.0,
    spacing_mm: float = 1.0,
    n_dwells: int = 100,
    baseline_slices: int = 6,
    source_id: str = "GammaMed_HDR_Plus",
    sk_u: float = 40000.0,
) -> dict[str, float | int | str]:
    grid = Grid.centred((0.0, 0.0, 0.0), (size_mm,) * 3, spacing_mm)
    dwells = dwell_layout(n_dwells)

    start = time.perf_counter()
    tiny = Grid.centred((0.0, 0.0, 0.0), (4 * spacing_mm,) * 3, spacing_mm)
    tg43.compute_dose(dwells, source_id, sk_u, tiny)
    tg43.compute_dose(dwells, source_id, sk_u, tiny, backend="numpy")
    warmup_s = time.perf_counter() - start

    numba_rate, numba_s = tg43.throughput_pairs_per_s(dwells, source_id, sk_u, grid)

    nz = max(1, min(baseline_slices, grid.shape[0]))
    z0 = grid.origin_mm[2] + spacing_mm * ((grid.shape[0] - nz) // 2)
    slab = Grid((grid.origin_mm[0], grid.origin_mm[1], z0), grid.spacing_mm, (nz, *grid.shape[1:]))
    numpy_rate, numpy_s = tg43.throughput_pairs_per_s(
        dwells, source_id, sk_u, slab, backend="numpy"
    )
    a = tg43.compute_dose(dwells, source_id, sk_u, slab)
    b = tg43.compute_dose(dwells, source_id, sk_u, slab, backend="numpy")
    return {
        "source_id": source_id,
        "grid_shape_zyx": "x".join(str(n) for n in grid.shape),
        "voxels": grid.size,
        "dwells": dwells.n,
        "numba_threads": numba.get_num_threads(),
        "cpu_count": os.cpu_count() or 0,
        "warmup_compile_s": round(warmup_s, 3),
        "numba_s": round(numba_s, 3),
        "numba_voxel_dwells_per_s": round(numba_rate),
        "numpy_baseline_voxels": slab.size,
        "numpy_s": round(numpy_s, 3),
        "numpy_voxel_dwells_per_s": round(numpy_rate),
        "speedup_numba_over_numpy": round(numba_rate / numpy_rate, 2),
        "max_rel_diff_numba_numpy": float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))),
    }


def main(argv: list[str] | None = None) -> dict[str, float | int | str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mm", type=float, default=120.0)
    parser.add_argument("--spacing-mm", type=float, default=1.0)
    parser.add_argument("--dwells", type=int, default=100)
    parser.add_argument("--baseline-slices", type=int, default=6)
    parser.add_argument("--source", default="GammaMed_HDR_Plus")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = run(args.size_mm, args.spacing_mm, args.dwells, args.baseline_slices, args.source)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"TG-43 engine benchmark ({result['source_id']})")
        for key, value in result.items():
            print(f"  {key:28s} {value}")
        print(
            f"  => {result['numba_voxel_dwells_per_s']:.3e} voxel x dwell / s (numba), "
            f"{result['speedup_numba_over_numpy']}x the numpy baseline measured in this run"
        )
    return result


if __name__ == "__main__":
    main()
