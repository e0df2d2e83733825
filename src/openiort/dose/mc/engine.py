"""Monte Carlo dose engine for 50 kV x-ray IORT in a voxel phantom (TG-186 dose reporting).

``compute`` transports the source model (spectrum, probe shadow, PEI applicator sphere) through
the phantom's tissues and returns two dose grids: dose to medium in medium (D_m,m) and dose to
water in medium (D_w,m), each with its per-voxel relative standard uncertainty.

Absolute dose uses the same calibration as the table engine: the dose to water in water at the
applicator surface equals the source's V4.0 surface dose rate (TG-292; times the output check)
times the irradiation time. The Monte Carlo gives dose per emitted photon; the commissioning run
in water (:mod:`openiort.dose.mc.commissioning`) gives the surface dose to water per emitted
photon, and the ratio of the two converts one into the other. A tissue phantom therefore shows
exactly the heterogeneity effect, relative to the water-based table engine.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from openiort import __version__
from openiort.anatomy.phantom import Phantom
from openiort.datafiles import read_data, read_path, sha256_texts
from openiort.devices.xray import XraySource, load_example_source
from openiort.dose.mc.commissioning import (
    CommissioningError,
    default_calibration_path,
    load_calibration,
)
from openiort.dose.mc.physics import PhysicsOptions
from openiort.dose.mc.runner import RunSettingsError
from openiort.dose.mc.spectrum import MODEL_FILE
from openiort.dose.mc.sphere import GeometryError
from openiort.dose.mc.voxel import build_problem, run_problem
from openiort.dose.mc.xray_source import (
    applicator,
    applicator_spectrum,
    shadow_half_angle_deg,
    xray50_source,
)
from openiort.dosegrid import DoseGrid, DoseMedium, Provenance

ENGINE_NAME = "openiort.dose.mc (kV photon Monte Carlo)"
DEFAULT_HISTORIES = 30_000_000


def _model_sha256(calibration_text: str, source: XraySource, spectrum_sha: str) -> str:
    model_text = read_data("openiort.dose.mc", MODEL_FILE).text
    return sha256_texts(model_text, spectrum_sha, calibration_text, source.data_sha256)


def _inputs_sha256(phantom: Phantom, **params: object) -> str:
    h = hashlib.sha256()
    h.update(repr(sorted(params.items())).encode())
    h.update(
        repr(
            (
                phantom.grid.to_dict(),
                phantom.materials,
                phantom.applicator_centre_mm,
                phantom.applicator_radius_mm,
                phantom.shaft_direction,
            )
        ).encode()
    )
    h.update(np.ascontiguousarray(phantom.material_ids).tobytes())
    h.update(np.ascontiguousarray(phantom.density_g_cm3).tobytes())
    return h.hexdigest()


def compute(
    phantom: Phantom,
    applicator_diameter_cm: float,
    *,
    dwell_time_s: float | None = None,
    surface_dose_gy: float | None = None,
    source: XraySource | None = None,
    histories: int = DEFAULT_HISTORIES,
    seed: int = 1,
    n_batches: int = 10,
    scheduler_address: str | None = None,
    use_dask: bool = False,
    workers: int | None = None,
    progress: bool = True,
    calibration_path: str | None = None,
    options: PhysicsOptions | None = None,
) -> tuple[DoseGrid, DoseGrid]:
    """3D dose for one irradiation with a spherical applicator: (D_m,m, D_w,m).

    Parameters
    ----------
    phantom:
        Voxel phantom with ``applicator_centre_mm``/``applicator_radius_mm`` set (the probe tip
        is at the centre) and, for the probe shadow, ``shaft_direction``.
    applicator_diameter_cm:
        Nominal diameter (1.5 to 5.0 cm); must match the phantom's applicator.
    dwell_time_s, surface_dose_gy:
        Exactly one: the irradiation time (dose = V4.0 surface rate x output check x time), or
        the dose to water in water at the applicator surface directly.
    source:
        The source's dose-rate data (default: TG-292's example source).
    histories, seed, n_batches:
        Photons emitted, random seed (same seed, same answer on any number of workers), and
        batches for the uncertainty (at least 2).
    scheduler_address, use_dask, workers:
        Run the batches on a Dask scheduler, on a local Dask cluster, or on local threads.
    progress:
        Show a progress bar; Ctrl-C raises ``SimulationInterruptedError`` and returns nothing.

    Returns
    -------
    (D_m,m, D_w,m):
        Dose grids in Gy for the session, media "medium_in_medium" and "water_in_medium",
        with per-voxel relative standard uncertainty. Voxels whose centre lies inside the
        applicator get zero (they are not tissue).
    """
    if (dwell_time_s is None) == (surface_dose_gy is None):
        raise RunSettingsError("give exactly one of dwell_time_s or surface_dose_gy")
    src = source or load_example_source()
    app = applicator(applicator_diameter_cm)
    if phantom.applicator_centre_mm is None or phantom.applicator_radius_mm is None:
        raise GeometryError("the phantom has no spherical applicator (centre and radius)")
    if abs(phantom.applicator_radius_mm - app.radius_mm) > 0.01:
        raise GeometryError(
            f"the phantom's applicator radius {phantom.applicator_radius_mm:g} mm does not match the "
            f"{app.diameter_cm:g} cm applicator ({app.radius_mm:g} mm)"
        )
    if dwell_time_s is not None:
        if not math.isfinite(dwell_time_s) or dwell_time_s <= 0:
            raise RunSettingsError(f"dwell time must be positive, got {dwell_time_s} s")
        rate = src.applicator(app.diameter_cm).surface_rate_v40_gy_min * src.output_check_factor
        surface = rate * dwell_time_s / 60.0
        how = (
            f"V4.0 surface rate {rate:.4f} Gy/min (TG-292 data of {src.name}, output check "
            f"{src.output_check_factor:.3f}) x {dwell_time_s:.1f} s"
        )
    else:
        assert surface_dose_gy is not None
        if not math.isfinite(surface_dose_gy) or surface_dose_gy <= 0:
            raise RunSettingsError(f"surface dose must be positive, got {surface_dose_gy} Gy")
        surface = float(surface_dose_gy)
        how = f"{surface:.3f} Gy to water in water at the applicator surface"
    calib_file = calibration_path or str(default_calibration_path())
    calibrations = load_calibration(calib_file)
    if app.diameter_cm not in calibrations:
        raise CommissioningError(
            f"no MC calibration for the {app.diameter_cm:g} cm applicator; run `iort commission`"
        )
    calib = calibrations[app.diameter_cm]
    spectrum_sha = applicator_spectrum().identity_sha256
    if calib.spectrum_sha256 != spectrum_sha:
        raise CommissioningError(
            "the MC calibration was made with another source spectrum or applicator filtration; "
            "run `iort commission`"
        )

    point_source = xray50_source(phantom.shaft_direction)
    problem = build_problem(
        phantom,
        point_source,
        phantom.applicator_centre_mm,
        app.radius_mm,
        app.material,
        options=options,
    )
    result = run_problem(
        problem,
        phantom.grid.shape,
        phantom.grid.voxel_volume_cc * 1000.0,
        histories,
        seed,
        n_batches,
        workers=workers,
        scheduler_address=scheduler_address,
        use_dask=use_dask,
        progress=progress,
    )
    if phantom.shaft_direction is not None:
        per_photon, calib_unc = calib.surface_dose_water_gy_per_photon, calib.rel_unc
    else:
        per_photon, calib_unc = (
            calib.isotropic_surface_dose_water_gy_per_photon,
            calib.isotropic_rel_unc,
        )
    scale = surface / per_photon
    inside = phantom.grid.distance_from_mm(phantom.applicator_centre_mm) < app.radius_mm
    calib_text = read_path(calib_file).text
    provenance = Provenance(
        engine=ENGINE_NAME,
        engine_version=__version__,
        device_data=(
            f"{src.name}; MC source model {MODEL_FILE} (applicator spectrum sha256 {spectrum_sha[:12]}); "
            f"MC calibration {per_photon:.4e} Gy/photon at the surface"
        ),
        device_data_sha256=_model_sha256(calib_text, src, spectrum_sha),
        inputs_sha256=_inputs_sha256(
            phantom,
            diameter=app.diameter_cm,
            surface=surface,
            histories=histories,
            seed=seed,
            n_batches=n_batches,
            options=(options or PhysicsOptions()).label(),
        ),
        calibration=(
            "V4.0 (TG-292) dose to water at the applicator surface; Monte Carlo Gy per emitted "
            "photon converted with the commissioning run in water (same source model)"
        ),
    )
    shadow = (
        f"probe shadow: {shadow_half_angle_deg():.0f} deg cone about the shaft (model estimate; "
        "polar anisotropy not published)"
        if phantom.shaft_direction is not None
        else "no shaft direction given: isotropic emission (probe shadow not modelled)"
    )
    notes = (
        f"{result.histories:.3g} histories, seed {seed}, {n_batches} batches; uncertainties are statistical "
        f"(history-by-batch); calibration statistical uncertainty {100 * calib_unc:.2f} %",
        shadow,
        "voxels whose centre lies inside the applicator carry no dose",
        "secondary electrons absorbed on the spot (CSDA range of 50 keV electrons in water ~0.04 mm)",
    )
    normalisation = (
        f"absolute: {how} = {surface:.3f} Gy D_w,w at the surface; x {scale:.4e} Gy per (Gy/photon)"
    )
    grids = []
    media: tuple[tuple[DoseMedium, np.ndarray, np.ndarray], ...] = (
        ("medium_in_medium", result.dose_medium_gy_per_photon, result.rel_unc_medium),
        ("water_in_medium", result.dose_water_gy_per_photon, result.rel_unc_water),
    )
    for medium, dose, unc in media:
        d = np.where(inside, 0.0, dose * scale)
        u = np.where(inside, 0.0, unc)
        grids.append(
            DoseGrid(
                grid=phantom.grid,
                dose_gy=d,
                medium=medium,
                normalisation=normalisation,
                provenance=provenance,
                rel_uncertainty=u,
                notes=notes,
            )
        )
    return grids[0], grids[1]
