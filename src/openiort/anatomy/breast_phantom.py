"""Voxel breast phantom built from the case's measurements.

Geometry (DICOM LPS, patient supine, mm): the pectoral fascia is the plane y = 0 and the breast
is a hemi-ellipsoid in front of it (y < 0) centred on the nipple axis at x = +/-nipple offset
from the midline (x > 0 is the patient's left), z = 0 at nipple level. Behind the fascia:
pectoral muscle, then the rib layer (ribs as cylinders in intercostal muscle), then lung, and
for left-sided cases the heart. A 2 mm skin layer covers every surface in contact with air.

The lumpectomy cavity is a sphere of the measured diameter whose edge lies at the measured
chest-wall distance from the fascia and at the measured skin distance from the skin surface;
its direction from the nipple follows the clock position (or the quadrant). The applicator
sphere is concentric with it: the tissue is drawn onto the applicator with purse-string
sutures (TARGIT technique), so the cavity outside the applicator holds tissue, not air.

Anatomical dimensions that are not in the case come from data/phantom_anatomy.yaml, where each
value names its source or says it is a modelling assumption.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from openiort.anatomy.materials import breast_mixture_name, get_material
from openiort.anatomy.phantom import Phantom
from openiort.case import Case, CaseError
from openiort.datafiles import read_data
from openiort.grid import Grid

_QUADRANT_CLOCK = {  # clock position (examiner's view) of each quadrant's centre, per side
    ("left", "upper_outer"): 1.5,
    ("left", "upper_inner"): 10.5,
    ("left", "lower_outer"): 4.5,
    ("left", "lower_inner"): 7.5,
    ("right", "upper_outer"): 10.5,
    ("right", "upper_inner"): 1.5,
    ("right", "lower_outer"): 7.5,
    ("right", "lower_inner"): 4.5,
}


@cache
def anatomy_parameters() -> dict[str, Any]:
    params: dict[str, Any] = read_data("openiort.anatomy", "data/phantom_anatomy.yaml").yaml()
    return params


def _anatomy_csv(name: str) -> list[dict[str, str]]:
    return read_data("openiort.anatomy", f"data/{name}").rows()


@dataclass(frozen=True)
class BreastShape:
    base_radius_mm: float
    projection_mm: float
    source: str

    @property
    def volume_cc(self) -> float:
        return 2.0 / 3.0 * np.pi * self.base_radius_mm**2 * self.projection_mm / 1000.0


@dataclass(frozen=True)
class CavityPlacement:
    centre_mm: tuple[float, float, float]
    radius_mm: float
    direction_in_plane: tuple[float, float]  # unit (x, z) direction from the nipple axis
    offset_from_nipple_axis_mm: float
    notes: tuple[str, ...]
    warnings: tuple[str, ...]


def breast_shape(case: Case) -> BreastShape:
    a = case.anatomy
    if a.breast_base_diameter_mm is not None and a.breast_projection_mm is not None:
        return BreastShape(
            a.breast_base_diameter_mm / 2, a.breast_projection_mm, "measured (case file)"
        )
    cup = a.breast_cup or "C"
    row = next(r for r in _anatomy_csv("breast_cup_dimensions.csv") if r["cup"] == cup)
    label = f"cup {cup} estimate (anatomy/data/breast_cup_dimensions.csv)"
    if a.breast_cup is None:
        label = "cup unknown: cup C estimate used (anatomy/data/breast_cup_dimensions.csv)"
    return BreastShape(float(row["base_diameter_mm"]) / 2, float(row["projection_mm"]), label)


def gland_fraction(case: Case) -> float:
    key = case.anatomy.breast_density or "unknown"
    rows = _anatomy_csv("breast_density_gland_fraction.csv")
    return float(next(r for r in rows if r["breast_density"] == key)["gland_mass_fraction"])


def _clock_direction(case: Case) -> tuple[tuple[float, float], str]:
    pre = case.preoperative
    side = pre.laterality or "left"
    if pre.clock_position is not None:
        clock, how = float(pre.clock_position), f"clock position {pre.clock_position}"
    elif pre.quadrant is not None and pre.quadrant != "central":
        clock, how = _QUADRANT_CLOCK[(side, pre.quadrant)], f"centre of the {pre.quadrant} quadrant"
    else:
        return (0.0, 0.0), "central (behind the nipple)"
    # Examiner facing the patient: 12 o'clock is superior (+z), 3 o'clock is the patient's
    # left (+x) for either breast.
    angle = np.deg2rad(clock * 30.0)
    return (float(np.sin(angle)), float(np.cos(angle))), how


def _distance_to_ellipsoid_surface(
    point: NDArray[np.float64], shape: BreastShape, centre_x: float
) -> float:
    """Shortest distance from an interior point to the breast's anterior surface (sampled)."""
    theta = np.linspace(0, np.pi / 2, 181)  # 0 = apex, pi/2 = base rim
    phi = np.linspace(0, 2 * np.pi, 361)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    a, h = shape.base_radius_mm, shape.projection_mm
    surface = np.stack(
        [centre_x + a * np.sin(t) * np.cos(p), -h * np.cos(t), a * np.sin(t) * np.sin(p)], axis=-1
    )
    return float(np.sqrt(((surface - point) ** 2).sum(axis=-1)).min())


