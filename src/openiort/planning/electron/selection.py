"""Choice of bevel, applicator and energy for a target, with each rejected alternative and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openiort.devices.electron import ElectronBeam, ElectronDevice
from openiort.planning.electron.errors import ElectronPlanningError


@dataclass(frozen=True)
class RejectedAlternative:
    applicator_cm: int | None
    bevel_deg: int | None
    energy_mev: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class TargetReach:
    """What the beam must cover: the target's depth and width, with margin and bolus."""

    thickness_mm: float  # as measured
    depth_mm: float  # water-equivalent thickness: the depth R90 (less any bolus) must reach
    width_mm: float
    margin_mm: float  # between the target edge and the 90 % isodose
    bolus_mm: float  # water-equivalent bolus on the gland surface

    @property
    def required_width_mm(self) -> float:
        """Width of the 90 % isodose at zmax that covers the target and its margins."""
        return self.width_mm + 2.0 * self.margin_mm


@dataclass(frozen=True)
class BeamChoice:
    """Forced settings (None: the planner chooses) and the gland-surface inclination."""

    surface_inclination_deg: float
    applicator_cm: int | None = None
    bevel_deg: int | None = None
    energy_mev: int | None = None


@dataclass
class BeamSelection:
    """The chosen setting and beam, what was rejected and why, and the warnings raised."""

    applicator_cm: int
    bevel_deg: int
    energy_mev: int
    beam: ElectronBeam
    r90_measured_mm: float
    rejected: list[RejectedAlternative] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _closest_bevel(device: ElectronDevice, inclination_deg: float) -> int:
    return min(device.bevels_deg, key=lambda b: (abs(b - inclination_deg), b))


def _lowest_energy(
    device: ElectronDevice, a: int, b: int, depth_needed_mm: float, bolus_mm: float
) -> int | None:
    for e in device.energies_mev:
        if device.r90_measured(a, b, e) - bolus_mm >= depth_needed_mm:
            return e
    return None


def _choose_bevel(
    dev: ElectronDevice,
    choice: BeamChoice,
    rejected: list[RejectedAlternative],
    warnings: list[str],
) -> int:
    """The bevel closest to the gland-surface inclination, or the forced one (checked)."""
    if choice.bevel_deg is not None:
        return dev.check_settings(dev.applicators_cm[0], choice.bevel_deg, dev.energies_mev[0])[1]
    incl = choice.surface_inclination_deg
    bevel = _closest_bevel(dev, incl)
    if incl > max(dev.bevels_deg):
        warnings.append(
            f"the gland surface is inclined {incl:.0f} deg to the "
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
                        f"bevel {b} deg is {abs(b - incl):g} deg from the "
                        "gland-surface "
                        f"inclination {incl:g} deg (chosen bevel {bevel} "
                        "deg is "
                        f"{abs(bevel - incl):g} deg off)"
                    ),
                )
            )
    return bevel


def _check_reach(dev: ElectronDevice, need: TargetReach, bevel: int) -> None:
    """Refuse a target deeper than every R90 of the device with this bevel."""
    max_r90 = max(
        dev.r90_measured(a, bevel, e) for a in dev.applicators_cm for e in dev.energies_mev
    )
    if need.depth_mm > max_r90 - need.bolus_mm:
        deepest = max(dev.r90_measured_mm.values())
        raise ElectronPlanningError(
            f"target thickness {need.thickness_mm:g} mm ({need.depth_mm:.1f} mm "
            "water-equivalent) is deeper than "
            f"every R90 of the {dev.name} with the {bevel} deg bevel (largest {max_r90:.1f} mm"
            + (f", less {need.bolus_mm:g} mm bolus" if need.bolus_mm else "")
            + f"; largest at any bevel {deepest:.1f} mm): electron IORT cannot cover it at the 90 "
            "% isodose"
        )


