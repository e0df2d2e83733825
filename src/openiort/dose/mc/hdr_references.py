"""Published reference data the HDR (Ir-192) Monte Carlo is validated against.

Each data file names its source in its header: ANS-6.4.3 point-source buildup factors of water at
80 keV-1.5 MeV, and published Monte Carlo radial dose functions of Ir-192 sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from openiort.dose.mc.references import GpCoefficients, ans643_water_exposure_gp, data_rows

FloatArray = NDArray[np.float64]


def ans643_water_exposure_gp_hdr() -> dict[float, GpCoefficients]:
    """ANS-6.4.3 exposure buildup GP coefficients of water, 80 keV-1.5 MeV, by energy (keV)."""
    return ans643_water_exposure_gp("ans643_water_point_source_buildup_80kev_1p5mev.csv")


@dataclass(frozen=True)
class PublishedRadialDose:
    """A published radial dose function g(r) of one source (r in cm)."""

    source: str
    code: str
    phantom: str
    r_cm: FloatArray
    g: FloatArray
    abs_unc: FloatArray


@cache
def published_ir192_radial_dose() -> dict[str, PublishedRadialDose]:
    """Published Monte Carlo g(r) of Ir-192 sources, keyed by source name."""
    by_source: dict[str, list[dict[str, str]]] = {}
    for row in data_rows("ir192_radial_dose_published.csv"):
        by_source.setdefault(row["source"], []).append(row)
    return {
        name: PublishedRadialDose(
            name,
            rows[0]["code"],
            rows[0]["phantom"],
            np.array([float(r["r_cm"]) for r in rows]),
            np.array([float(r["g"]) for r in rows]),
            np.array([float(r["abs_unc"]) for r in rows]),
        )
        for name, rows in by_source.items()
    }
