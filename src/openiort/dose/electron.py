"""Electron IORT dose in the patient: the beam's 3D water data placed in a voxel phantom.

Model, in order:

1. Geometry. ``axis`` is the inward unit normal of the gland surface at ``entry_point_mm`` (the
   clinical axis of the beam data, pointing from the skin side into the chest wall, i.e.
   ``-Phantom.shaft_direction``). ``bevel_direction`` (perpendicular to ``axis``) is the beam
   data's ``+x``: the direction in which a bevelled beam travels with depth. A voxel at
   ``p`` has beam coordinates ``t = (p - entry)·axis``, ``x = (p - entry)·bevel_direction``,
   ``y = (p - entry)·(axis × bevel_direction)``.
2. Density scaling (coefficient of equivalent thickness). The depth looked up in the water data
   is the water-equivalent depth: the relative electron density integrated along a line parallel
   to the axis from the entry plane to the voxel, with each material's electron density computed
   from its composition (``anatomy/data/materials.csv``, atomic numbers and masses from xraydb).
   Lateral scatter changes at interfaces are not modelled. With ``density_scaling=False`` the
   phantom is treated as water.
3. Bolus: a water-equivalent layer of ``bolus_mm`` on the gland surface shifts every depth.
4. Shielding disc (optional): a disc of diameter ``diameter_mm`` perpendicular to the axis with
   its upstream face at physical depth ``depth_mm``, centred at beam coordinates
   ``centre_xy_mm``. In front of it the dose is raised by the
   disc's published backscatter; behind it the dose is the disc's published transmission times
   the open-beam dose at its face (see :class:`openiort.devices.electron.ShieldingDisc`). The
   phantom's tissue is not displaced by the disc.
5. Absolute dose: percent of the clinical-axis maximum times ``dose_max_gy`` (the dose at that
   maximum, from the monitor units and the output factor).

Outside the beam data's extent the dose is held at the data edge (laterally, and beyond the
deepest plane), which overestimates the low out-of-field dose; it is never set to zero.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache

import numpy as np
import xraydb
from numpy.typing import NDArray
from scipy import ndimage

from openiort.anatomy.materials import get_material
from openiort.anatomy.phantom import Phantom
from openiort.devices.electron import ElectronBeam, ShieldingDisc
from openiort.dosegrid import DoseGrid, Provenance
from openiort.errors import OpenIortInputError

FloatArray = NDArray[np.float64]
ENGINE = "openiort.dose.electron"
ENGINE_VERSION = "1.0"
_MAX_BEAM_GRID_SAMPLES = 24_000_000  # cap on the beam-aligned density grid (memory)
_CHUNK_VOXELS = 2_000_000


class ElectronGeometryError(OpenIortInputError):
    """Beam placement that cannot be used (bad axis, entry point or disc)."""


@dataclass(frozen=True)
class DiscPlacement:
    """A shielding disc perpendicular to the beam axis, upstream face at ``depth_mm`` from the
    entry point, centred at beam coordinates ``centre_xy_mm`` (a bevelled beam drifts to +x)."""

    disc: ShieldingDisc
    depth_mm: float
    diameter_mm: float
    centre_xy_mm: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if not np.isfinite(self.depth_mm) or self.depth_mm <= 0:
            raise ElectronGeometryError(
                f"disc depth must be a positive distance, got {self.depth_mm} mm"
            )
        if not np.isfinite(self.diameter_mm) or self.diameter_mm <= 0:
            raise ElectronGeometryError(
                f"disc diameter must be positive, got {self.diameter_mm} mm"
            )

    def to_dict(self) -> dict[str, object]:
        return {
            "type": self.disc.name,
            "depth_mm": self.depth_mm,
            "diameter_mm": self.diameter_mm,
            "centre_xy_mm": list(self.centre_xy_mm),
            **{k: v for k, v in self.disc.to_dict().items() if k != "name"},
        }


# --------------------------------------------------------------------------------------------
# Electron density
# --------------------------------------------------------------------------------------------


@cache
def _electrons_per_gram_relative(material: str) -> float:
    """(sum w_i Z_i / A_i) of a material relative to water."""

    def z_over_a(name: str) -> float:
        comp = get_material(name).composition
        return sum(w * xraydb.atomic_number(el) / xraydb.atomic_mass(el) for el, w in comp.items())

    return z_over_a(material) / z_over_a("water")


def relative_electron_density(phantom: Phantom) -> NDArray[np.float32]:
    """Electron density relative to water per voxel (mass density x relative electrons/gram)."""
    per_material = np.array(
        [_electrons_per_gram_relative(m) for m in phantom.materials], dtype=np.float32
    )
    return phantom.density_g_cm3.astype(np.float32) * per_material[phantom.material_ids]


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


def beam_frame(
    axis: tuple[float, float, float] | FloatArray,
    bevel_direction: tuple[float, float, float] | FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Orthonormal (axis, x, y) of the beam in patient coordinates.

    Without ``bevel_direction`` the data's +x is the patient axis least aligned with the beam
    axis, projected onto the surface plane (deterministic; irrelevant for a flat applicator).
    """
    n = np.asarray(axis, dtype=np.float64)
    if n.shape != (3,) or not np.isfinite(n).all() or np.linalg.norm(n) < 1e-9:
        raise ElectronGeometryError(f"beam axis must be a finite non-zero 3-vector, got {axis}")
    n = n / np.linalg.norm(n)
    if bevel_direction is None:
        u = np.eye(3)[int(np.argmin(np.abs(n)))]
    else:
        u = np.asarray(bevel_direction, dtype=np.float64)
        if u.shape != (3,) or not np.isfinite(u).all():
            raise ElectronGeometryError(
                f"bevel direction must be a finite 3-vector, got {bevel_direction}"
            )
    u = u - np.dot(u, n) * n
    if np.linalg.norm(u) < 1e-6:
        raise ElectronGeometryError("bevel direction must not be parallel to the beam axis")
    u = u / np.linalg.norm(u)
    return n, u, np.cross(n, u)


