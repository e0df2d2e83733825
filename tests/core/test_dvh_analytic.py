"""DVH of analytic spherical shells (tolerance 1 % of the shell volume, see below)."""

from __future__ import annotations

import numpy as np
import pytest

from openiort.evaluation.dvh import compute_dvh
from openiort.grid import Grid

R_IN_MM, R_OUT_MM = 15.0, 25.0
# Volume within 1 percentage point of the shell volume: the same volume as a layer 0.18 mm thick
# at the inner radius (0.07 mm at the outer), under a fifth of the 1 mm voxel. The isodose
# spheres cut the voxels at random places; voxel-centre (or 3^3 sub-point) sampling misplaces
# each cut voxel's volume by up to half a (sub)voxel, which largely averages out over the
# thousands of voxels on each isodose surface (measured worst over lattice offsets: 0.75 %
# sub-sampled, 0.97 % at voxel centres).
DVH_TOLERANCE_PCT = 1.0


OFFSETS_MM = [(0.3, -0.2, 0.1), (0.5, 0.5, 0.5), (0.0, 0.0, 0.0)]


def _shell_grid(
    offset_mm: tuple[float, float, float] = OFFSETS_MM[0],
) -> tuple[Grid, np.ndarray, np.ndarray]:
    grid = Grid.centred((0.0, 0.0, 0.0), (64.0, 64.0, 64.0), 1.0)
    r = grid.distance_from_mm(offset_mm)  # shell centre relative to the voxel lattice
    dose = 20.0 * (R_IN_MM / np.maximum(r, R_IN_MM)) ** 3  # 1/r^3 fall-off like a bare 50 kV probe
    shell = (r > R_IN_MM) & (r <= R_OUT_MM)
    return grid, dose, shell


def _analytic_volume_pct(dose_gy: float) -> float:
    """Fraction of the shell within radius r(d), for D(r) = 20 (R_in / r)^3."""
    r = R_IN_MM * (20.0 / dose_gy) ** (1 / 3)
    r = min(max(r, R_IN_MM), R_OUT_MM)
    return 100 * (r**3 - R_IN_MM**3) / (R_OUT_MM**3 - R_IN_MM**3)


DOSE_LEVELS_GY = np.linspace(5.5, 19.5, 15)


def _worst_error_pct(offset: tuple[float, float, float], subsamples: int) -> float:
    grid, dose, shell = _shell_grid(offset)
    dvh = compute_dvh(dose, shell, grid, subsamples=subsamples)
    return max(abs(dvh.volume_at_dose_pct(d) - _analytic_volume_pct(d)) for d in DOSE_LEVELS_GY)


@pytest.mark.parametrize("offset", OFFSETS_MM)
def test_shell_volume_at_dose(offset: tuple[float, float, float]) -> None:
    assert _worst_error_pct(offset, subsamples=3) <= DVH_TOLERANCE_PCT


def test_shell_mean_and_dose_at_volume() -> None:
    grid, dose, shell = _shell_grid()
    dvh = compute_dvh(dose, shell, grid)
    # mean of 20 (R_in/r)^3 over the shell volume: 60 R_in^3 ln(R_out/R_in) / (R_out^3 - R_in^3)
    mean = 60 * R_IN_MM**3 * np.log(R_OUT_MM / R_IN_MM) / (R_OUT_MM**3 - R_IN_MM**3)
    assert dvh.mean_gy == pytest.approx(mean, rel=0.01)
    d50 = 20 * (R_IN_MM**3 / (R_IN_MM**3 + 0.5 * (R_OUT_MM**3 - R_IN_MM**3)))
    assert dvh.dose_at_volume_pct(50) == pytest.approx(d50, rel=0.01)


def test_subsampling_lowers_the_worst_case_error() -> None:
    """Over lattice offsets, sub-voxel sampling's worst error is below voxel-centre sampling's
    (measured here: 0.75 % vs 0.97 % for this shell)."""
    fine = max(_worst_error_pct(o, subsamples=3) for o in OFFSETS_MM)
    coarse = max(_worst_error_pct(o, subsamples=1) for o in OFFSETS_MM)
    assert fine < coarse


def test_empty_structure_and_shape_mismatch() -> None:
    grid, dose, shell = _shell_grid()
    empty = compute_dvh(dose, np.zeros_like(shell), grid)
    assert empty.total_volume_cc == 0 and empty.mean_gy == 0
    with pytest.raises(ValueError, match="shape"):
        compute_dvh(dose[:-1], shell[:-1], grid)
