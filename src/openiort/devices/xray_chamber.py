"""The V4.0 chamber's volume averaging: from the nominal V4.0 dose to a physical point dose.

AAPM TG-292: the V4.0 dose rate at a depth is the reading of a PTW 34013 parallel-plate chamber
whose point of measurement is the inner surface of its entrance foil, with no correction for
the dose falling by a factor of ~2 across its 0.9 mm sensitive depth. The factor here is the
chamber's reading over the point dose at its point of measurement: the source's own water
depth-dose averaged over the chamber's sensitive cylinder, laid with its foil on the spherical
applicator (each element's depth is its distance from the applicator's centre less the
radius). The relative depth-dose tables are point doses normalised to the surface reading, so
the physical point dose at every depth is the nominal V4.0 dose divided by the surface factor.
This is an estimate: the report shows it in its physics section only, with its range; the
prescription, limits and DVHs stay in the department's definition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from openiort.datafiles import read_data
from openiort.devices.xray import XraySource

CHAMBER_FILE = "data/xray50_v40_chamber.yaml"
_STEPS = 120  # midpoint rule in depth and radius: converged to 1e-4 (tests)


@dataclass(frozen=True)
class ChamberFactor:
    """Reading / point dose of the V4.0 chamber at the applicator surface."""

    diameter_cm: float
    factor: float
    factor_low: float
    factor_high: float
    chamber: str
    source: str
    cq_note: str


@lru_cache(maxsize=1)
def chamber_geometry() -> dict[str, Any]:
    data = read_data("openiort.devices", CHAMBER_FILE).yaml()
    assert isinstance(data, dict)
    return data


def volume_averaging_factor(
    source: XraySource,
    diameter_cm: float,
    sensitive_radius_mm: float,
    plate_separation_mm: float,
    depth_mm: float = 0.0,
) -> float:
    """The chamber's reading over the point dose at ``depth_mm`` (its foil's inner surface)."""

    def dose(depth: NDArray[np.float64]) -> NDArray[np.float64]:
        return source.relative_dose_water(diameter_cm, depth)

    mean = volume_average(
        dose, diameter_cm * 5.0, sensitive_radius_mm, plate_separation_mm, depth_mm
    )
    return mean / float(dose(np.asarray(depth_mm, dtype=np.float64)))


def volume_average(
    dose_at_depth: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    radius_mm: float,
    sensitive_radius_mm: float,
    plate_separation_mm: float,
    depth_mm: float = 0.0,
) -> float:
    """The mean of ``dose_at_depth`` over the chamber's sensitive cylinder, its foil at
    ``depth_mm`` below a spherical surface of ``radius_mm`` (the chamber's reading)."""
    z = (np.arange(_STEPS) + 0.5) / _STEPS * plate_separation_mm
    rho = (np.arange(_STEPS) + 0.5) / _STEPS * sensitive_radius_mm
    zz, rr = np.meshgrid(z, rho, indexing="ij")
    depth = np.hypot(radius_mm + depth_mm + zz, rr) - radius_mm
    dose = np.asarray(dose_at_depth(depth.ravel())).reshape(depth.shape)
    return float((dose * rr).sum() / rr.sum())  # area element 2 pi rho d rho


def surface_chamber_factor(source: XraySource, diameter_cm: float) -> ChamberFactor:
    """The factor with the cited geometry and its range over the geometry variants."""
    geo = chamber_geometry()
    nominal = volume_averaging_factor(
        source, diameter_cm, float(geo["sensitive_radius_mm"]), float(geo["plate_separation_mm"])
    )
    variants = [
        volume_averaging_factor(
            source, diameter_cm, float(v["sensitive_radius_mm"]), float(v["plate_separation_mm"])
        )
        for v in geo["variants"]
    ]
    return ChamberFactor(
        diameter_cm=diameter_cm,
        factor=nominal,
        factor_low=min(nominal, *variants),
        factor_high=max(nominal, *variants),
        chamber=str(geo["chamber"]),
        source=str(geo["source"]),
        cq_note=str(geo["cq_note"]),
    )