class _WaterEquivalentDepth:
    """Water-equivalent depth along lines parallel to the axis, from the entry plane.

    Relative electron density is resampled on a beam-aligned grid (x, y, t) covering the beam
    data's lateral extent, integrated along t (trapezoid rule) and interpolated back. Points
    outside the lateral window use the nearest edge line, as the dose data do.
    """

    def __init__(
        self,
        phantom: Phantom,
        rho_e: NDArray[np.float32],
        entry: FloatArray,
        frame: tuple[FloatArray, FloatArray, FloatArray],
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        t_max: float,
    ) -> None:
        n, u, v = frame
        h = float(min(phantom.grid.spacing_mm))
        extent = (x_range[1] - x_range[0], y_range[1] - y_range[0], max(t_max, h))
        samples = np.prod([e / h + 2 for e in extent])
        if samples > _MAX_BEAM_GRID_SAMPLES:
            h *= float((samples / _MAX_BEAM_GRID_SAMPLES) ** (1 / 3))
        self.h = h
        self.x0, self.y0 = x_range[0], y_range[0]
        nx = int(np.ceil(extent[0] / h)) + 1
        ny = int(np.ceil(extent[1] / h)) + 1
        nt = int(np.ceil(extent[2] / h)) + 1
        xs = self.x0 + h * np.arange(nx)
        ys = self.y0 + h * np.arange(ny)
        ts = h * np.arange(nt)
        wed = np.empty((nx, ny, nt), dtype=np.float32)
        grid = phantom.grid
        for i, xv in enumerate(xs):  # one x-slab at a time keeps memory small
            pts = (
                entry[None, None, :]
                + xv * u[None, None, :]
                + ys[:, None, None] * v[None, None, :]
                + ts[None, :, None] * n[None, None, :]
            )
            idx = grid.position_to_index(pts.reshape(-1, 3)).T
            rho = ndimage.map_coordinates(rho_e, idx, order=1, mode="nearest").reshape(ny, nt)
            # trapezoid cumulative integral from t = 0
            cum = np.concatenate(
                (np.zeros((ny, 1)), np.cumsum(0.5 * (rho[:, 1:] + rho[:, :-1]), axis=1)), axis=1
            )
            wed[i] = (h * cum).astype(np.float32)
        self.wed = wed

    def __call__(self, x: FloatArray, y: FloatArray, t: FloatArray) -> FloatArray:
        coords = np.stack(
            ((x - self.x0) / self.h, (y - self.y0) / self.h, np.maximum(t, 0.0) / self.h)
        )
        out = ndimage.map_coordinates(self.wed, coords, order=1, mode="nearest").astype(np.float64)
        return np.where(t < 0, t, out)  # above the surface: plain (negative) distance


