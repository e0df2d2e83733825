"""Photon interaction tables from 1 keV to 1.5 MeV for the Ir-192 (HDR) transport.

The kV engine's tables (:mod:`openiort.dose.mc.physics`) stop at 60.5 keV; these cover the
Ir-192 lines (up to 1378 keV) and everything they scatter down to. They are built per element
on one logarithmic grid (:data:`LOG_GRID_POINTS` energies, 1 keV to 1.5 MeV), mixed by mass
fraction, then resampled (log-log) onto the uniform grid that the shared kernels read
(:class:`openiort.dose.mc.physics.PhysArrays`), so the kV kernels transport Ir-192 unchanged.

Sources and models, per table:

- Photoelectric and coherent (Rayleigh) cross sections: xraydb's Elam tables (Elam, Ravel &
  Sieber, Radiat Phys Chem 2002;63:121; photoelectric from Scofield, coherent from Hubbell's
  form-factor evaluations), valid to 800 keV. Above 800 keV xraydb returns its 800 keV value,
  so both are continued by the log-log slope of the 600-800 keV rows. Above 800 keV they are
  together at most 0.15 % of the total for H, C, N, O and 1 % for Ca, and both fall as smooth
  power laws there, so the continuation's error is a small fraction of that.
- Incoherent (Compton) scattering: Klein-Nishina times the incoherent scattering function with
  the bound-electron model of the kV engine, S(x, Z) = Z [1 - (F(x)/Z)^p] (F: xraydb's
  Waasmaier-Kirfel form factor, fitted to x = 6 / Angstrom and taken as 0 beyond; p per element
  from :func:`openiort.dose.mc.physics.incoherent_s_exponent`), gives the angular distribution
  the kernel samples. The cross section is xraydb's bound-electron (Elam) value to 800 keV and
  above it the KN x S integral, scaled by 1.004 to join it at 800 keV (binding hardly matters
  there: the model tends to free-electron Klein-Nishina, as the NIST tables do). The KN x S
  integral itself is checked against xraydb over 10-800 keV (within 3 % below 100 keV, 1 %
  above; tests), so cross section and angles are one model to that level.
- Pair production (threshold 1022 keV) is left out: below 0.1 % of mu/rho at 1.25-1.5 MeV for
  these elements (NIST SRD 126 / XCOM), and the lines above 1022 keV carry 0.024 % of the
  Ir-192 photons.
- K-shell fluorescence of every element whose K edge lies above the 1 keV cut-off is emitted
  isotropically after a photoabsorption above the edge and transported, as in the kV engine
  (:func:`openiort.dose.mc.physics.fluorescence_lines`: K-shell share (J - 1)/J of the edge
  jump J, yield and line energies from xraydb): iodine's 28-33 keV lines in a contrast-filled
  balloon (``balloon_cNN``), which reach the tissue around it, iridium's 63-78 keV lines in the
  source's core, and the 2-4 keV lines of P, S, Cl, K and Ca in tissue. L-shell fluorescence
  and the K lines of H, C, N, O are deposited on the spot.
- Sum check: photoelectric + incoherent + coherent reproduces the NIST SRD 126 totals of
  :mod:`openiort.dose.mc.photon_data` for the ICRU tissues within 0.04 % from 10 keV to 1 MeV
  and 0.34 % at 1.5 MeV (pair production), elements H..Ca within 0.62 %
  (tests/mc/test_hdr_physics.py).
- mu_en/rho (for the track-length collision-kerma estimator): NIST SRD 126 (Hubbell & Seltzer)
  by the mixture rule, :func:`openiort.dose.mc.photon_data.mixture_coefficients`, from 10 keV;
  below 10 keV (scattered photons only) the kV engine's mu_en/rho
  (:func:`openiort.dose.mc.physics.mass_energy_absorption_cm2_g`, xraydb partials), which meets
  NIST at 10 keV to 0.5 %. Both follow NIST's definition, which subtracts the K fluorescence
  that leaves the site of the absorption; that energy is transported as fluorescence photons
  and scored where they are absorbed.

Secondary electrons are not transported: dose is collision kerma (see
:mod:`openiort.dose.mc.hdr_engine` for where TG-186 accepts that for Ir-192).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import xraydb
from numpy.typing import NDArray

from openiort.dose.mc import photon_data
from openiort.dose.mc.constants import (
    AVOGADRO_PER_MOL,
    ELECTRON_REST_ENERGY_KEV,
    HC_KEV_ANGSTROM,
)
from openiort.dose.mc.guide import guide_table
from openiort.dose.mc.physics import (
    MaterialDataError,
    MaterialSpec,
    PhysArrays,
    PhysicsOptions,
    fluorescence_arrays,
    fluorescence_per_absorption,
    incoherent_s_exponent,
    klein_nishina_dcs_cm2,
    mass_energy_absorption_cm2_g,
)

FloatArray = NDArray[np.float64]

# Engineering choices (not literature values), checked in tests/mc/test_hdr_physics.py:
ENERGY_MIN_KEV = 1.0
ENERGY_MAX_KEV = 1500.0
#: Photons below this energy deposit on the spot (mean free path < 3 um in tissue).
CUTOFF_KEV = 1.0
#: Per-element tables: log-spaced energies from ENERGY_MIN_KEV to ENERGY_MAX_KEV.
LOG_GRID_POINTS = 400
#: Uniform grid the kernels read (linear interpolation: within 0.1 % of the log tables above
#: 10 keV, 0.4 % at 5-10 keV, where photons are scattered remnants absorbed within a few mm).
KERNEL_STEP_KEV = 0.25
#: Momentum-transfer grid x = sin(theta/2) E / hc, uniform from 0 to its value at 1.5 MeV.
X_POINTS = 16384
_MU_POINTS = 4001  # cos(theta) quadrature points of the KN x S integrals
_ELAM_MAX_KEV = 800.0  # xraydb's Elam tables end here (it returns the 800 keV value above)
_ELAM_SLOPE_FROM_KEV = 600.0
_FORM_FACTOR_X_MAX = 6.0  # Waasmaier-Kirfel fits end at sin(theta)/lambda = 6 / Angstrom
_NIST_MUEN_FROM_KEV = 10.0


def log_grid_kev() -> FloatArray:
    """The per-element table energies (keV), log-spaced."""
    return np.geomspace(ENERGY_MIN_KEV, ENERGY_MAX_KEV, LOG_GRID_POINTS)


def kernel_grid_kev() -> FloatArray:
    """The uniform energy grid of the kernel arrays (keV)."""
    n = round((ENERGY_MAX_KEV - ENERGY_MIN_KEV) / KERNEL_STEP_KEV) + 1
    return ENERGY_MIN_KEV + KERNEL_STEP_KEV * np.arange(n, dtype=np.float64)


def x_grid_inv_angstrom() -> FloatArray:
    return np.linspace(0.0, ENERGY_MAX_KEV / HC_KEV_ANGSTROM * 1.0001, X_POINTS)


@cache
def _z_and_a(symbol: str) -> tuple[int, float]:
    return int(xraydb.atomic_number(symbol)), float(xraydb.atomic_mass(symbol))


def _form_factor(symbol: str, x: FloatArray) -> FloatArray:
    """F(x) in electrons: xraydb's fit up to its validity limit, 0 beyond (clipped to [0, Z])."""
    z, _ = _z_and_a(symbol)
    inside = x <= _FORM_FACTOR_X_MAX
    f = np.zeros_like(x, dtype=np.float64)
    if inside.any():
        f[inside] = np.asarray(xraydb.f0(symbol, x[inside]), dtype=np.float64)
    return np.clip(f, 0.0, float(z))


