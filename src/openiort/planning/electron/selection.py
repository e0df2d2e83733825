"""Choice of bevel, applicator and energy for a target, with each rejected alternative and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openiort.devices.electron import ElectronBeam, ElectronDevice, planning_value
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
    bolus_mm: float | None  # water-equivalent bolus on the gland surface; None: the planner's

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
    bolus_mm: float = 0.0
    bolus_reason: str = ""
    rejected: list[RejectedAlternative] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _closest_bevel(device: ElectronDevice, inclination_deg: float) -> int:
    return min(device.bevels_deg, key=lambda b: (abs(b - inclination_deg), b))


def buildup_depth_mm(beam: ElectronBeam, pct: float = 90.0) -> float:
    """Depth (water, mm) where the clinical-axis dose first rises to ``pct`` % (0 if the surface
    dose already reaches it): the part of the layer a beam without bolus under-doses."""
    depth, pdd = beam.central_axis()
    above = np.nonzero(pdd >= pct)[0]
    if above.size == 0:
        return float("inf")
    j = int(above[0])
    if j == 0:
        return 0.0
    d0, d1, p0, p1 = depth[j - 1], depth[j], pdd[j - 1], pdd[j]
    return float(d0 + (pct - p0) * (d1 - d0) / (p1 - p0))


def _ceil_step(value_mm: float, step_mm: float) -> float:
    return float(np.ceil(max(value_mm, 0.0) / step_mm - 1e-9) * step_mm)


@dataclass(frozen=True)
class _Fit:
    """Whether one setting covers the layer at the 90 % isodose, with the bolus it needs."""

    ok: bool
    bolus_mm: float
    reason: str  # why not, or why this bolus


def _fit(dev: ElectronDevice, need: TargetReach, a: int, b: int, e: int) -> _Fit:
    """Does (a, b, e) put the whole layer inside its 90 % isodose on the clinical axis?

    The measured R90, less the bolus, must reach the layer's far side. Without a bolus from the
    case the planner chooses one: enough to lift the build-up (the dose below 90 % near the
    surface) into it, and enough to keep R90 within ``max_r90_beyond_layer_mm`` of the disc.
    """
    r90 = dev.r90_measured(a, b, e)
    depth = need.depth_mm
    if need.bolus_mm is not None:
        bolus = float(need.bolus_mm)
        if r90 - bolus < depth:
            return _Fit(
                False,
                bolus,
                f"R90 {r90:.1f} mm"
                + (f" - {bolus:g} mm bolus" if bolus else "")
                + f" < layer {depth:.1f} mm water-equivalent",
            )
        return _Fit(True, bolus, "bolus set in the case" if bolus else "")
    if r90 < depth:
        return _Fit(False, 0.0, f"R90 {r90:.1f} mm < layer {depth:.1f} mm water-equivalent")
    step = float(planning_value("buildup_bolus_step_mm"))
    buildup = buildup_depth_mm(dev.beam(a, b, e))
    for_buildup = _ceil_step(buildup, step)
    beyond = float(planning_value("max_r90_beyond_layer_mm"))
    for_thin = _ceil_step(r90 - depth - beyond, step)
    bolus = max(for_buildup, for_thin)
    if r90 - bolus < depth:
        return _Fit(
            False,
            bolus,
            f"R90 {r90:.1f} mm reaches the layer's far side ({depth:.1f} mm water-equivalent) "
            f"but the dose stays below 90 % down to {buildup:.1f} mm; the {bolus:g} mm bolus "
            f"that lifts it into the layer leaves R90 at {r90 - bolus:.1f} mm: the top or the "
            "bottom of the layer would be under-dosed",
        )
    reasons = []
    if for_buildup > 0:
        reasons.append(
            f"{for_buildup:g} mm lifts the build-up (90 % reached at {buildup:.1f} mm) out of "
            "the layer"
        )
    if for_thin > for_buildup:
        reasons.append(
            f"{for_thin:g} mm keeps R90 ({r90:.1f} mm) within {beyond:g} mm of the disc under "
            f"the {depth:.1f} mm layer"
        )
    return _Fit(True, bolus, "; ".join(reasons))


def _bevel_candidates(
    dev: ElectronDevice,
    choice: BeamChoice,
    rejected: list[RejectedAlternative],
    warnings: list[str],
) -> list[int]:
    """The forced bevel alone (checked); else the one closest to the gland-surface inclination
    followed by the flatter ones (tried in turn when the layer is too thick for it)."""
    if choice.bevel_deg is not None:
        return [dev.check_settings(dev.applicators_cm[0], choice.bevel_deg, dev.energies_mev[0])[1]]
    incl = choice.surface_inclination_deg
    bevel = _closest_bevel(dev, incl)
    if incl > max(dev.bevels_deg):
        warnings.append(
            f"the gland surface is inclined {incl:.0f} deg to the "
            f"applicator axis, more than the largest bevel ({max(dev.bevels_deg)} deg): "
            "the applicator face cannot lie flat on it"
        )
    for b in dev.bevels_deg:
        if b > bevel:
            rejected.append(
                RejectedAlternative(
                    None,
                    b,
                    None,
                    f"bevel {b} deg is {abs(b - incl):g} deg from the gland-surface inclination "
                    f"{incl:g} deg (bevel {bevel} deg is {abs(bevel - incl):g} deg off)",
                )
            )
    return [bevel, *sorted((b for b in dev.bevels_deg if b < bevel), reverse=True)]


def _too_thick_message(
    dev: ElectronDevice, need: TargetReach, bevel: int, applicators: list[int]
) -> str:
    """Why nothing reaches the far side with this bevel, and what would."""
    best = max(dev.r90_measured(a, bevel, e) for a in applicators for e in dev.energies_mev)
    bolus = 0.0 if need.bolus_mm is None else float(need.bolus_mm)
    what = (
        f"the gland layer, {need.thickness_mm:g} mm ({need.depth_mm:.1f} mm water-equivalent)"
        + (f" under {bolus:g} mm bolus" if bolus else "")
        + f", is deeper than the 90 % isodose of every setting of the {dev.name} with the "
        f"{bevel} deg bevel"
        + (f" and the {applicators[0]} cm applicator" if len(applicators) == 1 else "")
        + f" (largest R90 {best:.1f} mm)"
    )
    helps = []
    flatter = [
        b
        for b in dev.bevels_deg
        if b < bevel
        and any(_fit(dev, need, a, b, e).ok for a in applicators for e in dev.energies_mev)
    ]
    if flatter:
        helps.append(f"a flatter bevel ({max(flatter)} deg)")
    larger = [
        a
        for a in dev.applicators_cm
        if a > max(applicators) and any(_fit(dev, need, a, bevel, e).ok for e in dev.energies_mev)
    ]
    if larger:
        helps.append(f"a larger applicator ({min(larger)} cm)")
    if bolus and any(
        _fit(
            dev,
            TargetReach(need.thickness_mm, need.depth_mm, need.width_mm, need.margin_mm, None),
            a,
            bevel,
            e,
        ).ok
        for a in applicators
        for e in dev.energies_mev
    ):
        helps.append("less bolus")
    if helps:
        return f"{what}: use {' or '.join(helps)}"
    return (
        f"{what}: no applicator, bevel and energy of this machine covers it at the 90 % "
        "isodose; the case is not suitable for electron IORT with it"
    )


def _too_thin_message(dev: ElectronDevice, need: TargetReach, a: int, bevel: int) -> str | None:
    """With a bolus from the case: the lowest energy reaching far beyond the disc, and the
    bolus that would bring it back (None when the layer is not too thin)."""
    if need.bolus_mm is None:
        return None
    e = dev.energies_mev[0]
    r90 = dev.r90_measured(a, bevel, e) - float(need.bolus_mm)
    beyond = float(planning_value("max_r90_beyond_layer_mm"))
    if r90 - need.depth_mm <= beyond:
        return None
    extra = _ceil_step(r90 - need.depth_mm - beyond, float(planning_value("buildup_bolus_step_mm")))
    return (
        f"the gland layer, {need.thickness_mm:g} mm ({need.depth_mm:.1f} mm water-equivalent), "
        f"is too thin for the lowest energy ({e} MeV, R90 {r90:.1f} mm with the "
        f"{need.bolus_mm:g} mm bolus set in the case): the disc would sit near the dose maximum; "
        f"use {float(need.bolus_mm) + extra:g} mm bolus (or leave the bolus to the planner)"
    )


def _choose_applicator_and_energy(
    dev: ElectronDevice,
    need: TargetReach,
    bevel: int,
    choice: BeamChoice,
    rejected: list[RejectedAlternative],
    warnings: list[str],
) -> tuple[int, int, _Fit] | None:
    """The smallest applicator whose 90 % isodose covers the width, at the lowest energy whose
    90 % isodose (with its bolus) covers the layer; a forced applicator or energy is taken as
    given. None when no energy reaches the layer with this bevel."""
    required_width = need.required_width_mm
    candidates = [choice.applicator_cm] if choice.applicator_cm is not None else dev.applicators_cm
    reached = False
    for a in candidates:
        if choice.energy_mev is not None:
            fit = _fit(dev, need, a, bevel, choice.energy_mev)
            if not fit.ok:
                raise ElectronPlanningError(
                    f"energy {choice.energy_mev} MeV with the {a} cm / {bevel} deg applicator: "
                    f"{fit.reason}: the target would be under-dosed"
                )
            e: int | None = choice.energy_mev
        else:
            e, fit = None, _Fit(False, 0.0, "")
            for x in dev.energies_mev:
                fit = _fit(dev, need, a, bevel, x)
                if fit.ok:
                    e = x
                    break
        if e is None:
            best = max(dev.r90_measured(a, bevel, x) for x in dev.energies_mev)
            rejected.append(
                RejectedAlternative(
                    a,
                    bevel,
                    None,
                    f"no energy covers the layer: largest R90 {best:.1f} mm, "
                    f"{need.depth_mm:.1f} mm water-equivalent needed",
                )
            )
            continue
        reached = True
        w90 = dev.beam(a, bevel, e).characteristics.width90_mm
        if w90 < required_width:
            if choice.applicator_cm is not None:
                warnings.append(
                    f"forced applicator {a} cm: its 90 % isodose is {w90:.1f} mm wide at zmax, "
                    f"less than the {required_width:.1f} mm required; the target edge is "
                    "under-dosed"
                )
                return a, e, fit
            rejected.append(
                RejectedAlternative(
                    a,
                    bevel,
                    e,
                    f"90 % isodose {w90:.1f} mm wide at zmax < {required_width:.1f} mm required "
                    f"(target width {need.width_mm:g} mm + 2 x {need.margin_mm:g} mm margin)",
                )
            )
            continue
        return a, e, fit
    if not reached:
        return None
    widest = max(
        dev.beam(a, bevel, e).characteristics.width90_mm
        for a in dev.applicators_cm
        for e in dev.energies_mev
        if _fit(dev, need, a, bevel, e).ok
    )
    raise ElectronPlanningError(
        f"target width {need.width_mm:g} mm (+ 2 x {need.margin_mm:g} mm margin) exceeds the 90 % "
        "isodose width of every "
        f"applicator that covers {need.depth_mm:.1f} mm with the {bevel} deg bevel (widest "
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
                        f"larger than needed: the {a_sel} cm applicator already covers the "
                        "target (a larger field irradiates more normal tissue)",
                    )
                )
    if choice.energy_mev is None:
        for e in dev.energies_mev:
            r90 = dev.r90_measured(a_sel, bevel, e)
            if e < e_sel:
                rejected.append(
                    RejectedAlternative(a_sel, bevel, e, _fit(dev, need, a_sel, bevel, e).reason)
                )
            elif e > e_sel:
                rejected.append(
                    RejectedAlternative(
                        a_sel,
                        bevel,
                        e,
                        f"higher than needed: R90 {r90:.1f} mm; the lowest sufficient energy "
                        "spares the tissue behind the target and lowers the disc's load",
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
    """Bevel, then applicator, energy and bolus for ``need``; every alternative not taken, with
    why.

    Raises
    ------
    ElectronPlanningError
        A layer deeper than every 90 % isodose (saying what would reach it), too thin for the
        lowest energy with the bolus set in the case, wider than every 90 % isodose, or a forced
        energy that under-doses it.
    ElectronSettingError
        A forced setting that is not in the device data.
    """
    rejected: list[RejectedAlternative] = []
    warnings: list[str] = []
    if choice.energy_mev is not None:
        dev.check_settings(dev.applicators_cm[0], dev.bevels_deg[0], choice.energy_mev)
    if choice.applicator_cm is not None:
        dev.check_settings(choice.applicator_cm, dev.bevels_deg[0], dev.energies_mev[0])
    bevels = _bevel_candidates(dev, choice, rejected, warnings)
    applicators = (
        [choice.applicator_cm] if choice.applicator_cm is not None else list(dev.applicators_cm)
    )
    picked = None
    for bevel in bevels:
        tried: list[RejectedAlternative] = []
        picked = _choose_applicator_and_energy(dev, need, bevel, choice, tried, warnings)
        if picked is not None:
            rejected += tried
            break
        if bevel == bevels[-1]:
            raise ElectronPlanningError(_too_thick_message(dev, need, bevels[0], applicators))
        rejected.append(
            RejectedAlternative(
                None,
                bevel,
                None,
                f"no applicator and energy covers the {need.depth_mm:.1f} mm water-equivalent "
                f"layer with the {bevel} deg bevel: a flatter bevel is used",
            )
        )
        warnings.append(
            f"the layer is too thick for the {bevel} deg bevel that the surface inclination "
            "calls for: a flatter bevel is used, the applicator face does not lie flat on the gland"
        )
    assert picked is not None
    a_sel, e_sel, fit = picked
    if choice.bevel_deg is None:
        incl = choice.surface_inclination_deg
        for b in dev.bevels_deg:
            if b < bevel:
                rejected.append(
                    RejectedAlternative(
                        None,
                        b,
                        None,
                        f"bevel {b} deg is {abs(b - incl):g} deg from the gland-surface "
                        f"inclination {incl:g} deg (bevel {bevel} deg is {abs(bevel - incl):g} "
                        "deg off)",
                    )
                )
    thin = _too_thin_message(dev, need, a_sel, bevel)
    if thin is not None and choice.energy_mev is None:
        raise ElectronPlanningError(thin)
    _reject_the_others(dev, need, (a_sel, bevel, e_sel), choice, rejected)
    beam = dev.beam(a_sel, bevel, e_sel)
    r90_measured = dev.r90_measured(a_sel, bevel, e_sel)
    warnings += _beam_data_warnings(dev, beam, r90_measured)
    if need.bolus_mm is not None:
        buildup = buildup_depth_mm(beam)
        if buildup > need.bolus_mm + 0.5:
            warnings.append(
                f"with the {need.bolus_mm:g} mm bolus set in the case the dose reaches 90 % only "
                f"at {buildup - need.bolus_mm:.1f} mm into the gland: the tumour bed at its "
                "surface is under-dosed"
            )
    return BeamSelection(
        a_sel, bevel, e_sel, beam, r90_measured, fit.bolus_mm, fit.reason, rejected, warnings
    )
