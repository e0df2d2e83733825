"""Electron IORT planning (ELIOT technique): applicator, bevel, energy, monitor units, dose.

In ELIOT-style breast IORT the gland around the tumour bed is mobilised, the skin retracted out
of the beam and a shielding disc slipped between the gland and the pectoral muscle; the target
is the gland layer, of thickness ``anatomy.target_thickness_mm`` (measured with a needle) and
extent ``anatomy.target_width_mm``. The planner

* takes the bevel closest to the inclination of the gland surface to the applicator axis;
* takes the smallest applicator whose 90 % isodose, at the depth of maximum dose, is at least as
  wide as the target (plus an optional lateral margin), using for each applicator the lowest
  energy whose measured R90 (less any bolus) covers the water-equivalent target thickness;
* prescribes to the 90 % isodose (21 Gy by default, ELIOT) and computes monitor units with the
  air-pressure correction of the device worksheet, plus an independent second calculation from
  the Monte Carlo output factor;
* lists the alternatives it rejected and why, and, given a phantom, places the beam and the disc
  in it and reports target coverage and lung, heart, rib, chest-wall and skin doses.

Every default and literature constant is in ``devices/data/electron/planning_defaults.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from openiort.anatomy.phantom import Phantom
from openiort.case import Case
from openiort.delivery import DeviceDataRef, ElectronDelivery, ElectronPlacement
from openiort.devices.electron import (
    ElectronBeam,
    ElectronDevice,
    ElectronSettingError,
    ShieldingDisc,
    get_disc,
    load_electron_device,
    planning_value,
)
from openiort.dose.electron import (
    DiscPlacement,
    ElectronGeometryError,
    EliotGeometry,
    central_axis_dose,
    eliot_geometry,
    mean_energy_at_depth_mev,
    relative_electron_density,
)
from openiort.dosegrid import DoseGrid
from openiort.engines import make_engine
from openiort.errors import OpenIortInputError

KELVIN_OFFSET = 273.15  # degrees Celsius to kelvin (definition of the Celsius scale)
OAR_NAMES = ("lung", "heart", "ribs", "chest_wall", "skin")


class ElectronPlanningError(OpenIortInputError):
    """A case or request that cannot be planned with the electron device, with the reason."""


# --------------------------------------------------------------------------------------------
# Monitor units
# --------------------------------------------------------------------------------------------


def chamber_correction(
    device: ElectronDevice, pressure_hpa: float, temperature_c: float | None = None
) -> float:
    """Factor by which the monitor units scale for today's air (1 at reference conditions).

    An open monitor chamber reads less at lower air density, so each MU delivers more dose:
    MU scale with P / P_ref and, where the device corrects temperature, with T_ref / T (kelvin).
    """
    lo, hi = device.pressure_limits_hpa
    if not np.isfinite(pressure_hpa) or not lo <= pressure_hpa <= hi:
        raise ElectronPlanningError(
            f"air pressure {pressure_hpa} hPa is outside the plausible range {lo:g}-{hi:g} hPa "
            "(give the pressure measured today in hPa)"
        )
    factor = pressure_hpa / device.reference_pressure_hpa
    if device.temperature_correction:
        if temperature_c is None:
            raise ElectronPlanningError(
                f"{device.name}: its monitor chamber is open to air and corrected for temperature; "
                "give today's temperature (temperature_c)"
            )
        tlo, thi = device.temperature_limits_c
        if not np.isfinite(temperature_c) or not tlo <= temperature_c <= thi:
            raise ElectronPlanningError(
                f"temperature {temperature_c} degC is outside the plausible range {tlo:g}-{thi:g} "
                "degC"
            )
        if device.reference_temperature_c is None:
            raise ElectronPlanningError(
                f"{device.name}: device data lack the reference temperature"
            )
        factor *= (device.reference_temperature_c + KELVIN_OFFSET) / (temperature_c + KELVIN_OFFSET)
    elif temperature_c is not None:
        raise ElectronPlanningError(
            f"{device.name}: the device worksheet applies no temperature correction; "
            "leave temperature_c unset"
        )
    return float(factor)


def _check_mu_inputs(
    device: ElectronDevice, dose_cgy: float, isodose_pct: float, rescale: float
) -> None:
    if not np.isfinite(dose_cgy) or dose_cgy <= 0:
        raise ElectronPlanningError(f"dose must be a positive number of cGy, got {dose_cgy}")
    if dose_cgy > device.max_dose_cgy:
        raise ElectronPlanningError(
            f"dose {dose_cgy:g} cGy exceeds the worksheet limit of {device.max_dose_cgy:g} cGy "
            "(the worksheet takes the dose in cGy)"
        )
    if not np.isfinite(isodose_pct) or not 0 < isodose_pct <= 100:
        raise ElectronPlanningError(
            f"prescription isodose must be in (0, 100] %, got {isodose_pct}"
        )
    if not np.isfinite(rescale) or rescale <= 0:
        raise ElectronPlanningError(f"rescale factor must be positive, got {rescale}")


def monitor_units_exact(
    dose_cgy: float,
    applicator_cm: float,
    bevel_deg: float,
    energy_mev: float,
    pressure_hpa: float,
    isodose_pct: float = 90,
    rescale: float = 1.0,
    *,
    temperature_c: float | None = None,
    device: ElectronDevice | None = None,
    output_factor_cgy_per_mu: float | None = None,
) -> float:
    """Monitor units before rounding (see :func:`monitor_units`).

    ``output_factor_cgy_per_mu`` replaces the measured output factor (for the second check).
    """
    dev = device or load_electron_device()
    dev.check_settings(applicator_cm, bevel_deg, energy_mev)
    _check_mu_inputs(dev, dose_cgy, isodose_pct, rescale)
    of = (
        output_factor_cgy_per_mu
        if output_factor_cgy_per_mu is not None
        else dev.output_factor(applicator_cm, bevel_deg, energy_mev)
    )
    return float(
        dose_cgy
        / of
        / (isodose_pct / 100.0)
        * chamber_correction(dev, pressure_hpa, temperature_c)
        * rescale
    )


def monitor_units(
    dose_cgy: float,
    applicator_cm: float,
    bevel_deg: float,
    energy_mev: float,
    pressure_hpa: float,
    isodose_pct: float = 90,
    rescale: float = 1.0,
    *,
    temperature_c: float | None = None,
    device: ElectronDevice | None = None,
) -> int:
    """Monitor units for a prescription, as the clinic's worksheet computes them.

    ``MU = D / OF / (isodose/100) * P / P_ref * rescale`` (times ``T_ref / T`` where the device
    corrects temperature), rounded to the nearest integer (half to even, as the source worksheet).

    Parameters
    ----------
    dose_cgy:
        Prescribed dose in cGy at the ``isodose_pct`` isodose.
    applicator_cm, bevel_deg, energy_mev:
        Beam setting; must be in the device data.
    pressure_hpa:
        Air pressure today (hPa).
    isodose_pct:
        Prescription isodose, percent of the clinical-axis maximum.
    rescale:
        Per-beam rescale factor from commissioning (1 unless stated otherwise).
    temperature_c:
        Air temperature today, required only by devices that correct for it.
    device:
        Device data; the built-in LIAC HWL by default.

    Returns
    -------
    int
        Monitor units. Example (device README): 1250 cGy, 5 cm, 45 deg, 12 MeV, 950 hPa -> 920.

    Raises
    ------
    ElectronSettingError
        Setting not in the data.
    ElectronPlanningError
        Dose, isodose, pressure, temperature or rescale out of range.
    """
    return round(
        monitor_units_exact(
            dose_cgy,
            applicator_cm,
            bevel_deg,
            energy_mev,
            pressure_hpa,
            isodose_pct,
            rescale,
            temperature_c=temperature_c,
            device=device,
        )
    )


@dataclass(frozen=True)
class SecondCheck:
    """Independent MU calculation from the Monte Carlo output factor."""

    monitor_units: int
    monitor_units_exact: float
    output_factor_mc_cgy_per_mu: float
    output_factor_measured_cgy_per_mu: float
    difference_pct: float
    action_level_pct: float
    method: str

    @property
    def within_action_level(self) -> bool:
        return abs(self.difference_pct) <= self.action_level_pct

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["within_action_level"] = self.within_action_level
        return d


def second_check(
    dose_cgy: float,
    applicator_cm: float,
    bevel_deg: float,
    energy_mev: float,
    pressure_hpa: float,
    isodose_pct: float = 90,
    rescale: float = 1.0,
    *,
    temperature_c: float | None = None,
    device: ElectronDevice | None = None,
) -> SecondCheck:
    """Second MU calculation with the output factor from the Monte Carlo beam data.

    The MC output factor is the ratio of MC dose per history at the clinical-axis maximum to that
    of the calibration applicator, times the calibration; it shares only the calibration and the
    pressure reading with the primary calculation.
    """
    dev = device or load_electron_device()
    primary = monitor_units_exact(
        dose_cgy,
        applicator_cm,
        bevel_deg,
        energy_mev,
        pressure_hpa,
        isodose_pct,
        rescale,
        temperature_c=temperature_c,
        device=dev,
    )
    of_mc = dev.mc_output_factor(applicator_cm, bevel_deg, energy_mev)
    mu2 = monitor_units_exact(
        dose_cgy,
        applicator_cm,
        bevel_deg,
        energy_mev,
        pressure_hpa,
        isodose_pct,
        rescale,
        temperature_c=temperature_c,
        device=dev,
        output_factor_cgy_per_mu=of_mc,
    )
    return SecondCheck(
        monitor_units=round(mu2),
        monitor_units_exact=mu2,
        output_factor_mc_cgy_per_mu=of_mc,
        output_factor_measured_cgy_per_mu=dev.output_factor(applicator_cm, bevel_deg, energy_mev),
        difference_pct=100.0 * (mu2 - primary) / primary,
        action_level_pct=float(planning_value("second_check_action_level_pct")),
        method=(
            "output factor from the Monte Carlo data (dose per history at the clinical-axis "
            "maximum "
            f"relative to the {dev.calibration_applicator_cm} cm / {dev.calibration_bevel_deg} deg "
            "calibration applicator), same pressure correction"
        ),
    )


# --------------------------------------------------------------------------------------------
# Plan result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectedAlternative:
    applicator_cm: int | None
    bevel_deg: int | None
    energy_mev: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class StructureDose:
    volume_cc: float
    max_gy: float
    mean_gy: float
    d1cc_gy: float | None

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if v is None else round(float(v), 4)) for k, v in self.__dict__.items()}


@dataclass
class ElectronPlanResult:
    """An electron IORT plan: settings, MU, beam quantities, alternatives, dose and warnings."""

    device: dict[str, Any]
    applicator_diameter_cm: int
    bevel_deg: int
    energy_mev: int
    prescription_gy: float
    isodose_pct: float
    pressure_hpa: float
    temperature_c: float | None
    chamber_correction: float
    rescale: float
    output_factor_cgy_per_mu: float
    monitor_units: int
    monitor_units_exact: float
    second_check: SecondCheck
    dose_max_gy: float
    delivered_dose_max_gy: float
    beam: dict[str, float]
    r90_measured_mm: float
    target_thickness_mm: float
    target_water_equivalent_thickness_mm: float
    target_width_mm: float
    required_width90_mm: float
    surface_inclination_deg: float
    bolus_mm: float
    disc: dict[str, Any] | None
    depth_mm: NDArray[np.float64]
    depth_dose_gy: NDArray[np.float64]
    dose_at_depth_gy: dict[str, float]
    rejected_alternatives: list[RejectedAlternative]
    warnings: list[str]
    structures: dict[str, StructureDose] = field(default_factory=dict)
    target_coverage_pct: float | None = None
    dose: DoseGrid | None = None
    delivery: ElectronDelivery | None = None
    geometry: dict[str, Any] = field(default_factory=dict)
    target_mask: NDArray[np.bool_] | None = None

    @property
    def technique(self) -> str:
        return "electron"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for ``plan.json`` (the 3D dose is summarised, not included)."""
        return {
            "technique": self.technique,
            "device": self.device,
            "applicator_diameter_cm": self.applicator_diameter_cm,
            "bevel_deg": self.bevel_deg,
            "energy_mev": self.energy_mev,
            "prescription_gy": self.prescription_gy,
            "isodose_pct": self.isodose_pct,
            "pressure_hpa": self.pressure_hpa,
            "temperature_c": self.temperature_c,
            "chamber_correction": round(self.chamber_correction, 6),
            "rescale": self.rescale,
            "output_factor_cgy_per_mu": self.output_factor_cgy_per_mu,
            "monitor_units": self.monitor_units,
            "monitor_units_exact": round(self.monitor_units_exact, 3),
            "second_check": self.second_check.to_dict(),
            "dose_max_gy": round(self.dose_max_gy, 4),
            "delivered_dose_max_gy": round(self.delivered_dose_max_gy, 4),
            "beam": self.beam,
            "r90_measured_mm": self.r90_measured_mm,
            "target": {
                "thickness_mm": self.target_thickness_mm,
                "water_equivalent_thickness_mm": round(
                    self.target_water_equivalent_thickness_mm, 2
                ),
                "width_mm": self.target_width_mm,
                "required_width90_mm": self.required_width90_mm,
                "coverage_pct": None
                if self.target_coverage_pct is None
                else round(self.target_coverage_pct, 2),
            },
            "surface_inclination_deg": self.surface_inclination_deg,
            "bolus_mm": self.bolus_mm,
            "disc": self.disc,
            "depth_profile": {
                "depth_mm": [round(float(d), 3) for d in self.depth_mm],
                "dose_gy": [round(float(d), 5) for d in self.depth_dose_gy],
            },
            "dose_at_depth_gy": self.dose_at_depth_gy,
            "structures": {k: v.to_dict() for k, v in self.structures.items()},
            "rejected_alternatives": [r.to_dict() for r in self.rejected_alternatives],
            "geometry": self.geometry,
            "dose_grid": None
            if self.dose is None
            else {
                "grid": self.dose.grid.to_dict(),
                "medium": self.dose.medium,
                "normalisation": self.dose.normalisation,
                "provenance": self.dose.provenance.to_dict(),
                "notes": list(self.dose.notes),
            },
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


def _closest_bevel(device: ElectronDevice, inclination_deg: float) -> int:
    return min(device.bevels_deg, key=lambda b: (abs(b - inclination_deg), b))


def structure_dose(dose: DoseGrid, mask: NDArray[np.bool_]) -> StructureDose | None:
    """Volume, maximum, mean and D1cc (minimum dose to the hottest 1 cc) of a structure."""
    n = int(mask.sum())
    if n == 0:
        return None
    values = np.sort(dose.dose_gy[mask])[::-1]
    vox_cc = dose.grid.voxel_volume_cc
    k = int(np.ceil(1.0 / vox_cc))
    return StructureDose(
        volume_cc=n * vox_cc,
        max_gy=float(values[0]),
        mean_gy=float(values.mean()),
        d1cc_gy=float(values[k - 1]) if k <= n else None,
    )


@dataclass(frozen=True)
class _Geometry:
    entry: tuple[float, float, float]
    axis: tuple[float, float, float]
    target: NDArray[np.bool_] | None
    target_thickness_in_phantom_mm: float | None
    bevel_direction: tuple[float, float, float] | None = None
    surface_inclination_deg: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _phantom_geometry(
    phantom: Phantom,
    entry_point_mm: tuple[float, float, float] | None,
    axis: tuple[float, float, float] | None,
) -> _Geometry:
    """Entry point and axis from the phantom: -shaft_direction, shallowest face of the target."""
    if axis is None:
        if phantom.shaft_direction is None:
            raise ElectronPlanningError(
                "the phantom has no shaft_direction; give the beam axis explicitly"
            )
        axis = (
            -phantom.shaft_direction[0],
            -phantom.shaft_direction[1],
            -phantom.shaft_direction[2],
        )
    n = np.asarray(axis, dtype=np.float64)
    if n.shape != (3,) or not np.isfinite(n).all() or np.linalg.norm(n) < 1e-9:
        raise ElectronPlanningError(f"beam axis must be a finite non-zero 3-vector, got {axis}")
    n = n / np.linalg.norm(n)
    target = phantom.structures.get("target")
    thickness = None
    if target is not None and target.any():
        pts = phantom.grid.index_to_position_mm(np.argwhere(target).astype(np.float64))
        proj = pts @ n
        half_voxel = 0.5 * float(np.abs(np.asarray(phantom.grid.spacing_mm) * n).max())
        t_min = float(proj.min()) - half_voxel
        thickness = float(proj.max() - proj.min()) + 2 * half_voxel
        if entry_point_mm is None:
            centroid = pts.mean(axis=0)
            entry = centroid + (t_min - float(centroid @ n)) * n
            entry_point_mm = (float(entry[0]), float(entry[1]), float(entry[2]))
    if entry_point_mm is None:
        raise ElectronPlanningError(
            "the phantom has no 'target' structure to place the beam on; give entry_point_mm"
        )
    return _Geometry(
        entry_point_mm,
        (float(n[0]), float(n[1]), float(n[2])),
        target if target is not None and target.any() else None,
        thickness,
        details={"placement": "from the phantom's 'target' structure"},
    )


def _choose_geometry(
    phantom: Phantom,
    geometry: EliotGeometry | None,
    entry_point_mm: tuple[float, float, float] | None,
    axis: tuple[float, float, float] | None,
    thickness_mm: float,
    width_mm: float,
) -> _Geometry:
    """Beam placement: explicit ELIOT geometry, explicit entry/axis, ELIOT geometry from the
    tumour bed and chest wall, or the phantom's ``target`` structure, in that order."""
    if geometry is None and entry_point_mm is None and axis is None:
        has_chest = "chest_wall" in phantom.structures and phantom.structures["chest_wall"].any()
        if phantom.applicator_centre_mm is not None and has_chest:
            try:
                geometry = eliot_geometry(phantom, thickness_mm, width_mm)
            except ElectronGeometryError as exc:
                raise ElectronPlanningError(f"cannot place the ELIOT target: {exc}") from None
    if geometry is not None:
        return _Geometry(
            geometry.entry_point_mm,
            geometry.axis,
            geometry.target if geometry.target.any() else None,
            geometry.thickness_mm,
            geometry.bevel_direction,
            geometry.surface_inclination_deg,
            {"placement": "ELIOT gland layer on the pectoral fascia", **geometry.to_dict()},
        )
    return _phantom_geometry(phantom, entry_point_mm, axis)


def _disc_placement(
    beam: ElectronBeam,
    disc: ShieldingDisc,
    depth_mm: float,
    depth_w_mm: float,
    diameter_mm: float | None,
) -> DiscPlacement:
    """Disc under the target; by default centred on, and a margin wider than, the 50 % isodose
    across the beam at its water-equivalent depth (never narrower than the bevelled applicator's
    footprint, d / cos(bevel), plus the margin)."""
    margin = float(planning_value("disc_margin_mm"))
    x_lo, x_hi = beam.isodose_extent_mm(50.0, depth_w_mm, "x")
    y_lo, y_hi = beam.isodose_extent_mm(50.0, depth_w_mm, "y")
    centre = (0.5 * (x_lo + x_hi), 0.5 * (y_lo + y_hi))
    if diameter_mm is None:
        footprint = 10.0 * beam.applicator_cm / float(np.cos(np.radians(beam.bevel_deg)))
        diameter_mm = max(footprint, x_hi - x_lo, y_hi - y_lo) + 2.0 * margin
    return DiscPlacement(
        disc, depth_mm=depth_mm, diameter_mm=float(diameter_mm), centre_xy_mm=centre
    )


def _disc_rim_dose_pct(beam: ElectronBeam, disc: DiscPlacement, depth_w_mm: float) -> float:
    """Largest open-beam dose (% of the maximum) on the disc's rim at its face."""
    phi = np.linspace(0.0, 2.0 * np.pi, 144, endpoint=False)
    r = disc.diameter_mm / 2.0
    x = disc.centre_xy_mm[0] + r * np.cos(phi)
    y = disc.centre_xy_mm[1] + r * np.sin(phi)
    return float(beam.relative_dose(x, y, np.full_like(x, depth_w_mm)).max())


def _lowest_energy(
    device: ElectronDevice, a: int, b: int, depth_needed_mm: float, bolus_mm: float
) -> int | None:
    for e in device.energies_mev:
        if device.r90_measured(a, b, e) - bolus_mm >= depth_needed_mm:
            return e
    return None


def plan_electron(
    case: Case,
    phantom: Phantom | None = None,
    prescription_gy: float | None = None,
    isodose_pct: float | None = None,
    pressure_hpa: float | None = None,
    temperature_c: float | None = None,
    *,
    surface_inclination_deg: float | None = None,
    applicator_cm: int | None = None,
    bevel_deg: int | None = None,
    energy_mev: int | None = None,
    bolus_mm: float = 0.0,
    disc: str | None = "al_pb",
    disc_diameter_mm: float | None = None,
    lateral_margin_mm: float | None = None,
    rescale: float = 1.0,
    entry_point_mm: tuple[float, float, float] | None = None,
    axis: tuple[float, float, float] | None = None,
    bevel_direction: tuple[float, float, float] | None = None,
    density_scaling: bool = True,
    geometry: EliotGeometry | None = None,
    device: ElectronDevice | None = None,
) -> ElectronPlanResult:
    """Plan an ELIOT-style electron IORT treatment for a case.

    Parameters
    ----------
    case:
        The case; ``anatomy.target_thickness_mm`` and ``anatomy.target_width_mm`` are required.
    phantom:
        Optional voxel phantom; with it the 3D dose, target coverage and organ doses are
        computed. Placement, first that applies: ``geometry``; ``entry_point_mm``/``axis``
        (target = the phantom's ``target``); a phantom with a tumour-bed centre
        (``applicator_centre_mm``) and a ``chest_wall``: :func:`eliot_geometry` (gland layer on
        the fascia, depth axis = fascia normal, applicator along ``-shaft_direction``); else
        axis ``-shaft_direction`` entering at the shallowest face of the ``target`` structure.
    prescription_gy:
        Dose to the prescription isodose; default ``case.intent.prescription_gy`` or 21 Gy.
    isodose_pct:
        Prescription isodose (default 90 %).
    pressure_hpa, temperature_c:
        Air pressure (and temperature where the device needs it) today; without a pressure the
        MU are computed at the reference pressure and a warning says so.
    surface_inclination_deg:
        Angle between the gland surface normal and the applicator axis; selects the bevel
        (default: from the ELIOT geometry when there is one, else 0).
    applicator_cm, bevel_deg, energy_mev:
        Force a setting instead of choosing it.
    bolus_mm:
        Water-equivalent bolus on the gland surface.
    disc:
        Shielding disc type (``"al_pb"``, ``"steel"``) or ``None``.
    disc_diameter_mm:
        Disc diameter; default applicator diameter plus twice the default disc margin.
    lateral_margin_mm:
        Margin between target edge and 90 % isodose (default from the planning data).
    rescale:
        Per-beam MU rescale factor from commissioning.
    entry_point_mm, axis, bevel_direction:
        Beam placement overrides (patient LPS mm / unit vectors).
    density_scaling:
        Water-equivalent depth scaling in the phantom.
    geometry:
        Beam placement from :func:`openiort.dose.electron.eliot_geometry`.
    device:
        Electron device; the built-in LIAC HWL by default.

    Raises
    ------
    ElectronPlanningError
        Missing target measurements, a target deeper than every R90 or wider than every 90 %
        isodose, or inconsistent inputs.
    ElectronSettingError
        A forced setting that is not in the device data.
    """
    dev = device or load_electron_device()
    warnings: list[str] = []
    if case.intent.technique != "electron":
        warnings.append(
            f"the case's technique is {case.intent.technique!r}; this is an electron plan for "
            "comparison"
        )
    thickness = case.anatomy.target_thickness_mm
    width = case.anatomy.target_width_mm
    missing = [
        n
        for n, v in (("anatomy.target_thickness_mm", thickness), ("anatomy.target_width_mm", width))
        if v is None
    ]
    if missing:
        raise ElectronPlanningError(
            f"electron planning needs {' and '.join(missing)} (the mobilised gland layer: "
            "thickness "
            "measured with a needle, extent to treat)"
        )
    assert thickness is not None and width is not None
    if prescription_gy is None:
        prescription_gy = case.intent.prescription_gy or float(planning_value("prescription_gy"))
    iso = float(isodose_pct if isodose_pct is not None else planning_value("isodose_pct"))
    margin = float(
        lateral_margin_mm if lateral_margin_mm is not None else planning_value("lateral_margin_mm")
    )
    if not np.isfinite(bolus_mm) or bolus_mm < 0:
        raise ElectronPlanningError(f"bolus thickness must be >= 0 mm, got {bolus_mm}")
    if margin < 0:
        raise ElectronPlanningError(f"lateral margin must be >= 0 mm, got {margin}")
    _check_mu_inputs(dev, prescription_gy * 100.0, iso, rescale)

    place: _Geometry | None = None
    rho_target = 1.0
    if phantom is not None:
        place = _choose_geometry(phantom, geometry, entry_point_mm, axis, thickness, width)
        if bevel_direction is None:
            bevel_direction = place.bevel_direction
        if surface_inclination_deg is None and place.surface_inclination_deg is not None:
            surface_inclination_deg = place.surface_inclination_deg
        if place.target is not None:
            rho_target = float(relative_electron_density(phantom)[place.target].mean())
        if place.target_thickness_in_phantom_mm is not None:
            tol = 2.0 * float(max(phantom.grid.spacing_mm))
            if abs(place.target_thickness_in_phantom_mm - thickness) > tol:
                warnings.append(
                    f"the phantom's target is {place.target_thickness_in_phantom_mm:.1f} mm "
                    "thick along the "
                    f"beam axis, the case says {thickness:g} mm; the case value is used for "
                    "planning"
                )
    if surface_inclination_deg is None:
        surface_inclination_deg = 0.0
    if not np.isfinite(surface_inclination_deg) or not 0 <= surface_inclination_deg < 90:
        raise ElectronPlanningError(
            f"surface inclination must be in [0, 90) deg, got {surface_inclination_deg}"
        )
    depth_needed = thickness * rho_target
    required_width = width + 2.0 * margin

    rejected: list[RejectedAlternative] = []
    # Bevel
    if bevel_deg is None:
        bevel = _closest_bevel(dev, surface_inclination_deg)
        if surface_inclination_deg > max(dev.bevels_deg):
            warnings.append(
                f"the gland surface is inclined {surface_inclination_deg:.0f} deg to the "
                f"applicator axis, more than the largest bevel ({max(dev.bevels_deg)} deg): "
                "the applicator face cannot lie flat on it"
            )
        for b in dev.bevels_deg:
            if b != bevel:
                rejected.append(
                    RejectedAlternative(
                        None,
                        b,
                        None,
                        (
                            f"bevel {b} deg is {abs(b - surface_inclination_deg):g} deg from the "
                            "gland-surface "
                            f"inclination {surface_inclination_deg:g} deg (chosen bevel {bevel} "
                            "deg is "
                            f"{abs(bevel - surface_inclination_deg):g} deg off)"
                        ),
                    )
                )
    else:
        bevel = dev.check_settings(dev.applicators_cm[0], bevel_deg, dev.energies_mev[0])[1]
    if energy_mev is not None:
        dev.check_settings(dev.applicators_cm[0], dev.bevels_deg[0], energy_mev)
    if applicator_cm is not None:
        dev.check_settings(applicator_cm, dev.bevels_deg[0], dev.energies_mev[0])

    max_r90 = max(
        dev.r90_measured(a, bevel, e) for a in dev.applicators_cm for e in dev.energies_mev
    )
    if depth_needed > max_r90 - bolus_mm:
        deepest = max(dev.r90_measured_mm.values())
        raise ElectronPlanningError(
            f"target thickness {thickness:g} mm ({depth_needed:.1f} mm water-equivalent) is "
            "deeper than "
            f"every R90 of the {dev.name} with the {bevel} deg bevel (largest {max_r90:.1f} mm"
            + (f", less {bolus_mm:g} mm bolus" if bolus_mm else "")
            + f"; largest at any bevel {deepest:.1f} mm): electron IORT cannot cover it at the 90 "
            "% isodose"
        )

    # Applicator and energy
    chosen: tuple[int, int] | None = None
    candidates = [applicator_cm] if applicator_cm is not None else list(dev.applicators_cm)
    for a in candidates:
        e = (
            energy_mev
            if energy_mev is not None
            else _lowest_energy(dev, a, bevel, depth_needed, bolus_mm)
        )
        if e is None:
            best = max(dev.r90_measured(a, bevel, x) for x in dev.energies_mev)
            rejected.append(
                RejectedAlternative(
                    a,
                    bevel,
                    None,
                    (
                        f"no energy reaches: largest R90 {best:.1f} mm < "
                        f"{depth_needed + bolus_mm:.1f} mm needed"
                    ),
                )
            )
            continue
        r90 = dev.r90_measured(a, bevel, e)
        if r90 - bolus_mm < depth_needed:
            raise ElectronPlanningError(
                f"energy {e} MeV with the {a} cm / {bevel} deg applicator has R90 {r90:.1f} mm"
                + (f" (less {bolus_mm:g} mm bolus)" if bolus_mm else "")
                + f" < target {depth_needed:.1f} mm water-equivalent: the target would be "
                "under-dosed"
            )
        w90 = dev.beam(a, bevel, e).characteristics.width90_mm
        if w90 < required_width:
            if applicator_cm is not None:
                warnings.append(
                    f"forced applicator {a} cm: its 90 % isodose is {w90:.1f} mm wide at zmax, "
                    "less than the "
                    f"{required_width:.1f} mm required; the target edge is under-dosed"
                )
                chosen = (a, e)
                break
            rejected.append(
                RejectedAlternative(
                    a,
                    bevel,
                    e,
                    (
                        f"90 % isodose {w90:.1f} mm wide at zmax < {required_width:.1f} mm "
                        "required "
                        f"(target width {width:g} mm + 2 x {margin:g} mm margin)"
                    ),
                )
            )
            continue
        chosen = (a, e)
        break
    if chosen is None:
        widest = max(
            dev.beam(a, bevel, e).characteristics.width90_mm
            for a in dev.applicators_cm
            for e in dev.energies_mev
            if dev.r90_measured(a, bevel, e) - bolus_mm >= depth_needed
        )
        raise ElectronPlanningError(
            f"target width {width:g} mm (+ 2 x {margin:g} mm margin) exceeds the 90 % isodose "
            "width of every "
            f"applicator that reaches {depth_needed:.1f} mm with the {bevel} deg bevel (widest "
            f"{widest:.1f} mm)"
        )
    a_sel, e_sel = chosen
    if applicator_cm is None:
        for a in dev.applicators_cm:
            if a > a_sel:
                rejected.append(
                    RejectedAlternative(
                        a,
                        bevel,
                        None,
                        (
                            f"larger than needed: the {a_sel} cm applicator already covers the "
                            "target "
                            "(a larger field irradiates more normal tissue)"
                        ),
                    )
                )
    if energy_mev is None:
        for e in dev.energies_mev:
            r90 = dev.r90_measured(a_sel, bevel, e)
            if e < e_sel:
                rejected.append(
                    RejectedAlternative(
                        a_sel,
                        bevel,
                        e,
                        (
                            f"R90 {r90:.1f} mm"
                            + (f" - {bolus_mm:g} mm bolus" if bolus_mm else "")
                            + f" < target {depth_needed:.1f} mm water-equivalent"
                        ),
                    )
                )
            elif e > e_sel:
                rejected.append(
                    RejectedAlternative(
                        a_sel,
                        bevel,
                        e,
                        (
                            f"higher than needed: R90 {r90:.1f} mm; the lowest sufficient energy "
                            "spares the tissue "
                            "behind the target and lowers the disc's load"
                        ),
                    )
                )

    beam = dev.beam(a_sel, bevel, e_sel)
    chars = beam.characteristics
    r90_meas = dev.r90_measured(a_sel, bevel, e_sel)
    if abs(chars.r90_mm - r90_meas) > 1.0:
        warnings.append(
            f"measured R90 {r90_meas:.1f} mm and Monte Carlo R90 {chars.r90_mm:.1f} mm of "
            f"{beam.key} differ by "
            "more than 1 mm; verify the beam data before treatment"
        )
    if not dev.beam_data_matches_release:
        warnings.append(
            f"beam data at {dev.beam_data_path} (SHA-256 {dev.beam_data_sha256[:12]}...) differ "
            "from the "
            "release the package was validated with"
        )

    # Monitor units
    if pressure_hpa is None:
        pressure = dev.reference_pressure_hpa
        warnings.append(
            f"air pressure not given: MU computed at the reference pressure {pressure:g} hPa; "
            "recompute with today's pressure before treatment"
        )
    else:
        pressure = float(pressure_hpa)
    dose_cgy = prescription_gy * 100.0
    kp = chamber_correction(dev, pressure, temperature_c)
    mu_exact = monitor_units_exact(
        dose_cgy,
        a_sel,
        bevel,
        e_sel,
        pressure,
        iso,
        rescale,
        temperature_c=temperature_c,
        device=dev,
    )
    mu = round(mu_exact)
    check = second_check(
        dose_cgy,
        a_sel,
        bevel,
        e_sel,
        pressure,
        iso,
        rescale,
        temperature_c=temperature_c,
        device=dev,
    )
    if not check.within_action_level:
        warnings.append(
            f"independent MU check differs by {check.difference_pct:+.2f} % (action level "
            f"{check.action_level_pct:g} %): investigate before treatment"
        )
    of = dev.output_factor(a_sel, bevel, e_sel)
    dose_max = prescription_gy / (iso / 100.0)
    delivered_max = mu * of / kp / rescale / 100.0

    # Disc
    placement: DiscPlacement | None = None
    if disc is not None:
        d = get_disc(disc)
        placement = _disc_placement(
            beam, d, float(thickness), depth_needed + bolus_mm, disc_diameter_mm
        )
        if placement.diameter_mm < 10.0 * a_sel:
            warnings.append(
                f"disc diameter {placement.diameter_mm:g} mm is smaller than the applicator "
                f"({10 * a_sel} mm)"
            )
        rim = _disc_rim_dose_pct(beam, placement, depth_needed + bolus_mm)
        if rim > float(planning_value("disc_edge_warning_pct")):
            warnings.append(
                f"the beam reaches beyond the disc: {rim:.0f} % of the maximum dose at its rim; "
                "the chest wall beside it is not shielded (use a larger disc)"
            )
        e_disc = mean_energy_at_depth_mev(
            beam, depth_needed + bolus_mm, float(planning_value("mean_energy_per_r50_mev_per_cm"))
        )
        if d.max_stopped_energy_mev is None:
            warnings.append(
                f"disc {d.name}: transmission is not from published data "
                f"({d.verification['transmission'].split(':')[0]}); confirm with the disc's own "
                "data"
            )
        elif e_disc > d.max_stopped_energy_mev:
            warnings.append(
                f"mean electron energy at the disc is about {e_disc:.1f} MeV, above the "
                f"{d.max_stopped_energy_mev:g} MeV "
                f"for which its transmission bound ({d.transmission_fraction:g}) is documented"
            )
    else:
        warnings.append(
            "no shielding disc: the chest wall, ribs and lung receive the beam's full exit dose"
        )

    # Depth profile (uniform tissue of the target's electron density)
    step = float(planning_value("depth_profile_step_mm"))
    depth_end = max(chars.rp_mm / rho_target + 10.0, thickness + 20.0)
    depth = np.arange(0.0, depth_end + step / 2, step)
    prof = central_axis_dose(
        beam,
        depth,
        dose_max_gy=delivered_max,
        disc=placement,
        bolus_mm=bolus_mm,
        relative_density=rho_target,
    )
    report_depths = [float(x) for x in planning_value("dose_at_depth_report_mm")]
    at_depth = central_axis_dose(
        beam,
        np.array(report_depths),
        dose_max_gy=delivered_max,
        disc=placement,
        bolus_mm=bolus_mm,
        relative_density=rho_target,
    )
    dose_at_depth = {
        str(round(dd)): round(float(v), 4) for dd, v in zip(report_depths, at_depth, strict=True)
    }

    result = ElectronPlanResult(
        device=dev.to_dict(),
        applicator_diameter_cm=a_sel,
        bevel_deg=bevel,
        energy_mev=e_sel,
        prescription_gy=float(prescription_gy),
        isodose_pct=iso,
        pressure_hpa=pressure,
        temperature_c=temperature_c,
        chamber_correction=kp,
        rescale=rescale,
        output_factor_cgy_per_mu=of,
        monitor_units=mu,
        monitor_units_exact=mu_exact,
        second_check=check,
        dose_max_gy=dose_max,
        delivered_dose_max_gy=delivered_max,
        beam={
            **chars.to_dict(),
            "r90_mc_mm": round(chars.r90_mm, 3),
            "mc_rel_uncertainty_at_max": round(beam.rel_uncertainty_at_max, 6),
        },
        r90_measured_mm=r90_meas,
        target_thickness_mm=float(thickness),
        target_water_equivalent_thickness_mm=depth_needed,
        target_width_mm=float(width),
        required_width90_mm=required_width,
        surface_inclination_deg=float(surface_inclination_deg),
        bolus_mm=float(bolus_mm),
        disc=None if placement is None else placement.to_dict(),
        depth_mm=depth,
        depth_dose_gy=prof,
        dose_at_depth_gy=dose_at_depth,
        rejected_alternatives=rejected,
        warnings=warnings,
    )
    if phantom is not None and place is not None:
        _dose_in_phantom(
            result,
            beam,
            phantom,
            place,
            placement,
            bolus_mm,
            bevel_direction,
            density_scaling,
            dev,
            prescription_gy,
        )
    return result


def _dose_in_phantom(
    result: ElectronPlanResult,
    beam: ElectronBeam,
    phantom: Phantom,
    geometry: _Geometry,
    placement: DiscPlacement | None,
    bolus_mm: float,
    bevel_direction: tuple[float, float, float] | None,
    density_scaling: bool,
    dev: ElectronDevice,
    prescription_gy: float,
) -> None:
    result.delivery = ElectronDelivery(
        device=DeviceDataRef(
            name=dev.name,
            status="example",  # the built-in LIAC HWL data; department machines: issue 13
            version=dev.data_version,
            sha256=dev.beam_data_sha256,
        ),
        applicator_diameter_cm=result.applicator_diameter_cm,
        bevel_deg=result.bevel_deg,
        energy_mev=result.energy_mev,
        monitor_units=result.monitor_units,
        monitor_units_exact=result.monitor_units_exact,
        output_factor_cgy_per_mu=result.output_factor_cgy_per_mu,
        prescription_gy=prescription_gy,
        isodose_pct=result.isodose_pct,
        dose_max_gy=result.delivered_dose_max_gy,
        chamber_correction_mode="pressure_temperature"
        if dev.temperature_correction
        else "pressure",
        chamber_correction_factor=result.chamber_correction,
        reference_pressure_hpa=dev.reference_pressure_hpa,
        reference_temperature_c=dev.reference_temperature_c,
        placement=ElectronPlacement(
            entry_point_mm=geometry.entry,
            axis=geometry.axis,
            bevel_direction=bevel_direction,
            bolus_mm=bolus_mm,
            density_scaling=density_scaling,
            disc_type=None if placement is None else placement.disc.name,
            disc_depth_mm=None if placement is None else placement.depth_mm,
            disc_diameter_mm=None if placement is None else placement.diameter_mm,
            disc_centre_xy_mm=(0.0, 0.0) if placement is None else placement.centre_xy_mm,
        ),
    )
    dose = make_engine("electron.beamdata", dev).compute(result.delivery, phantom)
    result.dose = dose
    result.geometry = {
        **geometry.details,
        "entry_point_mm": list(geometry.entry),
        "axis": list(geometry.axis),
        "bevel_direction": None if bevel_direction is None else list(bevel_direction),
        "density_scaling": density_scaling,
    }
    result.target_mask = geometry.target
    for name in OAR_NAMES:
        mask = phantom.structures.get(name)
        if mask is not None:
            s = structure_dose(dose, mask)
            if s is not None:
                result.structures[name] = s
    target = geometry.target
    if target is not None:
        t = structure_dose(dose, target)
        assert t is not None
        result.structures["target"] = t
        result.target_coverage_pct = 100.0 * float(
            (dose.dose_gy[target] >= prescription_gy * (1 - 1e-9)).mean()
        )
    skin = phantom.structures.get("skin")
    if skin is not None and skin.any():
        level = (
            float(planning_value("skin_in_beam_isodose_pct")) / 100.0 * result.delivered_dose_max_gy
        )
        if float(dose.dose_gy[skin].max()) >= level:
            result.warnings.append(
                f"skin receives up to {float(dose.dose_gy[skin].max()):.1f} Gy, inside the "
                f"{planning_value('skin_in_beam_isodose_pct')} % isodose: retract the skin out of "
                "the beam"
            )


__all__ = [
    "ElectronPlanResult",
    "ElectronPlanningError",
    "ElectronSettingError",
    "RejectedAlternative",
    "SecondCheck",
    "chamber_correction",
    "monitor_units",
    "monitor_units_exact",
    "plan_electron",
    "second_check",
    "structure_dose",
]
