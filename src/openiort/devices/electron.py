"""Mobile electron linac for breast IORT (ELIOT technique): beam data, tables and shielding discs.

The built-in device is the LIAC HWL (Sordina IORT Technologies) as published by the open-source
project radiofisica-hgugm/kali_mc (MIT licence): 3D Monte Carlo dose in water for 9 applicators x
4 bevels x 4 energies (penEasy 2020 / PENELOPE 2018; Ayala R et al., Med Phys 2025;52:e18040),
with output factors and R90 measured at Hospital Universitario Gregorio Maranon, Madrid. Every
number and its source is in ``data/electron/`` (see its README).

Beam coordinates follow the data: ``x`` lateral, pointing where a bevelled beam travels with
depth; ``y`` lateral, perpendicular to it; ``depth`` along the inward normal of the water (tissue)
surface through the centre of the applicator face (the *clinical axis*: PDD, R90 and the output
factor are defined on it, also for bevelled applicators).

Beam data are read from a configurable source: the compact copy shipped in the package (default),
a compact ``.npz`` written by :func:`build_compact_beam_file`, or a directory of the original
per-beam ``C{a}B{b}_{e}MeV.npz`` files; the environment variable ``OPENIORT_ELECTRON_BEAM_DATA``
overrides the default. The SHA-256 of what was read is recorded in every result; the packaged
copy is checked against the hash in the device manifest at load.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numba
import numpy as np
import yaml
from numpy.typing import ArrayLike, NDArray

from openiort.datafiles import data_path, parse_commented_csv, read_data, sha256_chunks, sha256_file
from openiort.errors import OpenIortInputError

FloatArray = NDArray[np.float64]

BEAM_DATA_ENV = "OPENIORT_ELECTRON_BEAM_DATA"
DATA_DIR = "data/electron"
DEFAULT_MANIFEST = "liac_hwl.yaml"
DISCS_FILE = "shielding_discs.yaml"
PLANNING_DEFAULTS_FILE = "planning_defaults.yaml"
QUANTUM = 1.0e-4  # compact file: dose stored in steps of 1e-4 of each beam's voxel maximum
_AXIS_TOLERANCE_MM = 1.0e-2  # largest departure of a data axis from a uniform grid
_ZIP_DATE = (2025, 1, 1, 0, 0, 0)  # fixed timestamp: byte-identical rebuilds of the compact file


class ElectronDataError(OpenIortInputError):
    """Electron device data that are missing, corrupt or malformed."""


class ElectronSettingError(OpenIortInputError):
    """An applicator, bevel or energy that the device data do not contain."""


def beam_key(applicator_cm: int, bevel_deg: int, energy_mev: int) -> str:
    """File stem used by the source data, e.g. ``C5B45_12MeV``."""
    return f"C{applicator_cm}B{bevel_deg}_{energy_mev}MeV"


def _data_text(name: str) -> str:
    """A file of the packaged device data, checked against ``data/electron``'s manifest."""
    return read_data("openiort.devices", f"{DATA_DIR}/{name}").text


def _data_path(name: str) -> Path:
    return data_path("openiort.devices", f"{DATA_DIR}/{name}")


def sha256_beam_directory(directory: Path) -> str:
    """SHA-256 over the per-beam ``C*.npz`` files of a directory: sorted names, then their bytes."""
    files = sorted(directory.glob("C*B*_*MeV.npz"))
    if not files:
        raise ElectronDataError(f"{directory}: no beam files named C{{a}}B{{b}}_{{e}}MeV.npz")
    return sha256_chunks(part for f in files for part in (f.name.encode("utf-8"), f.read_bytes()))


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