def incoherent_function(symbol: str, x: FloatArray) -> FloatArray:
    """S(x, Z) = Z [1 - (F/Z)^p] (electrons), p from the kV engine's fit."""
    z, _ = _z_and_a(symbol)
    p = incoherent_s_exponent(symbol)
    return np.asarray(z * (1.0 - (_form_factor(symbol, x) / z) ** p))


def _elam_continued(symbol: str, kind: str, energy_kev: FloatArray) -> FloatArray:
    """xraydb (Elam) partial cross section (cm2/g), log-log continued above 800 keV."""
    out = np.empty_like(energy_kev)
    low = energy_kev <= _ELAM_MAX_KEV
    out[low] = np.asarray(xraydb.mu_elam(symbol, energy_kev[low] * 1000.0, kind=kind))
    if (~low).any():
        e0, e1 = _ELAM_SLOPE_FROM_KEV, _ELAM_MAX_KEV
        v0, v1 = (float(xraydb.mu_elam(symbol, e * 1000.0, kind=kind)) for e in (e0, e1))
        slope = np.log(v1 / v0) / np.log(e1 / e0)
        out[~low] = v1 * (energy_kev[~low] / e1) ** slope
    return out


@dataclass(frozen=True)
class ElementPartials:
    """Partial mass cross sections (cm2/g) of one element on :func:`log_grid_kev`.

    ``incoh_model`` is the KN x S integral of the sampling model alone (for checks).
    """

    energy_kev: FloatArray
    photo: FloatArray
    incoh: FloatArray
    coh: FloatArray
    incoh_model: FloatArray


