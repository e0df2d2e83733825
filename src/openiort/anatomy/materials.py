"""Material library: elemental mass fractions and nominal densities (data/materials.csv)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from openiort.datafiles import read_data

ELEMENTS = ("H", "C", "N", "O", "Na", "Mg", "P", "S", "Cl", "Ar", "K", "Ca")


@dataclass(frozen=True)
class Material:
    name: str
    density_g_cm3: float
    composition: dict[str, float]  # element symbol -> mass fraction (sums to 1)
    source: str


@cache
def material_library() -> dict[str, Material]:
    library: dict[str, Material] = {}
    for row in read_data("openiort.anatomy", "data/materials.csv").rows():
        fractions = {el: float(row[el]) for el in ELEMENTS if float(row[el]) > 0}
        total = sum(fractions.values())
        if abs(total - 1.0) > 2e-3:
            raise ValueError(f"materials.csv: mass fractions of {row['name']} sum to {total}")
        library[row["name"]] = Material(
            name=row["name"],
            density_g_cm3=float(row["density_g_cm3"]),
            composition={el: w / total for el, w in fractions.items()},
            source=row["source"],
        )
    return library


def breast_mixture_name(gland_mass_fraction: float) -> str:
    """Library name of a gland/adipose mixture, e.g. ``breast_g38`` for 37.5 % gland by mass."""
    if not 0.0 <= gland_mass_fraction <= 1.0:
        raise ValueError(f"gland mass fraction must be in [0, 1], got {gland_mass_fraction}")
    return f"breast_g{round(gland_mass_fraction * 100):02d}"


def _breast_mixture(name: str) -> Material:
    """ICRU-44 gland and adipose mixed by mass; density from additive specific volumes."""
    fraction = int(name.removeprefix("breast_g")) / 100.0
    gland, adipose = material_library()["gland"], material_library()["adipose"]
    elements = set(gland.composition) | set(adipose.composition)
    composition = {
        el: fraction * gland.composition.get(el, 0.0)
        + (1 - fraction) * adipose.composition.get(el, 0.0)
        for el in elements
    }
    density = 1.0 / (fraction / gland.density_g_cm3 + (1 - fraction) / adipose.density_g_cm3)
    return Material(
        name, density, composition, f"{fraction:.0%} ICRU-44 gland by mass, rest adipose"
    )


def get_material(name: str) -> Material:
    """Material by library name; ``breast_gNN`` names are gland/adipose mixtures (NN % gland)."""
    lib = material_library()
    if name in lib:
        return lib[name]
    suffix = name.removeprefix("breast_g")
    if name.startswith("breast_g") and suffix.isdigit() and int(suffix) <= 100:
        return _breast_mixture(name)
    percent = name.removeprefix("balloon_c")
    if name.startswith("balloon_c") and percent.isdigit() and int(percent) <= MAX_CONTRAST_PCT:
        return _balloon_fill(int(percent))
    raise KeyError(
        f"unknown material {name!r}; known: {', '.join(sorted(lib))}, breast_gNN, balloon_cNN"
    )


MAX_CONTRAST_PCT = 50


def balloon_fill_name(contrast_pct: int) -> str:
    """Library name of a balloon fill, e.g. ``balloon_c15`` for 15 % contrast by volume."""
    if not 0 <= contrast_pct <= MAX_CONTRAST_PCT:
        raise ValueError(f"contrast must be 0-{MAX_CONTRAST_PCT} % by volume, got {contrast_pct}")
    return f"balloon_c{contrast_pct:02d}"


@cache
def _balloon_fill(contrast_pct: int) -> Material:
    """Saline with ``contrast_pct`` % by volume of the contrast agent (data/balloon_fill.yaml);
    volumes add."""
    data = read_data("openiort.anatomy", "data/balloon_fill.yaml").yaml()
    weights, agent, saline = data["atomic_weight"], data["contrast_agent"], data["saline"]
    atoms = agent["iohexol_atoms"]
    molar_mass = sum(n * weights[el] for el, n in atoms.items())
    nacl = weights["Na"] + weights["Cl"]
    water_h = 2 * weights["H"] / (2 * weights["H"] + weights["O"])
    f = contrast_pct / 100.0
    iohexol_g = f * agent["iohexol_g_per_ml"]
    water_g = (
        f * (agent["density_g_ml"] - agent["iohexol_g_per_ml"]) + (1 - f) * saline["water_g_per_ml"]
    )
    salt_g = (1 - f) * saline["nacl_g_per_ml"]
    mass: dict[str, float] = {
        el: iohexol_g * n * weights[el] / molar_mass for el, n in atoms.items()
    }
    mass["H"] += water_g * water_h
    mass["O"] += water_g * (1 - water_h)
    mass["Na"] = salt_g * weights["Na"] / nacl
    mass["Cl"] = salt_g * weights["Cl"] / nacl
    mass = {el: m for el, m in mass.items() if m > 0}  # saline alone has no C, N or I
    total = sum(mass.values())
    return Material(
        balloon_fill_name(contrast_pct),
        total,  # g per mL of fill
        {el: m / total for el, m in mass.items()},
        f"normal saline with {contrast_pct} % {agent['name']} by volume (data/balloon_fill.yaml)",
    )
