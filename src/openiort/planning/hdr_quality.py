"""Balloon plan quality as the balloon APBI trial protocol defines it (NSABP B-39/RTOG 0413).

The evaluation volume PTV_EVAL is the 1 cm shell of tissue around the balloon, limited 5 mm
under the skin surface and at the chest wall, the balloon excluded. Its coverage (the share of
PTV_EVAL receiving at least 90 % of the prescription), V150 and V200 in cc of tissue (balloon
excluded), the skin maximum as a percentage of the prescription and the rib maximum are
reported against the protocol's limits (``devices/data/tg43/hdr_protocol.yaml``, with their
sources). The balloon-to-skin distance is checked before planning (:func:`skin_distance_check`).
On a post-implant CT, balloon symmetry (the contour's principal diameters) and conformance (air
pockets at the balloon, as a share of PTV_EVAL) are added (:func:`ct_balloon_indices`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from openiort.anatomy.phantom import Phantom
from openiort.devices.hdr import BalloonApplicator
from openiort.devices.hdr_source import hdr_protocol
from openiort.planning.dwell_optimisation import HdrPlanError

BoolArray = NDArray[np.bool_]
PROTOCOL = "NSABP B-39/RTOG 0413 balloon brachytherapy criteria"


def _body(phantom: Phantom) -> BoolArray:
    air = (
        phantom.material_mask("air")
        if "air" in phantom.materials
        else np.zeros(phantom.grid.shape, dtype=bool)
    )
    # The balloon and the cavity (air gaps round the balloon included) are inside the body; so
    # is air that does not reach the grid's edge (a pocket inside the breast on a CT).
    body = ~air | _enclosed(air)
    for name in ("applicator", "cavity"):
        inside = phantom.structures.get(name)
        if inside is not None:
            body |= inside
    return body


def _enclosed(mask: BoolArray) -> BoolArray:
    """The parts of ``mask`` (connected components) that do not touch the grid's edge."""
    if not mask.any():
        return mask
    labels, _ = ndimage.label(mask)
    edge = np.zeros(mask.shape, dtype=bool)
    for axis in range(mask.ndim):
        index: list[Any] = [slice(None)] * mask.ndim
        for end in (0, -1):
            index[axis] = end
            edge[tuple(index)] = True
    touching = np.unique(labels[edge & mask])
    return mask & ~np.isin(labels, touching)


def depth_below_surface_mm(phantom: Phantom) -> NDArray[np.float64]:
    """Distance (mm) of every voxel inside the body from the body's outer surface."""
    body = _body(phantom)
    return np.asarray(
        ndimage.distance_transform_edt(body, sampling=phantom.grid.spacing_mm), dtype=np.float64
    )


def balloon_skin_distance_mm(phantom: Phantom, device: BalloonApplicator) -> float:
    """The least distance from the balloon surface to the body surface (mm)."""
    body = _body(phantom)
    outside = ~body
    if not outside.any():
        return float("inf")
    centre = np.asarray(device.centre_mm)
    pts = phantom.grid.index_to_position_mm(np.argwhere(outside).astype(np.float64))
    # The surface lies half a voxel inside the nearest air voxel's centre.
    half_voxel = 0.5 * min(phantom.grid.spacing_mm)
    return float(np.linalg.norm(pts - centre, axis=1).min() - device.radius_mm - half_voxel)


def skin_distance_check(distance_mm: float) -> list[str]:
    """Refuse a balloon closer to the skin than the protocol's minimum; warn near it."""
    q = hdr_protocol()["balloon_quality"]
    low, warn = float(q["skin_distance_min_mm"]), float(q["skin_distance_warn_mm"])
    if distance_mm < low:
        raise HdrPlanError(
            f"balloon-to-skin distance {distance_mm:.1f} mm is under the protocol minimum "
            f"{low:g} mm ({PROTOCOL}; hdr_protocol.yaml): a balloon this close to the skin is "
            "not treated"
        )
    if distance_mm < warn:
        return [
            f"Balloon-to-skin distance {distance_mm:.1f} mm is under {warn:g} mm: close skin "
            "spacing, check the skin maximum against its limit (a multi-lumen balloon can shape "
            "the dose away from the skin)."
        ]
    return []


def _row(name: str, value: float | None, text: str, limit: str, ok: bool | None) -> dict[str, Any]:
    """One quality index: its value, its limit and the result."""
    result = "not evaluated" if ok is None else ("within" if ok else "EXCEEDS the limit")
    return {
        "name": name,
        "value": None if value is None else round(value, 3),
        "value_text": text,
        "limit_text": limit,
        "within": None if ok is None else bool(ok),
        "result": result,
    }


