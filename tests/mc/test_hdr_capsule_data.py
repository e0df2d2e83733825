"""The cited HDR capsule geometries load, match their source, and bad entries are refused."""

from __future__ import annotations

from typing import Any

import pytest

from openiort.datafiles import read_data
from openiort.devices.hdr import DATA_DIR, SOURCES_FILE
from openiort.dose.mc.hdr_capsule_data import (
    CapsuleDataError,
    capsule_geometry,
    known_sources,
    materials,
    parse_geometry,
    parse_material,
)
from openiort.errors import OpenIortInputError

# Figures read from the CLRP egs_brachy model GammaMedPlus.geom (cm there, mm here); the data
# file's header gives the full citation. Exact: the file holds the same decimals.
TOL_MM = 1e-9


def test_gammamed_plus_geometry_as_cited() -> None:
    g = capsule_geometry("GammaMed_HDR_Plus")
    expected = {
        "core_diameter_mm": 0.60,
        "core_length_mm": 3.50,
        "capsule_outer_diameter_mm": 0.90,
        "capsule_inner_diameter_mm": 0.70,
        "cavity_tip_from_core_centre_mm": 1.85,
        "cavity_back_from_core_centre_mm": 1.75,
        "capsule_tip_from_core_centre_mm": 2.47,
        "capsule_back_from_core_centre_mm": 2.05,
        "cable_diameter_mm": 0.90,
        "cable_length_modelled_mm": 60.0,
        "tip_shape_length_mm": 0.183,
        "cable_density_g_cm3": 5.6,
        "capsule_density_g_cm3": 8.06,
    }
    for key, value in expected.items():
        assert getattr(g, key) == pytest.approx(value, abs=TOL_MM), key
    assert g.tip_shape == "cone"
    assert g.capsule_material.name == "steel_aisi_316l"
    assert g.cable_material.name == "steel_aisi_304"
    assert g.core_material.density_g_cm3 == pytest.approx(22.42, abs=1e-9)
    assert "egs_brachy" in g.source


def test_steel_316l_as_cited_and_fractions_sum_to_one() -> None:
    steel = materials()["steel_aisi_316l"]
    assert steel.density_g_cm3 == pytest.approx(8.06, abs=1e-9)
    assert steel.mass_fractions == pytest.approx(
        {"Fe": 0.668, "Cr": 0.17, "Ni": 0.12, "Mo": 0.025, "Mn": 0.01, "Si": 0.007}, abs=1e-12
    )
    for mat in materials().values():
        assert sum(mat.mass_fractions.values()) == pytest.approx(1.0, abs=1e-6), mat.name


def test_every_source_loads_and_matches_tg43_ids() -> None:
    tg43_ids = {
        row["source_id"]
        for row in read_data("openiort.devices", f"{DATA_DIR}/{SOURCES_FILE}").rows()
    }
    assert set(known_sources()) <= tg43_ids
    assert "GammaMed_HDR_Plus" in known_sources()
    for source_id in known_sources():
        g = capsule_geometry(source_id)
        assert g.capsule_tip_from_core_centre_mm > g.core_half_length_mm
        assert g.core_diameter_mm < g.capsule_outer_diameter_mm


def test_unknown_source_names_the_known_ones() -> None:
    with pytest.raises(CapsuleDataError) as err:
        capsule_geometry("NoSuchSource")
    assert isinstance(err.value, OpenIortInputError)
    assert "GammaMed_HDR_Plus" in err.value.problems[0]


def _entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "core_diameter_mm": 0.6,
        "core_length_mm": 3.5,
        "capsule_outer_diameter_mm": 0.9,
        "capsule_tip_from_core_centre_mm": 2.47,
        "capsule_back_from_core_centre_mm": 2.05,
        "cable_diameter_mm": 0.9,
        "cable_length_modelled_mm": 5.0,
        "capsule_material": "steel_aisi_316l",
        "cable_material": "steel_aisi_316l",
    }
    entry.update(changes)
    return entry


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"core_length_mm": -3.5}, "must be positive"),
        ({"cable_diameter_mm": "thin"}, "not a number"),
        ({"core_diameter_mm": 1.0}, "not inside capsule"),
        ({"capsule_tip_from_core_centre_mm": 1.5}, "not beyond the core's end"),
        ({"capsule_back_from_core_centre_mm": 1.0}, "inside the core"),
        ({"capsule_material": "gold"}, "unknown; known:"),
        ({"capsule_inner_diameter_mm": 0.7}, "diameter, tip and back together"),
        ({"tip_shape": "spike"}, "tip_shape must be"),
    ],
)
def test_bad_geometry_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(CapsuleDataError) as err:
        parse_geometry("Test", _entry(**changes), materials())
    assert any(message in p for p in err.value.problems), err.value.problems


def test_mass_fractions_must_sum_to_one() -> None:
    with pytest.raises(CapsuleDataError, match="sum to"):
        parse_material("steel", {"density_g_cm3": 8.0, "mass_fractions": {"Fe": 0.7, "Cr": 0.2}})
    with pytest.raises(CapsuleDataError, match="must be positive"):
        parse_material("steel", {"density_g_cm3": 0.0, "mass_fractions": {"Fe": 1.0}})