def _interp(
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


def _uniform_axis(values_mm: NDArray[np.float64], name: str) -> tuple[float, float]:
    """(first value, step) of an axis that must be uniform to within 0.01 mm."""
    if values_mm.size < 2:
        raise ElectronDataError(f"{name} axis needs at least 2 points, got {values_mm.size}")
    step = (values_mm[-1] - values_mm[0]) / (values_mm.size - 1)
    if step <= 0:
        raise ElectronDataError(f"{name} axis is not increasing")
    uniform = values_mm[0] + step * np.arange(values_mm.size)
    if np.max(np.abs(uniform - values_mm)) > _AXIS_TOLERANCE_MM:
        raise ElectronDataError(f"{name} axis is not uniform (deviation > {_AXIS_TOLERANCE_MM} mm)")
    return float(values_mm[0]), float(step)


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
        cax = _interp(self.dose_mc, self._origin, self._step, 0.0, 0.0, depth)
        m = float(cax.max())
        if m <= 0:
            raise ElectronDataError(f"{self.key}: no dose on the clinical axis")
        return m

    def relative_dose(self, x_mm: ArrayLike, y_mm: ArrayLike, depth_mm: ArrayLike) -> FloatArray:
        """Dose in water in percent of the clinical-axis maximum at beam coordinates (mm)."""
        return (
            100.0
            * _interp(self.dose_mc, self._origin, self._step, x_mm, y_mm, depth_mm)
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


# --------------------------------------------------------------------------------------------
# Reading beam data
# --------------------------------------------------------------------------------------------


def _raw_beam_arrays(
    npz: Any, name: str
) -> tuple[NDArray[np.float32], FloatArray, FloatArray, float, float]:
    """Convert one source-format beam (x_cm, y_cm, z_cm <= 0) to (dose, origin, step, sigma, N)."""
    try:
        dose = np.asarray(npz["dose"], dtype=np.float32)
        sigma = np.asarray(npz["sigma"], dtype=np.float32)
        x_mm = 10.0 * np.asarray(npz["x_cm"], dtype=np.float64)
        y_mm = 10.0 * np.asarray(npz["y_cm"], dtype=np.float64)
        z_mm = 10.0 * np.asarray(npz["z_cm"], dtype=np.float64)
        histories = float(npz["histories"])
    except KeyError as exc:
        raise ElectronDataError(f"{name}: missing array {exc}") from None
    if dose.shape != (x_mm.size, y_mm.size, z_mm.size) or sigma.shape != dose.shape:
        raise ElectronDataError(f"{name}: dose/sigma shape {dose.shape} does not match the axes")
    depth = -z_mm
    order = np.argsort(depth)
    dose, sigma, depth = dose[:, :, order], sigma[:, :, order], depth[order]
    ox, sx = _uniform_axis(x_mm, f"{name} x")
    oy, sy = _uniform_axis(y_mm, f"{name} y")
    od, sd = _uniform_axis(depth, f"{name} depth")
    origin = np.array([ox, oy, od])
    step = np.array([sx, sy, sd])
    # Relative statistical uncertainty of the dose at the clinical-axis maximum.
    nodes = od + sd * np.arange(depth.size)
    cax = _interp(dose, origin, step, 0.0, 0.0, nodes)
    k = int(np.argmax(cax))
    sig = float(_interp(sigma, origin, step, 0.0, 0.0, nodes[k]))
    return np.ascontiguousarray(dose), origin, step, sig / float(cax[k]), histories


def build_compact_beam_file(source_dir: str | Path, out_path: str | Path) -> str:
    """Write the compact beam file from a directory of source-format beams; return its SHA-256.

    Each beam's dose is stored as ``uint16`` steps of 1e-4 of its own voxel maximum (largest
    error 5e-5 of the maximum, far below the Monte Carlo noise) on its original grid; the
    per-voxel uncertainty is replaced by its value at the clinical-axis maximum. Arrays per beam
    ``{key}/dose_u16`` ([ix, iy, id], depth increasing) and ``{key}/meta`` (origin x, y, depth in
    mm, steps x, y, depth in mm, MC dose per quantum, relative uncertainty at the maximum,
    histories). The zip is written with fixed timestamps so that rebuilds are byte-identical.
    """
    src = Path(source_dir)
    files = sorted(src.glob("C*B*_*MeV.npz"))
    if not files:
        raise ElectronDataError(f"{src}: no beam files named C{{a}}B{{b}}_{{e}}MeV.npz")
    out = Path(out_path)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for f in files:
            with np.load(f, allow_pickle=False) as npz:
                dose, origin, step, rel_sigma, histories = _raw_beam_arrays(npz, f.name)
            vmax = float(dose.max())
            q = np.round(dose.astype(np.float64) / (vmax * QUANTUM)).astype(np.uint16)
            meta = np.array([*origin, *step, vmax * QUANTUM, rel_sigma, histories])
            for name, arr in ((f"{f.stem}/dose_u16", q), (f"{f.stem}/meta", meta)):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, arr, allow_pickle=False)
                info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, buf.getvalue(), compresslevel=9)
    return sha256_file(out)