def ptv_eval_mask(
    phantom: Phantom, centre_mm: tuple[float, float, float], radius_mm: float
) -> BoolArray:
    """PTV_EVAL: the protocol's shell of tissue round the balloon (sphere of ``radius_mm`` at
    ``centre_mm``), limited under the skin and at the chest wall, the balloon excluded."""
    q = hdr_protocol()["balloon_quality"]
    distance = phantom.grid.distance_from_mm(centre_mm)
    ptv = (distance > radius_mm) & (distance <= radius_mm + float(q["ptv_eval_shell_mm"]))
    ptv &= _body(phantom)
    ptv &= depth_below_surface_mm(phantom) >= float(q["ptv_eval_skin_margin_mm"])
    for name in ("chest_wall", "lung"):
        mask = phantom.structures.get(name)
        if mask is not None:
            ptv &= ~mask
    if not ptv.any():
        raise HdrPlanError("PTV_EVAL holds no voxel of this grid")
    return ptv


def balloon_quality(
    phantom: Phantom,
    dose_gy: NDArray[np.float64],
    device: BalloonApplicator,
    prescription_gy: float,
    v150_cc: float,
    v200_cc: float,
    skin_distance_mm: float,
) -> dict[str, Any]:
    """The protocol's quality indices of a balloon plan, each with its limit and result."""
    q = hdr_protocol()["balloon_quality"]
    grid = phantom.grid
    ptv = ptv_eval_mask(phantom, device.centre_mm, device.radius_mm)
    voxel_cc = grid.voxel_volume_cc
    level = float(q["coverage_dose_fraction"])
    coverage = 100.0 * float(np.count_nonzero(dose_gy[ptv] >= level * prescription_gy)) / ptv.sum()
    skin = phantom.structures.get("skin")
    skin_max = 100.0 * float(dose_gy[skin].max()) / prescription_gy if skin is not None else None
    ribs = phantom.structures.get("ribs")
    rib_max = (
        100.0 * float(dose_gy[ribs].max()) / prescription_gy
        if ribs is not None and ribs.any()
        else None
    )

    row = _row
    cov_min = float(q["coverage_min_volume_percent"])
    indices = [
        row(
            "balloon-to-skin distance",
            skin_distance_mm,
            f"{skin_distance_mm:.1f} mm",
            f">= {q['skin_distance_min_mm']:g} mm (warned under {q['skin_distance_warn_mm']:g} mm)",
            bool(skin_distance_mm >= float(q["skin_distance_min_mm"])),
        ),
        row(
            f"PTV_EVAL receiving >= {100 * level:g} % of the prescription",
            coverage,
            f"{coverage:.1f} % of {ptv.sum() * voxel_cc:.1f} cc",
            f">= {cov_min:g} %",
            coverage >= cov_min,
        ),
        row(
            "V150 (tissue, balloon excluded)",
            v150_cc,
            f"{v150_cc:.1f} cc",
            f"<= {q['v150_max_cc']:g} cc",
            v150_cc <= float(q["v150_max_cc"]),
        ),
        row(
            "V200 (tissue, balloon excluded)",
            v200_cc,
            f"{v200_cc:.1f} cc",
            f"<= {q['v200_max_cc']:g} cc",
            v200_cc <= float(q["v200_max_cc"]),
        ),
        row(
            "skin maximum",
            skin_max,
            "no skin structure" if skin_max is None else f"{skin_max:.1f} % of the prescription",
            f"<= {q['skin_max_percent']:g} %",
            None if skin_max is None else skin_max <= float(q["skin_max_percent"]),
        ),
        row(
            "rib maximum",
            rib_max,
            "no ribs in the grid" if rib_max is None else f"{rib_max:.1f} % of the prescription",
            f"reported (reference {q['rib_max_reference_percent']:g} %, not a B-39 limit)",
            None,
        ),
    ]
    return {
        "protocol": PROTOCOL,
        "evaluation_volume": (
            f"PTV_EVAL: the {q['ptv_eval_shell_mm']:g} mm shell of tissue around the balloon, "
            f"limited {q['ptv_eval_skin_margin_mm']:g} mm under the skin surface and at the chest "
            f"wall (chest-wall muscle, ribs and lung excluded), balloon excluded: "
            f"{ptv.sum() * voxel_cc:.1f} cc."
        ),
        "ptv_eval_cc": round(float(ptv.sum() * voxel_cc), 3),
        "indices": indices,
        "notes": [
            "Conformance and symmetry are reported only for a plan on a CT with the balloon in "
            "place; on the phantom the balloon fills the cavity by construction.",
            "Doses are TG-43 dose to water in water: the skin maximum is an upper estimate where "
            "little tissue lies beyond (see the warnings).",
        ],
    }


CT_NOTE = (
    "Symmetry: the balloon contour's diameters along its principal axes (from its second "
    "moments, as a solid ellipsoid), each against their mean. Conformance: voxels under "
    "{density:g} g/cm3 (air, low-density pockets) inside PTV_EVAL, joined to the balloon and "
    "not to the air outside the body, as a share of PTV_EVAL; fluid (seroma) is not told from "
    "tissue by its CT numbers and is not counted."
)


