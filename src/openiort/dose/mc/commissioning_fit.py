"""Joint commissioning fit of the 50 kV source model with the V4.0 chamber in the model.

Issue 15, item 1. The source model's free inputs (data/xray50_source_model.yaml) are the gold
target thickness and the effective Al filtration of the tip (before this fit: 1 um ASSUMPTION,
0.25 mm fitted to point doses), and one applicator parameter, an effective filtration between
the tip and the PEI; the tube voltage, the target material and the emission geometry are
published. The three are fitted together to every datum of
data/xray50_commissioning_targets.yaml: the eight TG-292 relative V4.0 surface rates read
through the PTW 34013 chamber, the three published HVLs, Shaikh's bare-probe local slopes, and
the 24 V4.0/TARGIT ratios as a shape check.

Why the target thickness: the HVL in air (about 0.1 mm Al) asks for less filtration, the HVL
after 20 mm of water (above 1.3 mm) for more; neither involves an applicator. The gold of the
target is an L-edge filter (edges 11.9-14.4 keV): it passes the Au L lines (9.7, 11.4 keV) and
removes the 14-30 keV band, which softens the beam in air and hardens it at depth at once.

Why the applicator parameter (the issue allows one "if the data ask for it"; they do): the
bare-probe data alone (HVLs, slopes) are met by a soft tip spectrum, but through solid PEI
spheres that spectrum puts the surface rates off by +15 % (1.5 cm) to -7 % (5 cm) as chamber
readings; with the tip spectrum alone the best compromise missed the HVL in air by +42 %. The
surface rates ask for a beam harder inside the applicator than at the bare tip, which one
filtration between the tip and the PEI gives (a PEI density scaled to 0.8, tried first, did not).

The Monte Carlo is linear in the spectrum, so it runs once per 0.5 keV bin of the spectrum
grid (a response matrix per geometry: the 8 applicators in water, the bare probe in water);
any spectrum's dose is then a weighted sum, and every grid point of the scan is exact to the
statistics of the responses. The responses are cached (``--cache``) and loaded back.

Run ``python -m openiort.dose.mc.commissioning_fit`` to write the fit
(data/xray50_commissioning_fit.yaml) and every evaluation of the scan
(data/xray50_commissioning_fit_scan.csv).
"""

from __future__ import annotations

import argparse
import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from openiort import __version__
from openiort.datafiles import package_dir, read_data, record_file
from openiort.devices.xray import XraySource, load_example_source
from openiort.devices.xray_chamber import chamber_geometry, volume_average
from openiort.dose.mc.commissioning import (
    EQUATOR_BAND_COS,
    SHAFT_AXIS,
    depth_shell_edges_mm,
    half_value_layer_mm_al,
)
from openiort.dose.mc.physics import mass_attenuation_cm2_g, resolve_material
from openiort.dose.mc.second_check_model import fit_targit_model
from openiort.dose.mc.sources import PointSource
from openiort.dose.mc.spectrum import load_spectrum, source_model, spekpy_spectrum
from openiort.dose.mc.sphere import SPHERE_RADIUS_MM, shell_dose
from openiort.dose.mc.xray_source import (
    applicator,
    applicator_diameters_cm,
    applicator_filtration,
    shadow_half_angle_deg,
)
from openiort.errors import OpenIortInputError

FloatArray = NDArray[np.float64]
TARGETS_FILE = "data/xray50_commissioning_targets.yaml"
FIT_FILE = "data/xray50_commissioning_fit.yaml"
SCAN_FILE = "data/xray50_commissioning_fit_scan.csv"
#: depths below the applicator surface: fine near the surface (the chamber's 0.9 mm), then to
#: 22 mm for the TARGIT ratios at 20 mm (the shifted chamber reads about 1 mm deeper)
APPLICATOR_DEPTHS_MM = np.round(
    np.concatenate([np.arange(0.0, 1.6001, 0.2), np.arange(2.0, 22.0001, 0.5)]), 3
)
SURFACE_FIT_DEPTHS = 9  # the first 9 depths (0-1.6 mm): cubic in log dose for the chamber
SLOPE_DISTANCES_MM = (5.0, 10.0, 20.0, 30.0)
SLOPE_OFFSETS_MM = (-1.0, -0.5, 0.0, 0.5, 1.0)
REFERENCE_CM = 3.0
SEED = 20261207
COARSE_THICKNESS_UM = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
COARSE_AL_MM = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35)
COARSE_APPLICATOR_AL_MM = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35)
FINE_STEP_UM = 0.25
FINE_STEP_AL_MM = 0.01
MAX_REFINEMENTS = 4
#: the source model before issue 15 (gold 1 um ASSUMPTION, 0.25 mm Al fitted to point doses)
BEFORE_FIT = (1.0, 0.25, 0.0)
#: the first joint fit, with the tip spectrum's two parameters only (it missed three figures)
TWO_PARAMETER_FIT = (3.0, 0.13, 0.0)
PARAMETER_NAMES = ("target_thickness_um", "al_mm", "applicator_al_mm")