# --------------------------------------------------------------------------------------------
# Dose
# --------------------------------------------------------------------------------------------


def mean_energy_at_depth_mev(beam: ElectronBeam, depth_w_mm: float, mev_per_cm: float) -> float:
    """Mean electron energy at water-equivalent depth (E0 = C R50; E_z = E0 (1 - z/Rp))."""
    c = beam.characteristics
    e0 = mev_per_cm * c.r50_mm / 10.0
    return float(max(0.0, e0 * (1.0 - depth_w_mm / c.rp_mm)))


def apply_disc(
    beam: ElectronBeam,
    x: FloatArray,
    y: FloatArray,
    t: FloatArray,
    depth_w: FloatArray,
    depth_w_at_disc: FloatArray,
    open_dose_pct: FloatArray,
    disc: DiscPlacement,
) -> FloatArray:
    """Open-beam percent dose modified by a shielding disc (see the module docstring)."""
    cx, cy = disc.centre_xy_mm
    inside = (x - cx) ** 2 + (y - cy) ** 2 <= (disc.diameter_mm / 2.0) ** 2
    behind = inside & (t >= disc.depth_mm)
    front = inside & ~behind
    out = open_dose_pct.copy()
    if front.any():
        s = depth_w_at_disc[front] - depth_w[front]
        out[front] *= 1.0 + disc.disc.backscatter_increase(beam.energy_mev, s)
    if behind.any():
        face = beam.relative_dose(x[behind], y[behind], depth_w_at_disc[behind])
        out[behind] = disc.disc.transmission_fraction * face
    return out