def incoherent_model_cm2_g(symbol: str, energy_kev: FloatArray) -> FloatArray:
    """Integral over angle of Klein-Nishina x S(x, Z) (cm2/g): the sampling model's cross section."""
    _, a = _z_and_a(symbol)
    mu = np.linspace(-1.0, 1.0, _MU_POINTS)
    half_one_minus_mu = np.sqrt(0.5 * (1.0 - mu))
    out = np.empty(np.size(energy_kev))
    for k, ek in enumerate(np.atleast_1d(energy_kev)):
        s = incoherent_function(symbol, half_one_minus_mu * ek / HC_KEV_ANGSTROM)
        dcs = 2.0 * np.pi * klein_nishina_dcs_cm2(ek, mu) * s
        out[k] = np.trapezoid(dcs, mu) * AVOGADRO_PER_MOL / a
    return out


@cache
def element_partials(symbol: str) -> ElementPartials:
    """Photoelectric, incoherent and coherent cross sections of one element.

    Incoherent: xraydb's bound-electron (Elam) values to 800 keV; above, the KN x S model scaled
    by its ratio to xraydb at 800 keV, so the table is continuous (the scale is 1.004: binding
    hardly matters there, and the model tends to free-electron Klein-Nishina).
    """
    try:
        _z_and_a(symbol)
    except Exception:  # xraydb raises a bare exception type for unknown symbols
        raise MaterialDataError(f"unknown element symbol {symbol!r}") from None
    e = log_grid_kev()
    model = incoherent_model_cm2_g(symbol, e)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # never raised below 800 keV; belt and braces
        photo = _elam_continued(symbol, "photo", e)
        coh = _elam_continued(symbol, "coh", e)
        incoh = np.empty_like(e)
        low = e <= _ELAM_MAX_KEV
        incoh[low] = np.asarray(xraydb.mu_elam(symbol, e[low] * 1000.0, kind="incoh"))
        join = np.array([_ELAM_MAX_KEV])
        scale = float(xraydb.mu_elam(symbol, _ELAM_MAX_KEV * 1000.0, kind="incoh")) / float(
            incoherent_model_cm2_g(symbol, join)[0]
        )
        incoh[~low] = model[~low] * scale
    return ElementPartials(e, photo, incoh, coh, model)


@dataclass(frozen=True)
class HdrCoefficients:
    """Mass coefficients (cm2/g) of one material at given energies (keV)."""

    energy_kev: FloatArray
    photo: FloatArray
    incoh: FloatArray
    coh: FloatArray
    muen: FloatArray

    @property
    def total(self) -> FloatArray:
        return self.photo + self.incoh + self.coh


def _loglog(x: FloatArray, xp: FloatArray, fp: FloatArray) -> FloatArray:
    return np.exp(np.interp(np.log(x), np.log(xp), np.log(np.maximum(fp, 1e-300))))


def _check_energies(energy_kev: FloatArray) -> FloatArray:
    e = np.atleast_1d(np.asarray(energy_kev, dtype=np.float64))
    if not np.all(np.isfinite(e)) or np.any(e < ENERGY_MIN_KEV * (1 - 1e-9)):
        raise MaterialDataError(f"photon energies must be >= {ENERGY_MIN_KEV} keV")
    if np.any(e > ENERGY_MAX_KEV * (1 + 1e-9)):
        raise MaterialDataError(f"photon energies must be <= {ENERGY_MAX_KEV} keV")
    return np.clip(e, ENERGY_MIN_KEV, ENERGY_MAX_KEV)


def hdr_coefficients(
    spec: MaterialSpec, energy_kev: FloatArray, *, energy_absorption: bool = True
) -> HdrCoefficients:
    """Partial and energy-absorption coefficients of ``spec`` at ``energy_kev`` (mu_en/rho
    zero with ``energy_absorption=False``, for media that are never scored)."""
    e = _check_energies(energy_kev)
    grid = log_grid_kev()
    photo = np.zeros_like(e)
    incoh = np.zeros_like(e)
    coh = np.zeros_like(e)
    for el, w in spec.composition:
        p = element_partials(el)
        photo += w * _loglog(e, grid, p.photo)
        incoh += w * _loglog(e, grid, p.incoh)
        coh += w * _loglog(e, grid, p.coh)
    muen = _muen(spec, e) if energy_absorption else np.zeros_like(e)
    return HdrCoefficients(e, photo, incoh, coh, muen)


