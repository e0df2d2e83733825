"""Generate the data of the 50 kV independent second check from the Monte Carlo source model.

The primary treatment time comes from the source's own tables (TG-292 rates with the package's
depth-dose table, or a department's bare-probe and transfer tables); the second check
(:mod:`openiort.devices.xray_second_check`) reads only what this script writes:

- ``xray50_second_check_bare_probe.csv``: the model's bare-probe dose to water in water,
  perpendicular to the shaft, relative to its value 10 mm from the source;
- ``xray50_second_check_transmission.csv``: per applicator, the model's dose with the applicator
  divided by the bare-probe dose at the same distance from the source (the model's "transfer
  coefficient", which carries the applicator's attenuation and scatter), in the V4.0 definition:
  times the V4.0 chamber's reading / point dose at the applicator surface and divided by the
  same at the bare-probe reference distance (devices/xray_chamber.py; the V4.0 surface rate and
  a V4.0 reference output are chamber readings, the relative depth-dose a point-dose ratio);
- ``xray50_second_check_model.yaml``: the nominal output (V4.0 bare-probe dose rate at 10 mm,
  fitted once to the TG-292 Table IV surface rates; used when a department gives no reference
  output of its own) and the shifted-chamber TARGIT model TARGIT(d) = V4.0(d + shift) / factor,
  fitted once to the 24 TG-292 V4.0/TARGIT ratios, each with its residuals.

The fits read the published tables once, here; at planning time the second check reads none of
the primary's tables, so a corrupted rate, depth-dose, transfer or ratio table moves one path
only. Run ``python -m openiort.dose.mc.second_check_model`` (about a minute on one core).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import yaml
from numpy.typing import NDArray

from openiort import __version__
from openiort.datafiles import package_dir, record_file
from openiort.devices.xray import RATIO_DEPTHS_MM, load_example_source
from openiort.devices.xray_chamber import chamber_geometry, volume_average
from openiort.dose.mc.commissioning import EQUATOR_BAND_COS, SHAFT_AXIS, depth_dose_water
from openiort.dose.mc.spectrum import load_spectrum, source_model
from openiort.dose.mc.sphere import SPHERE_RADIUS_MM, shell_dose
from openiort.dose.mc.xray_source import (
    applicator_diameters_cm,
    applicator_filtration,
    applicator_spectrum,
    xray50_source,
)

FloatArray = NDArray[np.float64]
DEPTHS_MM = np.round(np.arange(0.0, 40.0 + 1e-9, 0.5), 3)
BARE_DISTANCES_MM = np.round(np.arange(3.0, 70.0 + 1e-9, 0.5), 3)
REFERENCE_DISTANCE_MM = 10.0
HALF_WIDTH_MM = 0.05
SEED = 20261207
FILES = {
    "bare": "xray50_second_check_bare_probe.csv",
    "transmission": "xray50_second_check_transmission.csv",
    "model": "xray50_second_check_model.yaml",
}


def bare_probe_dose(histories: int, seed: int) -> tuple[FloatArray, FloatArray]:
    """Bare-probe dose to water per photon at BARE_DISTANCES_MM (thin shells, shaft plane)."""
    edges = np.ravel(
        np.column_stack([BARE_DISTANCES_MM - HALF_WIDTH_MM, BARE_DISTANCES_MM + HALF_WIDTH_MM])
    )
    result = shell_dose(
        xray50_source(SHAFT_AXIS, bare_probe=True),
        [(SPHERE_RADIUS_MM, "water")],
        edges,
        histories,
        seed,
        response="water",
        equatorial_band_cos=EQUATOR_BAND_COS,
    )
    return result.dose_gy_per_photon[::2].copy(), result.rel_unc[::2].copy()


def fit_targit_model(
    relative: dict[float, FloatArray], depth_mm: FloatArray
) -> tuple[float, float, list[dict[str, float]]]:
    """Shift (mm) and factor of TARGIT(d) = V4.0(d + shift) / factor, least squares in the
    ratio over the published V4.0/TARGIT ratios, with each datum's residual."""
    src = load_example_source()
    best: tuple[float, float, float] | None = None
    for shift in np.arange(0.0, 2.0001, 0.01):
        logs = []
        for d, rel in relative.items():
            for z, published in zip(
                RATIO_DEPTHS_MM, src.applicator(d).ratio_v40_over_targit, strict=True
            ):
                shape = np.interp(z, depth_mm, rel) / np.exp(
                    np.interp(z + shift, depth_mm, np.log(rel))
                )
                logs.append(np.log(published / shape))
        factor = float(np.exp(np.mean(logs)))
        rms = float(np.sqrt(np.mean((np.asarray(logs) - np.log(factor)) ** 2)))
        if best is None or rms < best[2]:
            best = (float(shift), factor, rms)
    assert best is not None
    shift, factor, _ = best
    residuals = []
    for d, rel in relative.items():
        for z, published in zip(
            RATIO_DEPTHS_MM, src.applicator(d).ratio_v40_over_targit, strict=True
        ):
            model = (
                factor
                * np.interp(z, depth_mm, rel)
                / np.exp(np.interp(z + shift, depth_mm, np.log(rel)))
            )
            residuals.append(
                {
                    "applicator_diameter_cm": float(d),
                    "depth_mm": float(z),
                    "published": round(float(published), 4),
                    "model": round(float(model), 4),
                    "residual_pct": round(float(100 * (model / published - 1)), 2),
                }
            )
    return round(float(shift), 3), round(float(factor), 4), residuals


