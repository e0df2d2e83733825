"""Geometry and materials of Ir-192 HDR source capsules, as cited in the data file.

The model is coaxial cylinders along the source axis z, origin at the centre of the active core,
+z towards the tip (data/hdr_source_capsules.yaml says what is simplified for each source). This
module only reads and checks the numbers; the transport code builds the geometry from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from openiort.datafiles import read_data
from openiort.errors import OpenIortInputError

CAPSULES_FILE = "data/hdr_source_capsules.yaml"
SOURCES_KEY = "sources"
CORE_MATERIAL = "iridium"
# Mass fractions are given to three decimals in the cited tables; a sum off by more is an error.
FRACTION_SUM_TOL = 1e-6


class CapsuleDataError(OpenIortInputError):
    """An HDR capsule the data file does not know, or a data entry that fails its checks."""


@dataclass(frozen=True)
class Material:
    """A material of the source model: density and elemental mass fractions (summing to 1)."""

    name: str
    density_g_cm3: float
    mass_fractions: dict[str, float]
    source: str


@dataclass(frozen=True)
class CapsuleGeometry:
    """One source's capsule, core and cable, in mm from the core centre along the axis."""

    source_id: str
    core_diameter_mm: float
    core_length_mm: float
    capsule_outer_diameter_mm: float
    capsule_tip_from_core_centre_mm: float
    capsule_back_from_core_centre_mm: float
    cable_diameter_mm: float
    cable_length_modelled_mm: float
    core_material: Material
    capsule_material: Material
    cable_material: Material
    #: density of the capsule and cable where the published model differs from the material's
    capsule_density_g_cm3: float
    cable_density_g_cm3: float
    source: str
    simplifications: str
    #: air cavity around the core (None: the core sits in solid capsule metal)
    capsule_inner_diameter_mm: float | None = None
    cavity_tip_from_core_centre_mm: float | None = None
    cavity_back_from_core_centre_mm: float | None = None
    #: the real tip's shape and length (the model's tip is flat at capsule_tip)
    tip_shape: str = "flat"
    tip_shape_length_mm: float = 0.0

    @property
    def core_half_length_mm(self) -> float:
        return self.core_length_mm / 2.0


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = read_data("openiort.dose.mc", CAPSULES_FILE).yaml()
    return data


def _number(entry: dict[str, Any], key: str, where: str, problems: list[str]) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{where}: {key} missing or not a number")
        return float("nan")
    if not value > 0:
        problems.append(f"{where}: {key} must be positive, got {value}")
    return float(value)


def parse_material(name: str, entry: dict[str, Any]) -> Material:
    """A material entry of the data file, checked (positive density, fractions summing to 1)."""
    problems: list[str] = []
    where = f"material {name}"
    density = _number(entry, "density_g_cm3", where, problems)
    # The core is the pure element; every other material lists its fractions.
    raw = entry.get("mass_fractions", {"Ir": 1.0} if name == CORE_MATERIAL else None)
    fractions: dict[str, float] = {}
    if not isinstance(raw, dict) or not raw:
        problems.append(f"{where}: mass_fractions missing")
    else:
        for element, w in raw.items():
            if isinstance(w, bool) or not isinstance(w, int | float) or not 0 < w <= 1:
                problems.append(f"{where}: mass fraction of {element} must be in (0, 1], got {w}")
            else:
                fractions[str(element)] = float(w)
        total = sum(fractions.values())
        if fractions and abs(total - 1.0) > FRACTION_SUM_TOL:
            problems.append(f"{where}: mass fractions sum to {total:.7f}, not 1")
    if problems:
        raise CapsuleDataError(*problems, source=CAPSULES_FILE)
    return Material(name, density, fractions, str(entry.get("source", "")))


def materials() -> dict[str, Material]:
    """Every material of the data file, by name."""
    return {
        name: parse_material(name, entry)
        for name, entry in _data().items()
        if name != SOURCES_KEY and isinstance(entry, dict)
    }


def known_sources() -> tuple[str, ...]:
    return tuple(sorted(_data()[SOURCES_KEY]))


