"""One beam's 3D dose in water: the interpolation kernel and the quantities derived from it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from openiort.devices.electron.errors import ElectronDataError

FloatArray = NDArray[np.float64]


def beam_key(applicator_cm: int, bevel_deg: int, energy_mev: int) -> str:
    """File stem used by the source data, e.g. ``C5B45_12MeV``."""
    return f"C{applicator_cm}B{bevel_deg}_{energy_mev}MeV"


# --------------------------------------------------------------------------------------------
# Interpolation kernel
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _axis_index(value: float, origin: float, step: float, n: int) -> tuple[int, float]:
    f = (value - origin) / step
    if f <= 0.0:
        return 0, 0.0
    if f >= n - 1:
        return n - 2, 1.0
    i = int(f)
    return i, f - i


@numba.njit(cache=True)
def _trilinear(
    data: NDArray[np.float32],
    origin: NDArray[np.float64],
    step: NDArray[np.float64],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    d: NDArray[np.float64],
    out: NDArray[np.float64],
) -> None:
    """Trilinear interpolation on a uniform [ix, iy, id] grid.

    Lateral axes and depths beyond the last plane clamp to the edge (the data end there; the
    clamped value overestimates the dose that falls off outside). Between the surface and the
    first voxel centre the depth-dose is extrapolated linearly from the first two planes; points
    above the surface take the surface value.
    """
    nx, ny, nd = data.shape
    d_surface_index = -origin[2] / step[2]  # fractional index of depth 0 (negative)
    for k in range(x.size):
        ix, tx = _axis_index(x[k], origin[0], step[0], nx)
        iy, ty = _axis_index(y[k], origin[1], step[1], ny)
        fd = (d[k] - origin[2]) / step[2]
        if fd < d_surface_index:
            fd = d_surface_index
        if fd < 0.0:
            idd, td = 0, fd
        elif fd >= nd - 1:
            idd, td = nd - 2, 1.0
        else:
            idd = int(fd)
            td = fd - idd
        c00 = data[ix, iy, idd] * (1 - tx) + data[ix + 1, iy, idd] * tx
        c10 = data[ix, iy + 1, idd] * (1 - tx) + data[ix + 1, iy + 1, idd] * tx
        c01 = data[ix, iy, idd + 1] * (1 - tx) + data[ix + 1, iy, idd + 1] * tx
        c11 = data[ix, iy + 1, idd + 1] * (1 - tx) + data[ix + 1, iy + 1, idd + 1] * tx
        c0 = c00 * (1 - ty) + c10 * ty
        c1 = c01 * (1 - ty) + c11 * ty
        v = c0 * (1 - td) + c1 * td
        out[k] = v if v > 0.0 else 0.0


def interpolate(
    data: NDArray[np.float32],
    origin: FloatArray,
    step: FloatArray,
    x: ArrayLike,
    y: ArrayLike,
    d: ArrayLike,
) -> FloatArray:
    xb, yb, db = np.broadcast_arrays(
        np.asarray(x, dtype=np.float64),
        np.asarray(y, dtype=np.float64),
        np.asarray(d, dtype=np.float64),
    )
    shape = xb.shape
    xf, yf, df = (np.ascontiguousarray(a).ravel() for a in (xb, yb, db))
    if not (np.isfinite(xf).all() and np.isfinite(yf).all() and np.isfinite(df).all()):
        raise ValueError("beam coordinates must be finite numbers (got NaN or infinity)")
    out = np.empty(xf.size, dtype=np.float64)
    _trilinear(data, origin, step, xf, yf, df, out)
    return out.reshape(shape)


# --------------------------------------------------------------------------------------------
# One beam
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BeamCharacteristics:
    """Central-axis and profile quantities derived from the 3D data (depths in mm, water)."""

    zmax_mm: float
    r90_mm: float
    r80_mm: float
    r50_mm: float
    rp_mm: float
    surface_dose_pct: float
    surface_dose_depth_mm: float
    photon_background_pct: float
    width90_x_mm: float
    width90_y_mm: float

    @property
    def width90_mm(self) -> float:
        """Narrower of the two principal widths of the 90 % isodose at ``zmax``."""
        return min(self.width90_x_mm, self.width90_y_mm)

    def to_dict(self) -> dict[str, float]:
        d = dict(self.__dict__)
        d["width90_mm"] = self.width90_mm
        return {k: round(float(v), 3) for k, v in d.items()}


@dataclass(frozen=True, eq=False)
class ElectronBeam:
    """3D relative dose in water of one applicator/bevel/energy.

    ``dose_mc[ix, iy, id]`` is the Monte Carlo dose per history (arbitrary units) on a uniform
    grid whose voxel ``[0, 0, 0]`` centre is at ``origin_mm`` = (x, y, depth) with steps
    ``spacing_mm``. :meth:`relative_dose` returns percent of the dose maximum on the clinical
    axis (x = y = 0), the normalisation of PDDs, output factors and prescriptions.
    """

    applicator_cm: int
    bevel_deg: int
    energy_mev: int
    dose_mc: NDArray[np.float32]
    origin_mm: tuple[float, float, float]
    spacing_mm: tuple[float, float, float]
    rel_uncertainty_at_max: float
    histories: float
    data_sha256: str
    surface_dose_depth_mm: float  # ICRU 35 definition, from planning_defaults.yaml

    def __post_init__(self) -> None:
        if self.dose_mc.ndim != 3 or min(self.dose_mc.shape) < 2:
            raise ElectronDataError(f"{self.key}: dose must be 3D with >= 2 points per axis")
        if not np.isfinite(self.dose_mc).all() or self.dose_mc.min() < 0:
            raise ElectronDataError(f"{self.key}: dose has negative or non-finite values")

    @property
    def key(self) -> str:
        return beam_key(self.applicator_cm, self.bevel_deg, self.energy_mev)

    @cached_property
    def _origin(self) -> FloatArray:
        return np.asarray(self.origin_mm, dtype=np.float64)

    @cached_property
    def _step(self) -> FloatArray:
        return np.asarray(self.spacing_mm, dtype=np.float64)

    @cached_property
    def _depth_nodes_mm(self) -> FloatArray:
        """Depth 0 followed by the voxel-centre depths (the interpolant's nodes on the axis)."""
        nd = self.dose_mc.shape[2]
        centres = self.origin_mm[2] + self.spacing_mm[2] * np.arange(nd)
        return np.concatenate(([0.0], centres))

    @cached_property
    def mc_axis_max(self) -> float:
        """MC dose per history at the clinical-axis maximum (for MC output factors)."""
        depth = self._depth_nodes_mm
        cax = interpolate(self.dose_mc, self._origin, self._step, 0.0, 0.0, depth)
        m = float(cax.max())
        if m <= 0:
            raise ElectronDataError(f"{self.key}: no dose on the clinical axis")
        return m

    def relative_dose(self, x_mm: ArrayLike, y_mm: ArrayLike, depth_mm: ArrayLike) -> FloatArray:
        """Dose in water in percent of the clinical-axis maximum at beam coordinates (mm)."""
        return (
            100.0
            * interpolate(self.dose_mc, self._origin, self._step, x_mm, y_mm, depth_mm)
            / (self.mc_axis_max)
        )

    def pdd(self, depth_mm: ArrayLike) -> FloatArray:
        """Percent depth dose on the clinical axis."""
        return self.relative_dose(0.0, 0.0, depth_mm)

    def central_axis(self) -> tuple[FloatArray, FloatArray]:
        """(depth_mm, pdd_pct) at the interpolant's nodes (exact: the PDD is linear between)."""
        depth = self._depth_nodes_mm
        return depth, self.pdd(depth)

    @property
    def max_depth_mm(self) -> float:
        return float(self._depth_nodes_mm[-1])

    def depth_of(self, pct: float) -> float:
        """Depth beyond the maximum where the PDD first falls to ``pct`` percent (R_pct)."""
        depth, pdd = self.central_axis()
        im = int(np.argmax(pdd))
        below = np.nonzero(pdd[im:] < pct)[0]
        if below.size == 0:
            raise ElectronDataError(
                f"{self.key}: the PDD does not fall to {pct} % within the data "
                f"(deepest {self.max_depth_mm:.1f} mm)"
            )
        j = im + int(below[0])
        d0, d1, p0, p1 = depth[j - 1], depth[j], pdd[j - 1], pdd[j]
        return float(d0 + (p0 - pct) * (d1 - d0) / (p0 - p1))

    def isodose_extent_mm(self, pct: float, depth_mm: float, axis: str) -> tuple[float, float]:
        """(low, high) edges of the ``pct`` isodose (percent of the clinical-axis maximum) along
        the x or y line through the axis at ``depth_mm``; (0, 0) if the axis is below ``pct``."""
        if axis not in ("x", "y"):
            raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
        i = 0 if axis == "x" else 1
        n = self.dose_mc.shape[i]
        lo = self.origin_mm[i]
        hi = lo + self.spacing_mm[i] * (n - 1)
        s = np.linspace(lo, hi, round((hi - lo) / 0.1) + 1)
        prof = (
            self.relative_dose(s, 0.0, depth_mm) if i == 0 else self.relative_dose(0.0, s, depth_mm)
        )
        ic = int(np.argmin(np.abs(s)))
        if prof[ic] < pct:
            return 0.0, 0.0
        right = np.nonzero(prof[ic:] < pct)[0]
        left = np.nonzero(prof[: ic + 1][::-1] < pct)[0]
        if right.size == 0 or left.size == 0:
            raise ElectronDataError(f"{self.key}: the {pct} % isodose reaches the data edge")
        jr = ic + int(right[0])
        jl = ic - int(left[0])
        xr = s[jr - 1] + (prof[jr - 1] - pct) * (s[jr] - s[jr - 1]) / (prof[jr - 1] - prof[jr])
        xl = s[jl + 1] - (prof[jl + 1] - pct) * (s[jl + 1] - s[jl]) / (prof[jl + 1] - prof[jl])
        return float(xl), float(xr)

    def isodose_width_mm(self, pct: float, depth_mm: float, axis: str) -> float:
        """Width of the ``pct`` isodose along x or y at ``depth_mm`` (see isodose_extent_mm)."""
        lo, hi = self.isodose_extent_mm(pct, depth_mm, axis)
        return hi - lo

    def _practical_range(self) -> tuple[float, float]:
        """(Rp, photon background %): the tangent of the falling PDD meets the background.

        The tangent at the steepest point is a least-squares line through the 30-70 % part of
        the fall-off (robust to MC noise); the bremsstrahlung background is the smallest PDD
        value beyond R50 in the data (the data end before the tail for the highest energies,
        which makes that level an upper bound and Rp a lower bound there).
        """
        depth, pdd = self.central_axis()
        im = int(np.argmax(pdd))
        d, p = depth[im:], pdd[im:]
        sel = (p >= 30.0) & (p <= 70.0)
        if sel.sum() < 2:
            raise ElectronDataError(f"{self.key}: too few PDD points in the fall-off to find Rp")
        slope, intercept = np.polyfit(d[sel], p[sel], 1)
        r50 = self.depth_of(50.0)
        background = float(p[d >= r50].min())
        return float((background - intercept) / slope), background

    @cached_property
    def characteristics(self) -> BeamCharacteristics:
        depth, pdd = self.central_axis()
        zmax = float(depth[int(np.argmax(pdd))])
        rp, background = self._practical_range()
        return BeamCharacteristics(
            zmax_mm=zmax,
            r90_mm=self.depth_of(90.0),
            r80_mm=self.depth_of(80.0),
            r50_mm=self.depth_of(50.0),
            rp_mm=rp,
            surface_dose_pct=float(self.pdd(self.surface_dose_depth_mm)),
            surface_dose_depth_mm=self.surface_dose_depth_mm,
            photon_background_pct=background,
            width90_x_mm=self.isodose_width_mm(90.0, zmax, "x"),
            width90_y_mm=self.isodose_width_mm(90.0, zmax, "y"),
        )
