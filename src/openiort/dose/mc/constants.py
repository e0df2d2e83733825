"""Physical constants for the kV Monte Carlo, read from data/codata2018_constants.csv."""

from __future__ import annotations

from functools import cache

from openiort.datafiles import read_data


@cache
def _constants() -> dict[str, float]:
    rows = read_data("openiort.dose.mc", "data/codata2018_constants.csv").rows()
    return {row["name"]: float(row["value"]) for row in rows}


def constant(name: str) -> float:
    """One CODATA 2018 constant by its name in the data file (units in the name)."""
    values = _constants()
    if name not in values:
        raise KeyError(f"unknown constant {name!r}; known: {', '.join(sorted(values))}")
    return values[name]


CLASSICAL_ELECTRON_RADIUS_CM = constant("classical_electron_radius_cm")
ELECTRON_REST_ENERGY_KEV = constant("electron_rest_energy_kev")
AVOGADRO_PER_MOL = constant("avogadro_per_mol")
KEV_TO_JOULE = constant("kev_to_joule")
HC_KEV_ANGSTROM = constant("hc_kev_angstrom")

# unit conversion: mu (1/mm) = mu/rho (cm^2/g) x rho (g/cm^3) / MM_PER_CM
MM_PER_CM = 10.0