class FitError(OpenIortInputError):
    """Fit inputs or cached responses that cannot be used."""


@cache
def targets() -> dict[str, Any]:
    data: dict[str, Any] = read_data("openiort.dose.mc", TARGETS_FILE).yaml()
    return data


def slope_targets() -> tuple[FloatArray, FloatArray]:
    """Shaikh et al.'s distances (mm) and dose-rate changes per 0.1 mm (%), as the package holds them."""
    data = read_data("openiort.devices", "data/xray50_depth_dose_uncertainty.yaml").yaml()
    pos = data["positioning"]
    return (
        np.asarray(pos["distance_from_source_mm"], dtype=np.float64),
        np.asarray(pos["pct_per_0_1_mm"], dtype=np.float64),
    )


# ------------------------------------------------------------------- response matrices


def bare_radii_mm() -> FloatArray:
    return np.asarray([r + o for r in SLOPE_DISTANCES_MM for o in SLOPE_OFFSETS_MM])


@dataclass
class Responses:
    """Dose to water per photon of each 0.5 keV bin (rows) at each scoring point (columns)."""

    edges_kev: FloatArray
    applicator: dict[float, FloatArray]
    applicator_unc: dict[float, FloatArray]  # absolute standard uncertainty, same shape
    bare: FloatArray
    bare_unc: FloatArray
    histories_per_bin: int
    seed: int

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {"edges_kev": self.edges_kev, "bare": self.bare}
        arrays["bare_unc"] = self.bare_unc
        arrays["meta"] = np.array([self.histories_per_bin, self.seed])
        for d in self.applicator:
            arrays[f"app_{d:.1f}"] = self.applicator[d]
            arrays[f"unc_{d:.1f}"] = self.applicator_unc[d]
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> Responses:
        with np.load(path) as z:
            apps = {float(k[4:]): z[k] for k in z.files if k.startswith("app_")}
            uncs = {float(k[4:]): z[k] for k in z.files if k.startswith("unc_")}
            meta = z["meta"]
            return cls(
                z["edges_kev"], apps, uncs, z["bare"], z["bare_unc"], int(meta[0]), int(meta[1])
            )


def _bin_source(lo: float, hi: float) -> PointSource:
    return PointSource(
        (lo, hi),
        (1.0,),
        f"bin {lo:g}-{hi:g} keV",
        shadow_axis=SHAFT_AXIS,
        shadow_half_angle_deg=shadow_half_angle_deg(),
    )


def compute_responses(
    histories_per_bin: int, seed: int = SEED, *, bare_factor: int = 2, workers: int | None = 1
) -> Responses:
    """Run every bin of the stored spectrum's grid through every geometry (probe shadow, dose
    to water in the plane perpendicular to the shaft, as the commissioning scores it)."""
    edges, _, _ = load_spectrum()
    n_bins = edges.size - 1
    apps: dict[float, FloatArray] = {}
    uncs: dict[float, FloatArray] = {}
    for g, d in enumerate(applicator_diameters_cm()):
        app = applicator(d)
        shells = depth_shell_edges_mm(app.radius_mm, APPLICATOR_DEPTHS_MM)
        dose = np.zeros((n_bins, APPLICATOR_DEPTHS_MM.size))
        unc = np.zeros_like(dose)
        for b in range(n_bins):
            r = shell_dose(
                _bin_source(float(edges[b]), float(edges[b + 1])),
                [(app.radius_mm, app.material), (SPHERE_RADIUS_MM, "water")],
                shells,
                histories_per_bin,
                seed + 1000 * g + b,
                response="water",
                workers=workers,
                equatorial_band_cos=EQUATOR_BAND_COS,
            )
            dose[b] = r.dose_gy_per_photon[::2]
            unc[b] = np.nan_to_num(r.rel_unc[::2]) * dose[b]
        apps[d], uncs[d] = dose, unc
    radii = bare_radii_mm()
    shells = np.ravel(np.column_stack([radii - 0.05, radii + 0.05]))
    bare = np.zeros((n_bins, radii.size))
    bare_unc = np.zeros_like(bare)
    for b in range(n_bins):
        r = shell_dose(
            _bin_source(float(edges[b]), float(edges[b + 1])),
            [(SPHERE_RADIUS_MM, "water")],
            shells,
            bare_factor * histories_per_bin,
            seed + 90_000 + b,
            response="water",
            workers=workers,
            equatorial_band_cos=EQUATOR_BAND_COS,
        )
        bare[b] = r.dose_gy_per_photon[::2]
        bare_unc[b] = np.nan_to_num(r.rel_unc[::2]) * bare[b]
    return Responses(edges, apps, uncs, bare, bare_unc, histories_per_bin, seed)


