"""Dose slices for the plan page: viewer arrays written once, PNG slices rendered on request.

At planning time :func:`write_viewer_data` stores the dose (on the phantom grid), the material
ids and the structures (one bit each) as uncompressed ``.npy`` files, so that the server can
memory-map them and cut any slice without reading the whole volume. :func:`render_slice_png`
draws one axial, coronal or sagittal slice: the anatomy in grey (by mass density), isodose
bands and lines at the report's levels, and structure outlines, in the radiological convention
(patient's left on the right of an axial or coronal image, anterior on the left of a sagittal
one, superior up).
"""

from __future__ import annotations

import io
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage

from openiort.errors import OpenIortInputError
from openiort.plan import PlanResult
from openiort.report.figures import STRUCTURE_COLOURS
from openiort.report.html import ISODOSES_GY

Axis = Literal["axial", "coronal", "sagittal"]
AXES: tuple[Axis, ...] = ("axial", "coronal", "sagittal")
VIEWER_DIR = "viewer"
DOSE_FILE = "dose_gy.npy"
MATERIAL_FILE = "material_ids.npy"
STRUCTURE_FILE = "structures.npy"
META_FILE = "meta.json"
# The viewer's files, relative to the plan folder, as the plan files' manifest names them.
VIEWER_FILES: tuple[str, ...] = tuple(
    f"{VIEWER_DIR}/{name}" for name in (META_FILE, DOSE_FILE, MATERIAL_FILE, STRUCTURE_FILE)
)
# Display-only choices (not physics): a soft-tissue grey window in g/cm3 (lung and air black,
# fat dark, gland lighter, bone white), isodose colours from blue (low) to magenta (high), the
# applicator dark grey, and the shown region: the breast and chest wall, wherever the dose
# reaches the lowest isodose level, plus a margin.
DENSITY_WINDOW_G_CM3 = (0.75, 1.25)
ROI_STRUCTURES = ("breast", "skin", "target", "cavity", "applicator", "chest_wall")
ROI_MARGIN_MM = 10.0
ISODOSE_COLOURS = ("#2b6cff", "#00b3b3", "#2ca02c", "#e6c000", "#ff7f0e", "#d62728", "#c000c0")
BAND_ALPHA = 0.30
APPLICATOR_RGB = (70, 70, 70)
OUTLINED = ("target", "skin", "chest_wall", "ribs", "lung", "heart")
DVH_POINTS = 240


class ViewerError(OpenIortInputError):
    """A slice request outside the volume, or viewer data that cannot be read."""


def _isodose_levels(prescription_gy: float, max_gy: float) -> list[float]:
    levels = {v for v in ISODOSES_GY if v < max_gy}
    if prescription_gy < max_gy:
        levels.add(round(prescription_gy, 3))
    return sorted(levels)


def _dose_on_phantom_grid(plan: PlanResult) -> NDArray[np.float32]:
    dose, grid = plan.dose, plan.phantom.grid
    if dose.grid == grid:
        return np.asarray(dose.dose_gy, dtype=np.float32)
    z, y, x = grid.axes_mm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    idx = dose.grid.position_to_index(np.stack([xx, yy, zz], axis=-1))
    coords = np.moveaxis(idx, -1, 0)
    resampled = ndimage.map_coordinates(dose.dose_gy, coords, order=1, mode="constant", cval=0.0)
    return resampled.astype(np.float32)


def _roi(plan: PlanResult, dose: NDArray[np.float32], lowest_gy: float) -> tuple[slice, ...]:
    """The index box holding the breast, the chest wall and the dose above ``lowest_gy``."""
    ph = plan.phantom
    keep = dose >= lowest_gy
    for name in ROI_STRUCTURES:
        if name in ph.structures:
            keep = keep | ph.structures[name]
    if not keep.any():
        return tuple(slice(0, n) for n in ph.grid.shape)
    box = []
    for axis, n in enumerate(ph.grid.shape):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(keep.any(axis=other))
        margin = int(np.ceil(ROI_MARGIN_MM / ph.grid.spacing_mm[2 - axis]))
        box.append(slice(max(0, int(hits[0]) - margin), min(n, int(hits[-1]) + margin + 1)))
    return tuple(box)


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    if len(c) == 3:
        c = "".join(ch * 2 for ch in c)
    return (int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16))