def place_cavity(
    case: Case, shape: BreastShape, nipple_x_mm: float, radius_mm: float
) -> CavityPlacement:
    """Find the cavity centre that honours the measured skin and chest-wall distances."""
    a = case.anatomy
    if a.skin_distance_mm is None or a.chest_wall_distance_mm is None:
        missing = [
            n for n in ("skin_distance_mm", "chest_wall_distance_mm") if getattr(a, n) is None
        ]
        raise CaseError(
            "case", [f"anatomy.{n}: required to build the phantom, got null" for n in missing]
        )
    skin, cw = a.skin_distance_mm, a.chest_wall_distance_mm
    y = -(cw + radius_mm)
    direction, how = _clock_direction(case)
    notes = [f"cavity direction from the nipple: {how}"]
    warnings: list[str] = []

    def gap(r: float) -> float:
        d = np.array(direction)
        point = np.array([nipple_x_mm + r * d[0], y, r * d[1]])
        return _distance_to_ellipsoid_surface(point, shape, nipple_x_mm) - (radius_mm + skin)

    if direction == (0.0, 0.0) or gap(0.0) <= 0:
        offset = 0.0
        if gap(0.0) < -0.5:
            thickness = cw + 2 * radius_mm + skin
            raise CaseError(
                "case",
                [
                    f"anatomy: cavity ({2 * radius_mm:g} mm) plus skin ({skin:g} mm) and chest-wall "
                    f"({cw:g} mm) distances need a breast {thickness:g} mm thick, but the breast "
                    f"({shape.source}) projects only {shape.projection_mm:g} mm: the cavity is "
                    "larger than the breast"
                ],
            )
        if gap(0.0) > 0.5:
            warnings.append(
                f"skin distance at the nipple axis is {gap(0.0) + skin:.1f} mm, more than the "
                f"measured {skin:g} mm: the breast shape estimate is thicker than this patient's"
            )
    else:
        lo, hi = 0.0, shape.base_radius_mm
        for _ in range(40):  # bisection: the gap shrinks monotonically towards the rim
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if gap(mid) > 0 else (lo, mid)
        offset = 0.5 * (lo + hi)
    centre = (nipple_x_mm + offset * direction[0], y, offset * direction[1])
    return CavityPlacement(centre, radius_mm, direction, offset, tuple(notes), tuple(warnings))


def _adapt_shape(case: Case, shape: BreastShape, radius_mm: float) -> BreastShape:
    """Grow an estimated breast so the measured cavity fits; measured shapes are never changed."""
    a = case.anatomy
    needed = (a.chest_wall_distance_mm or 0) + 2 * radius_mm + (a.skin_distance_mm or 0)
    if 2 * radius_mm + 2 * (a.skin_distance_mm or 0) > 2 * shape.base_radius_mm:
        raise CaseError(
            "case",
            [
                f"anatomy.cavity_diameter_mm: value {2 * radius_mm:g} rejected: with the skin distance "
                f"it does not fit in the breast base ({2 * shape.base_radius_mm:g} mm, {shape.source}): "
                "the cavity is larger than the breast"
            ],
        )
    if shape.source.startswith("measured") or needed <= shape.projection_mm:
        return shape
    return BreastShape(
        shape.base_radius_mm,
        needed,
        shape.source + f", projection raised to {needed:g} mm to fit the measured distances",
    )


