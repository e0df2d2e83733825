"""Published reference data the kV Monte Carlo is validated against (data/*.csv, sources in headers)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from openiort.datafiles import read_data


def data_rows(name: str) -> list[dict[str, str]]:
    return read_data("openiort.dose.mc", f"data/{name}").rows()


@dataclass(frozen=True)
class NistCoefficient:
    material: str
    energy_kev: float
    mu_over_rho_cm2_g: float
    muen_over_rho_cm2_g: float


@cache
def nist_coefficients() -> tuple[NistCoefficient, ...]:
    """NIST SRD 126 mu/rho and mu_en/rho, 10-60 keV, for library materials."""
    return tuple(
        NistCoefficient(
            r["material"],
            float(r["energy_kev"]),
            float(r["mu_over_rho_cm2_g"]),
            float(r["muen_over_rho_cm2_g"]),
        )
        for r in data_rows("nist_srd126_mu_muen_10_60kev.csv")
    )


@dataclass(frozen=True)
class GpCoefficients:
    """Harima geometric-progression fit of a point-source buildup factor at one energy."""

    energy_kev: float
    mu_no_coherent_cm2_g: float
    b: float
    c: float
    a: float
    xk: float
    d: float

    def buildup(self, mfp: float | np.ndarray) -> np.ndarray:
        """B(mu r) by the GP formula (Harima et al. Nucl Sci Eng 1986;94:24)."""
        x = np.asarray(mfp, dtype=np.float64)
        tanh2 = math.tanh(-2.0)
        k = self.c * x**self.a + self.d * (np.tanh(x / self.xk - 2.0) - tanh2) / (1.0 - tanh2)
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.where(
                np.abs(k - 1.0) < 1e-9,
                1.0 + (self.b - 1.0) * x,
                1.0 + (self.b - 1.0) * (k**x - 1.0) / (k - 1.0),
            )
        return np.asarray(np.where(x > 0, b, 1.0))


@cache
def ans643_water_exposure_gp(
    file: str = "ans643_water_point_source_buildup.csv",
) -> dict[float, GpCoefficients]:
    """ANS-6.4.3 exposure buildup GP coefficients for water, keyed by energy (keV), from
    ``file`` (the kV range by default)."""
    return {
        float(r["energy_kev"]): GpCoefficients(
            float(r["energy_kev"]),
            float(r["mu_no_coherent_cm2_g"]),
            float(r["b"]),
            float(r["c"]),
            float(r["a"]),
            float(r["xk"]),
            float(r["d"]),
        )
        for r in data_rows(file)
    }


@cache
def heterogeneity_references() -> tuple[dict[str, str], ...]:
    """Published tissue-versus-water dose differences at 50 kV (breast)."""
    return tuple(data_rows("heterogeneity_published_50kv.csv"))
