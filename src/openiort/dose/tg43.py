"""AAPM TG-43U1 2D line-source dose engine for Ir-192 HDR sources (dose to water in water).

Dose rate at (r, theta) from one source of air-kerma strength S_K (Rivard et al., Med Phys
2004;31:633, eq. 11)::

    D'(r, theta) = S_K * Lambda * G_L(r, theta) / G_L(1 cm, 90 deg) * g_L(r) * F(r, theta)

with the line-source geometry function G_L = beta / (L r sin theta), written here as
atan(L rho / (r^2 - L^2/4)) / (L rho) (rho = r sin theta), which has the on-axis limit
1 / (r^2 - L^2/4) without a special case.

Interpolation and extrapolation (TG-43U1 Appendix C and section IV): g_L(r) is interpolated
linearly in r, held at its first value below the smallest radius and extrapolated linearly from
the last two radii beyond the largest (floored at zero); F(r, theta) is interpolated bilinearly
in (r, theta) and takes the nearest tabulated radius outside the table. Below the source's clip
radius ``Tg43Source.r_clip_cm`` (the smallest r at which g_L and F(r, 0 deg) are both
tabulated: 0.4-0.5 cm for the HEBD sources, 0.22-0.25 cm for the microSelectron sets) the
formalism is evaluated at the clip radius in the same direction: closer points are inside the
source, its capsule or the catheter, where TG-43 gives no meaningful dose, and both modelled
applicators keep tissue farther away.

Units: TG-43 data in cm, degrees and cGy h^-1 U^-1 (1 U = 1 cGy cm^2 h^-1); positions in mm;
dwell times in s; dose in Gy. The dose is for one session.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from openiort import __version__
from openiort.devices.hdr import Tg43Source, load_source, qa_along_away_table, unit_vector
from openiort.dosegrid import DoseGrid, Provenance
from openiort.errors import OpenIortInputError
from openiort.grid import Grid

FloatArray = NDArray[np.float64]
Backend = Literal["numba", "numpy"]
# g_L radii, g_L, their bracket lookup and inverse bin width; the same for the F radii and
# angles; then the F table (radii x angles).
Tables = tuple[
    FloatArray,
    FloatArray,
    NDArray[np.int64],
    float,
    FloatArray,
    NDArray[np.int64],
    float,
    FloatArray,
    NDArray[np.int64],
    float,
    FloatArray,
]
MM_PER_CM = 10.0
S_PER_H = 3600.0
CGY_PER_GY = 100.0
# Below this ratio L*rho / (r^2 - L^2/4), atan(x)/x is replaced by its series 1 - x^2/3
# (relative error < x^4/5 = 2e-17).
_SERIES_LIMIT = 1e-4
_NUMPY_CHUNK = 1 << 20


class Tg43InputError(OpenIortInputError):
    """Bad input to the TG-43 engine (shapes, non-finite values, negative times)."""


@dataclass(frozen=True)
class Dwells:
    """Dwell positions (x, y, z mm), unit source directions (cable to tip) and times (s)."""

    positions_mm: FloatArray
    directions: FloatArray
    times_s: FloatArray

    def __post_init__(self) -> None:
        pos = np.ascontiguousarray(self.positions_mm, dtype=np.float64)
        dirs = np.ascontiguousarray(self.directions, dtype=np.float64)
        times = np.ascontiguousarray(self.times_s, dtype=np.float64)
        n = times.shape[0] if times.ndim == 1 else -1
        if n < 1 or pos.shape != (n, 3) or dirs.shape != (n, 3):
            raise Tg43InputError(
                "dwells need positions_mm (n, 3), directions (n, 3) and times_s (n,) with n >= 1;"
                f" got {pos.shape}, {dirs.shape}, {times.shape}"
            )
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(dirs))):
            raise Tg43InputError("dwell positions and directions must be finite")
        if not np.all(np.isfinite(times)) or np.any(times < 0):
            raise Tg43InputError("dwell times must be finite and >= 0 s")
        norms = np.linalg.norm(dirs, axis=1)
        if np.any(np.abs(norms - 1.0) > 1e-6):
            raise Tg43InputError("dwell directions must be unit vectors")
        object.__setattr__(self, "positions_mm", pos)
        object.__setattr__(self, "directions", dirs / norms[:, None])
        object.__setattr__(self, "times_s", times)

    @property
    def n(self) -> int:
        return int(self.times_s.shape[0])

    @property
    def total_time_s(self) -> float:
        return float(self.times_s.sum())


# ---------------------------------------------------------------------------------------------
# numba kernels: one dose-rate evaluation per (point, dwell) pair


@numba.njit(cache=True, inline="always")
def _bracket(
    xs: FloatArray, index: NDArray[np.int64], inv_bin: float, x: float
) -> tuple[int, float]:
    """Index i and fraction t with x = xs[i] + t (xs[i+1] - xs[i]), x clamped to the table.

    ``index`` maps uniform bins of width 1/``inv_bin`` (at most half the smallest table step)
    to the last node at or below the bin start, so the search costs O(1).
    """
    n = xs.shape[0]
    if x <= xs[0]:
        return 0, 0.0
    if x >= xs[n - 1]:
        return n - 2, 1.0
    i = index[int((x - xs[0]) * inv_bin)]
    while xs[i + 1] < x:
        i += 1
    return i, (x - xs[i]) / (xs[i + 1] - xs[i])


@numba.njit(cache=True, inline="always")
def _radial(
    r: float, gl_r: FloatArray, gl: FloatArray, gl_index: NDArray[np.int64], gl_inv: float
) -> float:
    n = gl_r.shape[0]
    if r > gl_r[n - 1]:
        slope = (gl[n - 1] - gl[n - 2]) / (gl_r[n - 1] - gl_r[n - 2])
        return max(gl[n - 1] + slope * (r - gl_r[n - 1]), 0.0)
    i, t = _bracket(gl_r, gl_index, gl_inv, r)
    return gl[i] + t * (gl[i + 1] - gl[i])


@numba.njit(cache=True, inline="always")
def _anisotropy(r: float, theta: float, tables: Tables) -> float:
    f_r, r_index, r_inv, f_t, t_index, t_inv, f = tables[4:]
    i, u = _bracket(f_r, r_index, r_inv, r)
    j, v = _bracket(f_t, t_index, t_inv, theta)
    top = f[i, j] + v * (f[i, j + 1] - f[i, j])
    bottom = f[i + 1, j] + v * (f[i + 1, j + 1] - f[i + 1, j])
    return top + u * (bottom - top)


@numba.njit(cache=True, inline="always")
def _rate(
    z: float, rho: float, length: float, r_clip: float, scale: float, tables: Tables
) -> float:
    """Dose rate per unit S_K times ``scale`` at (z along the axis, rho off the axis) in cm."""
    r = math.sqrt(z * z + rho * rho)
    if r < r_clip:
        if r > 0.0:
            z = z * r_clip / r
            rho = rho * r_clip / r
        else:
            z, rho = 0.0, r_clip
        r = r_clip
    d = r * r - 0.25 * length * length
    x = length * rho / d
    geometry = (1.0 - x * x / 3.0) / d if x < _SERIES_LIMIT else math.atan(x) / (length * rho)
    theta = math.degrees(math.atan2(rho, z))
    radial = _radial(r, tables[0], tables[1], tables[2], tables[3])
    return scale * geometry * radial * _anisotropy(r, theta, tables)


@numba.njit(cache=True, parallel=True)
def _dose_on_grid(
    x_cm: FloatArray,
    y_cm: FloatArray,
    z_cm: FloatArray,
    pos_cm: FloatArray,
    dirs: FloatArray,
    weights: FloatArray,
    length: float,
    r_clip: float,
    tables: Tables,
) -> FloatArray:
    nz, ny, nx = z_cm.shape[0], y_cm.shape[0], x_cm.shape[0]
    out = np.zeros((nz, ny, nx))
    nd = weights.shape[0]
    for k in numba.prange(nz):
        for j in range(ny):
            for i in range(nx):
                acc = 0.0
                for m in range(nd):
                    if weights[m] == 0.0:
                        continue
                    dx = x_cm[i] - pos_cm[m, 0]
                    dy = y_cm[j] - pos_cm[m, 1]
                    dz = z_cm[k] - pos_cm[m, 2]
                    along = dx * dirs[m, 0] + dy * dirs[m, 1] + dz * dirs[m, 2]
                    rho = math.sqrt(max(dx * dx + dy * dy + dz * dz - along * along, 0.0))
                    acc += _rate(along, rho, length, r_clip, weights[m], tables)
                out[k, j, i] = acc
    return out


@numba.njit(cache=True, parallel=True)
def _rate_matrix(
    pts_cm: FloatArray,
    pos_cm: FloatArray,
    dirs: FloatArray,
    scale: float,
    length: float,
    r_clip: float,
    tables: Tables,
) -> FloatArray:
    npts, nd = pts_cm.shape[0], pos_cm.shape[0]
    out = np.empty((npts, nd))
    for p in numba.prange(npts):
        for m in range(nd):
            dx = pts_cm[p, 0] - pos_cm[m, 0]
            dy = pts_cm[p, 1] - pos_cm[m, 1]
            dz = pts_cm[p, 2] - pos_cm[m, 2]
            along = dx * dirs[m, 0] + dy * dirs[m, 1] + dz * dirs[m, 2]
            rho = math.sqrt(max(dx * dx + dy * dy + dz * dz - along * along, 0.0))
            out[p, m] = _rate(along, rho, length, r_clip, scale, tables)
    return out


@numba.njit(cache=True)
def _rate_polar(
    z: FloatArray,
    rho: FloatArray,
    scale: float,
    length: float,
    r_clip: float,
    tables: Tables,
) -> FloatArray:
    out = np.empty(z.shape[0])
    for p in range(z.shape[0]):
        out[p] = _rate(z[p], rho[p], length, r_clip, scale, tables)
    return out


# ---------------------------------------------------------------------------------------------
# numpy implementation of the same formula (baseline and cross-check; no numba needed)


def line_source_geometry(z_cm: ArrayLike, rho_cm: ArrayLike, length_cm: float) -> FloatArray:
    """TG-43U1 line-source geometry function G_L (cm^-2) at (z along, rho off) the axis.

    Valid outside the active line (r > L/2); ``length_cm`` 0 gives the point source 1/r^2.
    """
    z = np.asarray(z_cm, dtype=np.float64)
    rho = np.asarray(rho_cm, dtype=np.float64)
    d = z * z + rho * rho - 0.25 * length_cm * length_cm
    if np.any(d <= 0):
        raise Tg43InputError("the geometry function is defined only outside the active line")
    x = length_cm * rho / d
    with np.errstate(invalid="ignore", divide="ignore"):
        series = (1.0 - x * x / 3.0) / d
        exact = np.arctan(x) / (length_cm * rho)
    return np.asarray(np.where(x < _SERIES_LIMIT, series, exact))


def _rate_numpy(src: Tg43Source, z: FloatArray, rho: FloatArray, scale: float) -> FloatArray:
    z = np.asarray(z, dtype=np.float64)
    rho = np.asarray(rho, dtype=np.float64)
    r = np.hypot(z, rho)
    small = r < src.r_clip_cm
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(r > 0, src.r_clip_cm / r, 1.0)
    z = np.where(small, np.where(r > 0, z * ratio, 0.0), z)
    rho = np.where(small, np.where(r > 0, rho * ratio, src.r_clip_cm), rho)
    r = np.maximum(r, src.r_clip_cm)
    geometry = line_source_geometry(z, rho, src.active_length_cm)
    theta = np.degrees(np.arctan2(rho, z))
    gl = np.interp(r, src.gl_r_cm, src.gl)
    slope = (src.gl[-1] - src.gl[-2]) / (src.gl_r_cm[-1] - src.gl_r_cm[-2])
    beyond = r > src.gl_r_cm[-1]
    gl = np.where(beyond, np.maximum(src.gl[-1] + slope * (r - src.gl_r_cm[-1]), 0.0), gl)
    return scale * geometry * gl * _bilinear_numpy(src, r, theta)


def _bilinear_numpy(src: Tg43Source, r: FloatArray, theta: FloatArray) -> FloatArray:
    def bracket(xs: FloatArray, x: FloatArray) -> tuple[NDArray[np.intp], FloatArray]:
        xc = np.clip(x, xs[0], xs[-1])
        i = np.clip(np.searchsorted(xs, xc, side="right") - 1, 0, xs.size - 2)
        return i, (xc - xs[i]) / (xs[i + 1] - xs[i])

    i, u = bracket(src.f_r_cm, r)
    j, v = bracket(src.f_theta_deg, theta)
    f = src.f_table
    top = f[i, j] + v * (f[i, j + 1] - f[i, j])
    bottom = f[i + 1, j] + v * (f[i + 1, j + 1] - f[i + 1, j])
    return np.asarray(top + u * (bottom - top))


# ---------------------------------------------------------------------------------------------
# public API


def _bin_index(xs: FloatArray) -> tuple[NDArray[np.int64], float]:
    """Bracket lookup for :func:`_bracket`: uniform bins of half the smallest table step."""
    width = float(np.min(np.diff(xs))) / 2.0
    n_bins = math.ceil((xs[-1] - xs[0]) / width) + 2
    starts = xs[0] + width * np.arange(n_bins)
    index = np.searchsorted(xs, starts, side="right") - 1
    return np.clip(index, 0, xs.size - 2).astype(np.int64), 1.0 / width


@cache
def _tables(source_id: str) -> Tables:
    """The source's tables with their bracket lookups, in the order the kernels expect."""
    src = load_source(source_id)
    gl_index, gl_inv = _bin_index(src.gl_r_cm)
    r_index, r_inv = _bin_index(src.f_r_cm)
    t_index, t_inv = _bin_index(src.f_theta_deg)
    return (
        src.gl_r_cm,
        src.gl,
        gl_index,
        gl_inv,
        src.f_r_cm,
        r_index,
        r_inv,
        src.f_theta_deg,
        t_index,
        t_inv,
        np.ascontiguousarray(src.f_table),
    )