def write_viewer_data(plan: PlanResult, out_dir: Path) -> None:
    """Write the viewer arrays and ``meta.json`` (with the DVH curves) into ``out_dir/viewer``."""
    vdir = Path(out_dir) / VIEWER_DIR
    vdir.mkdir(parents=True, exist_ok=True)
    ph = plan.phantom
    names = list(ph.structures)
    if len(names) > 16:
        raise ViewerError(f"at most 16 structures can be shown, the phantom has {len(names)}")
    bits = np.zeros(ph.grid.shape, dtype=np.uint16)
    for i, name in enumerate(names):
        bits |= ph.structures[name].astype(np.uint16) << np.uint16(i)
    dose = _dose_on_phantom_grid(plan)
    max_gy = float(np.nanmax(dose))
    levels = _isodose_levels(plan.prescription_gy, max_gy)
    box = _roi(plan, dose, levels[0] if levels else max_gy)
    offset = np.array([b.start for b in box], dtype=np.float64)  # z, y, x
    origin_mm = ph.grid.index_to_position_mm(offset)
    shape = tuple(b.stop - b.start for b in box)
    np.save(vdir / DOSE_FILE, np.ascontiguousarray(dose[box]), allow_pickle=False)
    np.save(vdir / MATERIAL_FILE, np.ascontiguousarray(ph.material_ids[box], dtype=np.uint8))
    np.save(vdir / STRUCTURE_FILE, np.ascontiguousarray(bits[box]), allow_pickle=False)
    n_materials = len(ph.materials)
    counts = np.bincount(ph.material_ids.ravel(), minlength=n_materials)[:n_materials]
    sums = np.bincount(
        ph.material_ids.ravel(), weights=ph.density_g_cm3.ravel(), minlength=n_materials
    )[:n_materials]
    densities = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    centre = ph.applicator_centre_mm
    if centre is not None:
        centre_idx = [int(v) for v in np.round(ph.grid.position_to_index(np.array(centre)))]
    else:
        centre_idx = [int(v) for v in np.unravel_index(int(np.nanargmax(dose)), dose.shape)]
    centre_idx = [
        min(max(c - b.start, 0), n - 1) for c, b, n in zip(centre_idx, box, shape, strict=True)
    ]
    dvh_top = max(
        plan.prescription_gy * 1.6,
        *(m.max_gy for n, m in plan.metrics.items() if n != "breast"),
    )
    curves = {}
    for name, dvh in plan.dvhs.items():
        dose_axis, vol = dvh.curve(DVH_POINTS, dvh_top)
        curves[name] = {
            "dose_gy": [round(float(v), 4) for v in dose_axis],
            "volume_pct": [round(float(v), 3) for v in vol],
            "volume_cc": round(dvh.total_volume_cc, 3),
        }
    meta: dict[str, Any] = {
        "grid": {
            "origin_mm": [float(v) for v in origin_mm],
            "spacing_mm": list(ph.grid.spacing_mm),
            "shape_zyx": list(shape),
        },
        "materials": list(ph.materials),
        "material_density_g_cm3": [
            float(d) if np.isfinite(d) else 0.0 for d in np.atleast_1d(densities)
        ],
        "structures": names,
        "prescription_gy": plan.prescription_gy,
        "max_dose_gy": max_gy,
        "isodose_levels_gy": levels,
        "centre_index_zyx": centre_idx,
        "dose_medium": plan.dose.medium_label,
        "dvh": {"max_dose_gy": float(dvh_top), "curves": curves},
    }
    (vdir / META_FILE).write_text(json.dumps(meta, allow_nan=False), "utf-8")


@dataclass
class ViewerVolume:
    """A plan's memory-mapped viewer arrays and metadata."""

    meta: dict[str, Any]
    dose: NDArray[np.float32]
    material_ids: NDArray[np.uint8]
    structures: NDArray[np.uint16]

    @property
    def shape(self) -> tuple[int, int, int]:
        nz, ny, nx = self.meta["grid"]["shape_zyx"]
        return (int(nz), int(ny), int(nx))

    def axis_length(self, axis: Axis) -> int:
        return self.shape[AXES.index(axis)]

    def position_mm(self, axis: Axis, index: int) -> float:
        i = {"axial": 2, "coronal": 1, "sagittal": 0}[axis]
        return float(self.meta["grid"]["origin_mm"][i] + index * self.meta["grid"]["spacing_mm"][i])


def load_viewer(plan_dir: Path) -> ViewerVolume:
    vdir = Path(plan_dir) / VIEWER_DIR
    try:
        meta = json.loads((vdir / META_FILE).read_text("utf-8"))
        volume = ViewerVolume(
            meta=meta,
            dose=np.load(vdir / DOSE_FILE, mmap_mode="r", allow_pickle=False),
            material_ids=np.load(vdir / MATERIAL_FILE, mmap_mode="r", allow_pickle=False),
            structures=np.load(vdir / STRUCTURE_FILE, mmap_mode="r", allow_pickle=False),
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ViewerError(f"viewer data cannot be read ({type(exc).__name__})") from None
    for arr in (volume.dose, volume.material_ids, volume.structures):
        if arr.shape != volume.shape:
            raise ViewerError("viewer arrays do not match their grid")
    return volume


class ViewerCache:
    """The most recently used plans' viewer volumes (memory maps are cheap to keep)."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._items: OrderedDict[Path, ViewerVolume] = OrderedDict()
        self._signatures: dict[Path, Any] = {}
        self._lock = threading.Lock()

    def get(self, plan_dir: Path, signature: Any = None) -> ViewerVolume:
        """The plan's volume; loaded again when ``signature`` (the files' stat signatures
        after their hashes were checked) differs from the one it was loaded with."""
        with self._lock:
            if plan_dir in self._items and self._signatures.get(plan_dir) == signature:
                self._items.move_to_end(plan_dir)
                return self._items[plan_dir]
        volume = load_viewer(plan_dir)
        with self._lock:
            self._items[plan_dir] = volume
            self._signatures[plan_dir] = signature
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return volume

    def forget(self, plan_dir: Path) -> None:
        with self._lock:
            self._items.pop(plan_dir, None)


def _cut(volume: ViewerVolume, axis: Axis, index: int) -> tuple[Any, Any, Any, tuple[float, float]]:
    sx, sy, sz = volume.meta["grid"]["spacing_mm"]
    if axis == "axial":
        return (
            volume.dose[index],
            volume.material_ids[index],
            volume.structures[index],
            (sy, sx),
        )
    if axis == "coronal":
        return (
            volume.dose[::-1, index, :],
            volume.material_ids[::-1, index, :],
            volume.structures[::-1, index, :],
            (sz, sx),
        )
    return (
        volume.dose[::-1, :, index],
        volume.material_ids[::-1, :, index],
        volume.structures[::-1, :, index],
        (sz, sy),
    )


def _edges(labels: NDArray[Any]) -> NDArray[np.bool_]:
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    return edge


def _thicken(edge: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Lines two pixels wide (the edge and its right and lower neighbours)."""
    out = edge.copy()
    out[:, 1:] |= edge[:, :-1]
    out[1:, :] |= edge[:-1, :]
    return out


