"""Material library: elemental mass fractions and nominal densities (data/materials.csv)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

ELEMENTS = ("H", "C", "N", "O", "Na", "Mg", "P", "S", "Cl", "Ar", "K", "Ca")


@dataclass(frozen=True)
class Material:
    name: str
    density_g_cm3: float
    composition: dict[str, float]  # element symbol -> mass fraction (sums to 1)
    source: str


def read_commented_csv(text: str) -> list[dict[str, str]]:
    """Rows of a CSV whose header comment lines start with ``#``."""
    body = "".join(line for line in io.StringIO(text) if not line.lstrip().startswith("#"))
    return list(csv.DictReader(io.StringIO(body)))


@cache
def material_library() -> dict[str, Material]:
    text = resources.files("openiort.anatomy").joinpath("data/materials.csv").read_text("utf-8")
    library: dict[str, Material] = {}
    for row in read_commented_csv(text):
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


def get_material(name: str) -> Material:
    lib = material_library()
    if name not in lib:
        raise KeyError(f"unknown material {name!r}; known: {', '.join(sorted(lib))}")
    return lib[name]