def geometry_factor_ratio(src: Tg43Source) -> float:
    """Lambda / G_L(1 cm, 90 deg): the factor multiplying G_L g_L F, in cGy h^-1 U^-1 cm^2."""
    length = src.active_length_cm
    g0 = 1.0 if length == 0 else math.atan(length / (1.0 - 0.25 * length**2)) / length
    return src.dose_rate_constant_cgy_h_u / g0


def dose_rate_along_away(
    source_id: str, z_cm: ArrayLike, y_cm: ArrayLike, *, backend: Backend = "numba"
) -> FloatArray:
    """TG-43 dose rate per unit air-kerma strength (cGy h^-1 U^-1) at along-away points.

    ``z_cm`` is along the source axis from its centre (positive towards the tip), ``y_cm`` the
    distance from the axis (its sign is ignored). Arrays broadcast.
    """
    src = load_source(source_id)
    z, y = np.broadcast_arrays(np.asarray(z_cm, np.float64), np.asarray(y_cm, np.float64))
    if not (np.all(np.isfinite(z)) and np.all(np.isfinite(y))):
        raise Tg43InputError("along-away coordinates must be finite")
    scale = geometry_factor_ratio(src)
    zf = np.ascontiguousarray(z.ravel())
    yf = np.ascontiguousarray(np.abs(y).ravel())
    if backend == "numba":
        out = _rate_polar(
            zf, yf, scale, src.active_length_cm, src.r_clip_cm, _tables(src.source_id)
        )
    elif backend == "numpy":
        out = _rate_numpy(src, zf, yf, scale)
    else:
        raise Tg43InputError(f"unknown backend {backend!r}; use 'numba' or 'numpy'")
    return np.asarray(out).reshape(z.shape)


