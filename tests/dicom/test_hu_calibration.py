"""The HU calibration: its numbers follow its documented derivation, it is invertible, it
rejects malformed files and it can be replaced."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xraydb

from openiort.anatomy.applicator import place_applicator
from openiort.anatomy.hu_calibration import CalibrationError, load_calibration
from openiort.anatomy.materials import Material, get_material
from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid
from openiort.inputs.ct import load_ct_phantom
from openiort.io.dicom_export import export_plan


def hu_from_composition(material: Material, energy_kev: float) -> float:
    """1000 (mu / mu_water - 1) from elemental mass fractions, xraydb total cross sections."""

    def mu(m: Material) -> float:
        return m.density_g_cm3 * sum(
            w * float(xraydb.mu_elam(el, energy_kev * 1000.0, kind="total"))
            for el, w in m.composition.items()
        )

    return 1000.0 * (mu(material) / mu(get_material("water")) - 1.0)


def test_hu_nominal_follows_the_documented_derivation() -> None:
    cal = load_calibration()
    assert cal.effective_energy_kev == 65.0
    for row in cal.rows:
        if row.hu_nominal is None:
            continue
        expected = hu_from_composition(get_material(row.material), cal.effective_energy_kev)
        # The file keeps 0.1 HU: half a step of rounding.
        assert row.hu_nominal == pytest.approx(expected, abs=0.05 + 1e-9), row.material


@pytest.mark.parametrize("percent", [7, 20, 38, 50, 80, 93])
def test_mixture_hu_matches_the_mixture_composition(percent: int) -> None:
    """The breast_gNN CT numbers from the two end members equal those computed directly from
    the mixture's composition and density (xraydb at the same energy), within the 0.05 HU
    rounding of each end member."""
    cal = load_calibration()
    direct = hu_from_composition(get_material(f"breast_g{percent:02d}"), 65.0)
    assert float(cal.mixture_hu(percent / 100.0)) == pytest.approx(direct, abs=0.1)


def test_every_mixture_percent_round_trips() -> None:
    cal = load_calibration()
    fractions = np.arange(101) / 100.0
    hu = np.round(cal.mixture_hu(fractions), 1)  # as stored in the CT (0.1 HU)
    codes, names, density = cal.assign(hu)
    got = [names[c] for c in codes]
    expected = ["adipose"] + [f"breast_g{p:02d}" for p in range(1, 100)] + ["gland"]
    assert got == expected
    nominal = [get_material(n).density_g_cm3 for n in expected]
    np.testing.assert_allclose(density, nominal, rtol=2e-4)
    np.testing.assert_allclose(
        cal.mixture_fraction(cal.mixture_hu(fractions)), fractions, atol=1e-12
    )


def test_bins_and_density_rules() -> None:
    cal = load_calibration()
    hu = np.array(
        [
            -3000.0,
            -1000.0,
            -870.0,
            -741.0,
            -600.0,
            30.0,
            48.7,
            53.8,
            100.0,
            299.9,
            300.0,
            1723.1,
            3000.0,
        ]
    )
    codes, names, density = cal.assign(hu)
    got = [names[c] for c in codes]
    assert got == [
        "air",
        "air",
        "lung",
        "lung",
        "lung",
        "muscle",
        "heart",
        "heart",
        "skin",
        "skin",
        "cortical_bone",
        "cortical_bone",
        "cortical_bone",
    ]
    assert density[0] == density[1] == pytest.approx(get_material("air").density_g_cm3)
    lung = get_material("lung").density_g_cm3
    assert density[3] == pytest.approx(lung, rel=1e-6)
    assert density[4] == pytest.approx(lung * 400.0 / 259.0, rel=1e-6)  # proportional rule
    bone = get_material("cortical_bone").density_g_cm3
    assert density[11] == pytest.approx(bone, rel=1e-6)


BAD_ROWS = {
    "unknown material": "air,-inf,-998.9,nominal,\nunobtainium,0,10,proportional,\n",
    "edges not increasing": "air,-inf,-998.9,nominal,\nlung,-870,-741,proportional,\n"
    "muscle,-900,43.6,proportional,\n",
    "nominal outside its bin": "air,-inf,-998.9,nominal,\nlung,-870,-741,proportional,\n"
    "muscle,100,43.6,proportional,\n",
    "no -inf bin": "air,-1100,-998.9,nominal,\n",
    "bad rule": "air,-inf,-998.9,sometimes,\n",
    "not a number": "air,-inf,minus one thousand,nominal,\n",
    "material twice": "air,-inf,-998.9,nominal,\nair,0,10,proportional,\n",
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_malformed_calibration_rejected(case: str, tmp_path: Path) -> None:
    path = tmp_path / "cal.csv"
    path.write_text("# test\nmaterial,hu_min,hu_nominal,density_rule,structure\n" + BAD_ROWS[case])
    with pytest.raises(CalibrationError, match=r"cal\.csv"):
        load_calibration(path)


def test_replaced_calibration_and_structure_override(
    tmp_path: Path,
    when: datetime,
    make_dose: Callable[..., DoseGrid],
    make_phantom: Callable[..., Phantom],
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    """A coarse four-material calibration replaces the default on import; the applicator
    material comes from its structure only when an RTSTRUCT is given."""
    phantom = make_phantom(4.0)
    out = tmp_path / "ct"
    export_plan(phantom, make_dose(phantom), make_plan("xray"), out, when=when)
    coarse = tmp_path / "coarse.csv"
    coarse.write_text(
        "# a site calibration with four materials\n"
        "material,hu_min,hu_nominal,density_rule,structure\n"
        "air,-inf,-998.9,nominal,\n"
        "lung,-870.0,-741.0,proportional,\n"
        "muscle,-400.0,43.6,proportional,\n"
        "cortical_bone,300.0,1723.1,proportional,\n"
    )
    back = load_ct_phantom(out, out / "RS.dcm", calibration=coarse)
    assert set(back.materials) == {"air", "lung", "muscle", "cortical_bone"}
    names = np.asarray(back.materials)[back.material_ids]
    assert (names[phantom.structures["applicator"]] == "muscle").all()
    assert back.description["hu_calibration"] == str(coarse)

    default_no_structures = load_ct_phantom(out)
    names = np.asarray(default_no_structures.materials)[default_no_structures.material_ids]
    # PEI (146 HU) lies in the skin bin; without its contour the applicator reads as skin.
    assert (names[phantom.structures["applicator"]] == "skin").all()
    with_structures = load_ct_phantom(out, out / "RS.dcm")
    names = np.asarray(with_structures.materials)[with_structures.material_ids]
    assert (names[phantom.structures["applicator"]] == "applicator_pei").all()


def test_place_applicator_in_the_cavity(
    tmp_path: Path,
    when: datetime,
    make_dose: Callable[..., DoseGrid],
    make_phantom: Callable[..., Phantom],
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    phantom = make_phantom(2.0)
    export_plan(phantom, make_dose(phantom), make_plan("xray"), tmp_path, when=when)
    ct = load_ct_phantom(tmp_path, tmp_path / "RS.dcm")
    placed = place_applicator(ct, 6.0)  # centre from the drawn cavity
    assert placed.applicator_centre_mm == pytest.approx((4.0, -2.0, 1.0), abs=1e-9)
    names = np.asarray(placed.materials)[placed.material_ids]
    assert (names[placed.structures["applicator"]] == "applicator_pei").all()
    # Voxel-centre sphere of radius 6 mm on 2 mm voxels: 4/3 pi 6^3 = 905 mm^3 within the
    # discretisation (the count of lattice points in a ball, here 123 voxels = 984 mm^3).
    assert placed.volume_cc("applicator") == pytest.approx(4 / 3 * np.pi * 0.6**3, rel=0.1)
    assert placed.structures["cavity"] is ct.structures["cavity"]
    moved = place_applicator(ct, 4.0, centre_mm=(0.0, 0.0, 0.0))
    assert moved.applicator_centre_mm == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="does not fit"):
        place_applicator(ct, 4.0, centre_mm=(30.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="missing or empty"):
        place_applicator(ct, 4.0, cavity_structure="tumour_bed")
