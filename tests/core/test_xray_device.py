"""50 kV device model: times reproduce TG-292 Table IV; both definitions agree through the ratios."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from openiort.datafiles import write_manifest
from openiort.devices.xray import (
    DeviceDataError,
    choose_applicator,
    load_commissioning,
    load_example_source,
    treatment_time,
)

# In-repo copy of the project's literature reference pack (tests/reference_data/README.md).
REFERENCE = Path(__file__).resolve().parents[1] / "reference_data" / "xray_50kv"
# The reference times are 20 Gy / TG-292 rate rounded to 0.01 min: half a unit of that digit.
REFERENCE_ROUNDING_MIN = 0.005
# TG-292 Table IV (Culberson et al., Med Phys 2020;47:e913), "% difference" (V4.0 - TARGIT)/V4.0
# at the applicator surface, by applicator diameter in cm; published as whole percentages.
TG292_PCT_DIFF_SURFACE = {1.5: 30, 2.0: 25, 2.5: 22, 3.0: 19, 3.5: 17, 4.0: 16, 4.5: 15, 5.0: 14}


def _tg292_times() -> dict[tuple[float, str], float]:
    """Times for 20 Gy derived from TG-292 Table IV (reference pack, 2 decimals)."""
    with open(REFERENCE / "intrabeam_treatment_times.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["data_type"].startswith("derived")]
    return {
        (float(r["applicator_diameter_cm"]), r["dose_definition"]): float(r["time_min"])
        for r in rows
    }


@pytest.mark.parametrize("definition", ["TARGIT", "V4.0"])
def test_times_for_20_gy_reproduce_tg292(definition: str) -> None:
    source = load_example_source()
    reference = _tg292_times()
    for diameter in source.diameters_cm:
        t = treatment_time(source, diameter, 20.0, definition)  # type: ignore[arg-type]
        assert t.time_min == pytest.approx(
            reference[(diameter, definition)], abs=REFERENCE_ROUNDING_MIN + 1e-9
        )
        # the second check is the MC source model (tests/core/test_xray_second_check.py)
        assert t.agrees


def test_v40_path_gives_the_same_time_through_the_ratio_table() -> None:
    source = load_example_source()
    for diameter in source.diameters_cm:
        targit = treatment_time(source, diameter, 20.0, "TARGIT")
        ratio = float(source.ratio_v40_over_targit(diameter, 0.0))
        v40 = treatment_time(source, diameter, 20.0 * ratio, "V4.0")
        # The same physical dose named in either definition: t = D_V4.0 / rate_V4.0 =
        # D_TARGIT / rate_TARGIT is an identity, so only floating-point rounding may differ.
        assert v40.time_min == pytest.approx(targit.time_min, rel=1e-12)
        # Independent check of the surface ratio against TG-292's own percentage column:
        # (V4.0 - TARGIT)/V4.0 = p % gives V4.0/TARGIT = 1 / (1 - p/100); p is a whole
        # percentage, so this ratio carries +/- 0.5 % of p: ratio^2 x 0.005.
        published = 1.0 / (1.0 - TG292_PCT_DIFF_SURFACE[diameter] / 100.0)
        assert ratio == pytest.approx(published, abs=published**2 * 0.005)


def test_ratio_interpolation_and_extrapolation() -> None:
    source = load_example_source()
    # TG-292 Table IV, 3.0 cm: 19 % at 0 mm (rates 1.2292/0.9927), 14 % at 10 mm, 12 % at 20 mm.
    r = source.ratio_v40_over_targit(3.0, np.array([0.0, 5.0, 10.0, 20.0, 35.0]))
    assert r[0] == pytest.approx(1.2292 / 0.9927, rel=1e-6)
    assert r[2] == pytest.approx(1 / 0.86, rel=1e-6)
    assert r[3] == pytest.approx(1 / 0.88, rel=1e-6)
    # Between and beyond the published depths the shifted-chamber model shapes the ratio:
    # TARGIT(d) ~ V4.0(d + shift) gives ratio ~ rel(d) / rel(d + shift), which falls less
    # steeply than a straight line near the surface and keeps falling beyond 20 mm.
    # the review found 0.83 mm with the depth-dose before the joint fit (issue 15 item 1);
    # the jointly fitted model's curves give 0.74 mm
    assert source.targit_shift_mm == pytest.approx(0.74, abs=0.05)
    shape = source.relative_dose_water(3.0, np.array([0.0, 5.0, 10.0, 20.0, 35.0]))
    shifted = source.relative_dose_water(
        3.0, np.array([0.0, 5.0, 10.0, 20.0, 35.0]) + source.targit_shift_mm
    )
    model = shape / shifted
    # at 5 mm: the line between 0 and 10 mm scaled by the model's bend there (exact identity)
    assert r[1] == pytest.approx(
        (r[0] + r[2]) / 2 * model[1] / ((model[0] + model[2]) / 2), rel=1e-9
    )
    assert r[1] < (r[0] + r[2]) / 2  # the straight line overstates it
    assert r[4] == pytest.approx(r[3] * model[4] / model[3], rel=1e-9)
    # 1.5 cm at 5 mm: the line is 4.6 % high with the jointly fitted curves (4.4 % with the first
    # joint fit; the review, with the curves before the fit: up to 3.8 %; those gave 3.6 %)
    r15 = source.ratio_v40_over_targit(1.5, np.array([0.0, 5.0, 10.0]))
    assert (r15[0] + r15[2]) / 2 / r15[1] - 1 == pytest.approx(0.046, abs=0.005)


def test_depth_dose_is_monotonic_and_normalised() -> None:
    source = load_example_source()
    for d in source.diameters_cm:
        app = source.applicator(d)
        assert app.relative_dose_water[0] == 1.0
        assert np.all(np.diff(app.relative_dose_water) < 0)
        far = source.relative_dose_water(d, np.array([60.0, 70.0, 90.0]))
        assert np.all(np.diff(far) < 0) and np.all(far > 0)


def test_smaller_applicators_fall_off_faster() -> None:
    """Xiao et al. 2015: smaller spheres have steeper depth-dose curves."""
    source = load_example_source()
    at_10 = [float(source.relative_dose_water(d, 10.0)) for d in source.diameters_cm]
    assert at_10 == sorted(at_10)


def test_dose_at_10_mm_against_the_published_range() -> None:
    """Published: 5-7 Gy at 10 mm for 20 Gy (TARGIT) at the surface (secondary figure from a
    review table, shared notes 1.4). With the Monte Carlo commissioning table the 3.5-5.0 cm
    applicators fall in 5-7 Gy (compared at the figure's precision, 0.1 Gy: the 5.0 cm gives
    7.0003); the 3.0 cm sphere reads 4.5 Gy: smaller spheres fall off more steeply (Xiao et al.
    2015), and the review figure names no applicator size."""
    source = load_example_source()
    values = {}
    for d in (3.0, 3.5, 4.0, 4.5, 5.0):
        t = treatment_time(source, d, 20.0, "TARGIT")
        values[d] = float(source.dose_rate_gy_min(d, 10.0, "TARGIT")) * t.time_min
    assert list(values.values()) == sorted(values.values())
    assert "Monte Carlo" in source.depth_dose_origin
    assert all(5.0 <= round(values[d], 1) <= 7.0 for d in (3.5, 4.0, 4.5, 5.0)), values
    assert 4.0 <= values[3.0] < 5.0, values


def test_applicator_choice_is_the_largest_that_fits() -> None:
    source = load_example_source()
    assert choose_applicator(source, 30.0) == 3.0
    assert choose_applicator(source, 34.9) == 3.0
    assert choose_applicator(source, 80.0) == 5.0
    with pytest.raises(DeviceDataError, match="smaller than the smallest"):
        choose_applicator(source, 12.0)


DEPARTMENT_IDENTITY = (
    "source_serial: XRS-TEST\nversion: 2026-1\neffective_date: 2026-01-20\n"
    "commissioned_by: A. Physicist\n"
)


def write_department_source(folder: Path, identity: str = DEPARTMENT_IDENTITY) -> Path:
    """A clinic's tables (bare probe r^-3 x a flat transfer 0.5) with their manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bare.csv").write_text(
        "distance_from_source_mm,dose_rate_gy_min\n"
        + "\n".join(f"{r:.1f},{10.0 * (10.0 / r) ** 3:.6f}" for r in np.arange(5.0, 80.5, 0.5))
    )
    (folder / "transfer.csv").write_text(
        "applicator_diameter_cm,depth_mm,transfer_coefficient\n"
        + "\n".join(f"3.0,{z:.1f},0.5" for z in np.arange(0.0, 40.5, 0.5))
    )
    (folder / "source.yaml").write_text(
        identity + "measured_on: 2026-01-15\ndose_definition: TARGIT\n"
        "output_check_factor: 1.02\nbare_probe_csv: bare.csv\ntransfer_coefficients_csv: transfer.csv\n"
    )
    write_manifest(folder, remake="iort devices manifest")
    return folder / "source.yaml"


