"""What the rule variables read: the case fields, plus facts the case model does not hold yet.

Some guideline criteria need information that the normative case vocabulary does not record
(for example a prior ipsilateral cancer, an excluding criterion of TARGIT-A). Such fields are
listed in :data:`PENDING_FIELDS`; until the case model carries them they are missing, unless
the caller supplies them explicitly (``--fact NAME=VALUE`` on the command line). Nothing here
is ever guessed: a field that is not known is ``None``.

Before final pathology the APBI guidelines may be evaluated provisionally on the preoperative
findings: :data:`PATHOLOGY_PROXIES` names, for each pathology field that has one, the imaging or
core-biopsy finding that stands in for it, and :class:`Facts` substitutes it when the case has
no ``pathology`` block and ``basis == "preoperative"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from openiort.case import Case, CaseError
from openiort.errors import OpenIortInputError

Basis = Literal["pathology", "preoperative"]


@dataclass(frozen=True)
class PendingField:
    """A case field a guideline needs that the case model does not define (yet)."""

    path: str
    type: type
    meaning: str
    needed_by: str


PENDING_FIELDS: dict[str, PendingField] = {
    f.path: f
    for f in (
        PendingField(
            "patient.brca2_mutation",
            bool,
            "known germline BRCA2 mutation (patient.brca_mutation does not say which gene)",
            "TARGIT-A exclusion targita-exc-brca2",
        ),
        PendingField(
            "patient.prior_ipsilateral_cancer_or_rt",
            bool,
            "previous cancer and/or irradiation of the same breast",
            "TARGIT-A exclusion targita-exc-prior",
        ),
        PendingField(
            "preoperative.bilateral_cancer",
            bool,
            "cancer in both breasts at diagnosis (synchronous bilateral)",
            "TARGIT-A exclusion targita-exc-bilat",
        ),
        PendingField(
            "preoperative.gross_nodal_disease",
            bool,
            "axillary nodes clinically malignant or proven by cytology/scan (needed when cN1)",
            "TARGIT-A exclusion targita-exc-grossnodes",
        ),
        PendingField(
            "preoperative.neoadjuvant_weeks",
            float,
            "duration of primary systemic therapy before surgery, weeks (needed when "
            "neoadjuvant_therapy is true; up to 4 weeks was allowed)",
            "TARGIT-A exclusion targita-exc-neoadj",
        ),
        PendingField(
            "pathology.eic_pct_lumpectomy",
            float,
            "percentage of the lumpectomy specimen involved with DCIS (TARGIT-US definition, "
            "not the usual EIC definition held in pathology.eic)",
            "TARGIT-US exclusion targitus-exc-eic",
        ),
        PendingField(
            "intent.within_registry_or_trial",
            bool,
            "IORT is given within a prospective registry or clinical trial",
            "ASTRO-2017 low-energy x-ray IORT statement",
        ),
    )
}


def _proxy_field(path: str) -> Callable[[Facts], tuple[Any, str] | None]:
    def read(facts: Facts) -> tuple[Any, str] | None:
        value = facts.raw(path)
        return None if value is None else (value, f"{path} = {value!r}")

    return read


def _proxy_centricity(facts: Facts) -> tuple[Any, str] | None:
    # One obvious lesion on imaging is a clinically unicentric cancer; several lesions may lie
    # in one quadrant or in several, which imaging counts alone cannot tell.
    count = facts.raw("preoperative.lesion_count")
    if count is None or count > 1:
        return None
    return "unicentric", f"preoperative.lesion_count = {count}"


PATHOLOGY_PROXIES: dict[str, Callable[[Facts], tuple[Any, str] | None]] = {
    "pathology.size_mm": _proxy_field("preoperative.imaging_size_mm"),
    "pathology.histology": _proxy_field("preoperative.biopsy_histology"),
    "pathology.grade": _proxy_field("preoperative.biopsy_grade"),
    "pathology.eic": _proxy_field("preoperative.biopsy_eic"),
    "pathology.centricity": _proxy_centricity,
}


@dataclass(frozen=True)
class Reading:
    """One case field as read: its value (``None`` if not known) and how it was obtained."""

    path: str
    value: Any
    observed: str  # e.g. "pathology.margin_mm = 1.5"; empty when missing


class FactError(OpenIortInputError):
    """An extra fact that is not a pending field, has the wrong type, or contradicts the case."""


def parse_fact(text: str) -> tuple[str, Any]:
    """Parse ``NAME=VALUE`` for a pending field, with its declared type.

    Raises
    ------
    FactError
        If the name is not a pending field or the value does not have the field's type.
    """
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or name not in PENDING_FIELDS:
        known = ", ".join(sorted(PENDING_FIELDS))
        raise FactError(f"--fact {text!r}: expected NAME=VALUE with NAME one of: {known}")
    kind = PENDING_FIELDS[name].type
    if kind is bool:
        lowered = raw.lower()
        if lowered not in ("true", "false", "yes", "no"):
            raise FactError(f"--fact {name}: expected true or false, got {raw!r}")
        return name, lowered in ("true", "yes")
    try:
        value = float(raw)
    except ValueError:
        raise FactError(f"--fact {name}: expected a number, got {raw!r}") from None
    if value < 0:
        raise FactError(f"--fact {name}: must not be negative, got {raw!r}")
    return name, value


def _check_extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, value in extra.items():
        if name not in PENDING_FIELDS:
            raise FactError(f"extra fact {name!r} is not a pending case field")
        if value is None:
            continue
        kind = PENDING_FIELDS[name].type
        ok = (
            isinstance(value, bool)
            if kind is bool
            else (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0)
        )
        if not ok:
            raise FactError(f"extra fact {name}: expected {kind.__name__}, got {value!r}")
        checked[name] = value
    return checked


NODAL_STAGE_POSITIVE_NODES: dict[str, tuple[float, float]] = {
    # Number of positive nodes each pN category allows (AJCC 8th edition definitions):
    # ITCs only (pN0(i+)) are not counted as positive nodes; pN1mi/pN1a: 1-3 nodes;
    # pN2a: 4-9; pN3 includes infraclavicular or supraclavicular spread with any count >= 1.
    "pN0": (0, 0),
    "pN0(i+)": (0, 0),
    "pN1mi": (1, 3),
    "pN1a": (1, 3),
    "pN2a": (4, 9),
    "pN3": (1, 100),
}


def consistency_problems(case: Case) -> list[str]:
    """Contradictions between case fields that would make a verdict meaningless."""
    problems: list[str] = []
    p = case.pathology
    if p is None:
        return problems
    if p.nodal_stage in NODAL_STAGE_POSITIVE_NODES and p.positive_nodes is not None:
        lo, hi = NODAL_STAGE_POSITIVE_NODES[p.nodal_stage]
        if not lo <= p.positive_nodes <= hi:
            problems.append(
                f"pathology.positive_nodes: value {p.positive_nodes} contradicts "
                f"pathology.nodal_stage {p.nodal_stage!r} (allows {lo:g} to {hi:g})"
            )
    if p.eic is False and p.eic_size_mm:
        problems.append(
            f"pathology.eic_size_mm: value {p.eic_size_mm:g} given but pathology.eic is false"
        )
    if (
        p.focality == "unifocal"
        and p.multifocal_total_size_mm is not None
        and p.size_mm is not None
        and p.multifocal_total_size_mm != p.size_mm
    ):
        problems.append(
            "pathology.multifocal_total_size_mm: given for a unifocal tumour and differs "
            "from pathology.size_mm"
        )
    return problems


class Facts:
    """Read access to one case for the rule variables.

    Parameters
    ----------
    case
        The validated case.
    extra
        Values for :data:`PENDING_FIELDS` not in the case model (path -> value).
    basis
        ``"pathology"``: pathology fields read the ``pathology`` block. ``"preoperative"``:
        used when that block is absent; pathology fields with a proxy in
        :data:`PATHOLOGY_PROXIES` read the preoperative finding instead, the others are missing.

    Raises
    ------
    CaseError
        If case fields contradict each other (see :func:`consistency_problems`).
    FactError
        If an extra fact is not a pending field, has the wrong type or contradicts the case.
    """

    def __init__(
        self, case: Case, extra: Mapping[str, Any] | None = None, basis: Basis = "pathology"
    ):
        problems = consistency_problems(case)
        if problems:
            raise CaseError(f"case {case.patient.id}", problems)
        self.case = case
        self.extra = _check_extra(extra or {})
        self.basis: Basis = basis
        for name, value in self.extra.items():
            in_case = self._model_value(name)
            if in_case[0] and in_case[1] is not None and in_case[1] != value:
                raise FactError(
                    f"extra fact {name}={value!r} contradicts the case ({in_case[1]!r})"
                )

    def _model_value(self, path: str) -> tuple[bool, Any]:
        """(whether the case model defines the field, its value)."""
        block_name, _, field = path.partition(".")
        block = getattr(self.case, block_name, None)
        if block is None:
            # An absent optional block (pathology before surgery): the field exists, unknown.
            return block_name in Case.model_fields, None
        if not isinstance(block, BaseModel) or field not in type(block).model_fields:
            return False, None
        return True, getattr(block, field)

    def raw(self, path: str) -> Any:
        """The value of a case (or pending) field, ``None`` if not known; no proxies."""
        defined, value = self._model_value(path)
        if value is None and path in self.extra:
            return self.extra[path]
        if not defined and path not in PENDING_FIELDS:
            raise KeyError(f"{path} is neither a case field nor a pending field")
        return value

    def read(self, path: str) -> Reading:
        """A field with the preoperative proxy applied where the basis asks for it."""
        if self.basis == "preoperative" and path.startswith("pathology."):
            proxy = PATHOLOGY_PROXIES.get(path)
            got = proxy(self) if proxy is not None else None
            if got is None:
                return Reading(path, None, "")
            value, observed = got
            return Reading(path, value, f"{path} ≈ {observed} (preoperative)")
        value = self.raw(path)
        return Reading(path, value, "" if value is None else f"{path} = {_show(value)}")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