def _inputs_hash(**items: object) -> str:
    text = json.dumps(items, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def compute_dose(
    beam: ElectronBeam,
    phantom: Phantom,
    entry_point_mm: tuple[float, float, float],
    axis: tuple[float, float, float],
    *,
    dose_max_gy: float,
    bevel_direction: tuple[float, float, float] | None = None,
    disc: DiscPlacement | None = None,
    bolus_mm: float = 0.0,
    density_scaling: bool = True,
    calibration: str = "dose at the clinical-axis maximum = monitor units x measured output factor",
) -> DoseGrid:
    """Dose (Gy, one session) of an electron IORT beam in a voxel phantom.

    Parameters
    ----------
    beam:
        Beam data of the chosen applicator, bevel and energy.
    phantom:
        Voxel phantom (LPS mm; arrays ``[z, y, x]``).
    entry_point_mm:
        (x, y, z) of the clinical axis on the gland surface (centre of the applicator face).
    axis:
        Inward surface normal (beam depth direction); normalised here.
    dose_max_gy:
        Absorbed dose at the clinical-axis maximum in water (MU x cGy/MU / 100, or
        prescription / isodose fraction).
    bevel_direction:
        Direction in which a bevelled beam travels with depth (the data's +x); see
        :func:`beam_frame` for the default.
    disc:
        Shielding disc placement, or ``None`` for no disc.
    bolus_mm:
        Water-equivalent bolus thickness on the gland surface.
    density_scaling:
        Scale depths by relative electron density (else treat the phantom as water).
    calibration:
        Text recorded in the provenance.

    Returns
    -------
    DoseGrid
        Dose to water in medium (water-equivalent depth scaling) or in water.
    """
    if not np.isfinite(dose_max_gy) or dose_max_gy <= 0:
        raise ElectronGeometryError(f"dose_max_gy must be positive, got {dose_max_gy}")
    if not np.isfinite(bolus_mm) or bolus_mm < 0:
        raise ElectronGeometryError(f"bolus thickness must be >= 0 mm, got {bolus_mm}")
    entry = np.asarray(entry_point_mm, dtype=np.float64)
    if entry.shape != (3,) or not np.isfinite(entry).all():
        raise ElectronGeometryError(
            f"entry point must be a finite (x, y, z) in mm, got {entry_point_mm}"
        )
    frame = beam_frame(axis, bevel_direction)
    n, u, v = frame
    grid = phantom.grid
    z_ax, y_ax, x_ax = grid.axes_mm()
    corners = np.array(
        [[x, y, z] for x in x_ax[[0, -1]] for y in y_ax[[0, -1]] for z in z_ax[[0, -1]]]
    )
    t_max = float(((corners - entry) @ n).max())
    if t_max <= 0:
        raise ElectronGeometryError(
            "the phantom lies entirely upstream of the entry plane; check the axis sign"
        )

    nx, ny, _nd = beam.dose_mc.shape
    x_range = (beam.origin_mm[0], beam.origin_mm[0] + beam.spacing_mm[0] * (nx - 1))
    y_range = (beam.origin_mm[1], beam.origin_mm[1] + beam.spacing_mm[1] * (ny - 1))
    wed: _WaterEquivalentDepth | None = None
    if density_scaling:
        wed = _WaterEquivalentDepth(
            phantom, relative_electron_density(phantom), entry, frame, x_range, y_range, t_max
        )

    dose = np.empty(grid.size, dtype=np.float64)
    _, ny_, nx_ = grid.shape
    flat = np.arange(grid.size)
    for start in range(0, grid.size, _CHUNK_VOXELS):
        sl = flat[start : start + _CHUNK_VOXELS]
        iz, rem = np.divmod(sl, ny_ * nx_)
        iy, ix = np.divmod(rem, nx_)
        rel = np.stack((x_ax[ix], y_ax[iy], z_ax[iz]), axis=1) - entry
        t, bx, by = rel @ n, rel @ u, rel @ v
        d_w = wed(bx, by, t) if wed is not None else t.copy()
        depth = np.maximum(d_w + bolus_mm, 0.0)
        pct = beam.relative_dose(bx, by, depth)
        if disc is not None:
            tf = np.full_like(t, disc.depth_mm)
            d_face = (wed(bx, by, tf) if wed is not None else tf) + bolus_mm
            pct = apply_disc(beam, bx, by, t, depth, d_face, pct, disc)
        dose[start : start + sl.size] = pct
    dose_gy = (dose * (dose_max_gy / 100.0)).reshape(grid.shape)

    notes = [
        f"{beam.key}: 3D Monte Carlo dose in water of the beam data, normalised to the "
        "clinical-axis maximum",
        "depth scaled by relative electron density along the beam axis (coefficient of equivalent "
        "thickness)"
        if density_scaling
        else "phantom treated as water (no density scaling)",
        "outside the beam data's extent the dose is held at the data edge (overestimate)",
    ]
    if bolus_mm > 0:
        notes.append(f"water-equivalent bolus {bolus_mm:g} mm on the gland surface")
    if disc is not None:
        notes.append(
            f"shielding disc {disc.disc.name} at {disc.depth_mm:g} mm, diameter "
            f"{disc.diameter_mm:g} mm: "
            f"backscatter and transmission {disc.disc.transmission_fraction:g} from published "
            "figures "
            f"({disc.disc.verification['transmission'].split(':')[0]})"
        )
    inputs = _inputs_hash(
        beam=beam.key,
        entry=entry.tolist(),
        axis=n.tolist(),
        bevel=u.tolist(),
        dose_max_gy=dose_max_gy,
        disc=None
        if disc is None
        else [disc.disc.name, disc.depth_mm, disc.diameter_mm, list(disc.centre_xy_mm)],
        bolus_mm=bolus_mm,
        density_scaling=density_scaling,
        grid=grid.to_dict(),
    )
    return DoseGrid(
        grid=grid,
        dose_gy=dose_gy,
        medium="water_in_medium" if density_scaling else "water_in_water",
        normalisation=f"{dose_max_gy:.4g} Gy at the clinical-axis dose maximum in water",
        provenance=Provenance(
            engine=ENGINE,
            engine_version=ENGINE_VERSION,
            device_data=f"electron beam data {beam.key}",
            device_data_sha256=beam.data_sha256,
            inputs_sha256=inputs,
            calibration=calibration,
        ),
        notes=tuple(notes),
    )


def central_axis_dose(
    beam: ElectronBeam,
    depth_mm: FloatArray,
    *,
    dose_max_gy: float,
    disc: DiscPlacement | None = None,
    bolus_mm: float = 0.0,
    relative_density: float = 1.0,
) -> FloatArray:
    """Dose (Gy) on the clinical axis in a uniform tissue at physical depths ``depth_mm``.

    The same model as :func:`compute_dose` in one dimension, for depth profiles
    (radiobiology, reports).
    """
    if relative_density <= 0:
        raise ElectronGeometryError(f"relative density must be positive, got {relative_density}")
    t = np.asarray(depth_mm, dtype=np.float64)
    zero = np.zeros_like(t)
    d_w = np.maximum(t * relative_density + bolus_mm, 0.0)
    pct = beam.relative_dose(zero, zero, d_w)
    if disc is not None:
        face = np.full_like(t, disc.depth_mm * relative_density + bolus_mm)
        pct = apply_disc(beam, zero, zero, t, d_w, face, pct, disc)
    return pct * dose_max_gy / 100.0


# --------------------------------------------------------------------------------------------
# ELIOT geometry in a breast phantom
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EliotGeometry:
    """Beam placement for ELIOT-style IORT in a phantom.

    ``axis`` is the inward normal of the pectoral fascia at ``fascia_point_mm`` (the gland layer
    lies flat on the disc, so this is the beam data's depth direction); ``applicator_axis`` is the
    direction the applicator comes in along; their angle is ``surface_inclination_deg`` (what a
    bevel compensates) and ``bevel_direction`` is the applicator axis's component across the
    surface (where a bevelled beam travels with depth). ``target`` is the gland layer.
    """

    entry_point_mm: tuple[float, float, float]
    axis: tuple[float, float, float]
    applicator_axis: tuple[float, float, float]
    surface_inclination_deg: float
    bevel_direction: tuple[float, float, float] | None
    fascia_point_mm: tuple[float, float, float]
    thickness_mm: float
    width_mm: float
    target: NDArray[np.bool_]

    def to_dict(self) -> dict[str, object]:
        return {
            "entry_point_mm": list(self.entry_point_mm),
            "axis": list(self.axis),
            "applicator_axis": list(self.applicator_axis),
            "surface_inclination_deg": round(self.surface_inclination_deg, 3),
            "bevel_direction": None if self.bevel_direction is None else list(self.bevel_direction),
            "fascia_point_mm": list(self.fascia_point_mm),
            "target_thickness_mm": self.thickness_mm,
            "target_width_mm": self.width_mm,
        }


def _tuple3(v: FloatArray) -> tuple[float, float, float]:
    return float(v[0]), float(v[1]), float(v[2])


def _surface_normal(
    mask: NDArray[np.bool_],
    grid_spacing: tuple[float, float, float],
    index_zyx: FloatArray,
    smoothing_mm: float,
) -> FloatArray:
    """Unit vector (x, y, z) pointing into ``mask`` at a boundary point, from a smoothed mask."""
    sx, sy, sz = grid_spacing
    r = np.ceil(3.0 * smoothing_mm / np.array([sz, sy, sx])).astype(int) + 1
    centre = np.rint(index_zyx).astype(int)
    lo = np.maximum(centre - r, 0)
    hi = np.minimum(centre + r + 1, np.array(mask.shape))
    block = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]].astype(np.float64)
    sm = ndimage.gaussian_filter(block, sigma=smoothing_mm / np.array([sz, sy, sx]), mode="nearest")
    gz, gy, gx = np.gradient(sm, sz, sy, sx)
    at = (index_zyx - lo)[:, None]
    g = np.array([ndimage.map_coordinates(a, at, order=1, mode="nearest")[0] for a in (gx, gy, gz)])
    norm = float(np.linalg.norm(g))
    if norm < 1e-9:
        raise ElectronGeometryError("cannot find the chest-wall surface normal at the fascia point")
    return g / norm


