"""Electron dose in voxel phantoms: geometry, density scaling, shielding disc."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from openiort.anatomy.phantom import Phantom
from openiort.devices.electron import ElectronDevice, get_disc, load_electron_device
from openiort.dose.electron import (
    DiscPlacement,
    ElectronGeometryError,
    beam_frame,
    central_axis_dose,
    compute_dose,
    eliot_geometry,
    relative_electron_density,
)

AXIS = (0.0, 1.0, 0.0)
ENTRY = (0.0, 0.0, 0.0)


@pytest.fixture(scope="module")
def device() -> ElectronDevice:
    return load_electron_device()


def _axis_profile(dose: np.ndarray, phantom: Phantom) -> tuple[np.ndarray, np.ndarray]:
    z, y, x = phantom.grid.axes_mm()
    iz, ix = int(np.argmin(np.abs(z))), int(np.argmin(np.abs(x)))
    return y, dose[iz, :, ix]


def test_water_phantom_reproduces_the_beam_pdd(
    device: ElectronDevice, slab: Callable[..., Phantom]
) -> None:
    """In water the dose on the axis is dose_max x PDD (interpolation of the same data)."""
    beam = device.beam(6, 0, 10)
    phantom = slab(spacing_mm=2.0)
    dose = compute_dose(beam, phantom, ENTRY, AXIS, dose_max_gy=23.0)
    assert dose.medium == "water_in_medium"
    assert dose.provenance.device_data_sha256 == device.beam_data_sha256
    y, d = _axis_profile(dose.dose_gy, phantom)
    inside = y >= 0
    expected = 23.0 * beam.pdd(y[inside]) / 100.0
    # water has relative electron density 1: the water-equivalent depth is exact
    np.testing.assert_allclose(d[inside], expected, rtol=1e-5)
    # the maximum of the axis profile is dose_max to within the 2 mm sampling of the PDD peak
    assert d.max() == pytest.approx(23.0, rel=0.01)
    # above the surface (air in the applicator) the surface value is held, never zero
    assert np.all(d[~inside] > 0)


def test_oblique_axis_and_bevel_follow_beam_coordinates(
    device: ElectronDevice, slab: Callable[..., Phantom]
) -> None:
    """Placement on an oblique axis matches the beam data at independently computed coordinates."""
    beam = device.beam(5, 45, 12)
    phantom = slab(spacing_mm=3.0, half_width_mm=45.0, depth_mm=60.0)
    axis = np.array([0.3, 1.0, -0.4])
    axis /= np.linalg.norm(axis)
    bevel = np.array([1.0, 0.0, 0.5])
    entry = (2.0, 1.0, -3.0)
    dose = compute_dose(
        beam,
        phantom,
        entry,
        tuple(axis),
        dose_max_gy=10.0,
        bevel_direction=tuple(bevel),
        density_scaling=False,
    )
    assert dose.medium == "water_in_water"
    u = bevel - np.dot(bevel, axis) * axis
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    rng = np.random.default_rng(7)
    idx = rng.integers(0, np.array(phantom.grid.shape), size=(300, 3))
    pos = phantom.grid.index_to_position_mm(idx.astype(float)) - np.array(entry)
    t = pos @ axis
    expected = 10.0 * beam.relative_dose(pos @ u, pos @ v, np.maximum(t, 0.0)) / 100.0
    got = dose.dose_gy[idx[:, 0], idx[:, 1], idx[:, 2]]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    # the bevelled beam's dose moves towards +bevel direction with depth
    frame = beam_frame(tuple(axis), tuple(bevel))
    np.testing.assert_allclose(frame[1], u, atol=1e-12)


def test_lung_slab_shifts_the_depth_dose_by_its_water_equivalent_thickness(
    device: ElectronDevice, slab: Callable[..., Phantom]
) -> None:
    """Coefficient of equivalent thickness: beyond 20 mm of lung the PDD is that of water at
    10 + 20 x rho_e(lung) + (t - 30) mm. Tolerance: 0.5 mm of depth (the 1 mm voxel boundary is
    spread over one voxel by the linear resampling of the density)."""
    beam = device.beam(10, 0, 12)
    phantom = slab(
        [("water", 10.0), ("lung", 20.0), ("water", 100.0)],
        spacing_mm=1.0,
        half_width_mm=30.0,
        depth_mm=60.0,
    )
    rho = relative_electron_density(phantom)
    rho_lung = float(rho[phantom.material_ids == phantom.materials.index("lung")].mean())
    assert rho_lung == pytest.approx(0.26 * 0.99, rel=0.02)  # ICRU-44 lung at 0.26 g/cm3
    dose = compute_dose(beam, phantom, ENTRY, AXIS, dose_max_gy=1.0)
    y, d = _axis_profile(dose.dose_gy, phantom)
    for t in (34.0, 40.0, 45.0):
        k = int(np.argmin(np.abs(y - t)))
        wed = 10.0 + 20.0 * rho_lung + (t - 30.0)
        lo, hi = sorted(float(beam.pdd(w)) / 100.0 for w in (wed - 0.5, wed + 0.5))
        assert lo <= d[k] <= hi, (t, d[k], lo, hi)
        # well above the unscaled (all-water) depth dose
        assert d[k] > float(beam.pdd(t)) / 100.0 + 0.1


def test_shielding_disc_backscatter_and_transmission(
    device: ElectronDevice, slab: Callable[..., Phantom]
) -> None:
    beam = device.beam(5, 0, 6)
    phantom = slab(spacing_mm=1.0, half_width_mm=50.0, depth_mm=60.0)
    disc = DiscPlacement(get_disc("al_pb"), depth_mm=12.5, diameter_mm=70.0)
    open_ = compute_dose(beam, phantom, ENTRY, AXIS, dose_max_gy=20.0)
    shielded = compute_dose(beam, phantom, ENTRY, AXIS, dose_max_gy=20.0, disc=disc)
    y, d_open = _axis_profile(open_.dose_gy, phantom)
    _, d_disc = _axis_profile(shielded.dose_gy, phantom)
    k = int(np.argmin(np.abs(y - 12.0)))  # 0.5 mm in front of the disc face
    # published: +9 % at the face at 6 MeV (PMC5713149 range 3-9 %), decaying over lambda
    ratio = d_disc[k] / d_open[k]
    assert ratio == pytest.approx(1.0 + 0.09 * np.exp(-0.5 / 4.343), rel=1e-6)
    assert 1.0 < ratio <= 1.09
    # behind: 2 % of the open dose at the face (Giarratano 1975 bound), constant and never zero
    face = 20.0 * float(beam.pdd(12.5)) / 100.0
    behind = y >= 12.5
    np.testing.assert_allclose(d_disc[behind], 0.02 * face, rtol=1e-6)
    assert np.all(shielded.dose_gy > 0)
    # far upstream and outside the disc radius the disc changes nothing
    k_far = int(np.argmin(np.abs(y - 2.0)))
    assert d_disc[k_far] / d_open[k_far] - 1 < 0.09 * np.exp(-10.0 / 4.343) + 1e-9
    z, _yy, x = phantom.grid.axes_mm()
    ix_out = int(np.argmin(np.abs(x - 45.0)))  # |x| = 45 mm > 35 mm disc radius
    np.testing.assert_allclose(
        shielded.dose_gy[:, :, ix_out][np.abs(z) < 5], open_.dose_gy[:, :, ix_out][np.abs(z) < 5]
    )


def test_organs_behind_the_disc_receive_transmitted_dose_only(
    device: ElectronDevice, eliot: Callable[..., Phantom]
) -> None:
    beam = device.beam(6, 0, 10)
    phantom = eliot(target_thickness_mm=20.0, spacing_mm=2.0)
    disc = DiscPlacement(get_disc("al_pb"), depth_mm=20.0, diameter_mm=80.0)
    dose = compute_dose(beam, phantom, (0.0, 0.0, 0.0), AXIS, dose_max_gy=23.3, disc=disc)
    face = 23.3 * float(beam.pdd(20.0 * 1.0)) / 100.0  # gland ~ water-equivalent
    heart = dose.dose_gy[phantom.structures["heart"]]
    z, y, x = phantom.grid.axes_mm()
    zz, _yy, xx = np.meshgrid(z, y, x, indexing="ij")
    under_disc = phantom.structures["heart"] & (xx**2 + zz**2 <= 40.0**2)
    assert dose.dose_gy[under_disc].max() <= 0.02 * face * 1.05
    assert heart.min() > 0
    # without the disc the ribs just behind the gland would get most of the beam
    no_disc = compute_dose(beam, phantom, (0.0, 0.0, 0.0), AXIS, dose_max_gy=23.3)
    ribs = phantom.structures["ribs"] & (xx**2 + zz**2 <= 20.0**2)
    assert no_disc.dose_gy[ribs].max() > 10 * dose.dose_gy[ribs].max()


def test_central_axis_profile_matches_3d_dose(
    device: ElectronDevice, slab: Callable[..., Phantom]
) -> None:
    beam = device.beam(6, 0, 10)
    phantom = slab(spacing_mm=2.0)
    disc = DiscPlacement(get_disc("al_pb"), depth_mm=21.0, diameter_mm=80.0)
    dose = compute_dose(beam, phantom, ENTRY, AXIS, dose_max_gy=23.0, disc=disc, bolus_mm=3.0)
    y, d = _axis_profile(dose.dose_gy, phantom)
    sel = y >= 0
    prof = central_axis_dose(beam, y[sel], dose_max_gy=23.0, disc=disc, bolus_mm=3.0)
    np.testing.assert_allclose(d[sel], prof, rtol=1e-5)
    # bolus: the tissue surface sits at 3 mm depth in the water data
    surface = central_axis_dose(beam, np.array([0.0]), dose_max_gy=23.0, bolus_mm=3.0)
    assert surface[0] == pytest.approx(23.0 * float(beam.pdd(3.0)) / 100.0, rel=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"axis": (0.0, 0.0, 0.0)}, "axis"),
        ({"axis": (0.0, -1.0, 0.0)}, "upstream"),
        ({"dose_max_gy": -1.0}, "dose_max_gy"),
        ({"bolus_mm": -2.0}, "bolus"),
        ({"bevel_direction": (0.0, 2.0, 0.0)}, "parallel"),
        ({"entry_point_mm": (0.0, float("nan"), 0.0)}, "entry point"),
    ],
)
def test_bad_placement_is_rejected(
    device: ElectronDevice, kwargs: dict, match: str, slab: Callable[..., Phantom]
) -> None:
    phantom = slab(spacing_mm=4.0, half_width_mm=20.0, depth_mm=20.0, air_above_mm=0.0)
    args = {"entry_point_mm": (0.0, -50.0, 0.0), "axis": AXIS, "dose_max_gy": 1.0}
    args.update(kwargs)
    with pytest.raises(ElectronGeometryError, match=match):
        compute_dose(
            device.beam(5, 0, 6), phantom, args.pop("entry_point_mm"), args.pop("axis"), **args
        )
    with pytest.raises(ElectronGeometryError, match="disc depth"):
        DiscPlacement(get_disc("al_pb"), depth_mm=0.0, diameter_mm=50.0)


def test_eliot_geometry_finds_the_fascia_and_its_normal(eliot: Callable[..., Phantom]) -> None:
    phantom = eliot(target_thickness_mm=20.0, spacing_mm=2.0)
    phantom.structures["breast"] = phantom.material_ids == phantom.materials.index("gland")
    tilt = np.radians(20.0)
    g = eliot_geometry(
        phantom,
        16.0,
        30.0,
        tumour_bed_mm=(0.0, 6.0, 0.0),
        applicator_axis=(0.0, np.cos(tilt), np.sin(tilt)),
    )
    # slab chest wall starting at the voxel face y = 19 mm (2 mm grid): normal +y
    assert g.axis == pytest.approx((0.0, 1.0, 0.0), abs=0.02)
    assert g.surface_inclination_deg == pytest.approx(20.0, abs=1.5)
    assert g.bevel_direction == pytest.approx((0.0, 0.0, 1.0), abs=0.03)
    assert g.fascia_point_mm[1] == pytest.approx(19.0, abs=0.6)
    assert g.entry_point_mm[1] == pytest.approx(3.0, abs=0.6)
    z, y, x = phantom.grid.axes_mm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    t = g.target
    assert np.all(yy[t] >= g.entry_point_mm[1]) and np.all(yy[t] < g.entry_point_mm[1] + 16.0)
    # centred where the tilted applicator axis meets the fascia: z = 13 mm x tan 20 deg
    assert g.entry_point_mm[2] == pytest.approx(13.0 * np.tan(tilt), abs=0.6)
    assert np.all(xx[t] ** 2 + (zz[t] - g.entry_point_mm[2]) ** 2 <= 15.0**2 + 1e-9)
    # volume: pi r^2 h = 11.3 cc within the voxelisation of a 2 mm grid (15 %)
    assert t.sum() * phantom.grid.voxel_volume_cc == pytest.approx(np.pi * 1.5**2 * 1.6, rel=0.15)
    with pytest.raises(ElectronGeometryError, match="never reaches the chest wall"):
        eliot_geometry(
            phantom, 16.0, 30.0, tumour_bed_mm=(0.0, 6.0, 0.0), applicator_axis=(1.0, 0.0, 0.0)
        )
    with pytest.raises(ElectronGeometryError, match="tumour-bed centre"):
        eliot_geometry(phantom, 16.0, 30.0)
