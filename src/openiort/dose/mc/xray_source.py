"""The 50 kV miniature x-ray source (INTRABEAM-type) in a spherical applicator, as MC input.

The model (data/xray50_source_model.yaml, each value with its source or marked ASSUMPTION /
FITTED):

- spectrum: SpekPy, 50 kV, 3 um gold transmission target, 0.5 mm Be buffer and an effective
  0.13 mm Al of further tip filtration, the two fitted jointly with the V4.0 chamber in the
  model (openiort.dose.mc.commissioning_fit)
  (data/xray50_spectrum_spekpy.csv);
- emission isotropic from the probe tip at the applicator centre, except for a 45 degree cone
  about the probe shaft shadowed by the opaque drift tube (radius 1.5 mm, tip set back 1.5 mm);
- applicator: a solid polyetherimide sphere of the nominal diameter centred on the tip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from openiort.dose.mc.sources import PointSource
from openiort.dose.mc.spectrum import load_spectrum, source_model
from openiort.errors import OpenIortInputError


class ApplicatorError(OpenIortInputError):
    """An applicator the source model does not have."""


@dataclass(frozen=True)
class ApplicatorModel:
    diameter_cm: float
    radius_mm: float
    material: str


def applicator_diameters_cm() -> tuple[float, ...]:
    return tuple(float(d) for d in source_model()["applicator"]["diameters_cm"])


def applicator(diameter_cm: float) -> ApplicatorModel:
    """The spherical applicator of ``diameter_cm`` (1.5 to 5.0 cm in 0.5 cm steps)."""
    for d in applicator_diameters_cm():
        if abs(d - float(diameter_cm)) < 1e-6:
            return ApplicatorModel(d, d * 5.0, str(source_model()["applicator"]["material"]))
    raise ApplicatorError(
        f"no {diameter_cm} cm spherical applicator; available: "
        + ", ".join(f"{d:g}" for d in applicator_diameters_cm())
        + " cm"
    )


def shadow_half_angle_deg() -> float:
    probe = source_model()["probe"]
    return math.degrees(math.atan2(float(probe["radius_mm"]), float(probe["tip_setback_mm"])))


def xray50_source(shaft_direction: tuple[float, float, float] | None = None) -> PointSource:
    """The source spectrum at the tip; with a shaft direction, the probe's shadow cone too."""
    edges, probs, digest = load_spectrum()
    label = f"50 kV source model (spectrum sha256 {digest[:12]})"
    if shaft_direction is None:
        return PointSource(tuple(edges), tuple(probs), label)
    axis = np.asarray(shaft_direction, dtype=np.float64)
    if axis.shape != (3,) or not np.all(np.isfinite(axis)) or np.linalg.norm(axis) == 0:
        raise ApplicatorError("shaft direction must be a non-zero 3-vector")
    unit = axis / np.linalg.norm(axis)
    return PointSource(
        tuple(edges),
        tuple(probs),
        label,
        shadow_axis=(float(unit[0]), float(unit[1]), float(unit[2])),
        shadow_half_angle_deg=shadow_half_angle_deg(),
    )