def dose_rate_per_sk(source_id: str, r_cm: ArrayLike, theta_deg: ArrayLike) -> FloatArray:
    """TG-43 dose rate per unit air-kerma strength, cGy h^-1 U^-1, at polar (r, theta).

    ``theta_deg`` is measured from the source axis towards the tip (0 to 180). Arrays
    broadcast. Raises :class:`~openiort.devices.hdr.UnknownSourceError` for an unknown id and
    :class:`Tg43InputError` for negative or non-finite r or theta outside [0, 180].
    """
    r, theta = np.broadcast_arrays(np.asarray(r_cm, np.float64), np.asarray(theta_deg, np.float64))
    load_source(source_id)
    if not (np.all(np.isfinite(r)) and np.all(r >= 0)):
        raise Tg43InputError("r_cm must be finite and >= 0")
    if not (np.all(np.isfinite(theta)) and np.all((theta >= 0) & (theta <= 180))):
        raise Tg43InputError("theta_deg must lie in [0, 180]")
    t = np.radians(theta)
    return dose_rate_along_away(source_id, r * np.cos(t), r * np.sin(t))


def _check_points(points_mm: ArrayLike, name: str) -> FloatArray:
    pts = np.ascontiguousarray(points_mm, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise Tg43InputError(f"{name} must have shape (n, 3), got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise Tg43InputError(f"{name} must be finite")
    return pts


def dose_rate_matrix(
    source_id: str,
    points_mm: ArrayLike,
    positions_mm: ArrayLike,
    directions: ArrayLike,
    *,
    backend: Backend = "numba",
) -> FloatArray:
    """Dose rate per unit S_K (cGy h^-1 U^-1) at each point from each dwell position.

    Returns an array (n_points, n_dwells); ``directions`` are unit vectors, cable to tip.
    """
    src = load_source(source_id)
    pts = _check_points(points_mm, "points_mm") / MM_PER_CM
    pos = _check_points(positions_mm, "positions_mm") / MM_PER_CM
    dirs = np.ascontiguousarray(
        [unit_vector(d, "dwell direction") for d in _check_points(directions, "directions")]
    ).reshape(-1, 3)
    if dirs.shape != pos.shape:
        raise Tg43InputError("positions_mm and directions must have the same shape")
    scale = geometry_factor_ratio(src)
    if backend == "numba":
        return np.asarray(
            _rate_matrix(
                pts, pos, dirs, scale, src.active_length_cm, src.r_clip_cm, _tables(src.source_id)
            )
        )
    if backend != "numpy":
        raise Tg43InputError(f"unknown backend {backend!r}; use 'numba' or 'numpy'")
    rel = pts[:, None, :] - pos[None, :, :]
    along = np.einsum("pmk,mk->pm", rel, dirs)
    rho = np.sqrt(np.maximum(np.einsum("pmk,pmk->pm", rel, rel) - along**2, 0.0))
    return _rate_numpy(src, along, rho, scale)


def _check_strength(sk_u: float) -> float:
    numeric = isinstance(sk_u, int | float | np.integer | np.floating) and not isinstance(
        sk_u, bool
    )
    if not (numeric and math.isfinite(float(sk_u)) and float(sk_u) > 0):
        raise Tg43InputError(f"air-kerma strength must be a positive number of U, got {sk_u!r}")
    return float(sk_u)


def compute_dose(
    dwells: Dwells, source_id: str, sk_u: float, grid: Grid, *, backend: Backend = "numba"
) -> FloatArray:
    """TG-43 dose (Gy, water in water, one session) on every voxel centre of ``grid``.

    Parameters
    ----------
    dwells
        Dwell positions (mm), unit source directions and dwell times (s).
    source_id
        A source id of :func:`openiort.devices.hdr.source_ids`.
    sk_u
        Air-kerma strength at treatment, in U (cGy cm^2 h^-1); decay during the session is
        neglected (under 0.01 % for a 10 min session).
    grid
        Voxel grid; the result has shape ``grid.shape`` ([z, y, x]).
    backend
        ``"numba"`` (parallel over z slices) or ``"numpy"`` (chunked; the baseline).
    """
    src = load_source(source_id)
    sk = _check_strength(sk_u)
    weights = dwells.times_s / S_PER_H * sk / CGY_PER_GY
    scale = geometry_factor_ratio(src)
    z_mm, y_mm, x_mm = grid.axes_mm()
    if backend == "numba":
        return np.asarray(
            _dose_on_grid(
                np.ascontiguousarray(x_mm / MM_PER_CM),
                np.ascontiguousarray(y_mm / MM_PER_CM),
                np.ascontiguousarray(z_mm / MM_PER_CM),
                dwells.positions_mm / MM_PER_CM,
                dwells.directions,
                np.ascontiguousarray(weights * scale),
                src.active_length_cm,
                src.r_clip_cm,
                _tables(src.source_id),
            )
        )
    if backend != "numpy":
        raise Tg43InputError(f"unknown backend {backend!r}; use 'numba' or 'numpy'")
    return _compute_dose_numpy(src, dwells, weights * scale, grid)


def _compute_dose_numpy(
    src: Tg43Source, dwells: Dwells, weights: FloatArray, grid: Grid
) -> FloatArray:
    z_mm, y_mm, x_mm = grid.axes_mm()
    zz, yy, xx = np.meshgrid(z_mm, y_mm, x_mm, indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1) / MM_PER_CM
    out = np.zeros(pts.shape[0])
    step = max(1, _NUMPY_CHUNK // max(dwells.n, 1))
    pos = dwells.positions_mm / MM_PER_CM
    for start in range(0, pts.shape[0], step):
        rel = pts[start : start + step, None, :] - pos[None, :, :]
        along = np.einsum("pmk,mk->pm", rel, dwells.directions)
        rho = np.sqrt(np.maximum(np.einsum("pmk,pmk->pm", rel, rel) - along**2, 0.0))
        out[start : start + step] = (_rate_numpy(src, along, rho, 1.0) * weights).sum(axis=1)
    return out.reshape(grid.shape)


def compute_dose_grid(
    dwells: Dwells,
    source_id: str,
    sk_u: float,
    grid: Grid,
    *,
    normalisation: str = "absolute dose from dwell times and air-kerma strength",
    calibration: str = "air-kerma strength as given by the caller",
) -> DoseGrid:
    """:func:`compute_dose` wrapped as a :class:`~openiort.dosegrid.DoseGrid` with provenance."""
    src = load_source(source_id)
    dose = compute_dose(dwells, source_id, sk_u, grid)
    return DoseGrid(
        grid=grid,
        dose_gy=dose,
        medium="water_in_water",
        normalisation=normalisation,
        provenance=Provenance(
            engine="openiort.dose.tg43 (AAPM TG-43U1 2D line source)",
            engine_version=__version__,
            device_data=f"{src.source_id}: {src.reference}",
            device_data_sha256=src.data_sha256,
            inputs_sha256=dwells_sha256(dwells, source_id, sk_u),
            calibration=calibration,
        ),
        notes=src.notes(),
    )


def dwells_sha256(dwells: Dwells, source_id: str, sk_u: float) -> str:
    """SHA-256 of the engine inputs (dwells, source id, strength) for provenance."""
    h = hashlib.sha256()
    h.update(source_id.encode())
    h.update(np.float64(sk_u).tobytes())
    for a in (dwells.positions_mm, dwells.directions, dwells.times_s):
        h.update(np.ascontiguousarray(a, dtype="<f8").tobytes())
    return h.hexdigest()


def throughput_pairs_per_s(
    dwells: Dwells, source_id: str, sk_u: float, grid: Grid, *, backend: Backend = "numba"
) -> tuple[float, float]:
    """(voxel x dwell pairs per second, seconds) of one :func:`compute_dose` call."""
    start = time.perf_counter()
    compute_dose(dwells, source_id, sk_u, grid, backend=backend)
    elapsed = time.perf_counter() - start
    return grid.size * dwells.n / elapsed, elapsed


@dataclass(frozen=True)
class Tg43QaResult:
    """Engine against the consensus along-away QA table of one source."""

    source_id: str
    n_points: int
    max_deviation_percent: float
    worst_point_cm: tuple[float, float]
    tolerance_percent: float

    @property
    def passed(self) -> bool:
        return self.max_deviation_percent <= self.tolerance_percent

    def to_dict(self) -> dict[str, object]:
        return {
            "source_id": self.source_id,
            "n_points": self.n_points,
            "max_deviation_percent": self.max_deviation_percent,
            "worst_point_z_y_cm": list(self.worst_point_cm),
            "tolerance_percent": self.tolerance_percent,
            "passed": self.passed,
        }


def consensus_qa_check(
    source_id: str,
    *,
    min_distance_cm: float = 0.5,
    include_axis: bool = False,
    tolerance_percent: float = 0.5,
) -> Tg43QaResult:
    """Compare the engine with the source's consensus along-away table (commissioning check).

    Points closer than ``min_distance_cm`` to the source centre, and points on the source axis
    unless ``include_axis``, are left out. The default tolerance, 0.5 %, is the acceptance
    criterion of openiort issue 4 for these tables.
    """
    z, y, ref = qa_along_away_table(source_id)
    use = np.hypot(z, y) >= min_distance_cm
    if not include_axis:
        use &= y > 0
    if not use.any():
        raise Tg43InputError("no QA point is left to compare")
    calc = dose_rate_along_away(source_id, z[use], y[use])
    deviation = 100.0 * np.abs(calc / ref[use] - 1.0)
    worst = int(np.argmax(deviation))
    return Tg43QaResult(
        source_id=source_id,
        n_points=int(use.sum()),
        max_deviation_percent=float(deviation[worst]),
        worst_point_cm=(float(z[use][worst]), float(y[use][worst])),
        tolerance_percent=tolerance_percent,
    )
