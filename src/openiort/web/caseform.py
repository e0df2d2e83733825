"""The case form, derived from the case model so that it always offers exactly its fields.

Each field of :class:`openiort.case.Case` becomes one input named ``block.field``: a choice for
enumerations and yes/no values, a number input with the model's limits, or text. An empty
input means "not known" (``null``) and is never guessed. Validation is the model's own
(:func:`openiort.case.parse_case`); its messages are shown beside the fields they name.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from openiort.case import Case, ImplausibleValue
from openiort.errors import OpenIortInputError

BLOCKS: tuple[tuple[str, str, str], ...] = (
    ("patient", "Patient", ""),
    (
        "preoperative",
        "Before surgery: imaging and core biopsy",
        "Trial eligibility (TARGIT-A, ELIOT) is read on these findings.",
    ),
    (
        "pathology",
        "Final pathology",
        "Leave every field empty until the final pathology is known; the APBI guidelines are read on it.",
    ),
    ("anatomy", "Operative site", "Measured in theatre; distances from the cavity edge."),
    ("intent", "Treatment intent", ""),
    (
        "electron",
        "Electron IORT: the planner's choices",
        "Leave empty for the planner to choose; a value set here is checked against the machine's data and reported beside the planner's own choice.",
    ),
)
OPTIONAL_BLOCKS = frozenset({"pathology", "electron"})
UNITS = {"_mm": "mm", "_years": "years", "_gy": "Gy", "_pct": "%", "_weeks": "weeks"}
HELP = {
    "patient.id": "The hospital's patient identifier (letters, digits, '_', '.', '-').",
    "preoperative.clock_position": "1-12, as seen by the examiner.",
    "preoperative.lesion_count": "Obvious cancers in the breast on imaging.",
    "pathology.margin_mm": "Closest margin; 0 means tumour at ink.",
    "anatomy.cavity_diameter_mm": "X-ray and HDR: the cavity that holds the applicator.",
    "anatomy.target_thickness_mm": "Electron IORT: mobilised gland thickness (needle).",
    "anatomy.target_width_mm": "Electron IORT: extent of the gland to treat.",
    "intent.prescription_gy": "Empty: the technique's standard prescription.",
    "intent.dose_definition": "X-ray only (TARGIT or V4.0); empty for other techniques.",
    "electron.disc": "Shielding disc type of the machine's data, or none.",
    "electron.bolus_mm": "Empty: the planner adds what the build-up needs; 0: no bolus.",
}


class CaseFormError(OpenIortInputError):
    """A form value that cannot even be read as its type; ``problems`` like CaseError's."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(*problems, source="case form")


@dataclass(frozen=True)
class FormField:
    """One input of the case form."""

    name: str  # block.field
    label: str
    kind: Literal["select", "number", "text"]
    value_type: Literal["str", "int", "float", "bool", "vector"]
    required: bool
    options: tuple[tuple[str, str], ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    step: str = "any"
    unit: str = ""
    help: str = ""
    length: int = 0  # numbers in a vector value (x, y, z)


@dataclass(frozen=True)
class FormBlock:
    name: str
    title: str
    note: str
    fields: tuple[FormField, ...] = field(default=())


def _unwrap(annotation: Any) -> tuple[Any, list[Any], bool]:
    """(inner type, constraint metadata, whether None is allowed)."""
    nullable = False
    metadata: list[Any] = []
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(get_args(annotation))
        annotation = args[0]
    if get_origin(annotation) is Annotated:
        base, *extra = get_args(annotation)
        for item in extra:
            metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        annotation = base
    return annotation, metadata, nullable


def _label(name: str) -> tuple[str, str]:
    for suffix, unit in UNITS.items():
        if name.endswith(suffix):
            return name.removesuffix(suffix).replace("_", " "), unit
    return name.replace("_", " "), ""


def _form_field(block: str, name: str, info: FieldInfo) -> FormField:
    inner, metadata, nullable = _unwrap(info.annotation)
    metadata = [*metadata, *info.metadata]
    label, unit = _label(name)
    full = f"{block}.{name}"
    required = info.is_required() and not nullable
    common: dict[str, Any] = {"unit": unit, "help": HELP.get(full, ""), "required": required}
    if get_origin(inner) is Literal:
        values = [str(v) for v in get_args(inner)]
        return FormField(
            full,
            label,
            "select",
            "str",
            options=tuple((v, v.replace("_", " ")) for v in values),
            **common,
        )
    if inner is bool:
        return FormField(
            full, label, "select", "bool", options=(("true", "yes"), ("false", "no")), **common
        )
    if inner in (int, float):
        lo = hi = None
        for m in metadata:
            if isinstance(m, annotated_types.Ge | annotated_types.Gt):
                lo = float(m.ge if isinstance(m, annotated_types.Ge) else m.gt)  # type: ignore[arg-type]
            if isinstance(m, annotated_types.Le | annotated_types.Lt):
                hi = float(m.le if isinstance(m, annotated_types.Le) else m.lt)  # type: ignore[arg-type]
        return FormField(
            full,
            label,
            "number",
            "int" if inner is int else "float",
            minimum=lo,
            maximum=hi,
            step="1" if inner is int else "any",
            **common,
        )
    args = get_args(inner)
    if get_origin(inner) is tuple and args and all(a is float for a in args):
        common["help"] = common["help"] or f"{len(args)} numbers separated by commas (x, y, z)."
        return FormField(full, label, "text", "vector", length=len(args), **common)
    return FormField(full, label, "text", "str", **common)


def _block_model(name: str) -> type[BaseModel]:
    inner, _, _ = _unwrap(Case.model_fields[name].annotation)
    if not (isinstance(inner, type) and issubclass(inner, BaseModel)):  # pragma: no cover
        raise TypeError(f"case block {name} is not a model")
    return inner


def case_form() -> tuple[FormBlock, ...]:
    """The blocks and fields of the case form, in the vocabulary's order."""
    blocks = []
    for name, title, note in BLOCKS:
        model = _block_model(name)
        fields = tuple(_form_field(name, f, info) for f, info in model.model_fields.items())
        blocks.append(FormBlock(name, title, note, fields))
    covered = {b for b, _, _ in BLOCKS}
    missing = set(Case.model_fields) - covered
    if missing:  # pragma: no cover - guarded by a test
        raise RuntimeError(f"case blocks without a form: {sorted(missing)}")
    return tuple(blocks)


FORM: tuple[FormBlock, ...] = case_form()
FIELDS: dict[str, FormField] = {f.name: f for b in FORM for f in b.fields}


def _parse_value(f: FormField, raw: str) -> Any:
    text = raw.strip()
    if f.value_type == "bool":
        if text not in ("true", "false"):
            raise ValueError("choose yes, no or leave empty")
        return text == "true"
    if f.value_type == "int":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"value {text!r} is not a whole number") from None
        if not number.is_integer():
            raise ValueError(f"value {text!r} is not a whole number")
        return int(number)
    if f.value_type == "vector":
        parts = [p for p in text.replace(",", " ").split() if p]
        if len(parts) != f.length:
            raise ValueError(f"value {text!r}: give {f.length} numbers separated by commas")
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"value {text!r} holds something that is not a number") from None
        if not all(abs(v) < float("inf") for v in numbers):
            raise ValueError(f"value {text!r} is not finite")
        return numbers
    if f.value_type == "float":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"value {text!r} is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"value {text!r} is not a finite number")
        return value
    return text


