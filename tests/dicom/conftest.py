"""Fixtures for the DICOM tests: a small synthetic phantom (60 x 60 x 40 mm at 2 mm), its dose,
plans for the three techniques, a fixed export time, and the Debian tools the tests drive.

Everything is a fixture (no imports from this file), so the tests do not depend on pytest's
import mode.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openiort.anatomy.materials import get_material
from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid, Provenance
from openiort.grid import Grid

WHEN = datetime(2025, 3, 14, 9, 26, 53, tzinfo=timezone(timedelta(hours=1)))
APPLICATOR_CENTRE_MM = (4.0, -2.0, 1.0)
APPLICATOR_RADIUS_MM = 7.0


def make_phantom(spacing_mm: float = 2.0) -> Phantom:
    """Breast-like block: skin, breast mixture, spherical applicator in a cavity, a target rind,
    chest wall, a rib, lung and heart, with an off-centre origin so that flips show."""
    grid = Grid.centred((3.0, -1.0, 2.0), (60.0, 60.0, 40.0), spacing_mm)
    z, y, x = grid.axes_mm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    cx, cy, cz = APPLICATOR_CENTRE_MM
    r = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2 + (zz - cz) ** 2)
    body = (yy > -26.0) & (np.abs(xx - 3.0) < 27.0) & (np.abs(zz - 2.0) < 17.0)
    skin = body & ~((yy > -24.0) & (np.abs(xx - 3.0) < 25.0) & (np.abs(zz - 2.0) < 15.0))
    chest = body & ~skin & (yy > 12.0)
    muscle = chest & (yy <= 16.0)
    ribs = chest & (yy > 16.0) & (yy <= 20.0) & (np.abs(zz - 4.0) < 5.0)
    chest_wall = chest & (yy <= 20.0)
    heart = body & ~skin & (np.sqrt((xx + 12.0) ** 2 + (yy - 24.0) ** 2 + (zz - 2.0) ** 2) < 7.0)
    lung = body & ~skin & (yy > 20.0) & ~heart
    breast = body & ~skin & (yy <= 12.0)
    applicator = r <= APPLICATOR_RADIUS_MM
    cavity = r <= APPLICATOR_RADIUS_MM + 1.0
    target = breast & (r > APPLICATOR_RADIUS_MM + 1.0) & (r <= APPLICATOR_RADIUS_MM + 11.0)
    gland_lobe = breast & (xx > 18.0) & (zz > 6.0)
    fat_lobe = breast & (xx < -14.0) & (zz < -4.0)
    materials = (
        "air",
        "breast_g38",
        "skin",
        "muscle",
        "cortical_bone",
        "lung",
        "heart",
        "applicator_pei",
        "gland",
        "adipose",
        "water",
        "breast_g07",
    )
    mid = np.zeros(grid.shape, dtype=np.uint8)
    mid[breast] = 1
    mid[gland_lobe] = 8
    mid[fat_lobe] = 9
    mid[breast & (yy < -18.0) & (xx > 20.0)] = 11
    mid[cavity & ~applicator] = 10  # saline around the applicator
    mid[muscle] = 3
    mid[chest & (yy > 16.0) & (yy <= 20.0)] = 3
    mid[ribs] = 4
    mid[lung] = 5
    mid[heart] = 6
    mid[skin] = 2
    mid[applicator] = 7
    densities = np.array([get_material(m).density_g_cm3 for m in materials], dtype=np.float32)
    density = densities[mid]
    density[lung] *= np.float32(1.15)  # a denser lung region: exercises proportional density
    structures = {
        "breast": breast & ~applicator,
        "skin": skin,
        "cavity": cavity,
        "applicator": applicator,
        "target": target,
        "chest_wall": chest_wall,
        "ribs": ribs,
        "lung": lung,
        "heart": heart,
    }
    return Phantom(
        grid=grid,
        material_ids=mid,
        density_g_cm3=density,
        materials=materials,
        structures=structures,
        applicator_centre_mm=APPLICATOR_CENTRE_MM,
        applicator_radius_mm=APPLICATOR_RADIUS_MM,
        cavity_radius_mm=APPLICATOR_RADIUS_MM + 1.0,
    )


def make_dose(phantom: Phantom, prescription_gy: float = 20.0) -> DoseGrid:
    """Smooth spherical fall-off from the applicator surface (a 50 kV-like depth dose)."""
    r = phantom.grid.distance_from_mm(APPLICATOR_CENTRE_MM)
    depth = np.maximum(r - APPLICATOR_RADIUS_MM, 0.0)
    dose = prescription_gy * (APPLICATOR_RADIUS_MM / np.maximum(r, APPLICATOR_RADIUS_MM)) ** 2
    dose *= np.exp(-0.06 * depth)
    return DoseGrid(
        grid=phantom.grid,
        dose_gy=dose,
        medium="water_in_water",
        normalisation=f"{prescription_gy:g} Gy at the applicator surface",
        provenance=Provenance("test", "0", "synthetic", "0" * 64, "0" * 64, "none"),
    )


def make_plan(technique: str) -> dict[str, Any]:
    plan: dict[str, Any] = {
        "technique": technique,
        "case_id": "TEST-001",
        "prescription": {"dose_gy": 20.0, "dose_definition": "TARGIT"},
        "status": "approved",
        "approved_by": "Physicist^Test",
    }
    if technique == "xray":
        plan.update(applicator_diameter_cm=3.5, treatment_time_min=24.5)
    elif technique == "electron":
        plan.update(
            prescription={"dose_gy": 21.0, "dose_definition": "90% isodose"},
            monitor_units=2345.6,
            energy_mev=9.0,
            applicator_diameter_cm=5.0,
            bevel_deg=15.0,
        )
    else:
        positions = [[x, -2.0, 1.0 + dz] for dz in (-3.0, 0.0, 3.0) for x in (0.0, 5.0, 10.0)]
        plan.update(
            dwell_positions_mm=positions,
            dwell_times_s=[12.5, 10.0, 12.5, 9.0, 7.5, 9.0, 12.5, 10.0, 12.5],
            dwell_catheters=[1, 1, 1, 2, 2, 2, 3, 3, 3],
            source_id="mHDR-v2r",
            air_kerma_strength_u=40700.0,
            treatment_time_min=1.6,
        )
    return plan


REPO = Path(__file__).resolve().parents[2]


def find_tool(name: str) -> str:
    """Path of a Debian tool the tests drive (dicom3tools' dciodvfy, dcmtk's storescp, plastimatch,
    Orthanc).

    They come from the project's own set-up, ``scripts/install-system-deps.sh`` (``make
    system-deps``, run by ``make test``). When one is missing the test runs that script itself
    (it needs root); a tool that is still missing fails the test with the command to run.
    """
    path = shutil.which(name)
    if path is None and hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(
            ["bash", str(REPO / "scripts" / "install-system-deps.sh")],
            check=False,
            capture_output=True,
            timeout=900,
        )
        path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run `make system-deps` (scripts/install-system-deps.sh, "
            "as root) to install dicom3tools, dcmtk, plastimatch and orthanc"
        )
    return path


@pytest.fixture(scope="session", name="make_phantom")
def make_phantom_fixture() -> Callable[..., Phantom]:
    return make_phantom


@pytest.fixture(scope="session", name="make_dose")
def make_dose_fixture() -> Callable[..., DoseGrid]:
    return make_dose


@pytest.fixture(scope="session", name="make_plan")
def make_plan_fixture() -> Callable[[str], dict[str, Any]]:
    return make_plan


@pytest.fixture(scope="session")
def when() -> datetime:
    """The export time written into the test objects (local time with its UTC offset)."""
    return WHEN


@pytest.fixture(scope="session")
def require_tool() -> Callable[[str], str]:
    return find_tool


@pytest.fixture(scope="session")
def phantom() -> Phantom:
    return make_phantom()


@pytest.fixture(scope="session")
def dose(phantom: Phantom) -> DoseGrid:
    return make_dose(phantom)