def parse_geometry(
    source_id: str, entry: dict[str, Any], mats: dict[str, Material]
) -> CapsuleGeometry:
    """One source entry, checked: positive sizes, the core inside the capsule, materials known."""
    problems: list[str] = []
    where = f"source {source_id}"

    def num(key: str) -> float:
        return _number(entry, key, where, problems)

    def optional(key: str) -> float | None:
        return num(key) if key in entry else None

    def material(key: str) -> Material:
        name = entry.get(key)
        if name not in mats:
            problems.append(f"{where}: {key} {name!r} unknown; known: {', '.join(sorted(mats))}")
            return Material(str(name), float("nan"), {}, "")
        return mats[name]

    core_d, core_l = num("core_diameter_mm"), num("core_length_mm")
    outer_d = num("capsule_outer_diameter_mm")
    tip, back = num("capsule_tip_from_core_centre_mm"), num("capsule_back_from_core_centre_mm")
    cable_d, cable_l = num("cable_diameter_mm"), num("cable_length_modelled_mm")
    inner_d = optional("capsule_inner_diameter_mm")
    cavity_tip = optional("cavity_tip_from_core_centre_mm")
    cavity_back = optional("cavity_back_from_core_centre_mm")
    capsule_mat, cable_mat = material("capsule_material"), material("cable_material")
    core_mat = mats.get(CORE_MATERIAL)
    if core_mat is None:
        problems.append(f"material {CORE_MATERIAL} missing from the data file")
        core_mat = Material(CORE_MATERIAL, float("nan"), {}, "")
    tip_shape = str(entry.get("tip_shape", "flat"))
    if tip_shape not in ("flat", "cone", "hemisphere"):
        problems.append(f"{where}: tip_shape must be flat, cone or hemisphere, got {tip_shape!r}")
    tip_shape_length = num("tip_shape_length_mm") if tip_shape != "flat" else 0.0
    capsule_density = optional("capsule_density_g_cm3") or capsule_mat.density_g_cm3
    cable_density = optional("cable_density_g_cm3") or cable_mat.density_g_cm3

    half = core_l / 2.0
    if not core_d < outer_d:
        problems.append(f"{where}: core diameter {core_d} mm not inside capsule {outer_d} mm")
    if not tip > half:
        problems.append(f"{where}: capsule tip {tip} mm not beyond the core's end {half} mm")
    if not back >= half:
        problems.append(f"{where}: capsule back {back} mm inside the core (half-length {half})")
    # A rounded tip may start beside the core (microSelectron v2), so it is only bounded by tip.
    if tip_shape_length > tip:
        problems.append(f"{where}: tip shape {tip_shape_length} mm longer than the tip {tip} mm")
    cavity = (inner_d, cavity_tip, cavity_back)
    if any(v is not None for v in cavity):
        if inner_d is None or cavity_tip is None or cavity_back is None:
            problems.append(f"{where}: a cavity needs its diameter, tip and back together")
        else:
            if not core_d <= inner_d < outer_d:
                problems.append(
                    f"{where}: cavity diameter {inner_d} mm must lie between the core's "
                    f"{core_d} mm and the capsule's {outer_d} mm"
                )
            if not (half <= cavity_tip < tip and half <= cavity_back < back):
                problems.append(f"{where}: cavity must hold the core and stay inside the capsule")
    if problems:
        raise CapsuleDataError(*problems, source=CAPSULES_FILE)
    return CapsuleGeometry(
        source_id=source_id,
        core_diameter_mm=core_d,
        core_length_mm=core_l,
        capsule_outer_diameter_mm=outer_d,
        capsule_tip_from_core_centre_mm=tip,
        capsule_back_from_core_centre_mm=back,
        cable_diameter_mm=cable_d,
        cable_length_modelled_mm=cable_l,
        core_material=core_mat,
        capsule_material=capsule_mat,
        cable_material=cable_mat,
        capsule_density_g_cm3=capsule_density,
        cable_density_g_cm3=cable_density,
        source=str(entry.get("source", "")),
        simplifications=str(entry.get("simplifications", "")),
        capsule_inner_diameter_mm=inner_d,
        cavity_tip_from_core_centre_mm=cavity_tip,
        cavity_back_from_core_centre_mm=cavity_back,
        tip_shape=tip_shape,
        tip_shape_length_mm=tip_shape_length,
    )


@cache
def capsule_geometry(source_id: str) -> CapsuleGeometry:
    """The cited capsule geometry of ``source_id`` (an id of devices/data/tg43/sources.csv)."""
    sources = _data()[SOURCES_KEY]
    if source_id not in sources:
        raise CapsuleDataError(
            f"no capsule geometry for HDR source {source_id!r}; known: "
            f"{', '.join(known_sources())}",
            source=CAPSULES_FILE,
        )
    return parse_geometry(source_id, sources[source_id], materials())