def test_clinic_commissioning_data(tmp_path: Path) -> None:
    """A clinic's tables: bare probe x transfer coefficient, output check applied."""
    source = load_commissioning(write_department_source(tmp_path))
    assert not source.is_example_source
    surface_targit = 10.0 * (10.0 / 15.0) ** 3 * 0.5 * 1.02
    assert float(source.dose_rate_gy_min(3.0, 0.0, "TARGIT")) == pytest.approx(
        surface_targit, rel=1e-6
    )
    t = treatment_time(source, 3.0, 20.0, "TARGIT")
    assert t.time_min == pytest.approx(20.0 / surface_targit, rel=1e-6)
    ref = source.data_ref()
    assert (ref.status, ref.serial, ref.version, ref.commissioned_by) == (
        "department",
        "XRS-TEST",
        "2026-1",
        "A. Physicist",
    )
    assert ref.effective_date == "2026-01-20"
    (tmp_path / "source.yaml").write_text("source_serial: X\ndose_definition: TARGET\n")
    write_manifest(tmp_path)
    with pytest.raises(DeviceDataError):
        load_commissioning(tmp_path / "source.yaml")


def test_department_data_must_say_whose_and_which_version(tmp_path: Path) -> None:
    path = write_department_source(tmp_path, identity="source_serial: XRS-TEST\n")
    with pytest.raises(DeviceDataError) as info:
        load_commissioning(path)
    missing = [p.split(": ")[1] for p in info.value.problems]
    assert missing == [
        "version is required (department data name their source, version, effective date and "
        "who commissioned them)",
        "effective_date is required (department data name their source, version, effective "
        "date and who commissioned them)",
        "commissioned_by is required (department data name their source, version, effective "
        "date and who commissioned them)",
    ]


def test_department_data_changed_after_their_manifest_are_refused(tmp_path: Path) -> None:
    path = write_department_source(tmp_path)
    with (tmp_path / "transfer.csv").open("a") as f:
        f.write("\n3.0,41.0,0.5")
    with pytest.raises(DeviceDataError, match=r"transfer\.csv") as info:
        load_commissioning(path)
    assert any("iort devices manifest" in p for p in info.value.problems)
    (tmp_path / "manifest_sha256.csv").unlink()
    with pytest.raises(DeviceDataError, match=r"no manifest_sha256\.csv"):
        load_commissioning(path)


def test_example_source_is_example_data() -> None:
    ref = load_example_source().data_ref()
    assert ref.status == "example" and ref.is_example
    assert "TG-292" in (ref.version or "")