def build_breast_phantom(
    case: Case,
    applicator_radius_mm: float,
    spacing_mm: float = 1.0,
    applicator_material: str = "applicator_pei",
) -> Phantom:
    """Voxel phantom of the treated breast with the applicator in the cavity.

    ``applicator_material`` fills the applicator sphere: polyetherimide for the 50 kV
    spherical applicators, ``water`` for a saline-filled HDR balloon.
    """
    if case.anatomy.cavity_diameter_mm is None and case.intent.technique != "electron":
        raise CaseError(
            "case", ["anatomy.cavity_diameter_mm: required to build the phantom, got null"]
        )
    p = anatomy_parameters()
    side = case.preoperative.laterality or "left"
    sign = 1.0 if side == "left" else -1.0
    # Electron IORT treats the mobilised gland, not a cavity: without a measured cavity the
    # tumour bed is a point placed at the measured skin and chest-wall distances.
    cavity_radius = (case.anatomy.cavity_diameter_mm or 0.0) / 2
    if applicator_radius_mm > cavity_radius + 1e-6:
        raise CaseError(
            "case",
            [
                f"applicator radius {applicator_radius_mm} mm exceeds the cavity radius {cavity_radius} mm"
            ],
        )
    shape = _adapt_shape(case, breast_shape(case), cavity_radius)
    nipple_x = sign * float(p["nipple_to_midline_mm"])
    cavity = place_cavity(case, shape, nipple_x, cavity_radius)

    margin = float(p["grid_margin_mm"])
    a, h = shape.base_radius_mm, shape.projection_mm
    muscle_t, rib_layer_t = (
        float(p["pectoral_muscle_thickness_mm"]),
        float(p["rib_layer_thickness_mm"]),
    )
    lung_start = muscle_t + rib_layer_t
    x_lo, x_hi = nipple_x - a - margin, nipple_x + a + margin
    y_back = lung_start + float(p["lung_depth_in_grid_mm"])
    z_lo, z_hi = -a - margin, a + margin
    heart = p["heart"]
    if side == "left":  # the grid holds the whole heart so that its DVH is complete
        hx, hz = float(heart["centre_x_mm"]), float(heart["centre_z_mm"])
        x_lo = min(x_lo, hx - heart["semi_axes_mm"][0] - margin)
        z_lo = min(z_lo, hz - heart["semi_axes_mm"][2] - margin)
        y_back = max(
            y_back, lung_start + heart["anterior_gap_mm"] + 2 * heart["semi_axes_mm"][1] + margin
        )
    grid = Grid.centred(
        centre_mm=((x_lo + x_hi) / 2, (-(h + margin) + y_back) / 2, (z_lo + z_hi) / 2),
        size_mm=(x_hi - x_lo, y_back + h + margin, z_hi - z_lo),
        spacing_mm=spacing_mm,
    )
    z, y, x = grid.axes_mm()
    zs, ys, xs = z[:, None, None], y[None, :, None], x[None, None, :]

    breast = ((((xs - nipple_x) ** 2 + zs**2) / a**2 + ys**2 / h**2) <= 1.0) & (ys < 0)
    thorax = np.broadcast_to(ys >= 0, grid.shape)
    body = breast | thorax
    # Depth below the surface matters only near the anterior surface (skin layer, target
    # crop); the distance transform runs on that slab, the thorax behind it is deep tissue.
    p_skin = max(float(p["skin_thickness_mm"]), float(p["target_skin_crop_mm"]))
    rows = np.flatnonzero(grid.axis_mm("y") <= p_skin + 2 * spacing_mm)
    depth_in_body = np.full(grid.shape, np.inf)
    depth_in_body[:, rows, :] = ndimage.distance_transform_edt(
        body[:, rows, :], sampling=(spacing_mm,) * 3
    )
    # At least one voxel layer, so that coarse grids (> 2 mm) still have a skin.
    skin = body & (depth_in_body <= max(float(p["skin_thickness_mm"]), spacing_mm))

    muscle = thorax & (ys < muscle_t)
    rib_layer = thorax & (ys >= muscle_t) & (ys < lung_start)
    rib_y = muscle_t + rib_layer_t / 2
    rib_phase = ((zs - float(p["rib_z_offset_mm"])) % float(p["rib_pitch_mm"])) - float(
        p["rib_pitch_mm"]
    ) / 2
    ribs = rib_layer & (
        ((ys - rib_y) / float(p["rib_semi_axes_mm"][1])) ** 2
        + (rib_phase / float(p["rib_semi_axes_mm"][0])) ** 2
        <= 1.0
    )
    lung = thorax & (ys >= lung_start)
    heart_mask = np.zeros(grid.shape, dtype=bool)
    if side == "left":
        sx, sy, sz = heart["semi_axes_mm"]
        cy = lung_start + heart["anterior_gap_mm"] + sy
        heart_mask = (
            ((xs - heart["centre_x_mm"]) / sx) ** 2
            + ((ys - cy) / sy) ** 2
            + ((zs - heart["centre_z_mm"]) / sz) ** 2
        ) <= 1.0
        lung = lung & ~heart_mask

    cx, cy_cav, cz = cavity.centre_mm
    r_centre = np.sqrt((xs - cx) ** 2 + (ys - cy_cav) ** 2 + (zs - cz) ** 2)
    no_voxels = np.zeros(grid.shape, dtype=bool)
    applicator = r_centre <= applicator_radius_mm if applicator_radius_mm > 0 else no_voxels
    cavity_mask = r_centre <= cavity_radius if cavity_radius > 0 else no_voxels
    skin_depth_ok = depth_in_body >= float(p["target_skin_crop_mm"])
    target = (r_centre > applicator_radius_mm) & (
        r_centre <= applicator_radius_mm + float(p["target_rind_mm"])
    )
    target &= breast & skin_depth_ok & ~skin

    gland_frac = gland_fraction(case)
    materials = (
        "air",
        breast_mixture_name(gland_frac),
        "skin",
        "muscle",
        "cortical_bone",
        "lung",
        "heart",
        applicator_material,
    )
    mid = np.zeros(grid.shape, dtype=np.uint8)
    mid[breast] = 1
    mid[muscle | rib_layer] = 3
    mid[ribs] = 4
    mid[lung] = 5
    mid[heart_mask] = 6
    mid[skin] = 2
    mid[applicator] = 7
    densities = np.array([get_material(m).density_g_cm3 for m in materials], dtype=np.float32)
    structures = {
        "breast": breast & ~applicator,
        "skin": skin,
        "cavity": cavity_mask,
        "applicator": applicator,
        "target": target,
        "chest_wall": muscle | rib_layer,
        "ribs": ribs,
        "lung": lung,
    }
    if side == "left":
        structures["heart"] = heart_mask
    # The probe leaves the cavity through the incision, taken to be at the skin point nearest
    # to the cavity centre.
    skin_points = grid.index_to_position_mm(np.argwhere(skin & breast).astype(np.float64))
    nearest = skin_points[
        np.argmin(np.linalg.norm(skin_points - np.array(cavity.centre_mm), axis=1))
    ]
    shaft_dir = (nearest - np.array(cavity.centre_mm)) / np.linalg.norm(
        nearest - np.array(cavity.centre_mm)
    )
    return Phantom(
        grid=grid,
        material_ids=mid,
        density_g_cm3=densities[mid],
        materials=materials,
        structures=structures,
        applicator_centre_mm=(float(cx), float(cy_cav), float(cz)),
        applicator_radius_mm=applicator_radius_mm,
        cavity_radius_mm=cavity_radius,
        shaft_direction=(float(shaft_dir[0]), float(shaft_dir[1]), float(shaft_dir[2])),
        description={
            "laterality": side,
            "breast_shape": shape.source,
            "breast_base_diameter_mm": 2 * a,
            "breast_projection_mm": h,
            "breast_volume_cc_analytic": shape.volume_cc,
            "breast_tissue": f"{breast_mixture_name(gland_frac)}: {gland_frac:.1%} gland by mass (breast density {case.anatomy.breast_density or 'unknown'})",
            "cavity_offset_from_nipple_axis_mm": cavity.offset_from_nipple_axis_mm,
            "notes": list(cavity.notes),
            "heart_modelled": side == "left",
        },
        warnings=list(cavity.warnings),
    )
