"""Electron beam data: integrity, derived quantities against measured tables, compaction cost."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from openiort.devices.electron import (
    ElectronDataError,
    ElectronDevice,
    ElectronSettingError,
    _load_device_cached,
    get_disc,
    load_electron_device,
    sha256_file,
)

# In-repo copy of four of the 144 source-format beams of the project's literature reference pack
# (tests/reference_data/README.md): the two that the compaction costs most (largest dose error
# C7B15_6MeV, largest R90 shift C10B0_12MeV), the R90 outlier C3B30_10MeV and the steeply
# bevelled C5B45_12MeV. A missing file fails the test; it never skips.
REFERENCE_BEAMS = Path(__file__).resolve().parents[1] / "reference_data" / "electron_liac_hwl"
REFERENCE_KEYS = ("C3B30_10MeV", "C5B45_12MeV", "C7B15_6MeV", "C10B0_12MeV")

# The measured R90 of 3 cm / 30 deg / 10 MeV repeats the 12 MeV value (see the data README):
# the one beam allowed to miss the 1 mm tolerance, and it must keep missing it.
KNOWN_R90_OUTLIERS = {(3, 30, 10)}


@pytest.fixture(scope="module")
def device() -> ElectronDevice:
    return load_electron_device()


def test_packaged_data_hash_is_recorded_and_checked(device: ElectronDevice) -> None:
    assert device.beam_data_kind == "compact"
    assert device.beam_data_matches_release
    # The hash is that of the file's bytes (computed here with hashlib, not the package's
    # helper) and equals the one recorded in the device manifest shipped beside it.
    path = Path(device.beam_data_path)
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest = yaml.safe_load((path.parent / "liac_hwl.yaml").read_text(encoding="utf-8"))
    assert device.beam_data_sha256 == actual == manifest["beam_data_sha256"]
    assert sha256_file(path) == actual


def test_tampered_beam_file_is_flagged(tmp_path: Path, device: ElectronDevice) -> None:
    copy = tmp_path / "beams.npz"
    shutil.copy(device.beam_data_path, copy)
    data = bytearray(copy.read_bytes())
    data[-40] ^= 0xFF  # inside the zip's central directory: still readable, different hash
    copy.write_bytes(bytes(data))
    dev = load_electron_device(copy)
    assert not dev.beam_data_matches_release
    assert dev.beam_data_sha256 != device.beam_data_sha256


def test_corrupt_packaged_data_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    import openiort.devices.electron.device as el

    real = el.data_text

    def fake(name: str) -> str:
        text = real(name)
        if name != el.DEFAULT_MANIFEST:
            return text
        return re.sub(
            r"(?m)^beam_data_sha256: [0-9a-f]{64}$", "beam_data_sha256: " + "0" * 64, text
        )

    monkeypatch.setattr(el, "data_text", fake)
    _load_device_cached.cache_clear()
    try:
        with pytest.raises(ElectronDataError, match="integrity check"):
            el._load_device_cached(None)
    finally:
        _load_device_cached.cache_clear()


def test_typical_beam_on_time_is_device_data(device: ElectronDevice) -> None:
    """The beam-on time comes from the device data, with its status and source; it is the
    figure of the ELIOT schedule of the radiobiology library (plans state the same)."""
    from openiort.radiobiology.schedules import get_schedule

    beam_on = device.typical_beam_on_time
    assert beam_on is not None
    manifest = yaml.safe_load(
        (Path(device.beam_data_path).parent / "liac_hwl.yaml").read_text(encoding="utf-8")
    )
    assert beam_on.minutes == manifest["typical_beam_on_time_min"]["value"] == 2.0
    assert beam_on.source and beam_on.status
    eliot = get_schedule("ELIOT")
    assert (beam_on.minutes, beam_on.status, beam_on.source) == (
        eliot.delivery_time_min,
        eliot.status,
        eliot.source,
    )


def test_missing_beam_data_path_raises(tmp_path: Path) -> None:
    with pytest.raises(ElectronDataError, match="not found"):
        load_electron_device(tmp_path / "nothing_here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ElectronDataError, match="no beam files"):
        load_electron_device(tmp_path / "empty")


def test_r90_from_monte_carlo_matches_measured_table(device: ElectronDevice) -> None:
    """R90 derived from the MC PDD vs the measured R90 (Hospital Gregorio Maranon).

    Tolerance 1 mm: the MC depth voxels are 1.5-2.4 mm and R90 is found by linear
    interpolation of the central-axis PDD between voxel centres where the curve bends (PDD
    slope at R90 1.2-4.9 %/mm), an error of up to about half a voxel; the MC statistical
    uncertainty at the maximum (<= 0.03 %) moves R90 by < 0.01 mm, and the measured R90 are
    given to 0.1 mm. The RMS over all beams (< 0.5 mm) guards against a systematic shift.
    """
    misses = {}
    diffs = []
    for beam in device.beams():
        s = (beam.applicator_cm, beam.bevel_deg, beam.energy_mev)
        d = beam.characteristics.r90_mm - device.r90_measured(*s)
        diffs.append(d)
        if abs(d) > 1.0:
            misses[s] = d
    assert len(diffs) == 144
    assert set(misses) == KNOWN_R90_OUTLIERS, misses
    assert misses[(3, 30, 10)] == pytest.approx(-2.0, abs=0.2)
    assert float(np.sqrt(np.mean(np.square(diffs)))) < 0.5


def test_mc_output_factors_agree_with_measured(device: ElectronDevice) -> None:
    """MC output factors vs measured (the basis of the independent MU check).

    Tolerance 3 %: the second-check action level (planning_defaults.yaml).
    """
    worst = max(
        abs(
            device.mc_output_factor(b.applicator_cm, b.bevel_deg, b.energy_mev)
            / device.output_factor(b.applicator_cm, b.bevel_deg, b.energy_mev)
            - 1.0
        )
        for b in device.beams()
    )
    assert worst < 0.03
    assert device.mc_output_factor(10, 0, 12) == pytest.approx(1.0, abs=1e-12)


def test_derived_quantities_are_ordered_and_normalised(device: ElectronDevice) -> None:
    for beam in device.beams():
        c = beam.characteristics
        assert 0 < c.zmax_mm < c.r90_mm < c.r80_mm < c.r50_mm < c.rp_mm, beam.key
        # the clinical-axis maximum is 100 % by construction of the normalisation
        assert float(beam.pdd(c.zmax_mm)) == pytest.approx(100.0, abs=1e-9)
        assert float(beam.pdd(c.r90_mm)) == pytest.approx(90.0, abs=1e-6)
        # electron beams of 6-12 MeV: surface dose well below the maximum and above 70 %
        assert 70.0 < c.surface_dose_pct < 100.0, beam.key
    # R90 and R50 increase with energy for a fixed applicator and bevel
    for a in device.applicators_cm:
        for b in device.bevels_deg:
            r50 = [device.beam(a, b, e).characteristics.r50_mm for e in device.energies_mev]
            assert np.all(np.diff(r50) > 0), (a, b)


def test_bevel_shifts_dose_towards_plus_x(device: ElectronDevice) -> None:
    beam = device.beam(5, 45, 12)
    depth = 25.0
    assert float(beam.relative_dose(15.0, 0.0, depth)) > 1.5 * float(
        beam.relative_dose(-15.0, 0.0, depth)
    )
    flat = device.beam(5, 0, 12)
    assert float(flat.relative_dose(15.0, 0.0, depth)) == pytest.approx(
        float(flat.relative_dose(-15.0, 0.0, depth)), rel=0.05
    )


def test_interpolation_reproduces_voxels_and_is_linear_between(device: ElectronDevice) -> None:
    beam = device.beam(6, 15, 8)
    ox, oy, od = beam.origin_mm
    sx, sy, sd = beam.spacing_mm
    i, j, k = 7, 11, 5
    x, y, d = ox + i * sx, oy + j * sy, od + k * sd
    expected = 100.0 * beam.dose_mc[i, j, k] / beam.mc_axis_max
    assert float(beam.relative_dose(x, y, d)) == pytest.approx(expected, rel=1e-6)
    mid = 100.0 * 0.5 * (beam.dose_mc[i, j, k] + beam.dose_mc[i + 1, j, k]) / beam.mc_axis_max
    assert float(beam.relative_dose(x + sx / 2, y, d)) == pytest.approx(mid, rel=1e-6)
    # never negative, finite everywhere, also far outside the data
    far = beam.relative_dose(
        np.array([-500.0, 500.0]), np.array([0.0, 300.0]), np.array([-5.0, 400.0])
    )
    assert np.all(np.isfinite(far)) and np.all(far >= 0)
    with pytest.raises(ValueError, match="finite"):
        beam.relative_dose(np.nan, 0.0, 10.0)


def test_settings_not_in_the_data_are_rejected(device: ElectronDevice) -> None:
    with pytest.raises(ElectronSettingError, match="energy 7 MeV is not in the LIAC HWL data"):
        device.beam(5, 0, 7)
    with pytest.raises(ElectronSettingError, match="applicator 11 cm"):
        device.output_factor(11, 0, 6)
    with pytest.raises(ElectronSettingError, match="bevel 20 deg"):
        device.r90_measured(5, 20, 6)


def test_shielding_disc_data() -> None:
    d = get_disc("al_pb")
    assert d.thickness_mm == pytest.approx(6.0)
    # published: 3-9 % increase of the maximum dose (PMC5713149), assigned 9 % at 6 MeV, 3 % at 12
    assert float(d.backscatter_increase(6, 0.0)) == pytest.approx(0.09)
    assert float(d.backscatter_increase(12, 0.0)) == pytest.approx(0.03)
    # enhancement mostly gone after 1 g/cm2 of low-Z material (10 % left by construction)
    assert float(d.backscatter_increase(6, 10.0)) == pytest.approx(0.009, rel=1e-3)
    s = get_disc("steel")
    assert float(s.backscatter_increase(9, 1.0)) == pytest.approx(0.184)  # AQURE abstract, 1 mm
    with pytest.raises(ElectronSettingError, match="unknown shielding disc"):
        get_disc("tungsten")


def test_compact_copy_matches_source_files(device: ElectronDevice) -> None:
    """Cost of the compact copy, measured against full-precision source beams (data README)."""
    source = load_electron_device(REFERENCE_BEAMS)
    assert source.beam_data_kind == "directory"
    # Four of the 144 beams: not the release directory, whose hash covers all of them.
    assert not source.beam_data_matches_release
    worst_dose = worst_r90 = 0.0
    for key in REFERENCE_KEYS:
        a, rest = key[1:].split("B")
        b, e = rest.removesuffix("MeV").split("_")
        settings = int(a), int(b), int(e)
        compact, r = device.beam(*settings), source.beam(*settings)
        assert r.dose_mc.shape == compact.dose_mc.shape
        worst_dose = max(
            worst_dose,
            float(np.abs(compact.dose_mc / compact.mc_axis_max - r.dose_mc / r.mc_axis_max).max()),
        )
        worst_r90 = max(worst_r90, abs(compact.characteristics.r90_mm - r.characteristics.r90_mm))
    # Quantisation step 1e-4 of each beam's voxel maximum, which is up to ~1.05x the axis
    # maximum: the dose is off by <= 0.5 step and so is the axis maximum that normalises it,
    # together <= 2 x 0.5e-4 x 1.05 ~ 1.05e-4 of the axis maximum (worst of all 144 beams,
    # measured against the full pack: 1.01e-4, C7B15_6MeV); 1.5e-4 leaves margin.
    assert worst_dose < 1.5e-4
    # R90 moves by the dose error over the PDD slope at R90 (>~ 2 %/mm): well under 0.01 mm
    # (worst of all 144 beams measured: 0.003 mm, C10B0_12MeV).
    assert worst_r90 < 0.01