def principal_diameters_mm(mask: BoolArray, spacing_mm: tuple[float, float, float]) -> list[float]:
    """Diameters (mm, largest first) of a solid structure along its principal axes: those of
    the uniform ellipsoid with the same second moments (semi-axis sqrt(5 * eigenvalue))."""
    zyx = np.argwhere(mask).astype(np.float64) * np.asarray(spacing_mm[::-1])
    if len(zyx) < 2:
        raise HdrPlanError("the balloon contour holds fewer than two voxels")
    cov = np.cov(zyx, rowvar=False, bias=True)
    # Each voxel is a cube, not a point: its own second moment is s^2 / 12 along each axis.
    cov += np.diag(np.asarray(spacing_mm[::-1]) ** 2 / 12.0)
    eigen = np.sort(np.linalg.eigvalsh(cov))[::-1]
    return [float(2.0 * np.sqrt(5.0 * max(e, 0.0))) for e in eigen]


def trapped_pocket_mask(
    phantom: Phantom, balloon: BoolArray, ptv_eval: BoolArray, density_max_g_cm3: float
) -> BoolArray:
    """Low-density voxels of PTV_EVAL in pockets that touch the balloon (face neighbours) and
    do not reach the grid's edge (the air outside the body)."""
    low = (phantom.density_g_cm3 < density_max_g_cm3) & ~balloon
    pockets = _enclosed(low)
    labels, _ = ndimage.label(pockets)
    touching = np.unique(labels[ndimage.binary_dilation(balloon) & pockets])
    return ptv_eval & np.isin(labels, touching[touching > 0])


def ct_balloon_indices(
    phantom: Phantom, balloon_contour: BoolArray, quality: dict[str, Any]
) -> list[str]:
    """Add balloon symmetry and conformance to ``quality`` (the block of
    :func:`balloon_quality`) for a plan on a post-implant CT; return the warnings.

    ``phantom``: the planning phantom (the fitted balloon placed); ``balloon_contour``: the
    balloon as contoured on the CT (its shape, before the sphere is fitted)."""
    q = hdr_protocol()["balloon_quality"]
    centre, radius = phantom.applicator_centre_mm, phantom.applicator_radius_mm
    if centre is None or radius is None or not balloon_contour.any():
        return []
    grid = phantom.grid
    diameters = principal_diameters_mm(balloon_contour, grid.spacing_mm)
    mean = float(np.mean(diameters))
    deviations = [d - mean for d in diameters]
    worst = max(abs(d) for d in deviations)
    tol = float(q["balloon_check_diameter_tolerance_mm"])
    ptv = ptv_eval_mask(phantom, centre, radius)
    balloon = balloon_contour | phantom.structures.get("applicator", balloon_contour)
    density_max = float(q["conformance_pocket_density_max_g_cm3"])
    pockets = trapped_pocket_mask(phantom, balloon, ptv, density_max)
    pocket_cc = float(pockets.sum() * grid.voxel_volume_cc)
    pocket_percent = 100.0 * float(pockets.sum()) / float(ptv.sum())
    pocket_max = float(q["conformance_pocket_max_percent"])
    rows = [
        _row(
            "balloon symmetry (largest diameter deviation from the mean)",
            worst,
            f"{worst:.1f} mm (diameters {' / '.join(f'{d:.1f}' for d in diameters)} mm, "
            f"mean {mean:.1f} mm)",
            f"<= {tol:g} mm",
            worst <= tol,
        ),
        _row(
            "conformance: air/low-density pockets at the balloon in PTV_EVAL",
            pocket_percent,
            f"{pocket_percent:.1f} % ({pocket_cc:.2f} cc)",
            f"<= {pocket_max:g} % of PTV_EVAL",
            pocket_percent <= pocket_max,
        ),
    ]
    quality["indices"].extend(rows)
    quality["symmetry"] = {
        "diameters_mm": [round(d, 2) for d in diameters],
        "mean_diameter_mm": round(mean, 2),
        "deviation_from_mean_mm": [round(d, 2) for d in deviations],
        "max_deviation_mm": round(worst, 2),
        "tolerance_mm": tol,
        "within": bool(worst <= tol),
    }
    quality["conformance"] = {
        "pocket_cc": round(pocket_cc, 3),
        "pocket_percent_of_ptv_eval": round(pocket_percent, 3),
        "limit_percent": pocket_max,
        "density_threshold_g_cm3": density_max,
        "within": bool(pocket_percent <= pocket_max),
    }
    kept = [n for n in quality["notes"] if not n.startswith("Conformance and symmetry")]
    quality["notes"] = [CT_NOTE.format(density=density_max), *kept]
    return [
        f"Balloon plan quality: {r['name']} {r['value_text']} exceeds the limit "
        f"({r['limit_text']}, {quality['protocol']})"
        for r in rows
        if r["within"] is False
    ]