def _muen(spec: MaterialSpec, e: FloatArray) -> FloatArray:
    out = np.empty_like(e)
    high = e >= _NIST_MUEN_FROM_KEV
    if high.any():
        try:
            out[high] = photon_data.mixture_coefficients(
                dict(spec.composition), e[high]
            ).muen_over_rho_cm2_g
        except photon_data.PhotonDataError as exc:
            raise MaterialDataError(f"material {spec.name}: {exc}") from None
    if (~high).any():
        out[~high] = mass_energy_absorption_cm2_g(spec, e[~high], PhysicsOptions())
    return out


def _scattering_shapes(spec: MaterialSpec, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Cumulative F^2 over x^2 (coherent angles) and S(x)/Z of the mixture (incoherent)."""
    f2 = np.zeros_like(x)
    s_sum = np.zeros_like(x)
    z_sum = 0.0
    for el, w in spec.composition:
        z, a = _z_and_a(el)
        f2 += w / a * _form_factor(el, x) ** 2
        s_sum += w / a * incoherent_function(el, x)
        z_sum += w / a * z
    x2 = x**2
    cum = np.concatenate(([0.0], np.cumsum(0.5 * (f2[1:] + f2[:-1]) * np.diff(x2))))
    return cum, np.clip(s_sum / z_sum, 0.0, 1.0)


@dataclass(frozen=True)
class HdrTables:
    """Kernel arrays for an ordered list of materials (same layout as the kV engine's)."""

    materials: tuple[MaterialSpec, ...]
    arrays: PhysArrays

    def index(self, name: str) -> int:
        for i, m in enumerate(self.materials):
            if m.name == name:
                return i
        raise MaterialDataError(f"material {name!r} is not in these tables")


@cache
def _material_rows(spec: MaterialSpec, energy_absorption: bool) -> tuple[FloatArray, ...]:
    c = hdr_coefficients(spec, kernel_grid_kev(), energy_absorption=energy_absorption)
    cum, s_ratio = _scattering_shapes(spec, x_grid_inv_angstrom())
    return c.total, c.photo / c.total, (c.photo + c.incoh) / c.total, c.muen, cum, s_ratio


@cache
def _fluorescence(spec: MaterialSpec) -> tuple[FloatArray, FloatArray]:
    """Line energies (keV) and their probability per photoabsorption in ``spec`` on the kernel
    grid (:func:`openiort.dose.mc.physics.fluorescence_per_absorption`)."""
    e = kernel_grid_kev()
    grid = log_grid_kev()
    shares = [(el, w * _loglog(e, grid, element_partials(el).photo)) for el, w in spec.composition]
    photo = np.sum([share for _, share in shares], axis=0)
    return fluorescence_per_absorption(shares, photo, e)


def build_hdr_tables(
    materials: Sequence[MaterialSpec], *, scatter: bool = True, energy_absorption: bool = True
) -> HdrTables:
    """Stack the tables of ``materials`` into the kernels' :class:`PhysArrays`.

    ``scatter=False`` ends every photon at its first interaction (primary-only kerma, for
    checks against the analytic attenuation of the source lines). ``energy_absorption=False``
    leaves mu_en/rho zero: for media where nothing is scored (the source's core and capsule,
    whose elements the NIST mu_en/rho file does not hold).
    """
    if not materials:
        raise MaterialDataError("at least one material is needed")
    e = kernel_grid_kev()
    x = x_grid_inv_angstrom()
    rows = [_material_rows(m, energy_absorption) for m in materials]
    mu, cum_photo, cum_incoh, muen, coh_cum, s_ratio = (
        np.ascontiguousarray(np.stack([r[k] for r in rows])) for k in range(6)
    )
    coh_guide = np.stack([guide_table(c, c[-1], x.size) for c in coh_cum])
    fl_count, fl_energy, fl_cum = fluorescence_arrays([_fluorescence(m) for m in materials], e.size)
    arrays = PhysArrays(
        e_min_kev=float(e[0]),
        inv_de=1.0 / KERNEL_STEP_KEV,
        mu_rho=mu,
        cum_photo=cum_photo,
        cum_incoh=cum_incoh,
        muen_rho=muen,
        fl_count=fl_count,
        fl_energy_kev=fl_energy,
        fl_cum=fl_cum,
        inv_dx=float((x.size - 1) / x[-1]),
        x2_grid=x**2,
        coh_cum=coh_cum,
        coh_guide=coh_guide,
        coh_guide_steps_per_unit=np.array([x.size / c[-1] for c in coh_cum]),
        s_ratio=s_ratio,
        hc_kev_angstrom=HC_KEV_ANGSTROM,
        mec2_kev=ELECTRON_REST_ENERGY_KEV,
        cutoff_kev=CUTOFF_KEV,
        scatter=scatter,
    )
    return HdrTables(materials=tuple(materials), arrays=arrays)
