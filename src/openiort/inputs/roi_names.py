"""ROI names of an imported RT Structure Set -> openiort's structure names.

Three sources, strongest first: the user's map (``--roi-map "Lumpectomy cavity=cavity"``), the
default synonym table (``openiort/io/data/structure_synonyms.csv``: TG-263 names and common
clinical variants, case-insensitive) and nothing (the ROI keeps its own name and is reported,
but no limit or planning step uses it). Names with a side (TG-263 ``_L`` / ``_R``) are checked
against the case's laterality. Every problem is collected and raised at once as one
:class:`StructureNameError` that lists the ROI names found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache

from openiort.anatomy.phantom import STRUCTURE_NAMES
from openiort.datafiles import read_data
from openiort.errors import OpenIortInputError

SIDES = {"left": "L", "right": "R"}
_SIDE_WORDS = {"L": "left", "R": "right"}
_SIDE_SUFFIX = re.compile(r"[_\s\-](L|R|LT|RT|LEFT|RIGHT)$", re.IGNORECASE)


class StructureNameError(OpenIortInputError):
    """ROI names that cannot be mapped onto openiort's structures; one line per problem."""

    def __init__(self, problems: list[str], found: Iterable[str], source: str = "--rtstruct"):
        names = ", ".join(repr(n) for n in found) or "none"
        super().__init__(*problems, f"ROI names found in the structure set: {names}", source=source)


def normalise(name: str) -> str:
    """Case-, space-, hyphen- and underscore-insensitive form of a name."""
    return re.sub(r"[\s_\-]+", "_", name.strip()).casefold()


def _side_of(roi_name: str) -> str:
    """ "L"/"R" for a name with a TG-263 side suffix (``Lung_R``, ``Breast Lt``), else ""."""
    match = _SIDE_SUFFIX.search(roi_name.strip())
    return match.group(1)[0].upper() if match else ""


@dataclass(frozen=True)
class Synonym:
    structure: str
    name: str  # as written in the table; a trailing "*" is a prefix pattern
    side: str  # "", "L" or "R"
    priority: int

    def matches(self, roi_name: str) -> bool:
        key, roi = normalise(self.name.rstrip("*")), normalise(roi_name)
        return roi.startswith(key) if self.name.endswith("*") else roi == key


@cache
def default_synonyms() -> tuple[Synonym, ...]:
    """The packaged synonym table (checked against its manifest)."""
    rows = read_data("openiort.io", "data/structure_synonyms.csv").rows()
    out = []
    seen: set[str] = set()
    for row in rows:
        if row["structure"] not in STRUCTURE_NAMES:
            raise ValueError(f"structure_synonyms.csv: unknown structure {row['structure']!r}")
        key = normalise(row["name"])
        if key in seen:
            raise ValueError(f"structure_synonyms.csv: {row['name']!r} listed twice")
        seen.add(key)
        out.append(Synonym(row["structure"], row["name"], row["side"], int(row["priority"])))
    return tuple(out)


def parse_roi_map(text: str | None) -> dict[str, str]:
    """``"Lumpectomy cavity=cavity,Heart=heart"`` -> {ROI name: structure}."""
    if not text or not text.strip():
        return {}
    out: dict[str, str] = {}
    problems = []
    for part in text.split(","):
        if not part.strip():
            continue
        roi, sep, structure = part.partition("=")
        roi, structure = roi.strip(), structure.strip()
        if not sep or not roi or not structure:
            problems.append(f"{part.strip()!r} is not NAME=STRUCTURE")
        elif structure not in STRUCTURE_NAMES:
            problems.append(
                f"{roi!r}={structure!r}: {structure!r} is not one of {', '.join(STRUCTURE_NAMES)}"
            )
        elif roi in out:
            problems.append(f"{roi!r} is mapped twice")
        else:
            out[roi] = structure
    if problems:
        raise OpenIortInputError(*problems, source="--roi-map")
    return out