@dataclass(frozen=True)
class _BeamSource:
    path: Path
    kind: str  # "compact" or "directory"
    sha256: str


@cache
def _load_beam(source: _BeamSource, key: str, surface_depth_mm: float) -> ElectronBeam | None:
    a, rest = key[1:].split("B")
    b, e = rest.split("_")
    settings = int(a), int(b), int(e.removesuffix("MeV"))
    if source.kind == "directory":
        f = source.path / f"{key}.npz"
        if not f.exists():
            return None
        with np.load(f, allow_pickle=False) as npz:
            dose, origin, step, rel_sigma, histories = _raw_beam_arrays(npz, f.name)
    else:
        with np.load(source.path, allow_pickle=False) as npz:
            if f"{key}/dose_u16" not in npz.files:
                return None
            q = npz[f"{key}/dose_u16"]
            meta = npz[f"{key}/meta"]
        if meta.shape != (9,) or q.ndim != 3:
            raise ElectronDataError(f"{source.path}: malformed entry {key}")
        dose = (q.astype(np.float64) * meta[6]).astype(np.float32)
        origin, step = meta[0:3], meta[3:6]
        rel_sigma, histories = float(meta[7]), float(meta[8])
    return ElectronBeam(
        applicator_cm=settings[0],
        bevel_deg=settings[1],
        energy_mev=settings[2],
        dose_mc=dose,
        origin_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
        spacing_mm=(float(step[0]), float(step[1]), float(step[2])),
        rel_uncertainty_at_max=rel_sigma,
        histories=histories,
        data_sha256=source.sha256,
        surface_dose_depth_mm=surface_depth_mm,
    )


