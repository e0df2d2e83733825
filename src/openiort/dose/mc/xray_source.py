"""The 50 kV miniature x-ray source (INTRABEAM-type) in a spherical applicator, as MC input.

The model (data/xray50_source_model.yaml, each value with its source or marked ASSUMPTION /
FITTED):

- spectrum at the tip (the bare probe): SpekPy, 50 kV, a gold transmission target, a 0.5 mm Be
  buffer and an effective Al filtration of the tip, the target thickness and the Al fitted
  jointly with the V4.0 chamber in the model (openiort.dose.mc.commissioning_fit)
  (data/xray50_spectrum_spekpy.csv);
- emission isotropic from the probe tip at the applicator centre, except for a 45 degree cone
  about the probe shaft shadowed by the opaque drift tube (radius 1.5 mm, tip set back 1.5 mm);
- applicator: a solid polyetherimide sphere of the nominal diameter centred on the tip, with an
  effective filtration between the tip and the PEI (the model's one applicator parameter,
  fitted in the same joint fit). It is applied to the spectrum as narrow-beam attenuation:
  about 1 % of the photons scatter in 0.1 mm Al at 20-40 keV and mostly go on into the PEI;
  dropping them is within what the fitted, effective thickness absorbs.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from openiort.dose.mc.physics import mass_attenuation_cm2_g
from openiort.dose.mc.sources import PointSource
from openiort.dose.mc.spectrum import load_spectrum, source_model
from openiort.errors import OpenIortInputError

FloatArray = NDArray[np.float64]


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


@dataclass(frozen=True)
class ApplicatorFiltration:
    """The effective filtration between the tip and the applicator's PEI (source model YAML)."""

    material: str
    density_g_cm3: float
    thickness_mm: float

    def transmission(self, energy_kev: FloatArray, thickness_mm: float | None = None) -> FloatArray:
        """Narrow-beam photon transmission at ``energy_kev`` (the fitted thickness by default)."""
        t_mm = self.thickness_mm if thickness_mm is None else float(thickness_mm)
        material = {"composition": {self.material: 1.0}, "density_g_cm3": self.density_g_cm3}
        mu_per_mm = mass_attenuation_cm2_g(material, energy_kev) * self.density_g_cm3 / 10.0
        return np.asarray(np.exp(-mu_per_mm * t_mm))

    def through(
        self, edges_kev: FloatArray, probabilities: FloatArray, thickness_mm: float | None = None
    ) -> FloatArray:
        """A binned spectrum after the filtration, per photon before it (bin centres' energies)."""
        centres = 0.5 * (edges_kev[1:] + edges_kev[:-1])
        return np.asarray(probabilities * self.transmission(centres, thickness_mm))


def applicator_filtration() -> ApplicatorFiltration:
    f = source_model()["applicator"]["filtration"]
    thickness = float(f["thickness_mm"])
    if not math.isfinite(thickness) or thickness < 0:
        raise ApplicatorError("the applicator filtration must be a thickness >= 0 mm")
    return ApplicatorFiltration(str(f["material"]), float(f["density_g_cm3"]), thickness)


@dataclass(frozen=True)
class ApplicatorSpectrum:
    """The photon spectrum that enters the applicator's PEI, per photon entering it."""

    edges_kev: FloatArray
    probabilities: FloatArray
    #: photons entering the PEI per photon emitted at the tip (the filtration's transmission)
    photons_per_emitted: float
    #: SHA-256 of the tip spectrum file and the filtration together: what a calibration is for
    identity_sha256: str


def applicator_spectrum() -> ApplicatorSpectrum:
    """Made afresh each call (0.5 ms): it follows a regenerated tip spectrum at once."""
    edges, probs, digest = load_spectrum()
    filtration = applicator_filtration()
    weighted = filtration.through(edges, probs)
    identity = hashlib.sha256(
        f"{digest}|{filtration.material}|{filtration.density_g_cm3!r}|"
        f"{filtration.thickness_mm!r}".encode()
    ).hexdigest()
    return ApplicatorSpectrum(edges, weighted / weighted.sum(), float(weighted.sum()), identity)


def shadow_half_angle_deg() -> float:
    probe = source_model()["probe"]
    return math.degrees(math.atan2(float(probe["radius_mm"]), float(probe["tip_setback_mm"])))


def xray50_source(
    shaft_direction: tuple[float, float, float] | None = None, *, bare_probe: bool = False
) -> PointSource:
    """The source in its applicator (the applicator spectrum, per photon entering the PEI), or
    the bare probe (the tip spectrum); with a shaft direction, the probe's shadow cone too."""
    if bare_probe:
        edges, probs, digest = load_spectrum()
        label = f"50 kV source model, bare probe (spectrum sha256 {digest[:12]})"
    else:
        spectrum = applicator_spectrum()
        edges, probs = spectrum.edges_kev, spectrum.probabilities
        label = f"50 kV source model in an applicator (sha256 {spectrum.identity_sha256[:12]})"
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
