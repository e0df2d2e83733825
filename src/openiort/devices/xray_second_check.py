"""The independent second check of a 50 kV treatment time, from the Monte Carlo source model.

The primary time uses the source's own tables (:func:`openiort.devices.xray.treatment_time`).
This check shares none of them: it reads the model's bare-probe depth-dose and applicator
transmission and its shifted-chamber TARGIT model (written by
:mod:`openiort.dose.mc.second_check_model`), anchored to one absolute number, the V4.0 bare-probe
dose rate 10 mm from the source: the department's own ``second_check_reference`` when its data
give one, the model's nominal output otherwise. The dose rate at depth ``d`` below the surface of
an applicator of radius ``R`` is::

    V4.0(d)   = anchor x output check x bare(R + d) / bare(10 mm) x T(d)
    TARGIT(d) = V4.0(d + shift) / factor

A corrupted rate, depth-dose, transfer or ratio table therefore moves only one of the two times.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from openiort.datafiles import parse_commented_csv, read_data, sha256_texts
from openiort.errors import OpenIortInputError

if TYPE_CHECKING:
    from openiort.devices.xray import XraySource

FloatArray = NDArray[np.float64]
DEFAULT_TOLERANCE_PCT = 5.0
FILES = (
    "data/xray50_second_check_bare_probe.csv",
    "data/xray50_second_check_transmission.csv",
    "data/xray50_second_check_model.yaml",
)


class SecondCheckDataError(OpenIortInputError):
    """Second-check model data that are missing or malformed."""


@dataclass(frozen=True)
class SecondCheckReference:
    """A department's absolute anchor for the second check (from its calibration certificate or
    an independent measurement, not from the tables the primary time uses)."""

    distance_from_source_mm: float
    dose_rate_gy_min: float
    dose_definition: Literal["TARGIT", "V4.0"]
    source: str


@dataclass(frozen=True)
class SecondCheckModel:
    bare_distance_mm: FloatArray
    bare_relative: FloatArray
    transmission: dict[float, tuple[FloatArray, FloatArray]]
    reference_distance_mm: float
    nominal_output_v40_gy_min: float
    targit_shift_mm: float
    targit_factor: float
    sha256: str

    def _bare(self, distance_mm: FloatArray) -> FloatArray:
        d = np.asarray(distance_mm, dtype=np.float64)
        if np.any(d < self.bare_distance_mm[0]) or np.any(d > self.bare_distance_mm[-1]):
            raise SecondCheckDataError(
                f"second-check bare-probe table covers {self.bare_distance_mm[0]:g}-"
                f"{self.bare_distance_mm[-1]:g} mm from the source, asked {d.min():g}-{d.max():g} mm"
            )
        return np.exp(np.interp(d, self.bare_distance_mm, np.log(self.bare_relative)))

    def v40_per_anchor(self, diameter_cm: float, depth_mm: FloatArray) -> FloatArray:
        """V4.0 dose rate at depth per unit V4.0 bare-probe rate at the reference distance."""
        key = next((k for k in self.transmission if abs(k - diameter_cm) < 1e-6), None)
        if key is None:
            raise SecondCheckDataError(
                f"the second-check model has no {diameter_cm:g} cm applicator"
            )
        depth_t, trans = self.transmission[key]
        d = np.asarray(depth_mm, dtype=np.float64)
        if np.any(d < 0) or np.any(d > depth_t[-1]):
            raise SecondCheckDataError(
                f"second-check transmission covers 0-{depth_t[-1]:g} mm below the surface"
            )
        return np.asarray(self._bare(key * 5.0 + d) * np.interp(d, depth_t, trans))

    def bare_v40_from_targit(self, distance_mm: float) -> float:
        """V4.0/TARGIT of the bare probe at ``distance_mm`` by the shifted-chamber model."""
        r = np.array([distance_mm, distance_mm + self.targit_shift_mm])
        bare = self._bare(r)
        return float(self.targit_factor * bare[0] / bare[1])


def parse_model(bare_text: str, transmission_text: str, model_text: str) -> SecondCheckModel:
    """The second-check model from the texts of its three files (tests pass altered copies)."""
    import yaml

    try:
        bare = parse_commented_csv(bare_text)
        bare_r = np.array([float(r["distance_from_source_mm"]) for r in bare])
        bare_rel = np.array([float(r["relative_dose_water"]) for r in bare])
        per_app: dict[float, list[tuple[float, float]]] = {}
        for r in parse_commented_csv(transmission_text):
            per_app.setdefault(float(r["applicator_diameter_cm"]), []).append(
                (float(r["depth_mm"]), float(r["transmission"]))
            )
        params: dict[str, Any] = yaml.safe_load(model_text)
        nominal = float(params["nominal_output"]["dose_rate_v40_gy_min"])
        shift = float(params["targit_model"]["shift_mm"])
        factor = float(params["targit_model"]["factor"])
        ref_mm = float(params["reference_distance_mm"])
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise SecondCheckDataError(f"second-check model data malformed ({exc})") from None
    transmission = {}
    for d, pts in per_app.items():
        pts.sort()
        depth = np.array([z for z, _ in pts])
        trans = np.array([t for _, t in pts])
        if np.any(trans <= 0) or np.any(np.diff(depth) <= 0):
            raise SecondCheckDataError(f"second-check transmission of {d:g} cm malformed")
        transmission[d] = (depth, trans)
    if bare_r.size < 2 or np.any(np.diff(bare_r) <= 0) or np.any(bare_rel <= 0):
        raise SecondCheckDataError("second-check bare-probe table malformed")
    if not (nominal > 0 and factor > 0 and shift >= 0):
        raise SecondCheckDataError("second-check model parameters out of range")
    return SecondCheckModel(
        bare_distance_mm=bare_r,
        bare_relative=bare_rel,
        transmission=transmission,
        reference_distance_mm=ref_mm,
        nominal_output_v40_gy_min=nominal,
        targit_shift_mm=shift,
        targit_factor=factor,
        sha256=sha256_texts(bare_text, transmission_text, model_text),
    )


@cache
def load_model() -> SecondCheckModel:
    """The package's second-check model (checked against the data manifest)."""
    texts = [read_data("openiort.devices", name).text for name in FILES]
    return parse_model(*texts)


