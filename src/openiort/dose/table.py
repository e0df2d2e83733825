"""Table dose engine for 50 kV spherical applicators.

Dose to water in water (D_w,w): the applicator's measured or commissioned depth-dose curve in
water, applied isotropically about the applicator centre. Assumptions, stated in every result:

- Tissue is treated as water (no heterogeneity correction); the Monte Carlo engine gives dose
  to medium.
- The dose is isotropic. In the plane perpendicular to the probe it is within about +/-2 %
  (Xiao et al. IJMPCERO 2015); towards the probe shaft the real dose is lower (self-absorption
  in the drift tube), and no polar anisotropy table is published (shared notes 1.7), so the
  engine over-estimates the dose in a cone around the shaft.
- Voxels outside the body (air) get no dose; voxels inside the applicator carry the surface
  dose so that interpolation at the surface is not biased (they are not reported as tissue).
"""

from __future__ import annotations

import hashlib

import numpy as np

from openiort import __version__
from openiort.anatomy.phantom import Phantom
from openiort.devices.xray import XraySource
from openiort.dosegrid import DoseGrid, Provenance

ENGINE_NAME = "openiort.table (isotropic water depth-dose)"


def radial_depth_mm(phantom: Phantom) -> np.ndarray:
    """Distance of every voxel centre from the applicator surface (negative inside it)."""
    if phantom.applicator_centre_mm is None or phantom.applicator_radius_mm is None:
        raise ValueError("the phantom has no spherical applicator")
    return (
        phantom.grid.distance_from_mm(phantom.applicator_centre_mm) - phantom.applicator_radius_mm
    )


def compute(
    source: XraySource, applicator_diameter_cm: float, treatment_time_min: float, phantom: Phantom
) -> DoseGrid:
    """3D dose to water for ``treatment_time_min`` of irradiation with the given applicator."""
    if treatment_time_min <= 0:
        raise ValueError(f"treatment time must be positive, got {treatment_time_min} min")
    if (
        phantom.applicator_radius_mm is None
        or abs(phantom.applicator_radius_mm - applicator_diameter_cm * 5) > 1e-6
    ):
        raise ValueError("the phantom's applicator does not match the planned applicator")
    depth = radial_depth_mm(phantom)
    # Inside the applicator the surface dose is carried (depth clamped at 0) so that sub-voxel
    # interpolation at the applicator surface does not mix in a false zero; it is not a dose
    # to tissue. Air outside the body gets none.
    in_body = (
        phantom.material_ids != phantom.materials.index("air")
        if "air" in phantom.materials
        else np.ones(phantom.grid.shape, dtype=bool)
    )
    app = source.applicator(applicator_diameter_cm)
    surface_dose_gy = app.surface_rate_v40_gy_min * source.output_check_factor * treatment_time_min
    dose = np.zeros(phantom.grid.shape, dtype=np.float64)
    dose[in_body] = surface_dose_gy * source.relative_dose_water(
        applicator_diameter_cm, np.maximum(depth[in_body], 0.0)
    )
    inputs = hashlib.sha256(
        f"{applicator_diameter_cm}|{treatment_time_min!r}|{phantom.applicator_centre_mm}|{phantom.grid}".encode()
        + phantom.material_ids.tobytes()
    ).hexdigest()
    return DoseGrid(
        grid=phantom.grid,
        dose_gy=dose,
        medium="water_in_water",
        normalisation=(
            "absolute, V4.0 definition as Zeiss defines it (nominal dose to water, not corrected "
            "for the chamber's volume averaging): "
            f"V4.0 surface rate {app.surface_rate_v40_gy_min:.4f} Gy/min x output check "
            f"{source.output_check_factor:.3f} x {treatment_time_min:.2f} min x relative depth-dose"
        ),
        provenance=Provenance(
            engine=ENGINE_NAME,
            engine_version=__version__,
            device_data=f"{source.name}; depth-dose: {source.depth_dose_origin}",
            device_data_sha256=source.data_sha256,
            inputs_sha256=inputs,
            calibration="V4.0 (TG-292): absorbed dose to water from the PTW 34013 chamber formalism",
        ),
        notes=(
            "tissue treated as water; isotropic about the applicator centre (shaft-side deficit not modelled)",
            "voxels inside the applicator carry the surface dose (for interpolation only); air gets none",
        ),
    )
