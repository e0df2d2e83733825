"""Organ-at-risk limits: the files that hold them, their metrics and their dose definitions.

A limits file is a CSV with ``#`` comment lines (its source header) and the columns of
:data:`COLUMNS`, one limit per row:

``technique``
    ``xray``, ``electron``, ``hdr``, or ``all`` (every technique).
``structure``
    a structure of the patient model (:data:`EVALUATED_STRUCTURES`).
``metric``
    named exactly (:func:`parse_metric`): ``Dmax`` (the hottest DVH sample: one voxel, or a
    sub-voxel point where the dose is steep), ``Dmean``, ``D<v>cc`` (the minimum dose to the
    hottest ``v`` cc: ``D0.03cc``, ``D0.1cc``, ``D1cc``), ``V<d>Gy`` (the volume receiving at
    least ``d`` Gy) and ``V<p>%Rx`` (the volume receiving at least ``p`` % of the prescription).
``limit_value``, ``limit_unit``
    a dose metric in ``Gy`` or ``%Rx`` (percent of the prescription), a volume metric in ``cc``
    or ``%`` (of the structure's volume). A plan is within a limit when its value is at most
    the limit (a limit reached is not exceeded).
``dose_definition``
    the dose the limit is compared with (:data:`DOSE_DEFINITIONS`), always per fraction
    (session): ``TARGIT`` (x-ray: the nominal TARGIT dose) and ``V4.0`` (x-ray: absorbed dose to
    water, AAPM TG-292), ``water`` (absorbed dose to water; for x-ray the V4.0 dose) or
    ``medium`` (absorbed dose to medium, from a Monte Carlo engine).
``published_as``
    the dose the number was published in, when it is not ``dose_definition`` itself (a measured
    skin dose, a trial's TG-43 dose); empty means ``dose_definition``.
``evidence``
    what kind of source backs the number (:data:`EVIDENCE`).
``verification``
    how the number was checked against its source: ``verified: <where>`` (abstract, table,
    protocol text), ``secondary: <what>``, ``recalled`` (not re-checked), ``derived``, or
    ``department`` (a department's own protocol). Anything but ``verified`` is provisional.
``source``
    the citation.

openiort ships two sets: :func:`iort_default_limits` (the default, per technique, from the IORT
literature) and :func:`sbrt_reference_limits` (single-fraction stereotactic limits, for
reference only). A department's own file in the same format is read with :func:`load_limits`,
which reports every problem of the file at once (:class:`LimitsFileError`).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from openiort.anatomy.phantom import STRUCTURE_NAMES
from openiort.datafiles import DataFile, path_label, read_data, read_path
from openiort.errors import OpenIortInputError

Technique = Literal["xray", "electron", "hdr"]
TECHNIQUES: tuple[str, ...] = ("xray", "electron", "hdr")
ALL_TECHNIQUES = "all"

COLUMNS: tuple[str, ...] = (
    "technique",
    "structure",
    "metric",
    "limit_value",
    "limit_unit",
    "dose_definition",
    "published_as",
    "evidence",
    "verification",
    "source",
)

# Structures that carry no dose to tissue (the applicator is plastic; the cavity holds it; the
# electron shielding disc is metal).
NOT_EVALUATED: tuple[str, ...] = ("applicator", "cavity", "disc")
EVALUATED_STRUCTURES: tuple[str, ...] = tuple(s for s in STRUCTURE_NAMES if s not in NOT_EVALUATED)

#: What each dose definition means, as the limits tables say it (always per fraction).
DOSE_DEFINITIONS: dict[str, str] = {
    "TARGIT": "nominal TARGIT dose (50 kV; the INTRABEAM calibration), Gy per fraction",
    "V4.0": "absorbed dose to water, V4.0 definition (50 kV; AAPM TG-292), Gy per fraction",
    "water": "absorbed dose to water, Gy per fraction",
    "medium": "absorbed dose to medium (Monte Carlo), Gy per fraction",
}
#: The dose definitions a limit of each technique may be stated in.
ALLOWED_DEFINITIONS: dict[str, tuple[str, ...]] = {
    "xray": ("TARGIT", "V4.0", "water", "medium"),
    "electron": ("water", "medium"),
    "hdr": ("water", "medium"),
    ALL_TECHNIQUES: ("water", "medium"),
}

EVIDENCE: tuple[str, ...] = (
    "consensus",
    "trial protocol",
    "practice guidance",
    "several series",
    "single series",
    "adopted from another technique",
    "department protocol",
    "assumption",
)
VERIFICATION_KINDS: tuple[str, ...] = ("verified", "secondary", "recalled", "derived", "department")

DOSE_UNITS = ("Gy", "%Rx")
VOLUME_UNITS = ("cc", "%")
UNIT_LABELS = {"Gy": "Gy", "%Rx": "% of Rx", "cc": "cc", "%": "%"}

_NUMBER = r"(\d+(?:\.\d+)?)"
_METRIC_FORMS = "Dmax, Dmean, D<v>cc (D0.03cc, D0.1cc, D1cc), V<d>Gy (V10Gy) or V<p>%Rx (V150%Rx)"


class LimitsFileError(OpenIortInputError):
    """A limits file that cannot be used; ``problems`` holds one line per problem."""


@dataclass(frozen=True)
class Metric:
    """A metric name parsed: ``kind`` is ``max``, ``mean``, ``dose_at_cc``, ``volume_at_gy``
    or ``volume_at_pct_rx``; ``parameter`` the cc, Gy or % of the name (0 for max and mean)."""

    name: str
    kind: Literal["max", "mean", "dose_at_cc", "volume_at_gy", "volume_at_pct_rx"]
    parameter: float

    @property
    def is_dose(self) -> bool:
        return self.kind in ("max", "mean", "dose_at_cc")

    @property
    def needs_prescription(self) -> bool:
        return self.kind == "volume_at_pct_rx"

    @property
    def label(self) -> str:
        """What the metric is, in words (shown beside its name in the limits tables)."""
        p = f"{self.parameter:g}"
        if self.kind == "max":
            return "maximum dose (hottest DVH sample: a voxel, or a sub-voxel point in steep dose)"
        if self.kind == "mean":
            return "mean dose"
        if self.kind == "dose_at_cc":
            near_point = " (near-point maximum)" if self.parameter <= 0.035 else ""
            return f"minimum dose to the hottest {p} cc{near_point}"
        if self.kind == "volume_at_gy":
            return f"volume receiving at least {p} Gy"
        return f"volume receiving at least {p} % of the prescription"


def parse_metric(name: str) -> Metric:
    """The metric a name stands for; raises ValueError naming the accepted forms."""
    if name == "Dmax":
        return Metric(name, "max", 0.0)
    if name == "Dmean":
        return Metric(name, "mean", 0.0)
    if m := re.fullmatch(rf"D{_NUMBER}cc", name):
        if float(m.group(1)) > 0:
            return Metric(name, "dose_at_cc", float(m.group(1)))
    elif m := re.fullmatch(rf"V{_NUMBER}Gy", name):
        return Metric(name, "volume_at_gy", float(m.group(1)))
    elif m := re.fullmatch(rf"V{_NUMBER}%Rx", name):
        return Metric(name, "volume_at_pct_rx", float(m.group(1)))
    raise ValueError(f"unknown metric {name!r}: use {_METRIC_FORMS}")


@dataclass(frozen=True)
class OrganLimit:
    """One row of a limits file, checked."""

    technique: str
    structure: str
    metric: str
    limit_value: float
    limit_unit: str
    dose_definition: str
    published_as: str
    evidence: str
    verification: str
    source: str

    @property
    def parsed_metric(self) -> Metric:
        return parse_metric(self.metric)

    @property
    def verified(self) -> bool:
        return self.verification.startswith("verified")

    def definition_for(self, technique: str) -> str:
        """The dose definition this limit is compared in for a plan of ``technique``: for x-ray,
        ``water`` is the V4.0 dose (V4.0 is absorbed dose to water)."""
        if technique == "xray" and self.dose_definition == "water":
            return "V4.0"
        return self.dose_definition

    def applies_to(self, technique: str) -> bool:
        return self.technique in (technique, ALL_TECHNIQUES)


@dataclass(frozen=True)
class LimitSet:
    """The limits of one file: ``label`` says which set it is wherever its checks are shown."""

    label: str
    file: str
    sha256: str
    header: tuple[str, ...]
    limits: tuple[OrganLimit, ...]

    def for_technique(self, technique: str) -> tuple[OrganLimit, ...]:
        """The limits that apply to a plan of ``technique`` (its own and ``all`` rows)."""
        if technique not in TECHNIQUES:
            raise ValueError(f"unknown technique {technique!r}: one of {', '.join(TECHNIQUES)}")
        return tuple(lim for lim in self.limits if lim.applies_to(technique))


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _row_problems(row: dict[str, str]) -> tuple[list[str], OrganLimit | None]:
    """Every problem of one row (without its line number), and the limit when there is none."""
    problems: list[str] = []
    get = {k: (row.get(k) or "").strip() for k in COLUMNS}
    technique = get["technique"]
    if technique not in (*TECHNIQUES, ALL_TECHNIQUES):
        problems.append(
            f"technique {technique!r} is not one of {', '.join((*TECHNIQUES, ALL_TECHNIQUES))}"
        )
    if get["structure"] not in EVALUATED_STRUCTURES:
        problems.append(
            f"structure {get['structure']!r} is not one of {', '.join(EVALUATED_STRUCTURES)}"
        )
    metric: Metric | None
    try:
        metric = parse_metric(get["metric"])
    except ValueError as exc:
        metric = None
        problems.append(f"metric: {exc}")
    unit = get["limit_unit"]
    value = _number(get["limit_value"])
    if value is None:
        problems.append(f"limit_value {get['limit_value']!r} is not a number")
    elif metric is not None and metric.is_dose and value <= 0:
        problems.append(f"limit_value {value:g} must be positive for the dose metric {metric.name}")
    elif value < 0:
        problems.append(f"limit_value {value:g} must not be negative")
    elif unit == "%" and value > 100:
        problems.append(f"limit_value {value:g} % exceeds 100 % of the structure's volume")
    if metric is not None:
        units = DOSE_UNITS if metric.is_dose else VOLUME_UNITS
        if unit not in units:
            kind = "a dose" if metric.is_dose else "a volume"
            problems.append(
                f"limit_unit {unit!r} does not fit {metric.name}, {kind} metric: use "
                + " or ".join(units)
            )
    elif unit not in (*DOSE_UNITS, *VOLUME_UNITS):
        problems.append(
            f"limit_unit {unit!r} is not one of {', '.join((*DOSE_UNITS, *VOLUME_UNITS))}"
        )
    definition = get["dose_definition"]
    allowed = ALLOWED_DEFINITIONS.get(technique, tuple(DOSE_DEFINITIONS))
    if definition not in allowed:
        where = f" for technique {technique}" if technique in ALLOWED_DEFINITIONS else ""
        problems.append(f"dose_definition {definition!r} is not one of {', '.join(allowed)}{where}")
    if get["evidence"] not in EVIDENCE:
        problems.append(f"evidence {get['evidence']!r} is not one of {', '.join(EVIDENCE)}")
    if get["verification"].split(":")[0].strip() not in VERIFICATION_KINDS:
        problems.append(
            f"verification {get['verification']!r} must start with one of "
            f"{', '.join(VERIFICATION_KINDS)} (e.g. 'verified: abstract')"
        )
    if not get["source"]:
        problems.append("source is empty: cite where the limit comes from")
    if problems or value is None:
        return problems, None
    return [], OrganLimit(
        technique=technique,
        structure=get["structure"],
        metric=get["metric"],
        limit_value=value,
        limit_unit=unit,
        dose_definition=definition,
        published_as=get["published_as"],
        evidence=get["evidence"],
        verification=get["verification"],
        source=get["source"],
    )


def _data_lines(text: str) -> Iterable[tuple[int, str]]:
    """(line number, line) of the lines that are not comments, blank lines kept out."""
    for number, line in enumerate(io.StringIO(text), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, line


def parse_limits(file: DataFile, label: str) -> LimitSet:
    """A limits file's rows, checked; raises :class:`LimitsFileError` with every problem."""
    where = file.label
    try:
        text = file.text
    except UnicodeDecodeError:
        raise LimitsFileError(f"{where}: not UTF-8 text", source=where) from None
    lines = list(_data_lines(text))
    if not lines:
        raise LimitsFileError(
            f"{where}: no header row; the columns are {','.join(COLUMNS)}", source=where
        )
    header_number, header_line = lines[0]
    header = [h.strip() for h in next(csv.reader([header_line]))]
    problems: list[str] = []
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing:
        problems.append(f"{where} line {header_number}: missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"{where} line {header_number}: unknown column(s) {', '.join(unknown)}")
    if problems:
        raise LimitsFileError(*problems, source=where)
    limits: list[OrganLimit] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    for number, line in lines[1:]:
        values = next(csv.reader([line]))
        if len(values) != len(header):
            problems.append(
                f"{where} line {number}: {len(values)} values for {len(header)} columns"
            )
            continue
        row_problems, limit = _row_problems(dict(zip(header, values, strict=True)))
        problems += [f"{where} line {number}: {p}" for p in row_problems]
        if limit is None:
            continue
        key = (limit.technique, limit.structure, limit.metric, limit.dose_definition)
        if key in seen:
            problems.append(
                f"{where} line {number}: repeats line {seen[key]} ({limit.technique} "
                f"{limit.structure} {limit.metric}, {limit.dose_definition})"
            )
            continue
        seen[key] = number
        limits.append(limit)
    if not limits and not problems:
        problems.append(f"{where}: the file holds no limits")
    if problems:
        raise LimitsFileError(*problems, source=where)
    return LimitSet(
        label=label,
        file=where,
        sha256=file.sha256,
        header=tuple(file.header),
        limits=tuple(limits),
    )


@cache
def iort_default_limits() -> LimitSet:
    """openiort's default organ-at-risk limits for IORT, per technique (cited, see the file)."""
    return parse_limits(
        read_data("openiort.evaluation", "data/iort_oar_limits.csv"),
        "openiort IORT defaults (evaluation/data/iort_oar_limits.csv)",
    )


@cache
def sbrt_reference_limits() -> LimitSet:
    """Single-fraction stereotactic (SABR) limits: a reference, not IORT limits, not a default."""
    return parse_limits(
        read_data("openiort.evaluation", "data/sbrt_single_fraction_reference.csv"),
        "SBRT single-fraction limits, for reference only (not IORT-specific)",
    )


def load_limits(path: str | Path) -> LimitSet:
    """A department's own limits file (the format of the module's docstring), checked.

    Raises
    ------
    LimitsFileError
        If the file cannot be read, or with every problem of its rows (one line each).
    """
    p = Path(path)
    try:
        file = read_path(p)
    except OSError as exc:
        raise LimitsFileError(
            f"{path_label(p)}: cannot be read ({exc.strerror or exc})", source=path_label(p)
        ) from None
    return parse_limits(file, f"department limits ({p.name}, SHA-256 {file.sha256[:12]})")