@dataclass(frozen=True)
class SecondCheck:
    time_min: float
    path: str
    anchor: str


def second_check_time(
    source: XraySource,
    diameter_cm: float,
    prescription_gy: float,
    definition: Literal["TARGIT", "V4.0"],
    prescription_depth_mm: float = 0.0,
    model: SecondCheckModel | None = None,
) -> SecondCheck:
    """Time for ``prescription_gy`` at ``prescription_depth_mm`` by the second-check model."""
    m = model or load_model()
    ref = source.second_check_reference
    if ref is None:
        anchor_v40 = m.nominal_output_v40_gy_min
        anchor = (
            f"the model's nominal output ({anchor_v40:.4g} Gy/min V4.0 at "
            f"{m.reference_distance_mm:g} mm, fitted to TG-292 Table IV)"
        )
        if not source.is_example_source:
            anchor += "; the department data give no second_check_reference"
    else:
        rate = ref.dose_rate_gy_min
        if ref.dose_definition == "TARGIT":
            rate *= m.bare_v40_from_targit(ref.distance_from_source_mm)
        # the reference may be stated at another distance than the model's reference one
        at = m._bare(np.array([ref.distance_from_source_mm, m.reference_distance_mm]))
        anchor_v40 = float(rate * at[1] / at[0])
        anchor = (
            f"the department's reference output ({ref.dose_rate_gy_min:.4g} Gy/min "
            f"{ref.dose_definition} at {ref.distance_from_source_mm:g} mm; {ref.source})"
        )
    depth = prescription_depth_mm + (m.targit_shift_mm if definition == "TARGIT" else 0.0)
    per_anchor = float(m.v40_per_anchor(diameter_cm, np.array([depth]))[0])
    rate = anchor_v40 * source.output_check_factor * per_anchor
    if definition == "TARGIT":
        rate /= m.targit_factor
    path = (
        "Monte Carlo source model: bare-probe depth-dose x applicator transmission"
        + (
            f", TARGIT by the shifted-chamber model (+{m.targit_shift_mm:g} mm, /{m.targit_factor:g})"
            if definition == "TARGIT"
            else ""
        )
        + f", anchored to {anchor}"
    )
    return SecondCheck(time_min=prescription_gy / rate, path=path, anchor=anchor)