@dataclass
class RoiMapping:
    """The outcome: which ROI became which structure, and how."""

    structure_of: dict[str, str] = field(default_factory=dict)  # ROI name -> structure
    how: dict[str, str] = field(default_factory=dict)  # ROI name -> "--roi-map" / "TG-263" / ...
    unmapped: list[str] = field(default_factory=list)

    def roi_of(self, structure: str) -> str | None:
        for roi, s in self.structure_of.items():
            if s == structure:
                return roi
        return None


def map_roi_names(
    found: Iterable[str],
    laterality: str | None = None,
    roi_map: Mapping[str, str] | None = None,
    synonyms: Iterable[Synonym] | None = None,
) -> RoiMapping:
    """Map the ROI names ``found`` onto openiort's structures.

    ``roi_map`` names must be among ``found`` (case-insensitive); each structure gets at most
    one ROI. ``laterality`` (``left``/``right``) refuses a name of the other side unless a
    same-side name of that structure is present (then the other side's ROI stays unmapped).
    """
    names = list(found)
    table = tuple(default_synonyms() if synonyms is None else synonyms)
    side = SIDES.get(str(laterality or "").lower(), "")
    problems: list[str] = []
    result = RoiMapping()
    by_key = {normalise(n): n for n in names}
    taken: dict[str, str] = {}  # structure -> ROI
    for roi, structure in (roi_map or {}).items():
        actual = by_key.get(normalise(roi))
        if actual is None:
            problems.append(f"--roi-map names {roi!r}, which is not in the structure set")
            continue
        other = _side_of(actual)
        if side and other and other != side:
            problems.append(
                f"--roi-map {roi}={structure}: {actual!r} is a structure of the "
                f"{_SIDE_WORDS[other]} side, but the case is {laterality}-sided"
            )
            continue
        if structure in taken:
            problems.append(
                f"--roi-map maps both {taken[structure]!r} and {actual!r} to {structure!r}"
            )
            continue
        taken[structure] = actual
        result.structure_of[actual] = structure
        result.how[actual] = "--roi-map"
    # candidates from the table, per structure
    candidates: dict[str, list[tuple[int, str, Synonym]]] = {}
    for roi in names:
        if roi in result.structure_of:
            continue
        for syn in table:
            if syn.matches(roi):
                candidates.setdefault(syn.structure, []).append((syn.priority, roi, syn))
                break
    for structure, options in candidates.items():
        if structure in taken:
            continue
        same_side = [o for o in options if not side or not o[2].side or o[2].side == side]
        other_side = [o for o in options if side and o[2].side and o[2].side != side]
        if not same_side:
            rois = ", ".join(repr(o[1]) for o in other_side)
            problems.append(
                f"{rois} is a structure of the {_SIDE_WORDS[other_side[0][2].side]} side, but the "
                f"case is {laterality}-sided: check the case's laterality and the structure set "
                f"(or map the {structure} explicitly with --roi-map)"
            )
            continue
        best = min(o[0] for o in same_side)
        chosen = [o for o in same_side if o[0] == best]
        if len(chosen) > 1:
            rois = ", ".join(repr(o[1]) for o in chosen)
            problems.append(
                f"{rois} could each be the {structure}: choose one with --roi-map NAME={structure}"
            )
            continue
        roi = chosen[0][1]
        taken[structure] = roi
        result.structure_of[roi] = structure
        result.how[roi] = chosen[0][2].name
    if problems:
        raise StructureNameError(problems, names)
    result.unmapped = [n for n in names if n not in result.structure_of]
    return result


def missing_required(
    mapping: RoiMapping, required: Iterable[str], found: Iterable[str], why: str
) -> None:
    """Raise when a required structure has no ROI, listing the names found."""
    missing = [s for s in required if s not in mapping.structure_of.values()]
    if missing:
        raise StructureNameError(
            [
                f"no structure for {', '.join(missing)} ({why}); name it in --roi-map "
                f"NAME={missing[0]}"
            ],
            found,
        )