# ---------------------------------------------------------------------------- the model


def spectrum_probabilities(
    target_thickness_um: float, al_mm: float, edges_kev: FloatArray
) -> FloatArray:
    """SpekPy spectrum of the source model with these two parameters, on the responses' grid."""
    m = copy.deepcopy(source_model())
    s = m["spectrum"]
    s["target_thickness_um"] = float(target_thickness_um)
    al = [f for f in s["filters"] if f["material"] == "Al"]
    if len(al) != 1:
        raise FitError("the source model needs exactly one Al filter")
    al[0]["thickness_mm"] = float(al_mm)
    edges, probs = spekpy_spectrum(m)
    if edges.shape != edges_kev.shape or not np.allclose(edges, edges_kev):
        raise FitError("the spectrum grid differs from the responses' grid; recompute them")
    return probs


def _hvl_after(probs: FloatArray, edges: FloatArray, material: Any, thickness_mm: float) -> float:
    e = 0.5 * (edges[1:] + edges[:-1])
    if thickness_mm <= 0:
        return half_value_layer_mm_al(e, probs)
    rho = resolve_material(material).density_g_cm3
    mu = mass_attenuation_cm2_g(material, e) * rho * thickness_mm / 10.0
    return half_value_layer_mm_al(e, probs * np.exp(-mu))


@dataclass(frozen=True)
class Datum:
    """One published figure against the model: residual and sigma in % of the published value."""

    group: str
    label: str
    published: float
    model: float
    residual_pct: float
    sigma_pct: float
    stat_unc_pct: float
    one_sided: bool = False

    @property
    def chi(self) -> float:
        r = min(self.residual_pct, 0.0) if self.one_sided else self.residual_pct
        return r / math.hypot(self.sigma_pct, self.stat_unc_pct)


@dataclass
class Evaluation:
    target_thickness_um: float
    al_mm: float
    applicator_al_mm: float
    data: list[Datum]
    surface_reading_per_photon: dict[float, float]
    surface_reading_rel_unc: dict[float, float]
    surface_point_residual_pct: dict[float, float]
    targit_shift_mm: float
    targit_factor: float
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def chi2(self) -> float:
        return float(sum(x.chi**2 for x in self.data))

    def group_chi2(self, group: str) -> float:
        return float(sum(x.chi**2 for x in self.data if x.group == group))

    def group(self, group: str) -> list[Datum]:
        return [x for x in self.data if x.group == group]

    @property
    def parameters(self) -> tuple[float, float, float]:
        return (self.target_thickness_um, self.al_mm, self.applicator_al_mm)

    @property
    def feasible(self) -> bool:
        """Every published bound met (a bound is an inequality, not a measurement to trade)."""
        return all(x.residual_pct >= 0.0 for x in self.data if x.one_sided)


def _centred_pct(values: dict[float, float], rates: dict[float, float]) -> dict[float, float]:
    logs = {d: math.log(values[d] / rates[d]) for d in values}
    mean = float(np.mean(list(logs.values())))
    return {d: 100.0 * math.expm1(v - mean) for d, v in logs.items()}


def chamber_reading(depth_mm: FloatArray, dose: FloatArray, radius_mm: float) -> float:
    """The V4.0 chamber's surface reading of a depth-dose (cubic in log dose near the surface)."""
    n = SURFACE_FIT_DEPTHS
    coef = np.polyfit(depth_mm[:n], np.log(dose[:n]), 3)

    def dose_at(z: FloatArray) -> FloatArray:
        return np.asarray(np.exp(np.polyval(coef, z)))

    geo = chamber_geometry()
    return volume_average(
        dose_at, radius_mm, float(geo["sensitive_radius_mm"]), float(geo["plate_separation_mm"])
    )


