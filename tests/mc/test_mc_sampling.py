"""Compiled interaction sampling against the distributions it should draw from."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from numba import njit

from openiort.dose.mc import physics as ph
from openiort.dose.mc.interactions import rotate, sample_coherent, sample_incoherent
from openiort.dose.mc.rng import batch_key, photon_state, uniform

N = 400_000


@njit(cache=True)
def _draw(n, e, m, phys, key, coherent):
    state = np.empty(1, np.uint64)
    state[0] = photon_state(key, 0)
    cos_t = np.empty(n)
    e_out = np.empty(n)
    for i in range(n):
        if coherent:
            cos_t[i] = sample_coherent(e, m, phys, state)
            e_out[i] = e
        else:
            e_out[i], cos_t[i] = sample_incoherent(e, m, phys, state)
    return cos_t, e_out


def _binned_pdf(weight, mu, bins):
    out = np.array(
        [
            np.trapezoid(weight[(mu >= a) & (mu <= b)], mu[(mu >= a) & (mu <= b)])
            for a, b in itertools.pairwise(bins)
        ]
    )
    return out / out.sum()


@pytest.mark.parametrize("binding", [False, True])
@pytest.mark.parametrize("energy_kev", [20.0, 50.0])
def test_incoherent_angles_follow_kn_times_s(binding, energy_kev):
    opts = ph.PhysicsOptions(binding=binding)
    water = ph.resolve_material("water")
    tables = ph.build_tables([water], opts)
    cos_t, e_out = _draw(N, energy_kev, 0, tables.arrays, batch_key(11, int(energy_kev)), False)
    mu = np.linspace(-1.0, 1.0, 40001)
    w = ph.klein_nishina_dcs_cm2(energy_kev, mu)
    if binding:
        x = np.sqrt((1 - mu) / 2) * energy_kev / ph.HC_KEV_ANGSTROM
        w = w * np.interp(
            x, ph.x_grid_inv_angstrom(), ph.material_coefficients(water, opts).s_ratio
        )
    bins = np.linspace(-1, 1, 11)
    expected = _binned_pdf(w, mu, bins)
    observed = np.histogram(cos_t, bins=bins)[0] / N
    sigma = np.sqrt(expected * (1 - expected) / N)
    # 5 standard deviations per bin: a wrong distribution (e.g. no S(x) rejection, which
    # moves ~10 % of the forward bin at 20 keV) fails by far more.
    assert np.all(np.abs(observed - expected) < 5 * sigma)
    # Compton kinematics: E' = E / (1 + k (1 - cos))
    k = energy_kev / ph.ELECTRON_REST_ENERGY_KEV
    np.testing.assert_allclose(e_out, energy_kev / (1 + k * (1 - cos_t)), rtol=1e-12)


@pytest.mark.parametrize("energy_kev", [20.0, 50.0])
def test_coherent_angles_follow_thomson_times_f2(energy_kev):
    water = ph.resolve_material("water")
    tables = ph.build_tables([water])
    cos_t, _ = _draw(N, energy_kev, 0, tables.arrays, batch_key(12, int(energy_kev)), True)
    mu = np.linspace(-1.0, 1.0, 40001)
    x = np.sqrt((1 - mu) / 2) * energy_kev / ph.HC_KEV_ANGSTROM
    f2 = sum(w / ph._z_and_a(el)[1] * ph._form_factor(el, x) ** 2 for el, w in water.composition)
    weight = (1 + mu**2) * f2
    mean_expected = np.trapezoid(weight * mu, mu) / np.trapezoid(weight, mu)
    # standard error of the mean cosine is < 0.5 / sqrt(N) = 8e-4; allow 5 of them
    assert cos_t.mean() == pytest.approx(mean_expected, abs=4e-3)


@njit(cache=True)
def _rotations(n, key):
    state = np.empty(1, np.uint64)
    state[0] = photon_state(key, 3)
    out = np.empty((n, 4))
    for i in range(n):
        w = 2 * uniform(state) - 1
        phi = 6.283185307179586 * uniform(state)
        s = np.sqrt(1 - w * w)
        ux, uy, uz = s * np.cos(phi), s * np.sin(phi), w
        c = 2 * uniform(state) - 1
        nx, ny, nz = rotate(ux, uy, uz, c, 6.283185307179586 * uniform(state))
        out[i, 0] = nx * ux + ny * uy + nz * uz - c
        out[i, 1] = nx * nx + ny * ny + nz * nz - 1.0
        out[i, 2] = nz
        out[i, 3] = c
    return out


def test_rotation_keeps_the_scattering_angle_and_unit_length():
    out = _rotations(100_000, batch_key(5, 0))
    assert np.max(np.abs(out[:, 0])) < 1e-9
    assert np.max(np.abs(out[:, 1])) < 1e-12
    # isotropic input and uniform cos -> isotropic output: mean uz ~ 0 (s.e. 1.8e-3)
    assert abs(out[:, 2].mean()) < 0.01


def test_batch_keys_depend_on_seed_and_batch_only():
    assert batch_key(1, 2) == batch_key(1, 2)
    keys = {int(batch_key(s, b)) for s in range(20) for b in range(20)}
    assert len(keys) == 400
    with pytest.raises(ValueError):
        batch_key(-1, 0)
