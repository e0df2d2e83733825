"""The TG-43 benchmark script runs and reports consistent numbers (no timing assertions)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_tg43.py"


def test_benchmark_script_small_run(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_tg43", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--size-mm", "20", "--spacing-mm", "2", "--dwells", "12", "--json"])
    assert result["voxels"] == 1000 and result["dwells"] == 12
    assert result["numpy_baseline_voxels"] == 6 * 100
    # The two implementations of the same formula agree to rounding on the baseline slab.
    assert result["max_rel_diff_numba_numpy"] < 1e-12
    assert '"numba_voxel_dwells_per_s"' in capsys.readouterr().out
