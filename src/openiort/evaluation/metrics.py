"""Dose metrics per structure and checks of a plan against organ-at-risk limits.

The limits, their files, metric names and dose definitions: :mod:`openiort.evaluation.limits`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid
from openiort.evaluation.dvh import Dvh, DvhCalculator
from openiort.evaluation.limits import (
    DOSE_DEFINITIONS,
    NOT_EVALUATED,
    UNIT_LABELS,
    LimitSet,
    OrganLimit,
    iort_default_limits,
    parse_metric,
)

TARGET_DOSE_LEVELS_GY = (5.0, 10.0, 20.0)


@dataclass(frozen=True)
class StructureMetrics:
    volume_cc: float
    mean_gy: float
    max_gy: float
    min_gy: float
    d0_1cc_gy: float
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, float]:
        d = asdict(self)
        extra = d.pop("extra")
        return {k: round(v, 4) for k, v in {**d, **extra}.items()}


@dataclass(frozen=True)
class ConstraintCheck:
    """One organ-at-risk limit checked on a plan.

    ``value`` is in ``limit_unit`` (a ``%Rx`` limit's value is in percent of the prescription);
    ``value`` and ``passed`` are None when the limit could not be checked (``note`` says why).
    ``dose_definition`` is the dose the value was computed from, per fraction
    (:data:`openiort.evaluation.limits.DOSE_DEFINITIONS`); ``limit_set`` names the set the
    limit belongs to (openiort's IORT defaults, a department file, the SBRT reference).
    """

    structure: str
    metric: str
    limit_value: float
    limit_unit: str
    value: float | None
    passed: bool | None
    source: str
    verification: str
    metric_label: str = ""
    dose_definition: str = ""
    dose_label: str = ""
    published_as: str = ""
    evidence: str = ""
    limit_set: str = ""
    note: str = ""

    @property
    def checked(self) -> bool:
        return self.passed is not None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def structure_metrics(dvh: Dvh, name: str) -> StructureMetrics:
    extra: dict[str, float] = {}
    if name == "target":
        for level in TARGET_DOSE_LEVELS_GY:
            extra[f"V{level:g}Gy_pct"] = dvh.volume_at_dose_pct(level)
        extra["D90_gy"] = dvh.dose_at_volume_pct(90)
        extra["D95_gy"] = dvh.dose_at_volume_pct(95)
    return StructureMetrics(
        volume_cc=dvh.total_volume_cc,
        mean_gy=dvh.mean_gy,
        max_gy=dvh.max_gy,
        min_gy=dvh.min_gy,
        d0_1cc_gy=dvh.dose_at_volume_cc(0.1),
        extra=extra,
    )


def evaluate_structures(phantom: Phantom, dose: DoseGrid) -> dict[str, Dvh]:
    calculator = DvhCalculator(dose.dose_gy, dose.grid)
    return {
        name: calculator.dvh(mask)
        for name, mask in phantom.structures.items()
        if name not in NOT_EVALUATED and mask.any()
    }


def metric_value(dvh: Dvh, metric: str, prescription_gy: float | None = None) -> float:
    """A metric named as in the limits files (:func:`openiort.evaluation.limits.parse_metric`):
    Dmax, Dmean and D<v>cc in Gy; V<d>Gy and V<p>%Rx in cc (V<p>%Rx needs the prescription)."""
    m = parse_metric(metric)
    if m.kind == "max":
        return dvh.max_gy
    if m.kind == "mean":
        return dvh.mean_gy
    if m.kind == "dose_at_cc":
        return dvh.dose_at_volume_cc(m.parameter)
    if m.kind == "volume_at_gy":
        return dvh.volume_at_dose_cc(m.parameter)
    if prescription_gy is None or prescription_gy <= 0:
        raise ValueError(f"{metric} needs the prescription dose")
    return dvh.volume_at_dose_cc(prescription_gy * m.parameter / 100.0)


def plan_dose_definition(technique: str, dose: DoseGrid) -> str:
    """The dose definition of a plan's dose grid: ``medium`` for dose to medium, else dose to
    water, which for x-ray is the V4.0 dose."""
    if dose.medium == "medium_in_medium":
        return "medium"
    return "V4.0" if technique == "xray" else "water"


DvhLookup = Callable[[str, str], Dvh | None]
"""(dose definition, structure) -> the structure's DVH on the dose of that definition, or None
when the plan has no dose of that definition."""


def _in_limit_unit(
    limit: OrganLimit, dvh: Dvh, prescription_gy: float | None
) -> tuple[float | None, str]:
    """The plan's value for ``limit`` in the limit's unit, or None and why."""
    metric = limit.parsed_metric
    needs_rx = metric.needs_prescription or limit.limit_unit == "%Rx"
    if needs_rx and (prescription_gy is None or prescription_gy <= 0):
        return None, "not checked: the limit is relative to the prescription, which is not known"
    value = metric_value(dvh, limit.metric, prescription_gy)
    if limit.limit_unit == "%Rx":
        assert prescription_gy is not None
        value = 100.0 * value / prescription_gy
    elif limit.limit_unit == "%":
        total = dvh.total_volume_cc
        value = 100.0 * value / total if total > 0 else 0.0
    return value, ""


def check_constraints(
    dvhs: Mapping[str, Dvh],
    *,
    technique: str,
    limits: LimitSet | None = None,
    prescription_gy: float | None = None,
    plan_definition: str | None = None,
    dvh_lookup: DvhLookup | None = None,
) -> list[ConstraintCheck]:
    """The limits that apply to a plan of ``technique`` checked on its DVHs.

    ``dvhs`` are the structures' DVHs on the plan's dose, whose definition is
    ``plan_definition`` (by default dose to water: ``V4.0`` for x-ray, ``water`` otherwise).
    ``limits``: a department's set (:func:`openiort.evaluation.limits.load_limits`) or the SBRT
    reference; by default openiort's IORT limits. A limit in another dose definition is checked
    on the DVH ``dvh_lookup`` gives; without one it is listed as not checked. Limits of
    structures the plan does not hold are left out.
    """
    chosen = limits if limits is not None else iort_default_limits()
    own = plan_definition or ("V4.0" if technique == "xray" else "water")
    checks = []
    for limit in chosen.for_technique(technique):
        if limit.structure not in dvhs:
            continue
        definition = limit.definition_for(technique)
        dvh: Dvh | None = dvhs[limit.structure] if definition == own else None
        if dvh is None and dvh_lookup is not None:
            dvh = dvh_lookup(definition, limit.structure)
        note = ""
        value: float | None = None
        if dvh is None:
            note = f"not checked: this plan has no {definition} dose (its dose is {own})"
        else:
            value, note = _in_limit_unit(limit, dvh, prescription_gy)
        checks.append(
            ConstraintCheck(
                structure=limit.structure,
                metric=limit.metric,
                limit_value=limit.limit_value,
                limit_unit=limit.limit_unit,
                value=None if value is None else float(np.round(value, 4)),
                passed=None if value is None else bool(value <= limit.limit_value),
                source=limit.source,
                verification=limit.verification,
                metric_label=limit.parsed_metric.label,
                dose_definition=definition,
                dose_label=DOSE_DEFINITIONS[definition],
                published_as=limit.published_as,
                evidence=limit.evidence,
                limit_set=chosen.label,
                note=note,
            )
        )
    return checks


def _limit_text(c: ConstraintCheck) -> str:
    return f"{c.limit_value:g} {UNIT_LABELS.get(c.limit_unit, c.limit_unit)}"


def exceeded_limits(checks: list[ConstraintCheck]) -> list[str]:
    """One warning line per organ-at-risk limit a plan exceeds, or that could not be checked."""
    lines = []
    for c in checks:
        unit = UNIT_LABELS.get(c.limit_unit, c.limit_unit)
        where = f"{c.dose_definition} dose, per fraction" if c.dose_definition else ""
        if c.passed is None:
            lines.append(
                f"{c.structure} {c.metric} ({where}) {c.note or 'not checked'}; limit "
                f"{_limit_text(c)} ({c.source})"
            )
        elif not c.passed:
            assert c.value is not None
            lines.append(
                f"{c.structure} {c.metric} = {c.value:.2f} {unit} exceeds {_limit_text(c)} "
                f"({where}; {c.source})"
            )
    return lines


def evaluate(
    phantom: Phantom,
    dose: DoseGrid,
    *,
    technique: str,
    limits: LimitSet | None = None,
    prescription_gy: float | None = None,
    definitions: Mapping[str, DoseGrid] | None = None,
) -> tuple[dict[str, Dvh], dict[str, StructureMetrics], list[ConstraintCheck]]:
    """DVHs, metrics and organ-at-risk checks of a plan's dose on its phantom.

    ``technique`` picks the limits (``limits``, by default openiort's IORT limits for it);
    ``prescription_gy`` (per fraction) is needed by limits relative to the prescription.
    ``definitions`` holds the plan's dose in other dose definitions, on the same grid (x-ray:
    ``{"TARGIT": ..., "V4.0": ...}``), for limits stated in them.
    """
    dvhs = evaluate_structures(phantom, dose)
    metrics = {name: structure_metrics(dvh, name) for name, dvh in dvhs.items()}
    own = plan_dose_definition(technique, dose)
    others = dict(definitions or {})
    if technique == "xray" and "V4.0" in others:
        others.setdefault("water", others["V4.0"])
    calculators: dict[str, DvhCalculator] = {}
    cache: dict[tuple[str, str], Dvh] = {}

    def lookup(definition: str, structure: str) -> Dvh | None:
        grid = others.get(definition)
        mask = phantom.structures.get(structure)
        if grid is None or mask is None:
            return None
        if grid.grid != dose.grid:
            raise ValueError(f"the {definition} dose is not on the plan's grid")
        if (definition, structure) not in cache:
            if definition not in calculators:
                calculators[definition] = DvhCalculator(grid.dose_gy, grid.grid)
            cache[(definition, structure)] = calculators[definition].dvh(mask)
        return cache[(definition, structure)]

    checks = check_constraints(
        dvhs,
        technique=technique,
        limits=limits,
        prescription_gy=prescription_gy,
        plan_definition=own,
        dvh_lookup=lookup,
    )
    return dvhs, metrics, checks


def radial_profile_gy(
    dose: DoseGrid,
    centre_mm: tuple[float, float, float],
    radius_mm: float,
    depths_mm: np.ndarray,
    tissue: np.ndarray,
) -> np.ndarray:
    """Mean dose in tissue over thin spherical shells at ``depths_mm`` from a sphere's surface.

    Used for techniques whose dose is not a single depth-dose curve (HDR balloons): the
    profile averages over directions.
    """
    depth = dose.grid.distance_from_mm(centre_mm)[tissue] - radius_mm
    values = dose.dose_gy[tissue]
    half = 0.5 * max(dose.grid.spacing_mm)
    out = np.zeros(len(depths_mm))
    for i, z in enumerate(depths_mm):
        shell = np.abs(depth - z) <= half
        out[i] = values[shell].mean() if shell.any() else np.nan
    return out