def read_form(form: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The case mapping from submitted form values (empty inputs left out), and a problem
    for each value that is not even of its field's type (text in a number field), which is
    left out of the mapping. The model's own limits are checked by
    :func:`openiort.case.parse_case`.
    """
    data: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for name, f in FIELDS.items():
        raw = form.get(name)
        if raw is None or not str(raw).strip():
            continue
        try:
            value = _parse_value(f, str(raw))
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            continue
        block, key = name.split(".", 1)
        data.setdefault(block, {})[key] = value
    for block in ("patient", "intent"):
        data.setdefault(block, {})
    return data, problems


def form_to_case_data(form: Mapping[str, str]) -> dict[str, Any]:
    """Like :func:`read_form`, raising :class:`CaseFormError` for any unreadable value."""
    data, problems = read_form(form)
    if problems:
        raise CaseFormError(problems)
    return data


def case_data_to_form(data: Mapping[str, Any]) -> dict[str, str]:
    """Form values (strings) for a stored case mapping."""
    values: dict[str, str] = {}
    for name in FIELDS:
        block, key = name.split(".", 1)
        section = data.get(block)
        if not isinstance(section, Mapping):
            continue
        value = section.get(key)
        if value is None:
            continue
        if isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            values[name] = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        elif isinstance(value, float) and value.is_integer():
            values[name] = str(int(value))
        else:
            values[name] = str(value)
    return values


def problems_by_field(problems: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Split ``"field.path: message"`` problems into per-input messages and the rest."""
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    for p in problems:
        loc, sep, message = p.partition(": ")
        if sep and loc in FIELDS:
            by_field.setdefault(loc, []).append(message)
        else:
            general.append(p)
    return by_field, general


# Values that look like a unit slip (openiort.case.implausible_values) are saved only once the
# user ticks "I confirm these values". The box carries the values it confirms, so that a
# confirmation given for one value does not cover another typed afterwards.
CONFIRM_FIELD = "confirm_implausible"


def confirmation_token(found: list[ImplausibleValue]) -> str:
    """What the confirmation box submits for these values (field=value, ';'-separated)."""
    return ";".join(f"{v.path}={v.value:g}" for v in found)


def confirmed(form: Mapping[str, str], found: list[ImplausibleValue]) -> bool:
    """Whether the submitted form confirms exactly these implausible values."""
    return bool(found) and form.get(CONFIRM_FIELD, "") == confirmation_token(found)


def unconfirmed_problem(value: ImplausibleValue) -> str:
    """The message shown beside an implausible value until it is corrected or confirmed."""
    return f'{value.message}; correct it, or tick "I confirm these values" if it is right'


def confirmation(found: list[ImplausibleValue]) -> dict[str, Any] | None:
    """What the form's confirmation box shows (None: no box)."""
    if not found:
        return None
    return {
        "field": CONFIRM_FIELD,
        "token": confirmation_token(found),
        "messages": [v.message for v in found],
    }