def _choose_applicator_and_energy(
    dev: ElectronDevice,
    need: TargetReach,
    bevel: int,
    choice: BeamChoice,
    rejected: list[RejectedAlternative],
    warnings: list[str],
) -> tuple[int, int]:
    """The smallest applicator whose 90 % isodose covers the width, at the lowest energy whose
    R90 (less bolus) reaches the depth; a forced applicator or energy is taken as given."""
    depth, bolus, required_width = need.depth_mm, need.bolus_mm, need.required_width_mm
    candidates = [choice.applicator_cm] if choice.applicator_cm is not None else dev.applicators_cm
    for a in candidates:
        e = (
            choice.energy_mev
            if choice.energy_mev is not None
            else _lowest_energy(dev, a, bevel, depth, bolus)
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
                        f"{depth + bolus:.1f} mm needed"
                    ),
                )
            )
            continue
        r90 = dev.r90_measured(a, bevel, e)
        if r90 - bolus < depth:
            raise ElectronPlanningError(
                f"energy {e} MeV with the {a} cm / {bevel} deg applicator has R90 {r90:.1f} mm"
                + (f" (less {bolus:g} mm bolus)" if bolus else "")
                + f" < target {depth:.1f} mm water-equivalent: the target would be "
                "under-dosed"
            )
        w90 = dev.beam(a, bevel, e).characteristics.width90_mm
        if w90 < required_width:
            if choice.applicator_cm is not None:
                warnings.append(
                    f"forced applicator {a} cm: its 90 % isodose is {w90:.1f} mm wide at zmax, "
                    "less than the "
                    f"{required_width:.1f} mm required; the target edge is under-dosed"
                )
                return a, e
            rejected.append(
                RejectedAlternative(
                    a,
                    bevel,
                    e,
                    (
                        f"90 % isodose {w90:.1f} mm wide at zmax < {required_width:.1f} mm "
                        "required "
                        f"(target width {need.width_mm:g} mm + 2 x {need.margin_mm:g} mm margin)"
                    ),
                )
            )
            continue
        return a, e
    widest = max(
        dev.beam(a, bevel, e).characteristics.width90_mm
        for a in dev.applicators_cm
        for e in dev.energies_mev
        if dev.r90_measured(a, bevel, e) - bolus >= depth
    )
    raise ElectronPlanningError(
        f"target width {need.width_mm:g} mm (+ 2 x {need.margin_mm:g} mm margin) exceeds the 90 % "
        "isodose width of every "
        f"applicator that reaches {depth:.1f} mm with the {bevel} deg bevel (widest "
        f"{widest:.1f} mm)"
    )


def _reject_the_others(
    dev: ElectronDevice,
    need: TargetReach,
    chosen: tuple[int, int, int],
    choice: BeamChoice,
    rejected: list[RejectedAlternative],
) -> None:
    """List the larger applicators and the other energies that the planner did not take."""
    a_sel, bevel, e_sel = chosen
    if choice.applicator_cm is None:
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
    if choice.energy_mev is None:
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
                            + (f" - {need.bolus_mm:g} mm bolus" if need.bolus_mm else "")
                            + f" < target {need.depth_mm:.1f} mm water-equivalent"
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


def _beam_data_warnings(dev: ElectronDevice, beam: ElectronBeam, r90_measured: float) -> list[str]:
    """Warnings on the chosen beam's data: R90 disagreement, data other than the release."""
    warnings = []
    chars = beam.characteristics
    if abs(chars.r90_mm - r90_measured) > 1.0:
        warnings.append(
            f"measured R90 {r90_measured:.1f} mm and Monte Carlo R90 {chars.r90_mm:.1f} mm of "
            f"{beam.key} differ by "
            "more than 1 mm; verify the beam data before treatment"
        )
    if not dev.beam_data_matches_release:
        warnings.append(
            f"beam data at {dev.beam_data_path} (SHA-256 {dev.beam_data_sha256[:12]}...) differ "
            "from the "
            "release the package was validated with"
        )
    return warnings


def select_beam(dev: ElectronDevice, need: TargetReach, choice: BeamChoice) -> BeamSelection:
    """Bevel, then applicator and energy, for ``need``; every alternative not taken, with why.

    Raises
    ------
    ElectronPlanningError
        A target deeper than every R90 or wider than every 90 % isodose, or a forced energy
        that under-doses it.
    ElectronSettingError
        A forced setting that is not in the device data.
    """
    rejected: list[RejectedAlternative] = []
    warnings: list[str] = []
    bevel = _choose_bevel(dev, choice, rejected, warnings)
    if choice.energy_mev is not None:
        dev.check_settings(dev.applicators_cm[0], dev.bevels_deg[0], choice.energy_mev)
    if choice.applicator_cm is not None:
        dev.check_settings(choice.applicator_cm, dev.bevels_deg[0], dev.energies_mev[0])
    _check_reach(dev, need, bevel)
    a_sel, e_sel = _choose_applicator_and_energy(dev, need, bevel, choice, rejected, warnings)
    _reject_the_others(dev, need, (a_sel, bevel, e_sel), choice, rejected)
    beam = dev.beam(a_sel, bevel, e_sel)
    r90_measured = dev.r90_measured(a_sel, bevel, e_sel)
    warnings += _beam_data_warnings(dev, beam, r90_measured)
    return BeamSelection(a_sel, bevel, e_sel, beam, r90_measured, rejected, warnings)
