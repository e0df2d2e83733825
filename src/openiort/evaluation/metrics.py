"""Dose metrics per structure and checks against the organ-at-risk limits data file."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from openiort.anatomy.phantom import Phantom
from openiort.datafiles import read_data
from openiort.dosegrid import DoseGrid
from openiort.evaluation.dvh import Dvh, DvhCalculator

# Structures that carry no dose to tissue (the applicator is plastic; the cavity holds it).
NOT_EVALUATED = ("applicator", "cavity")
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
    structure: str
    metric: str
    limit_value: float
    limit_unit: str
    value: float
    passed: bool
    source: str
    verification: str

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


def _constraint_rows() -> list[dict[str, str]]:
    return read_data("openiort.evaluation", "data/dose_constraints.csv").rows()


def metric_value(dvh: Dvh, metric: str) -> float:
    """Evaluate a metric name from the constraints file: Dmax, Dmean, D<v>cc, V<d>Gy_cc."""
    if metric == "Dmax":
        return dvh.dose_at_volume_cc(0.03)
    if metric == "Dmean":
        return dvh.mean_gy
    if m := re.fullmatch(r"D([0-9.]+)cc", metric):
        return dvh.dose_at_volume_cc(float(m.group(1)))
    if m := re.fullmatch(r"V([0-9.]+)Gy_cc", metric):
        return dvh.volume_at_dose_cc(float(m.group(1)))
    raise ValueError(f"dose_constraints.csv: unknown metric {metric!r}")


def check_constraints(dvhs: dict[str, Dvh]) -> list[ConstraintCheck]:
    checks = []
    for row in _constraint_rows():
        dvh = dvhs.get(row["structure"])
        if dvh is None:
            continue
        value = metric_value(dvh, row["metric"])
        limit = float(row["limit_value"])
        checks.append(
            ConstraintCheck(
                structure=row["structure"],
                metric=row["metric"],
                limit_value=limit,
                limit_unit=row["limit_unit"],
                value=float(np.round(value, 4)),
                passed=bool(value <= limit),
                source=row["source"],
                verification=row["verification"],
            )
        )
    return checks


def exceeded_limits(checks: list[ConstraintCheck]) -> list[str]:
    """One warning line per organ-at-risk limit a plan exceeds."""
    return [
        f"{c.structure} {c.metric} = {c.value:.2f} {c.limit_unit} exceeds {c.limit_value:g} {c.limit_unit} ({c.source})"
        for c in checks
        if not c.passed
    ]


def evaluate(
    phantom: Phantom, dose: DoseGrid
) -> tuple[dict[str, Dvh], dict[str, StructureMetrics], list[ConstraintCheck]]:
    """DVHs, metrics and organ-at-risk checks of a dose on a phantom, for any technique."""
    dvhs = evaluate_structures(phantom, dose)
    metrics = {name: structure_metrics(dvh, name) for name, dvh in dvhs.items()}
    return dvhs, metrics, check_constraints(dvhs)


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