def _local_slope(radii: FloatArray, dose: FloatArray, unc: FloatArray) -> tuple[float, float]:
    """100 (1 - D(r + 0.1) / D(r)) at the middle radius, from a quadratic in (ln r, ln D); with
    its statistical uncertainty (points taken as independent, which overstates it)."""
    r0 = float(radii[len(radii) // 2])
    x = np.log(radii)
    design = np.column_stack([np.ones_like(x), x, x**2])
    pinv = np.linalg.pinv(design)
    x0, x1 = math.log(r0), math.log(r0 + 0.1)
    c = (np.array([1.0, x1, x1**2]) - np.array([1.0, x0, x0**2])) @ pinv
    delta = float(c @ np.log(dose))
    slope = 100.0 * (1.0 - math.exp(delta))
    sd = float(np.sqrt(np.sum((c * unc / dose) ** 2)))
    return slope, 100.0 * math.exp(delta) * sd


def evaluate(
    responses: Responses,
    target_thickness_um: float,
    al_mm: float,
    applicator_al_mm: float,
    probs: FloatArray | None = None,
    source: XraySource | None = None,
) -> Evaluation:
    """Every datum of the joint fit for one parameter set (``probs``: the tip spectrum of the
    first two, when the caller has it already)."""
    t = targets()
    src = source or load_example_source()
    edges = responses.edges_kev
    p = probs if probs is not None else spectrum_probabilities(target_thickness_um, al_mm, edges)
    # per photon entering the PEI, as xray_source.applicator_spectrum makes it
    through = applicator_filtration().through(edges, p, applicator_al_mm)
    p_app = through / through.sum()
    data: list[Datum] = []
    # surface rates as chamber readings, and the relative depth-doses for the TARGIT shape
    readings, reading_unc, points, relative = {}, {}, {}, {}
    for d, resp in responses.applicator.items():
        dose = p_app @ resp
        unc = np.sqrt((p_app**2) @ responses.applicator_unc[d] ** 2)
        readings[d] = chamber_reading(APPLICATOR_DEPTHS_MM, dose, d * 5.0)
        reading_unc[d] = float(unc[0] / dose[0])
        points[d] = float(dose[0])
        relative[d] = dose / dose[0]
    rates = {d: src.applicator(d).surface_rate_v40_gy_min for d in readings}
    ref = rates[REFERENCE_CM]
    mean_unc = float(np.sqrt(np.mean(np.square(list(reading_unc.values())))))
    for d, res in _centred_pct(readings, rates).items():
        stat = 100.0 * math.hypot(reading_unc[d], mean_unc / math.sqrt(len(readings)))
        data.append(
            Datum(
                "surface_rate",
                f"{d:.1f} cm",
                rates[d] / ref,
                rates[d] / ref * (1 + res / 100.0),
                res,
                float(t["surface_rates"]["sigma_pct"]),
                stat,
            )
        )
    # HVLs
    h = t["hvl"]
    air = _hvl_after(p, edges, "water", 0.0)
    plastic_spec = dict(h["after_plastic"]["plastic"])
    plastic = _hvl_after(p, edges, plastic_spec, float(h["after_plastic"]["plastic_thickness_mm"]))
    water20 = _hvl_after(p, edges, "water", float(h["after_water"]["water_thickness_mm"]))
    water10 = _hvl_after(p, edges, "water", float(h["after_plastic"]["plastic_thickness_mm"]))
    for label, published, model, sigma, one_sided in (
        ("in air", h["in_air"]["value_mm_al"], air, h["in_air"]["sigma_mm_al"], False),
        (
            "after 10 mm plastic",
            h["after_plastic"]["value_mm_al"],
            plastic,
            h["after_plastic"]["sigma_mm_al"],
            False,
        ),
        (
            "after 20 mm water (lower bound)",
            h["after_water"]["lower_bound_mm_al"],
            water20,
            h["after_water"]["sigma_mm_al"],
            True,
        ),
    ):
        pub = float(published)
        data.append(
            Datum(
                "hvl",
                label,
                pub,
                model,
                100.0 * (model / pub - 1.0),
                100.0 * float(sigma) / pub,
                0.0,
                one_sided,
            )
        )
    # bare-probe local slopes
    ls = t["local_slopes"]
    distances, published_slopes = slope_targets()
    bare = p @ responses.bare
    bare_unc = np.sqrt((p**2) @ responses.bare_unc**2)
    radii = bare_radii_mm()
    k = len(SLOPE_OFFSETS_MM)
    for i, (r, pub) in enumerate(zip(distances, published_slopes, strict=True)):
        if float(r) != SLOPE_DISTANCES_MM[i]:
            raise FitError("the slope distances differ from the published ones")
        sl = slice(i * k, (i + 1) * k)
        model, stat = _local_slope(radii[sl], bare[sl], bare_unc[sl])
        sigma = math.hypot(
            100.0 * float(ls["printed_resolution_pp"]) / float(pub),
            float(ls["definition_fraction_of_slope_pct"]) * float(pub),
        )
        data.append(
            Datum(
                "local_slope",
                f"{float(r):g} mm",
                float(pub),
                model,
                100.0 * (model / float(pub) - 1.0),
                sigma,
                100.0 * stat / float(pub),
            )
        )
    # the 24 V4.0/TARGIT ratios through the shifted-chamber model
    shift, factor, ratio_rows = fit_targit_model(relative, APPLICATOR_DEPTHS_MM)
    for row in ratio_rows:
        data.append(
            Datum(
                "targit_ratio",
                f"{row['applicator_diameter_cm']:.1f} cm at {row['depth_mm']:g} mm",
                float(row["published"]),
                float(row["model"]),
                float(row["residual_pct"]),
                float(t["targit_ratios"]["sigma_pct"]),
                0.0,
            )
        )
    e = 0.5 * (edges[1:] + edges[:-1])
    return Evaluation(
        target_thickness_um=float(target_thickness_um),
        al_mm=float(al_mm),
        applicator_al_mm=float(applicator_al_mm),
        data=data,
        surface_reading_per_photon=readings,
        surface_reading_rel_unc=reading_unc,
        surface_point_residual_pct=_centred_pct(points, rates),
        targit_shift_mm=shift,
        targit_factor=factor,
        extra={
            "hvl_after_10mm_water_mm_al": water10,
            "mean_energy_kev": float((e * p).sum()),
        },
    )


# ------------------------------------------------------------------------------ the scan

SCAN_COLUMNS = (
    "stage",
    "target_thickness_um",
    "al_mm",
    "applicator_al_mm",
    "chi2",
    "chi2_surface",
    "chi2_hvl",
    "chi2_slope",
    "chi2_ratio",
    "surface_rms_pct",
    "surface_worst_pct",
    "hvl_air_mm_al",
    "hvl_plastic_mm_al",
    "hvl_water20_mm_al",
    "slope_5mm_pct",
    "slope_10mm_pct",
    "slope_20mm_pct",
    "slope_30mm_pct",
    "ratio_rms_pct",
)


def scan_row(stage: str, ev: Evaluation) -> dict[str, float | str]:
    surf = [x.residual_pct for x in ev.group("surface_rate")]
    hv = ev.group("hvl")
    sl = ev.group("local_slope")
    rat = [x.residual_pct for x in ev.group("targit_ratio")]
    return {
        "stage": stage,
        "target_thickness_um": ev.target_thickness_um,
        "al_mm": ev.al_mm,
        "applicator_al_mm": ev.applicator_al_mm,
        "chi2": ev.chi2,
        "chi2_surface": ev.group_chi2("surface_rate"),
        "chi2_hvl": ev.group_chi2("hvl"),
        "chi2_slope": ev.group_chi2("local_slope"),
        "chi2_ratio": ev.group_chi2("targit_ratio"),
        "surface_rms_pct": float(np.sqrt(np.mean(np.square(surf)))),
        "surface_worst_pct": float(max(surf, key=abs)),
        "hvl_air_mm_al": hv[0].model,
        "hvl_plastic_mm_al": hv[1].model,
        "hvl_water20_mm_al": hv[2].model,
        "slope_5mm_pct": sl[0].model,
        "slope_10mm_pct": sl[1].model,
        "slope_20mm_pct": sl[2].model,
        "slope_30mm_pct": sl[3].model,
        "ratio_rms_pct": float(np.sqrt(np.mean(np.square(rat)))),
    }


def _profile_interval(
    values: FloatArray, chi2: FloatArray, threshold: float
) -> tuple[float, float]:
    """Where the profile chi2 (minimum over the other parameters) stays below ``threshold``,
    interpolated linearly between grid points (clipped to the grid)."""
    order = np.argsort(values)
    v, c = values[order], chi2[order]
    inside = np.flatnonzero(c <= threshold)
    i0, i1 = int(inside[0]), int(inside[-1])
    lo = (
        v[i0]
        if i0 == 0
        else v[i0 - 1] + (threshold - c[i0 - 1]) / (c[i0] - c[i0 - 1]) * (v[i0] - v[i0 - 1])
    )
    hi = (
        v[i1]
        if i1 == v.size - 1
        else v[i1] + (threshold - c[i1]) / (c[i1 + 1] - c[i1]) * (v[i1 + 1] - v[i1])
    )
    return float(lo), float(hi)


def _fine_axis(centre: float, half_width: float, step: float) -> FloatArray:
    axis = np.round(centre + np.arange(-half_width, half_width + 1e-9, step), 4)
    return axis[axis >= 0.0]


def run_scan(
    responses: Responses, log: Callable[[str], None] | None = None
) -> tuple[list[Evaluation], Evaluation, dict[str, Any]]:
    """Coarse grid, then a finer grid about the minimum, moved until the minimum lies inside
    it; every evaluation returned. SpekPy runs once per (target, tip Al) pair: the applicator
    filtration is applied to its spectrum analytically."""
    evaluations: list[tuple[str, Evaluation]] = []
    done: dict[tuple[float, float, float], Evaluation] = {}
    tip_spectra: dict[tuple[float, float], FloatArray] = {}

    def run(stage: str, params: tuple[float, float, float]) -> Evaluation:
        key = (round(params[0], 4), round(params[1], 4), round(params[2], 4))
        if key in done:
            return done[key]
        if key[:2] not in tip_spectra:
            tip_spectra[key[:2]] = spectrum_probabilities(key[0], key[1], responses.edges_kev)
        ev = evaluate(responses, *key, probs=tip_spectra[key[:2]])
        evaluations.append((stage, ev))
        done[key] = ev
        if log:
            log(f"{stage} {key[0]:5.2f} um {key[1]:5.3f} mm Al {key[2]:5.3f} mm Al: {ev.chi2:8.1f}")
        return ev

    for thick in COARSE_THICKNESS_UM:
        for al in COARSE_AL_MM:
            for app_al in COARSE_APPLICATOR_AL_MM:
                run("coarse", (thick, al, app_al))

    def lowest(candidates: list[Evaluation]) -> Evaluation:
        feasible = [ev for ev in candidates if ev.feasible] or candidates
        return min(feasible, key=lambda ev: ev.chi2)

    best = lowest(list(done.values()))
    box: list[FloatArray] = []
    for _ in range(MAX_REFINEMENTS):
        box = [
            _fine_axis(best.target_thickness_um, 0.75, FINE_STEP_UM),
            _fine_axis(best.al_mm, 0.04, FINE_STEP_AL_MM),
            _fine_axis(best.applicator_al_mm, 0.04, FINE_STEP_AL_MM),
        ]
        box[0] = box[0][box[0] >= FINE_STEP_UM]
        fine = [run("fine", (t, a, f)) for t in box[0] for a in box[1] for f in box[2]]
        new_best = lowest(fine)
        # at a grid edge (other than a physical zero) the minimum may lie beyond: move the box
        edge = any(
            value in (axis[0], axis[-1]) and value > 0.0
            for value, axis in zip(new_best.parameters, box, strict=True)
        )
        best = new_best
        if not edge:
            break
    # profile intervals over the last box's points that meet the bounds: for each value of one
    # parameter, the minimum chi2 over the other two; the interval is where that stays below
    # chi2_min + scale
    in_box = [
        ev
        for ev in done.values()
        if ev.feasible
        and all(
            np.any(np.isclose(axis, value)) for value, axis in zip(ev.parameters, box, strict=True)
        )
    ]
    n_data = len(best.data)
    dof = n_data - 3 - 1 - 2  # three parameters, the surface scale, the TARGIT shift and factor
    scale = max(1.0, best.chi2 / dof)
    threshold = best.chi2 + scale
    chi = np.array([ev.chi2 for ev in in_box])
    intervals = {}
    for k, name in enumerate(PARAMETER_NAMES):
        values = np.array([ev.parameters[k] for ev in in_box])
        profile = {float(v): float(chi[values == v].min()) for v in np.unique(values)}
        intervals[name] = _profile_interval(
            np.array(list(profile)), np.array(list(profile.values())), threshold
        )
    unconstrained = min(done.values(), key=lambda ev: ev.chi2)
    summary = {
        "unconstrained_minimum": {
            **dict(zip(PARAMETER_NAMES, unconstrained.parameters, strict=True)),
            "chi2": round(unconstrained.chi2, 2),
            "bounds_met": unconstrained.feasible,
        },
        "n_data": n_data,
        "dof": dof,
        "chi2_min": round(best.chi2, 2),
        "chi2_scale": round(scale, 3),
        "intervals": {name: [round(x, 4) for x in iv] for name, iv in intervals.items()},
        "at_zero_bound": [
            n for n, v in zip(PARAMETER_NAMES, best.parameters, strict=True) if v == 0
        ],
    }
    return (
        [ev for _, ev in evaluations],
        best,
        {"summary": summary, "stages": [s for s, _ in evaluations]},
    )


# ------------------------------------------------------------------------------ writing


def acceptance(ev: Evaluation) -> dict[str, dict[str, Any]]:
    """The issue's "Done when" thresholds for item 1, each with the value that decides it."""
    surf = [x.residual_pct for x in ev.group("surface_rate")]
    hv = {x.label: x for x in ev.group("hvl")}
    slopes = {x.label: x for x in ev.group("local_slope")}
    rat = [x.residual_pct for x in ev.group("targit_ratio")]
    rms = float(np.sqrt(np.mean(np.square(surf))))
    worst = float(max(surf, key=abs))
    out: dict[str, dict[str, Any]] = {
        "surface_rates_each_within_3pct": {"value_pct": round(worst, 2), "met": abs(worst) <= 3.0},
        "surface_rates_rms_within_2pct": {"value_pct": round(rms, 2), "met": rms <= 2.0},
        "hvl_in_air_within_20pct": {
            "value_pct": round(hv["in air"].residual_pct, 1),
            "met": abs(hv["in air"].residual_pct) <= 20.0,
        },
        "hvl_after_plastic_within_20pct": {
            "value_pct": round(hv["after 10 mm plastic"].residual_pct, 1),
            "met": abs(hv["after 10 mm plastic"].residual_pct) <= 20.0,
        },
        "hvl_after_20mm_water_above_1_3mm": {
            "value_mm_al": round(hv["after 20 mm water (lower bound)"].model, 3),
            "met": hv["after 20 mm water (lower bound)"].model > 1.3,
        },
    }
    for r in targets()["local_slopes"]["acceptance_distances_mm"]:
        x = slopes[f"{float(r):g} mm"]
        out[f"local_slope_{float(r):g}mm_within_5pct"] = {
            "value_pct": round(x.residual_pct, 1),
            "met": abs(x.residual_pct) <= 5.0,
        }
    ratio_rms = float(np.sqrt(np.mean(np.square(rat))))
    out["targit_ratios_rms_under_1pct"] = {"value_pct": round(ratio_rms, 2), "met": ratio_rms < 1.0}
    return out


def _r(x: float, n: int = 4) -> float:
    return float(round(float(x), n))


def fit_text(
    before: Evaluation,
    after: Evaluation,
    info: dict[str, Any],
    responses: Responses,
    two_parameter: Evaluation,
) -> str:
    s = info["summary"]
    rows = []
    for b, a in zip(before.data, after.data, strict=True):
        assert (b.group, b.label) == (a.group, a.label)
        rows.append(
            {
                "group": a.group,
                "datum": a.label,
                "published": _r(a.published),
                "model_before": _r(b.model),
                "model_after": _r(a.model),
                "residual_before_pct": _r(b.residual_pct, 2),
                "residual_after_pct": _r(a.residual_pct, 2),
                "sigma_pct": _r(a.sigma_pct, 2),
                "stat_unc_after_pct": _r(a.stat_unc_pct, 2),
                "chi_after": _r(a.chi, 2),
                **({"one_sided": True} if a.one_sided else {}),
            }
        )
    doc = {
        "what": "joint fit of the 50 kV source model's target thickness, tip Al filtration and "
        "applicator filtration with the V4.0 chamber in the model (issue 15, item 1)",
        "generated": f"{date.today().isoformat()} by openiort {__version__} "
        "(python -m openiort.dose.mc.commissioning_fit)",
        "targets": "data/xray50_commissioning_targets.yaml (sources and sigmas), TG-292 Table IV "
        "(devices/data/xray50_tg292_example_source.csv), Shaikh et al. JACMP 2020 "
        "(devices/data/xray50_depth_dose_uncertainty.yaml)",
        "method": "Monte Carlo response per 0.5 keV bin (probe shadow, dose to water perpendicular "
        "to the shaft; 8 applicators in water and the bare probe in water), SpekPy tip spectrum "
        "per (target, tip Al) pair, the applicator filtration applied to it as narrow-beam "
        "attenuation; coarse grid then a finer grid (every evaluation in "
        "data/xray50_commissioning_fit_scan.csv)",
        "statistics": {
            "histories_per_bin_applicators": responses.histories_per_bin,
            "histories_per_bin_bare_probe": 2 * responses.histories_per_bin,
            "seed": responses.seed,
        },
        "parameters": {
            **{
                name: {
                    "before": before.parameters[k],
                    "two_parameter_fit": two_parameter.parameters[k],
                    "fitted": after.parameters[k],
                    "interval": s["intervals"][name],
                }
                for k, name in enumerate(PARAMETER_NAMES)
            },
            "at_zero_bound": s["at_zero_bound"],
            "minimum_without_the_bounds": s["unconstrained_minimum"],
            "bounds": "the one-sided data (HVL after 20 mm water above 1.3 mm Al) are published "
            "inequalities: the fitted point is the lowest chi2 among the points that meet them",
            "interval_means": "profile chi2 <= chi2_min + chi2_scale (chi2_scale = max(1, "
            "chi2_min / dof)), on the last fine grid (clipped to it)",
        },
        "chi2": {
            "before": _r(before.chi2, 2),
            "after": s["chi2_min"],
            "dof": s["dof"],
            "chi2_scale": s["chi2_scale"],
            "by_group_after": {
                g: _r(after.group_chi2(g), 2)
                for g in ("surface_rate", "hvl", "local_slope", "targit_ratio")
            },
            "by_group_before": {
                g: _r(before.group_chi2(g), 2)
                for g in ("surface_rate", "hvl", "local_slope", "targit_ratio")
            },
        },
        "acceptance_before": acceptance(before),
        "acceptance_two_parameter_fit": acceptance(two_parameter),
        "chi2_two_parameter_fit": _r(two_parameter.chi2, 2),
        "acceptance_after": acceptance(after),
        "targit_model_after": {"shift_mm": after.targit_shift_mm, "factor": after.targit_factor},
        "beam_after": {k: _r(v) for k, v in after.extra.items()},
        "beam_before": {k: _r(v) for k, v in before.extra.items()},
        "surface_point_dose_residual_pct": {
            "before": {f"{d:.1f}": _r(v, 2) for d, v in before.surface_point_residual_pct.items()},
            "after": {f"{d:.1f}": _r(v, 2) for d, v in after.surface_point_residual_pct.items()},
        },
        "mc_check": {
            "what": "chamber reading at the surface per photon entering the PEI (Gy) of the "
            "fitted model, with its relative statistical uncertainty, for a direct Monte Carlo "
            "check",
            "reading_gy_per_photon": {
                f"{d:.1f}": float(f"{v:.6e}") for d, v in after.surface_reading_per_photon.items()
            },
            "rel_unc": {f"{d:.1f}": _r(v, 5) for d, v in after.surface_reading_rel_unc.items()},
        },
        "residuals": rows,
    }
    head = (
        "# Joint commissioning fit of the 50 kV source model (openiort.dose.mc.commissioning_fit).\n"
        "# Residuals in % of the published value; sigma_pct is the weight (sources and reasons in\n"
        "# data/xray50_commissioning_targets.yaml); chi = residual / hypot(sigma, statistics).\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False, width=100)


def scan_text(evaluations: list[Evaluation], stages: list[str]) -> str:
    lines = [
        "# Every evaluation of the joint fit's scan (openiort.dose.mc.commissioning_fit): SpekPy target",
        "# thickness, tip Al and applicator Al filtration, chi2 in total and per group, and the figures",
        "# that decide the fit.",
        f"# Generated {date.today().isoformat()} by openiort {__version__}.",
        ",".join(SCAN_COLUMNS),
    ]
    for stage, ev in zip(stages, evaluations, strict=True):
        row = scan_row(stage, ev)
        lines.append(
            ",".join(
                str(row[c]) if isinstance(row[c], str) else f"{float(row[c]):.5g}"
                for c in SCAN_COLUMNS
            )
        )
    return "\n".join(lines) + "\n"


@cache
def load_fit() -> dict[str, Any]:
    """The shipped fit (data/xray50_commissioning_fit.yaml)."""
    data: dict[str, Any] = read_data("openiort.dose.mc", FIT_FILE).yaml()
    return data


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - a generator run by hand
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache", type=Path, default=None, help="responses .npz (read, or written)"
    )
    parser.add_argument("--histories-per-bin", type=int, default=400_000)
    args = parser.parse_args(argv)
    if args.cache is not None and args.cache.exists():
        responses = Responses.load(args.cache)
    else:
        responses = compute_responses(args.histories_per_bin)
        if args.cache is not None:
            responses.save(args.cache)
    before = evaluate(responses, *BEFORE_FIT)
    two_parameter = evaluate(responses, *TWO_PARAMETER_FIT)
    evaluations, best, info = run_scan(responses, log=print)
    folder = package_dir("openiort.dose.mc")
    for name, text in (
        (FIT_FILE, fit_text(before, best, info, responses, two_parameter)),
        (SCAN_FILE, scan_text(evaluations, info["stages"])),
    ):
        path = folder / name
        path.write_text(text, encoding="utf-8")
        record_file(path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