def render_slice_png(volume: ViewerVolume, axis: Axis, index: int, scale: int = 3) -> bytes:
    """One slice as PNG (``scale`` pixels per mm of the finest spacing).

    Raises
    ------
    ViewerError
        If ``axis`` is unknown or ``index`` is outside the volume.
    """
    if axis not in AXES:
        raise ViewerError(f"axis: one of {', '.join(AXES)}, got {axis!r}")
    n = volume.axis_length(axis)
    if not 0 <= index < n:
        raise ViewerError(f"slice {index} is outside the {axis} range 0-{n - 1}")
    if not 1 <= scale <= 6:
        raise ViewerError(f"scale: 1 to 6, got {scale}")
    dose_s, mat_s, bits_s, (row_mm, col_mm) = _cut(volume, axis, index)
    finest = min(row_mm, col_mm)
    fr = max(1, round(scale * row_mm / finest))
    fc = max(1, round(scale * col_mm / finest))

    density_lut = np.asarray(volume.meta["material_density_g_cm3"], dtype=np.float64)
    lo, hi = DENSITY_WINDOW_G_CM3
    grey_lut = np.clip((density_lut - lo) / (hi - lo), 0.0, 1.0) * 235.0 + 10.0
    mat = np.asarray(mat_s)
    grey = grey_lut[np.minimum(mat, grey_lut.size - 1)]
    grey = np.repeat(np.repeat(grey, fr, axis=0), fc, axis=1)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)

    dose = ndimage.zoom(np.asarray(dose_s, dtype=np.float32), (fr, fc), order=1, mode="nearest")
    levels = np.asarray(volume.meta["isodose_levels_gy"], dtype=np.float32)
    band = np.searchsorted(levels, dose, side="right")  # levels exceeded
    colours = np.array(
        [_hex_rgb(ISODOSE_COLOURS[min(i, len(ISODOSE_COLOURS) - 1)]) for i in range(levels.size)],
        dtype=np.float64,
    ).reshape(-1, 3)
    if levels.size:
        shown = band > 0
        tint = colours[np.maximum(band - 1, 0)]
        rgb[shown] = (1 - BAND_ALPHA) * rgb[shown] + BAND_ALPHA * tint[shown]
        line = _thicken(_edges(band)) & shown
        rgb[line] = tint[line]

    bits = np.repeat(np.repeat(np.asarray(bits_s), fr, axis=0), fc, axis=1)
    names: list[str] = volume.meta["structures"]
    if "applicator" in names:
        app = (bits >> np.uint16(names.index("applicator"))) & 1
        rgb[app.astype(bool)] = APPLICATOR_RGB
    for name in OUTLINED:
        if name in names:
            mask = ((bits >> np.uint16(names.index(name))) & 1).astype(np.uint8)
            edge = _edges(mask) & (mask > 0)
            if edge.any():
                rgb[edge] = _hex_rgb(STRUCTURE_COLOURS.get(name, "#ffffff"))

    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), mode="RGB")
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def legend(volume: ViewerVolume) -> dict[str, list[tuple[str, str]]]:
    """Colours of the isodose levels and the outlined structures, for the page."""
    levels = volume.meta["isodose_levels_gy"]
    iso = [
        (f"{v:g} Gy", ISODOSE_COLOURS[min(i, len(ISODOSE_COLOURS) - 1)])
        for i, v in enumerate(levels)
    ]
    names = [n for n in OUTLINED if n in volume.meta["structures"]]
    outlines = [(n.replace("_", " "), STRUCTURE_COLOURS.get(n, "#ffffff")) for n in names]
    if "applicator" in volume.meta["structures"]:
        outlines.append(("applicator", "#464646"))
    return {"isodoses": iso, "structures": outlines}
