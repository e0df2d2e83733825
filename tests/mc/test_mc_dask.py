"""Scaling out: a 2-worker local Dask cluster gives exactly the local answer."""

from __future__ import annotations

import distributed  # noqa: F401  (a dependency: missing fails, never skips)
import numpy as np
import pytest

from openiort.dose.mc import radial_dose
from openiort.dose.mc.box_phantoms import box_phantom
from openiort.dose.mc.runner import RunSettingsError
from openiort.dose.mc.voxel import build_problem, run_problem
from openiort.dose.mc.xray_source import xray50_source


def test_dask_and_local_runs_are_identical():
    edges = np.array([2.0, 5.0, 10.0, 20.0, 40.0])
    local = radial_dose(30.0, "breast_50_50", edges, 40_000, seed=11, n_batches=4, workers=2)
    dask = radial_dose(
        30.0, "breast_50_50", edges, 40_000, seed=11, n_batches=4, use_dask=True, workers=2
    )
    np.testing.assert_array_equal(local[0], dask[0])
    np.testing.assert_array_equal(local[1], dask[1])

    ph = box_phantom(1.5, size_mm=40.0, spacing_mm=2.0, target_margin_mm=5.0)
    problem = build_problem(
        ph, xray50_source(ph.shaft_direction), ph.applicator_centre_mm, ph.applicator_radius_mm
    )
    a = run_problem(problem, ph.grid.shape, 8.0, 8_000, seed=5, n_batches=4, workers=1)
    b = run_problem(
        problem, ph.grid.shape, 8.0, 8_000, seed=5, n_batches=4, use_dask=True, workers=2
    )
    np.testing.assert_array_equal(a.dose_medium_gy_per_photon, b.dose_medium_gy_per_photon)
    np.testing.assert_array_equal(a.rel_unc_water, b.rel_unc_water)
    np.testing.assert_array_equal(a.balance_kev, b.balance_kev)


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(RunSettingsError, match="cannot reach"):
        radial_dose(30.0, "water", [5.0, 10.0], 1000, seed=1, scheduler_address="tcp://127.0.0.1:9")