# --------------------------------------------------------------------------------------------
# Shielding discs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShieldingDisc:
    """A protection disc slipped between the gland and the pectoral muscle.

    In front of it (upstream, water-equivalent distance ``s`` from its face) the dose rises by
    ``B(E) * exp(-(s - s_ref) / lambda)`` (``B`` interpolated in nominal energy, held at the
    published value for ``s < s_ref``); behind it the dose is ``transmission_fraction`` times
    the dose that the open beam gives at its face. Both figures and their verification levels
    are in ``data/electron/shielding_discs.yaml``.
    """

    name: str
    description: str
    layers: tuple[tuple[str, float], ...]
    backscatter_energies_mev: tuple[float, ...]
    backscatter_increase_pct: tuple[float, ...]
    backscatter_reference_distance_mm: float
    backscatter_decay_length_mm: float
    transmission_fraction: float
    max_stopped_energy_mev: float | None
    sources: tuple[str, ...]
    verification: dict[str, str] = field(hash=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.transmission_fraction < 1.0:
            raise ElectronDataError(f"disc {self.name}: transmission must lie in (0, 1)")
        if self.backscatter_decay_length_mm <= 0:
            raise ElectronDataError(f"disc {self.name}: backscatter decay length must be positive")
        if len(self.backscatter_energies_mev) != len(self.backscatter_increase_pct):
            raise ElectronDataError(
                f"disc {self.name}: backscatter energies and values differ in length"
            )

    @property
    def thickness_mm(self) -> float:
        return float(sum(t for _, t in self.layers))

    def backscatter_increase(self, energy_mev: float, upstream_mm: ArrayLike) -> FloatArray:
        """Fractional dose increase at water-equivalent distance ``upstream_mm`` in front."""
        b = float(
            np.interp(energy_mev, self.backscatter_energies_mev, self.backscatter_increase_pct)
        )
        s = np.maximum(
            np.asarray(upstream_mm, dtype=np.float64), self.backscatter_reference_distance_mm
        )
        return (
            b
            / 100.0
            * np.exp(
                -(s - self.backscatter_reference_distance_mm) / self.backscatter_decay_length_mm
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "layers": [{"material": m, "thickness_mm": t} for m, t in self.layers],
            "backscatter_increase_pct": dict(
                zip(
                    [str(e) for e in self.backscatter_energies_mev],
                    self.backscatter_increase_pct,
                    strict=True,
                )
            ),
            "backscatter_reference_distance_mm": self.backscatter_reference_distance_mm,
            "backscatter_decay_length_mm": self.backscatter_decay_length_mm,
            "transmission_fraction": self.transmission_fraction,
            "sources": list(self.sources),
            "verification": dict(self.verification),
        }


@cache
def shielding_discs() -> dict[str, ShieldingDisc]:
    """The disc types in ``data/electron/shielding_discs.yaml``."""
    doc = yaml.safe_load(_data_text(DISCS_FILE))
    decay = float(doc["backscatter_decay_length_mm"])
    discs: dict[str, ShieldingDisc] = {}
    for name, d in doc["discs"].items():
        bs, tr = d["backscatter"], d["transmission"]
        discs[name] = ShieldingDisc(
            name=name,
            description=str(d["description"]),
            layers=tuple(
                (str(layer["material"]), float(layer["thickness_mm"])) for layer in d["layers"]
            ),
            backscatter_energies_mev=tuple(float(e) for e in bs["energies_mev"]),
            backscatter_increase_pct=tuple(float(v) for v in bs["increase_pct"]),
            backscatter_reference_distance_mm=float(bs["reference_distance_mm"]),
            backscatter_decay_length_mm=decay,
            transmission_fraction=float(tr["fraction"]),
            max_stopped_energy_mev=None
            if tr.get("max_stopped_energy_mev") is None
            else float(tr["max_stopped_energy_mev"]),
            sources=tuple(str(s) for s in d["sources"]),
            verification={
                "backscatter": str(bs["verification"]),
                "transmission": str(tr["verification"]),
                "backscatter_decay_length": str(doc["backscatter_decay_verification"]),
            },
        )
    return discs


def get_disc(name: str) -> ShieldingDisc:
    discs = shielding_discs()
    if name not in discs:
        raise ElectronSettingError(
            f"unknown shielding disc {name!r}; known: {', '.join(sorted(discs))}"
        )
    return discs[name]


@cache
def planning_defaults() -> dict[str, Any]:
    """Planning defaults and literature constants (``data/electron/planning_defaults.yaml``)."""
    doc: dict[str, Any] = yaml.safe_load(_data_text(PLANNING_DEFAULTS_FILE))
    return doc


def _value(entry: Any) -> Any:
    """A YAML entry is either a bare value or a mapping with ``value`` and its source."""
    return entry["value"] if isinstance(entry, dict) and "value" in entry else entry


def _pair(values: Any) -> tuple[float, float]:
    lo, hi = (float(v) for v in values)
    if not lo < hi:
        raise ElectronDataError(f"limits must be (low, high), got {values}")
    return lo, hi


def planning_value(name: str) -> Any:
    return _value(planning_defaults()[name])


# --------------------------------------------------------------------------------------------
# The device
# --------------------------------------------------------------------------------------------

Settings = tuple[int, int, int]


def _read_table(name: str, unit_scale: float) -> dict[Settings, float]:
    rows = parse_commented_csv(_data_text(name))
    table: dict[Settings, float] = {}
    for row in rows:
        a, b = int(row["applicator_cm"]), int(row["bevel_deg"])
        for col, val in row.items():
            if col.startswith("energy_") and col.endswith("MeV"):
                e = int(col.removeprefix("energy_").removesuffix("MeV"))
                table[(a, b, e)] = float(val) * unit_scale
    if not table:
        raise ElectronDataError(f"{name}: no rows")
    return table


@dataclass(frozen=True, eq=False)
class ElectronDevice:
    """A mobile electron linac: its settings, tables, calibration and 3D beam data."""

    name: str
    manufacturer: str
    data_version: str
    citations: tuple[str, ...]
    applicators_cm: tuple[int, ...]
    bevels_deg: tuple[int, ...]
    energies_mev: tuple[int, ...]
    output_factor_cgy_per_mu: dict[Settings, float]
    r90_measured_mm: dict[Settings, float]
    reference_pressure_hpa: float
    temperature_correction: bool
    reference_temperature_c: float | None
    pressure_limits_hpa: tuple[float, float]
    temperature_limits_c: tuple[float, float]
    max_dose_cgy: float
    calibration_applicator_cm: int
    calibration_bevel_deg: int
    calibration_cgy_per_mu: float
    calibration: str
    beam_data_path: str
    beam_data_kind: str
    beam_data_sha256: str
    beam_data_matches_release: bool
    data_notes: tuple[str, ...] = ()
    _source: _BeamSource | None = field(default=None, repr=False)

    def check_settings(self, applicator_cm: float, bevel_deg: float, energy_mev: float) -> Settings:
        """Validate a setting triple against the data, returning it as integers."""
        problems = []
        for value, allowed, what, unit in (
            (applicator_cm, self.applicators_cm, "applicator", "cm"),
            (bevel_deg, self.bevels_deg, "bevel", "deg"),
            (energy_mev, self.energies_mev, "energy", "MeV"),
        ):
            if value not in allowed:
                problems.append(
                    f"{what} {value} {unit} is not in the {self.name} data "
                    f"(available: {', '.join(str(v) for v in allowed)} {unit})"
                )
        if problems:
            raise ElectronSettingError("; ".join(problems))
        return int(applicator_cm), int(bevel_deg), int(energy_mev)

    def output_factor(self, applicator_cm: float, bevel_deg: float, energy_mev: float) -> float:
        """Measured cGy per MU at the clinical-axis maximum."""
        return self.output_factor_cgy_per_mu[
            self.check_settings(applicator_cm, bevel_deg, energy_mev)
        ]

    def r90_measured(self, applicator_cm: float, bevel_deg: float, energy_mev: float) -> float:
        """Measured depth of the 90 % dose on the clinical axis (mm)."""
        return self.r90_measured_mm[self.check_settings(applicator_cm, bevel_deg, energy_mev)]

    def beam(self, applicator_cm: float, bevel_deg: float, energy_mev: float) -> ElectronBeam:
        """The 3D beam data of a setting."""
        a, b, e = self.check_settings(applicator_cm, bevel_deg, energy_mev)
        if self._source is None:
            raise ElectronDataError(f"{self.name}: no beam data source")
        beam = _load_beam(
            self._source, beam_key(a, b, e), float(planning_value("surface_dose_depth_mm"))
        )
        if beam is None:
            raise ElectronDataError(f"{self.beam_data_path}: no beam data for {beam_key(a, b, e)}")
        return beam

    def beams(self) -> Iterable[ElectronBeam]:
        for a in self.applicators_cm:
            for b in self.bevels_deg:
                for e in self.energies_mev:
                    yield self.beam(a, b, e)

    def mc_output_factor(self, applicator_cm: float, bevel_deg: float, energy_mev: float) -> float:
        """Output factor (cGy/MU) from the Monte Carlo data alone, for an independent check.

        The ratio of the MC dose per history at the clinical-axis maximum to that of the
        calibration applicator at the same energy, times the calibration (cGy/MU).
        """
        a, b, e = self.check_settings(applicator_cm, bevel_deg, energy_mev)
        ref = self.beam(self.calibration_applicator_cm, self.calibration_bevel_deg, e)
        return self.calibration_cgy_per_mu * self.beam(a, b, e).mc_axis_max / ref.mc_axis_max

    def provenance_label(self) -> str:
        return (
            f"{self.name} electron beam data {self.data_version} "
            f"({self.beam_data_kind}: {self.beam_data_path})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "manufacturer": self.manufacturer,
            "data_version": self.data_version,
            "citations": list(self.citations),
            "beam_data_path": self.beam_data_path,
            "beam_data_kind": self.beam_data_kind,
            "beam_data_sha256": self.beam_data_sha256,
            "beam_data_matches_release": self.beam_data_matches_release,
            "reference_pressure_hpa": self.reference_pressure_hpa,
            "temperature_correction": self.temperature_correction,
            "calibration": self.calibration,
        }


def _resolve_source(chosen: str | None, manifest: dict[str, Any]) -> tuple[_BeamSource, bool]:
    """Locate and hash the beam data; return the source and whether it equals the release."""
    packaged = _data_path(str(manifest["beam_data_file"]))
    if chosen is None:
        digest = sha256_file(packaged)
        if digest != manifest["beam_data_sha256"]:
            raise ElectronDataError(
                f"packaged electron beam data {packaged.name} fail their integrity check "
                f"(SHA-256 {digest[:16]}..., manifest "
                f"{str(manifest['beam_data_sha256'])[:16]}...): "
                "the file is corrupt or was modified; reinstall the package"
            )
        return _BeamSource(packaged, "compact", digest), True
    path = Path(chosen).expanduser()
    if path.is_dir():
        digest = sha256_beam_directory(path)
        return _BeamSource(path.resolve(), "directory", digest), digest == manifest["source_sha256"]
    if path.is_file():
        digest = sha256_file(path)
        if not zipfile.is_zipfile(path):
            raise ElectronDataError(f"{path}: not a compact beam file (.npz) nor a directory")
        return _BeamSource(path.resolve(), "compact", digest), digest == manifest[
            "beam_data_sha256"
        ]
    raise ElectronDataError(f"electron beam data not found: {path}")


def load_electron_device(beam_data: str | Path | None = None) -> ElectronDevice:
    """The built-in electron device (LIAC HWL) with its beam data.

    Parameters
    ----------
    beam_data:
        Where to read the 3D beam data: ``None`` for ``$OPENIORT_ELECTRON_BEAM_DATA`` or, if that
        is unset, the compact copy shipped in the package; otherwise a compact ``.npz`` or a
        directory of source-format ``C{a}B{b}_{e}MeV.npz`` files. Tables, calibration and the
        monitor-chamber corrections always come from the package's device manifest.

    Raises
    ------
    ElectronDataError
        If the data are missing, malformed, or the packaged copy fails its SHA-256 check.
    """
    chosen = str(beam_data) if beam_data is not None else os.environ.get(BEAM_DATA_ENV) or None
    if chosen is not None:
        chosen = str(Path(chosen).expanduser().resolve())
    return _load_device_cached(chosen)


@cache
def _load_device_cached(beam_data: str | None) -> ElectronDevice:
    manifest = yaml.safe_load(_data_text(DEFAULT_MANIFEST))
    source, matches = _resolve_source(beam_data, manifest)
    of = _read_table(str(manifest["output_factor_file"]), 1.0)
    r90 = _read_table(str(manifest["r90_file"]), 10.0)  # cm -> mm
    chamber = manifest["monitor_chamber"]
    cal = manifest["calibration"]
    applicators = tuple(int(v) for v in manifest["applicators_cm"])
    bevels = tuple(int(v) for v in manifest["bevels_deg"])
    energies = tuple(int(v) for v in manifest["energies_mev"])
    expected = {(a, b, e) for a in applicators for b in bevels for e in energies}
    for label, table in (("output factor", of), ("R90", r90)):
        if set(table) != expected:
            raise ElectronDataError(
                f"{manifest['name']}: the {label} table does not cover every setting"
            )
    cal_key = (int(cal["applicator_cm"]), int(cal["bevel_deg"]))
    for e in energies:
        if abs(of[(*cal_key, e)] - float(cal["cgy_per_mu"])) > 1e-9:
            raise ElectronDataError(
                f"{manifest['name']}: output factor of the calibration applicator at {e} MeV "
                f"is {of[(*cal_key, e)]}, not the calibration {cal['cgy_per_mu']} cGy/MU"
            )
    t_ref = chamber.get("reference_temperature_c")
    return ElectronDevice(
        name=str(manifest["name"]),
        manufacturer=str(manifest["manufacturer"]),
        data_version=str(manifest["data_version"]),
        citations=tuple(str(c) for c in manifest["citations"]),
        applicators_cm=applicators,
        bevels_deg=bevels,
        energies_mev=energies,
        output_factor_cgy_per_mu=of,
        r90_measured_mm=r90,
        reference_pressure_hpa=float(_value(chamber["reference_pressure_hpa"])),
        temperature_correction=bool(_value(chamber["temperature_correction"])),
        reference_temperature_c=None if _value(t_ref) is None else float(_value(t_ref)),
        pressure_limits_hpa=_pair(_value(chamber["pressure_limits_hpa"])),
        temperature_limits_c=_pair(_value(chamber["temperature_limits_c"])),
        max_dose_cgy=float(_value(manifest["max_dose_cgy"])),
        calibration_applicator_cm=cal_key[0],
        calibration_bevel_deg=cal_key[1],
        calibration_cgy_per_mu=float(cal["cgy_per_mu"]),
        calibration=str(cal["description"]),
        beam_data_path=str(source.path),
        beam_data_kind=source.kind,
        beam_data_sha256=source.sha256,
        beam_data_matches_release=matches,
        data_notes=tuple(str(n) for n in manifest.get("data_notes", [])),
        _source=source,
    )


def with_monitor_chamber(device: ElectronDevice, **changes: Any) -> ElectronDevice:
    """A copy of ``device`` with other monitor-chamber data (e.g. a clinic's own calibration)."""
    allowed = {
        "reference_pressure_hpa",
        "temperature_correction",
        "reference_temperature_c",
        "pressure_limits_hpa",
        "temperature_limits_c",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not monitor-chamber fields: {', '.join(sorted(unknown))}")
    fields = {k: getattr(device, k) for k in device.__dataclass_fields__}
    fields.update(changes)
    return ElectronDevice(**fields)
