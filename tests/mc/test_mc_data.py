"""The shipped source spectrum, depth-dose table and MC calibration are current and consistent."""

from __future__ import annotations

import numpy as np
import pytest

from openiort.datafiles import parse_commented_csv
from openiort.devices.xray_chamber import chamber_geometry, volume_average
from openiort.dose.mc.commissioning import (
    DEPTHS_MM,
    default_table_path,
    depth_dose_water,
    load_calibration,
    surface_rate_check,
)
from openiort.dose.mc.spectrum import load_spectrum, spekpy_spectrum
from openiort.dose.mc.xray_source import applicator_diameters_cm, applicator_spectrum


def _shipped_table() -> dict[float, np.ndarray]:
    rows = parse_commented_csv(default_table_path().read_text("utf-8"))
    out: dict[float, list[float]] = {}
    for r in rows:
        out.setdefault(float(r["applicator_diameter_cm"]), []).append(
            float(r["relative_dose_water"])
        )
    return {d: np.array(v) for d, v in out.items()}


def test_shipped_spectrum_is_what_spekpy_gives_for_the_model():
    import spekpy  # noqa: F401  (a dev dependency: a missing one fails, never skips)

    edges, probs, _ = load_spectrum()
    fresh_edges, fresh_probs = spekpy_spectrum()
    np.testing.assert_allclose(edges, fresh_edges, atol=1e-9)
    # the CSV stores 9 significant digits
    np.testing.assert_allclose(probs, fresh_probs, rtol=1e-6, atol=1e-15)


def test_calibration_and_table_belong_to_the_shipped_spectrum():
    # the applicator spectrum's identity: the tip spectrum's file and the applicator filtration
    digest = applicator_spectrum().identity_sha256
    calib = load_calibration()
    assert sorted(calib) == list(applicator_diameters_cm())
    assert all(c.spectrum_sha256 == digest for c in calib.values())
    assert digest[:16] in default_table_path().read_text("utf-8")
    table = _shipped_table()
    assert sorted(table) == list(applicator_diameters_cm())
    for d, rel in table.items():
        assert rel.size == DEPTHS_MM.size and rel[0] == 1.0
        assert np.all(np.diff(rel) < 0), d  # dose falls monotonically with depth
        # larger applicators fall off more slowly (less divergence, harder beam)
    at_10 = [table[d][20] for d in sorted(table)]
    assert at_10 == sorted(at_10)


@pytest.mark.validate
@pytest.mark.parametrize("diameter_cm", [1.5, 3.0, 5.0])
def test_shipped_table_matches_a_fresh_commissioning_run(diameter_cm):
    fresh = depth_dose_water(diameter_cm, 4_000_000, seed=777)
    shipped = _shipped_table()[diameter_cm]
    # both carry <= 0.5 % (10 mm) to 0.7 % (60 mm) statistical uncertainty: 4 sigma combined
    tol = 4 * np.sqrt(2) * np.maximum(fresh.relative_unc, 0.002)
    assert np.all(np.abs(fresh.relative / shipped - 1.0) < tol)


@pytest.mark.validate
def test_relative_surface_rates_match_tg292():
    curves = [
        depth_dose_water(d, 2_000_000, seed=100 + i)
        for i, d in enumerate(applicator_diameters_cm())
    ]
    # TG-292 Table IV V4.0 surface rates relative to each other, read as the V4.0 chamber reads
    # them (issue 15 item 1: the jointly fitted model reproduces them within 3 % each, 2 % rms;
    # as point doses they are 9 % apart at 1.5 cm, which the chamber's volume averaging explains).
    geo = chamber_geometry()
    logs = []
    for check, curve in zip(surface_rate_check(curves), curves, strict=True):
        k = volume_average(
            lambda z, c=curve: np.interp(z, c.depth_mm, c.relative),
            curve.diameter_cm * 5.0,
            float(geo["sensitive_radius_mm"]),
            float(geo["plate_separation_mm"]),
        )
        logs.append(np.log(check.ratio * k))
    residuals = 100 * np.expm1(np.asarray(logs) - np.mean(logs))
    assert np.max(np.abs(residuals)) <= 3.0, residuals
    assert np.sqrt(np.mean(residuals**2)) <= 2.0, residuals


def test_applicator_spectrum_is_the_tip_spectrum_through_the_filtration():
    from openiort.dose.mc.xray_source import applicator_filtration

    edges, probs, digest = load_spectrum()
    spectrum = applicator_spectrum()
    filtration = applicator_filtration()
    through = probs * filtration.transmission(0.5 * (edges[1:] + edges[:-1]))
    assert spectrum.photons_per_emitted == pytest.approx(through.sum(), rel=1e-12)
    np.testing.assert_allclose(spectrum.probabilities, through / through.sum(), rtol=1e-12)
    # a calibration made for the tip spectrum alone, or another filtration, is not this one's
    assert spectrum.identity_sha256 != digest
    # by hand at 20 keV: NIST XCOM mu/rho of Al 3.441 cm2/g (with coherent scattering)
    expected = np.exp(-3.441 * filtration.density_g_cm3 * filtration.thickness_mm / 10.0)
    assert filtration.transmission(np.array([20.0]))[0] == pytest.approx(expected, rel=0.01)
