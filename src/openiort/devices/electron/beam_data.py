"""Beam-data files: locating and hashing them, reading source and compact beams, compacting."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from openiort.datafiles import sha256_chunks, sha256_file
from openiort.devices.electron.beams import ElectronBeam, FloatArray, interpolate
from openiort.devices.electron.errors import ElectronDataError
from openiort.devices.electron.files import data_file_path

QUANTUM = 1.0e-4  # compact file: dose stored in steps of 1e-4 of each beam's voxel maximum
_AXIS_TOLERANCE_MM = 1.0e-2  # largest departure of a data axis from a uniform grid
_ZIP_DATE = (2025, 1, 1, 0, 0, 0)  # fixed timestamp: byte-identical rebuilds of the compact file


def sha256_beam_directory(directory: Path) -> str:
    """SHA-256 over the per-beam ``C*.npz`` files of a directory: sorted names, then their bytes."""
    files = sorted(directory.glob("C*B*_*MeV.npz"))
    if not files:
        raise ElectronDataError(f"{directory}: no beam files named C{{a}}B{{b}}_{{e}}MeV.npz")
    return sha256_chunks(part for f in files for part in (f.name.encode("utf-8"), f.read_bytes()))


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
    cax = interpolate(dose, origin, step, 0.0, 0.0, nodes)
    k = int(np.argmax(cax))
    sig = float(interpolate(sigma, origin, step, 0.0, 0.0, nodes[k]))
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
class BeamSource:
    path: Path
    kind: str  # "compact" or "directory"
    sha256: str


@cache
def load_beam(source: BeamSource, key: str, surface_depth_mm: float) -> ElectronBeam | None:
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


def resolve_source(chosen: str | None, manifest: dict[str, Any]) -> tuple[BeamSource, bool]:
    """Locate and hash the beam data; return the source and whether it equals the release."""
    packaged = data_file_path(str(manifest["beam_data_file"]))
    if chosen is None:
        digest = sha256_file(packaged)
        if digest != manifest["beam_data_sha256"]:
            raise ElectronDataError(
                f"packaged electron beam data {packaged.name} fail their integrity check "
                f"(SHA-256 {digest[:16]}..., manifest "
                f"{str(manifest['beam_data_sha256'])[:16]}...): "
                "the file is corrupt or was modified; reinstall the package"
            )
        return BeamSource(packaged, "compact", digest), True
    path = Path(chosen).expanduser()
    if path.is_dir():
        digest = sha256_beam_directory(path)
        return BeamSource(path.resolve(), "directory", digest), digest == manifest["source_sha256"]
    if path.is_file():
        digest = sha256_file(path)
        if not zipfile.is_zipfile(path):
            raise ElectronDataError(f"{path}: not a compact beam file (.npz) nor a directory")
        return BeamSource(path.resolve(), "compact", digest), digest == manifest["beam_data_sha256"]
    raise ElectronDataError(f"electron beam data not found: {path}")