def eliot_geometry(
    phantom: Phantom,
    thickness_mm: float,
    width_mm: float,
    *,
    tumour_bed_mm: tuple[float, float, float] | None = None,
    applicator_axis: tuple[float, float, float] | None = None,
    smoothing_mm: float = 3.0,
) -> EliotGeometry:
    """Place an ELIOT gland-layer target, entry point and beam axes in a breast phantom.

    From the tumour bed (default: the phantom's applicator/cavity centre) the applicator axis
    (default ``-phantom.shaft_direction``) is followed to the first ``chest_wall`` voxel: the
    pectoral fascia, on which the disc lies. The fascia's inward normal there (from the
    ``chest_wall`` mask smoothed over ``smoothing_mm``) is the beam's depth axis; the entry point
    is ``thickness_mm`` before the fascia along it; the target is the layer between the two
    planes within ``width_mm / 2`` of the axis, restricted to ``breast`` where present.

    Raises
    ------
    ElectronGeometryError
        Missing structures or directions, or an axis that never reaches the chest wall.
    """
    if not (
        np.isfinite(thickness_mm) and thickness_mm > 0 and np.isfinite(width_mm) and width_mm > 0
    ):
        raise ElectronGeometryError(
            f"target thickness and width must be positive, got {thickness_mm} and {width_mm} mm"
        )
    if applicator_axis is None:
        if phantom.shaft_direction is None:
            raise ElectronGeometryError("the phantom has no shaft_direction; give applicator_axis")
        applicator_axis = _tuple3(-np.asarray(phantom.shaft_direction, dtype=np.float64))
    a = np.asarray(applicator_axis, dtype=np.float64)
    if a.shape != (3,) or not np.isfinite(a).all() or np.linalg.norm(a) < 1e-9:
        raise ElectronGeometryError(
            f"applicator axis must be a finite non-zero 3-vector, got {applicator_axis}"
        )
    a = a / np.linalg.norm(a)
    start = tumour_bed_mm if tumour_bed_mm is not None else phantom.applicator_centre_mm
    if start is None:
        raise ElectronGeometryError("the phantom has no tumour-bed centre; give tumour_bed_mm")
    chest = phantom.structures.get("chest_wall")
    if chest is None or not chest.any():
        raise ElectronGeometryError(
            "the phantom has no 'chest_wall' structure to place the disc on"
        )
    grid = phantom.grid
    step = 0.25 * float(min(grid.spacing_mm))
    reach = float(np.linalg.norm(np.asarray(grid.spacing_mm) * np.asarray(grid.shape[::-1])))
    s = np.arange(0.0, reach, step)
    pts = np.asarray(start, dtype=np.float64)[None, :] + s[:, None] * a[None, :]
    idx = np.rint(grid.position_to_index(pts)).astype(int)
    inside = np.all((idx >= 0) & (idx < np.asarray(grid.shape)), axis=1)
    hit = np.zeros(s.size, dtype=bool)
    hit[inside] = chest[idx[inside, 0], idx[inside, 1], idx[inside, 2]]
    if not hit.any():
        raise ElectronGeometryError(
            "the applicator axis from the tumour bed never reaches the chest wall"
        )
    fascia = (
        pts[int(np.argmax(hit))] - 0.5 * step * a
    )  # between the last breast and first chest sample
    n = _surface_normal(chest, grid.spacing_mm, grid.position_to_index(fascia), smoothing_mm)
    cos_incl = float(np.clip(np.dot(a, n), -1.0, 1.0))
    if cos_incl <= 0:
        raise ElectronGeometryError("the applicator axis points away from the chest wall")
    across = a - cos_incl * n
    bevel_dir = None if np.linalg.norm(across) < 1e-6 else _tuple3(across / np.linalg.norm(across))
    entry = fascia - thickness_mm * n
    z, y, x = grid.axes_mm()
    dx = (x - entry[0])[None, None, :]
    dy = (y - entry[1])[None, :, None]
    dz = (z - entry[2])[:, None, None]
    t = dx * n[0] + dy * n[1] + dz * n[2]
    lateral2 = dx**2 + dy**2 + dz**2 - t**2
    target = (t >= 0) & (t < thickness_mm) & (lateral2 <= (width_mm / 2.0) ** 2)
    breast = phantom.structures.get("breast")
    if breast is not None:
        target &= breast
    return EliotGeometry(
        entry_point_mm=_tuple3(entry),
        axis=_tuple3(n),
        applicator_axis=_tuple3(a),
        surface_inclination_deg=float(np.degrees(np.arccos(cos_incl))),
        bevel_direction=bevel_dir,
        fascia_point_mm=_tuple3(fascia),
        thickness_mm=float(thickness_mm),
        width_mm=float(width_mm),
        target=target,
    )
