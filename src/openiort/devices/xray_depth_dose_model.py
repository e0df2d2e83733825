"""Provisional analytic depth-dose model for 50 kV spherical applicators in water.

Used only until the Monte Carlo commissioning table (``iort commission``) exists. The model:
a Kramers thick-target 50 kV spectrum, filtered by the beryllium buffer and by the solid
polyetherimide sphere between the probe tip and the applicator surface (xraydb attenuation),
then carried into water with inverse-square geometry and the energy-absorption attenuation
coefficient (straight-ahead approximation). Dose to water is fluence x E x mu_en/rho (NIST
SRD 126 for water). Every parameter lives in data/xray50_provisional_model.yaml with its source
or the word ASSUMPTION.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np
import xraydb
import yaml
from numpy.typing import NDArray

from openiort.anatomy.materials import get_material, read_commented_csv

_PEI_FORMULA = "C37H24N2O6"


def model_parameters() -> dict[str, Any]:
    text = resources.files("openiort.devices").joinpath("data/xray50_provisional_model.yaml")
    params: dict[str, Any] = yaml.safe_load(text.read_text("utf-8"))
    return params


def _water_muen_cm2_g(energy_kev: NDArray[np.float64]) -> NDArray[np.float64]:
    text = resources.files("openiort.devices").joinpath("data/nist_water_muen.csv")
    rows = read_commented_csv(text.read_text("utf-8"))
    e = np.array([float(r["energy_kev"]) for r in rows])
    muen = np.array([float(r["muen_over_rho_cm2_g"]) for r in rows])
    # log-log interpolation is the standard for smooth photon coefficients between edges
    return np.exp(np.interp(np.log(energy_kev), np.log(e), np.log(muen)))


def relative_depth_dose(
    applicator_diameter_cm: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Depth (mm from the applicator surface) and dose to water relative to the surface."""
    p = model_parameters()
    energy_kev = np.arange(10.0, float(p["tube_voltage_kv"]), float(p["energy_step_kev"]))
    energy_ev = energy_kev * 1000.0
    fluence = (p["tube_voltage_kv"] - energy_kev) / energy_kev
    fluence *= np.exp(
        -xraydb.material_mu("Be", energy_ev, density=1.848) * p["beryllium_filter_mm"] / 10
    )
    radius_mm = applicator_diameter_cm * 5.0
    wall_cm = (radius_mm - p["probe_radius_mm"]) / 10.0
    density = get_material(p["applicator_material"]).density_g_cm3
    fluence *= np.exp(-xraydb.material_mu(_PEI_FORMULA, energy_ev, density=density) * wall_cm)
    muen = _water_muen_cm2_g(energy_kev)
    depth_mm = np.arange(0.0, p["max_depth_mm"] + 1e-9, p["depth_step_mm"])
    attenuation = np.exp(-np.outer(depth_mm / 10.0, muen * 1.0))  # water density 1 g/cm3
    dose = (attenuation * fluence * energy_kev * muen).sum(axis=1) / (radius_mm + depth_mm) ** 2
    return depth_mm, dose / dose[0]


def write_table(
    path: str, diameters_cm: tuple[float, ...] = (1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0)
) -> None:
    """Write the provisional table in the format that :mod:`openiort.devices.xray` reads."""
    lines = [
        "# Relative depth-dose in water for 50 kV spherical applicators, 1.0 at the applicator",
        "# surface; depth measured radially from the surface, perpendicular to the probe shaft.",
        "# origin: provisional analytic model (openiort.devices.xray_depth_dose_model; Kramers",
        "#   spectrum, Be + PEI filtration with xraydb, mu_en straight-ahead attenuation in water).",
        "#   Replace with the Monte Carlo commissioning table (`iort commission`).",
        "applicator_diameter_cm,depth_mm,relative_dose_water",
    ]
    for d in diameters_cm:
        depth, rel = relative_depth_dose(d)
        lines += [f"{d:.1f},{z:.1f},{r:.6f}" for z, r in zip(depth, rel, strict=True)]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
