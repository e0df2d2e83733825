"""A flexible tungsten-loaded shield behind the tissue of a 50 kV spherical applicator.

Model (an approximation, stated in every result): the shield is a spherical shell of the
case's thickness whose front face lies at the shield's depth below the applicator surface, in
water, around the source model in its PEI applicator (:mod:`openiort.dose.mc.xray_source`,
isotropic emission). The Monte Carlo gives, against the same geometry without the shield:

- the **transmission**: dose to water in the 0.5 mm behind the shield / the dose there without
  it (primary and scatter that pass it, fluorescence included);
- the **change in front**: dose to water in the 0.5 mm in front of the shield / without it.
  Photons only: electrons are absorbed where they are set in motion, so the dose increase from
  electrons backscattered by tungsten (tens of micrometres in front of it) is not modelled; a
  whole shell also returns more scatter than a sheet that covers part of the field.

The table engine's dose behind the shield is the water depth-dose at the depth behind it times
this transmission.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np

from openiort.datafiles import read_data
from openiort.dose.mc.sphere import SPHERE_RADIUS_MM, shell_dose
from openiort.dose.mc.xray_source import applicator, xray50_source
from openiort.errors import OpenIortInputError

SHIELDS_FILE = "data/xray50_shields.yaml"
SCORE_MM = 0.5  # the layer in front of and behind the shield that is scored
# kept clear of the interfaces (no electron transport: the interface dose is not resolved)
GAP_MM = 0.05
ATOMIC_MASS = {"C": 12.011, "H": 1.008, "O": 15.999, "Si": 28.086}  # IUPAC 2021 standard weights
DEFAULT_HISTORIES = 200_000


class ShieldError(OpenIortInputError):
    """A shield the model cannot place or does not know."""


@cache
def shield_materials() -> dict[str, Any]:
    data: dict[str, Any] = read_data("openiort.dose.mc", SHIELDS_FILE).yaml()
    return {name: m for name, m in data.items() if isinstance(m, dict)}


def front_interface_estimate() -> str:
    """The published, labelled estimate of the electron dose increase at the shield's face
    (the photon-only Monte Carlo does not transport electrons)."""
    return str(read_data("openiort.dose.mc", SHIELDS_FILE).yaml()["front_interface_estimate"])


def shield_material(name: str, density_g_cm3: float | None = None) -> dict[str, Any]:
    """The MC material of a shield: elemental mass fractions and density (the case's density,
    when given, replaces the data file's)."""
    data = shield_materials()
    if name not in data:
        raise ShieldError(f"shield material {name!r} unknown; known: {', '.join(sorted(data))}")
    m = data[name]
    w = float(m["tungsten_mass_fraction"])
    formula = {el: float(n) * ATOMIC_MASS[el] for el, n in m["matrix_formula"].items()}
    total = sum(formula.values())
    composition = {"W": w, **{el: (1 - w) * v / total for el, v in formula.items()}}
    density = float(density_g_cm3 if density_g_cm3 is not None else m["density_g_cm3"])
    if not 0.5 <= density <= 19.3:
        raise ShieldError(f"shield density {density:g} g/cm3 outside 0.5-19.3")
    return {"composition": composition, "density_g_cm3": density, "name": name}


@dataclass(frozen=True)
class ShieldEffect:
    """What a shield does to the dose beside it (ratios to the same geometry without it)."""

    material: str
    density_g_cm3: float
    thickness_mm: float
    front_depth_mm: float
    transmission: float
    transmission_rel_unc: float
    front_ratio: float
    front_ratio_rel_unc: float
    #: the open geometry's dose 0.5 mm behind / at the surface (the MC's own depth-dose)
    behind_per_surface_open: float
    histories: int
    model: str


def shield_effect(
    diameter_cm: float,
    front_depth_mm: float,
    thickness_mm: float,
    *,
    material: str = "tungsten_silicone_80",
    density_g_cm3: float | None = None,
    histories: int = DEFAULT_HISTORIES,
    seed: int = 20261208,
    location: Literal["chest_wall", "skin_flap"] = "chest_wall",
) -> ShieldEffect:
    """Transmission and front-dose change of a shield ``thickness_mm`` thick whose front face
    is ``front_depth_mm`` below the surface of the ``diameter_cm`` applicator."""
    if not 0.05 <= thickness_mm <= 10.0:
        raise ShieldError(f"shield thickness {thickness_mm:g} mm outside 0.05-10 mm")
    if not SCORE_MM + GAP_MM <= front_depth_mm <= 60.0:
        raise ShieldError(
            f"the shield's front face must lie {SCORE_MM + GAP_MM:g}-60 mm below the applicator "
            f"surface, got {front_depth_mm:g} mm"
        )
    app = applicator(diameter_cm)
    mat = shield_material(material, density_g_cm3)
    front = app.radius_mm + front_depth_mm
    back = front + thickness_mm
    edges = np.array(
        [
            app.radius_mm,
            app.radius_mm + GAP_MM,
            front - SCORE_MM,
            front - GAP_MM,
            back + GAP_MM,
            back + SCORE_MM,
        ]
    )
    src = xray50_source(None)
    open_ = shell_dose(
        src, [(app.radius_mm, app.material), (SPHERE_RADIUS_MM, "water")], edges, histories,
        seed, response="water", workers=1,
    )  # fmt: skip
    shielded = shell_dose(
        src,
        [(app.radius_mm, app.material), (front, "water"), (back, mat), (SPHERE_RADIUS_MM, "water")],
        edges, histories, seed + 1, response="water", workers=1,
    )  # fmt: skip
    d0, d1 = open_.dose_gy_per_photon, shielded.dose_gy_per_photon
    u0, u1 = open_.rel_unc, shielded.rel_unc
    return ShieldEffect(
        material=material,
        density_g_cm3=float(mat["density_g_cm3"]),
        thickness_mm=thickness_mm,
        front_depth_mm=front_depth_mm,
        transmission=float(d1[4] / d0[4]),
        transmission_rel_unc=float(np.hypot(u0[4], u1[4])),
        front_ratio=float(d1[2] / d0[2]),
        front_ratio_rel_unc=float(np.hypot(u0[2], u1[2])),
        behind_per_surface_open=float(d0[4] / d0[0]),
        histories=histories,
        model=(
            f"spherical shell of {material} ({mat['density_g_cm3']:.2f} g/cm3) at "
            f"{front_depth_mm:g} mm ({location.replace('_', ' ')}), photon Monte Carlo, "
            f"{histories:.2g} histories; electron backscatter from tungsten not modelled"
        ),
    )