def regenerate(
    histories: int = 4_000_000, seed: int = SEED, out_dir: str | Path | None = None
) -> dict[str, Path]:
    """Run the model and write the three second-check files (recorded in their manifest)."""
    folder = Path(out_dir) if out_dir is not None else package_dir("openiort.devices") / "data"
    bare, bare_unc = bare_probe_dose(2 * histories, seed)
    bare_ref = float(np.exp(np.interp(REFERENCE_DISTANCE_MM, BARE_DISTANCES_MM, np.log(bare))))
    example = load_example_source()
    geo = chamber_geometry()
    r_sens, sep = float(geo["sensitive_radius_mm"]), float(geo["plate_separation_mm"])

    def bare_at(distance: FloatArray) -> FloatArray:
        return np.exp(np.interp(distance, BARE_DISTANCES_MM, np.log(bare)))

    # the V4.0 chamber's reading / point dose at the bare-probe reference distance
    bare_chamber = volume_average(bare_at, 0.0, r_sens, sep, REFERENCE_DISTANCE_MM) / bare_ref
    transmission_rows, relative, surface_per_ref, chamber_factors = [], {}, {}, {}
    # the applicator runs count photons entering the PEI; the bare probe photons emitted
    per_emitted = applicator_spectrum().photons_per_emitted
    for i, d in enumerate(applicator_diameters_cm()):
        curve = depth_dose_water(d, histories, seed + 1 + i, depths_mm=DEPTHS_MM, workers=1)
        rel = curve.relative
        dose_per_emitted = curve.dose_gy_per_photon * per_emitted

        def rel_at(z: FloatArray, rel: FloatArray = rel) -> FloatArray:
            return np.asarray(np.interp(z, DEPTHS_MM, rel))

        chamber = volume_average(rel_at, d * 5.0, r_sens, sep)
        chamber_factors[d] = chamber
        r = d * 5.0 + DEPTHS_MM
        transmission = dose_per_emitted / bare_at(r) * chamber / bare_chamber
        relative[d] = rel
        surface_per_ref[d] = float(dose_per_emitted[0] / bare_ref * chamber / bare_chamber)
        transmission_rows += [
            f"{d:.1f},{z:.1f},{t:.6f},{u:.4f}"
            for z, t, u in zip(DEPTHS_MM, transmission, curve.rel_unc, strict=True)
        ]
    # nominal output: one V4.0 rate at 10 mm, geometric least squares over the 8 surface rates
    logs = {
        d: np.log(example.applicator(d).surface_rate_v40_gy_min / surface_per_ref[d])
        for d in surface_per_ref
    }
    nominal = float(np.exp(np.mean(list(logs.values()))))
    nominal_residuals = [
        {
            "applicator_diameter_cm": float(d),
            "published_v40_gy_min": example.applicator(d).surface_rate_v40_gy_min,
            "model_v40_gy_min": round(float(nominal * surface_per_ref[d]), 4),
            "residual_pct": round(
                float(
                    100
                    * (
                        nominal * surface_per_ref[d] / example.applicator(d).surface_rate_v40_gy_min
                        - 1
                    )
                ),
                2,
            ),
        }
        for d in surface_per_ref
    ]
    shift, factor, ratio_residuals = fit_targit_model(relative, DEPTHS_MM)
    _, _, spectrum_sha = load_spectrum()
    filters = ", ".join(
        f"{f['material']} {f['thickness_mm']} mm" for f in source_model()["spectrum"]["filters"]
    )
    filtration = applicator_filtration()
    header = [
        "# Data of openiort's independent second check for 50 kV spherical applicators, generated",
        f"# {date.today().isoformat()} by openiort {__version__} (openiort.dose.mc.second_check_model) from the",
        f"# Monte Carlo source model (spectrum {filters}, sha256 {spectrum_sha[:16]}; probe shadow;",
        f"# solid PEI applicators behind {filtration.thickness_mm} mm {filtration.material} of applicator filtration),",
        f"# seed {seed}. Dose to water in water per photon emitted at the tip, perpendicular to the probe shaft,",
        "# scored in 0.1 mm shells. Not derived from the primary's tables (TG-292 rates, the package",
        "# depth-dose table, a department's bare-probe or transfer tables).",
    ]
    bare_text = "\n".join(
        [
            *header,
            f"# Bare probe in a water sphere of radius {SPHERE_RADIUS_MM:g} mm, {2 * histories:.3g} histories;",
            f"# relative to the dose {REFERENCE_DISTANCE_MM:g} mm from the source.",
            "distance_from_source_mm,relative_dose_water,rel_unc",
            *[
                f"{r:.1f},{v / bare_ref:.6f},{u:.4f}"
                for r, v, u in zip(BARE_DISTANCES_MM, bare, bare_unc, strict=True)
            ],
        ]
    )
    transmission_text = "\n".join(
        [
            *header,
            "# Applicator transmission T(d) = dose with the applicator at depth d below its surface /",
            f"# bare-probe dose at the same distance from the source; {histories:.3g} histories per applicator;",
            "# in the V4.0 definition: x the V4.0 chamber's reading / point dose at this applicator's surface,",
            "# / the same for the bare probe at the reference distance (factors in the model YAML).",
            "applicator_diameter_cm,depth_mm,transmission,rel_unc",
            *transmission_rows,
        ]
    )
    model = {
        "origin": " ".join(line.lstrip("# ") for line in header),
        "reference_distance_mm": REFERENCE_DISTANCE_MM,
        "nominal_output": {
            "dose_rate_v40_gy_min": round(nominal, 5),
            "what": "V4.0 bare-probe dose rate in water 10 mm from the source, 50 kV 40 uA",
            "fitted_to": "AAPM TG-292 (Culberson et al. Med Phys 2020;47:e913) Table IV V4.0 "
            "surface rates of the 8 applicators as V4.0 chamber readings, least squares in log "
            "(one parameter)",
            "chamber_reading_over_point_dose": {
                "bare_probe_at_reference_distance": round(float(bare_chamber), 4),
                "applicator_surface": {
                    f"{d:.1f}": round(float(k), 4) for d, k in chamber_factors.items()
                },
                "geometry": "devices/data/xray50_v40_chamber.yaml (nominal)",
            },
            "use": "the example source, and department data that give no reference output",
            "residuals": nominal_residuals,
        },
        "targit_model": {
            "shift_mm": shift,
            "factor": factor,
            "what": "TARGIT(d) = V4.0(d + shift_mm) / factor, d below the applicator surface",
            "fitted_to": "the 24 V4.0/TARGIT ratios of AAPM TG-292 Table IV (0, 10, 20 mm)",
            "residuals": ratio_residuals,
        },
    }
    model_text = (
        "# Parameters of openiort's 50 kV second-check model; see the header of\n"
        f"# {FILES['bare']} and openiort.dose.mc.second_check_model.\n"
        + yaml.safe_dump(model, sort_keys=False, width=100)
    )
    written = {}
    for key, text in (
        ("bare", bare_text + "\n"),
        ("transmission", transmission_text + "\n"),
        ("model", model_text),
    ):
        path = folder / FILES[key]
        path.write_text(text, encoding="utf-8")
        record_file(path)
        written[key] = path
    return written


if __name__ == "__main__":  # pragma: no cover - a generator run by hand
    for path in regenerate().values():
        print(f"wrote {path}")
