"""The uncertainty of the 50 kV depth-dose, one number per depth, with its components.

Components (relative, %, at depth ``d`` below the applicator surface):

* ``model_spread``: the spread of the fit, as the difference between the primary depth-dose
  (the source's tables) and the independent second-check model's (:mod:`openiort.devices.
  xray_second_check`), both normalised at the surface;
* ``positioning``: the published dose-rate change per 0.1 mm at that distance from the source
  (Shaikh et al. 2020), for a surface known to 0.1 mm;
* ``chamber_cq_depth``: the published depth dependence of the V4.0 chamber's C_Q (Watson et al.
  2017), 0 at the surface where the rate is anchored;
* ``mc_statistics``: the Monte Carlo depth-dose's statistical uncertainty.

The total is their quadrature sum, an estimate that treats them as independent standard
uncertainties (the published figures are ranges, not standard uncertainties). It is the
relative-dose band about the nominal curve, not the uncertainty of the absolute output or of
the dose definition (the plan's uncertainty table lists those).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from openiort.datafiles import read_data
from openiort.devices.xray import XraySource
from openiort.devices.xray_second_check import load_model

UNCERTAINTY_FILE = "data/xray50_depth_dose_uncertainty.yaml"
BAND_DEPTHS_MM = (0.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0)


@dataclass(frozen=True)
class BandPoint:
    depth_mm: float
    model_spread_pct: float
    positioning_pct: float
    chamber_cq_depth_pct: float
    mc_statistics_pct: float
    total_pct: float


@lru_cache(maxsize=1)
def _inputs() -> dict[str, Any]:
    data = read_data("openiort.devices", UNCERTAINTY_FILE).yaml()
    assert isinstance(data, dict)
    return data


def sources() -> dict[str, str]:
    """Where each component comes from, as plan.json names it."""
    data = _inputs()
    return {
        "model_spread": "primary depth-dose vs the independent second-check model "
        "(openiort.devices.xray_second_check), both 1 at the surface",
        "positioning": str(data["positioning"]["source"]),
        "chamber_cq_depth": str(data["chamber_cq_depth"]["source"]),
        "mc_statistics": str(data["mc_statistics"]["source"]),
    }


def positioning_pct(distance_from_source_mm: float) -> float:
    """The published dose change for the positioning uncertainty at that distance."""
    p = _inputs()["positioning"]
    r = np.asarray(p["distance_from_source_mm"], dtype=float)
    pct = np.asarray(p["pct_per_0_1_mm"], dtype=float)
    steps = float(p["positioning_uncertainty_mm"]) / 0.1
    x = max(distance_from_source_mm, float(r[0]))
    if x > r[-1]:
        return float(pct[-1] * r[-1] / x * steps)
    return float(np.exp(np.interp(np.log(x), np.log(r), np.log(pct))) * steps)


def depth_dose_band(
    source: XraySource, diameter_cm: float, depths_mm: tuple[float, ...] = BAND_DEPTHS_MM
) -> list[BandPoint]:
    """The band at each depth below the surface of the ``diameter_cm`` applicator."""
    data = _inputs()
    model = load_model()
    d = np.asarray(depths_mm, dtype=float)
    primary = source.relative_dose_water(diameter_cm, d)
    second = model.v40_per_anchor(diameter_cm, d)
    second = second / float(model.v40_per_anchor(diameter_cm, np.zeros(1))[0])
    spread = 100.0 * np.abs(second / primary - 1.0)
    cq = data["chamber_cq_depth"]
    mc = data["mc_statistics"]
    out = []
    for i, depth in enumerate(d):
        parts = (
            float(spread[i]),
            positioning_pct(diameter_cm * 5.0 + float(depth)),
            float(cq["max_pct"]) * min(float(depth) / float(cq["over_mm"]), 1.0),
            float(np.interp(depth, mc["depth_mm"], mc["pct"])),
        )
        spread_pct, positioning, cq_pct, mc_pct = (round(p, 2) for p in parts)
        out.append(
            BandPoint(
                depth_mm=float(depth),
                model_spread_pct=spread_pct,
                positioning_pct=positioning,
                chamber_cq_depth_pct=cq_pct,
                mc_statistics_pct=mc_pct,
                total_pct=round(float(np.sqrt(sum(p * p for p in parts))), 2),
            )
        )
    return out
