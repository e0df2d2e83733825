"""Photon interaction data from 1 to 60 keV for any elemental composition.

Cross sections come from xraydb (Elam, Ravel & Sieber, Radiat Phys Chem 2002;63:121; its
photoelectric, coherent and incoherent cross sections follow the XCOM / Scofield / Hubbell
evaluations): ``mu_elam(kind="photo" | "incoh" | "coh")``.

Models (what the transport samples and what the kerma estimator uses, kept consistent):

- Photoelectric absorption. The photoelectron and the Auger cascade deposit locally. K-shell
  fluorescence of elements whose K edge lies above the 1 keV transport cut-off (Na to Ca in
  tissue, Ar in air) is emitted isotropically and transported; the K-shell share of absorption
  is ``(J - 1) / J`` from the edge jump ratio J, the yield and line energies come from xraydb.
  Other fluorescence (L shells, K shells of C, N, O) is below 1 keV and deposited on the spot.
- Incoherent scattering: Klein-Nishina times the incoherent scattering function S(x, Z). xraydb
  has no S(x, Z), so it is modelled as ``S = Z [1 - (F(x)/Z)^p]`` from the atomic form factor F
  (exact for hydrogen, p = 2); p is fitted per element so that the integral of KN x S matches
  xraydb's (binding-corrected) incoherent cross section from 5 to 60 keV (within 3 %, see
  :func:`incoherent_model_residuals`). The transport uses xraydb's total; the model gives the
  angular shape. Doppler broadening is neglected; the binding energy is deposited locally.
- Coherent scattering: Thomson times the squared molecular form factor (independent-atom sum
  of xraydb's Waasmaier-Kirfel F(x)).
- mu_en/rho = tau (1 - sum_K P_K omega_K E_K / E) + sigma_incoh <T/E>, the mean electron
  energy fraction averaged over KN x S. Radiative losses of the secondary electrons (below
  0.1 % at 60 keV in tissue) are neglected, so mu_en = mu_tr. Checked against NIST SRD 126 to
  2 % (tests/mc/test_mc_physics.py).

Secondary electrons deposit locally: the CSDA range of a 50 keV electron in water is about
0.043 mm (NIST ESTAR), a twentieth of a 1 mm voxel, and it is the most energetic electron this
source can set in motion.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NamedTuple

import numpy as np
import xraydb
from numpy.typing import NDArray

from openiort.anatomy.materials import get_material
from openiort.dose.mc.constants import (
    AVOGADRO_PER_MOL,
    CLASSICAL_ELECTRON_RADIUS_CM,
    ELECTRON_REST_ENERGY_KEV,
    HC_KEV_ANGSTROM,
)
from openiort.dose.mc.guide import guide_table
from openiort.errors import OpenIortInputError

FloatArray = NDArray[np.float64]

# Energy grid of the transport tables (engineering choices, not literature values): linear
# interpolation on a 0.05 keV grid is exact to < 0.1 % for these smooth coefficients.
ENERGY_MIN_KEV = 1.0
ENERGY_MAX_KEV = 60.5
ENERGY_STEP_KEV = 0.05
#: Photons below this energy deposit their energy on the spot (mean free path < 3 um in tissue).
CUTOFF_KEV = 1.0
#: Momentum-transfer grid x = sin(theta/2) E / hc (1/Angstrom) for form factors and S(x).
X_POINTS = 2048
_MU_POINTS = 2001  # cos(theta) quadrature points for the KN x S averages
_FIT_ENERGIES_KEV = (5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)


class MaterialDataError(OpenIortInputError):
    """A material specification that cannot be turned into interaction data."""


@dataclass(frozen=True)
class PhysicsOptions:
    """Which interactions the transport models (all on for clinical use).

    ``binding=False`` uses free-electron Klein-Nishina (cross section and angles);
    ``scatter=False`` kills a photon at its first interaction (primary-only dose).
    """

    coherent: bool = True
    binding: bool = True
    fluorescence: bool = True
    scatter: bool = True

    def label(self) -> str:
        return ",".join(f"{k}={'on' if v else 'off'}" for k, v in self.__dict__.items())


@dataclass(frozen=True)
class MaterialSpec:
    """A medium: elemental mass fractions and a nominal mass density."""

    name: str
    composition: tuple[tuple[str, float], ...]
    density_g_cm3: float

    @property
    def fractions(self) -> dict[str, float]:
        return dict(self.composition)


def resolve_material(material: str | Mapping[str, Any] | MaterialSpec) -> MaterialSpec:
    """A material name from the library, a ``{"composition", "density_g_cm3"}`` dict, or a spec."""
    if isinstance(material, MaterialSpec):
        return material
    if isinstance(material, str):
        try:
            m = get_material(material)
        except KeyError as exc:
            raise MaterialDataError(str(exc.args[0])) from None
        comp = tuple(sorted(m.composition.items()))
        return MaterialSpec(name=m.name, composition=comp, density_g_cm3=m.density_g_cm3)
    if isinstance(material, Mapping):
        try:
            raw = dict(material["composition"])
            density = float(material["density_g_cm3"])
        except (KeyError, TypeError, ValueError):
            raise MaterialDataError(
                'a material dict needs "composition" {element: mass fraction} and "density_g_cm3"'
            ) from None
        if not np.isfinite(density) or density <= 0:
            raise MaterialDataError(f"material density must be positive, got {density} g/cm3")
        fractions: dict[str, float] = {}
        for el, w in raw.items():
            try:
                xraydb.atomic_number(str(el))
            except Exception:  # xraydb raises a bare exception type for unknown symbols
                raise MaterialDataError(
                    f"unknown element symbol {el!r} in material composition"
                ) from None
            wf = float(w)
            if not np.isfinite(wf) or wf < 0:
                raise MaterialDataError(f"mass fraction of {el} must be >= 0, got {w}")
            if wf > 0:
                fractions[str(el)] = wf
        total = sum(fractions.values())
        if not fractions or abs(total - 1.0) > 0.01:
            raise MaterialDataError(f"mass fractions must sum to 1 (within 1 %), got {total:.4f}")
        comp = tuple(sorted((el, w / total) for el, w in fractions.items()))
        digest = hashlib.sha256(json.dumps([comp, density]).encode()).hexdigest()[:10]
        name = str(material.get("name", f"custom-{digest}"))
        return MaterialSpec(name=name, composition=comp, density_g_cm3=density)
    raise MaterialDataError(f"cannot interpret material {material!r}")


def energy_grid_kev() -> FloatArray:
    n = round((ENERGY_MAX_KEV - ENERGY_MIN_KEV) / ENERGY_STEP_KEV) + 1
    return ENERGY_MIN_KEV + ENERGY_STEP_KEV * np.arange(n, dtype=np.float64)


def x_grid_inv_angstrom() -> FloatArray:
    """Uniform momentum-transfer grid up to the largest x reachable at ENERGY_MAX_KEV."""
    return np.linspace(0.0, ENERGY_MAX_KEV / HC_KEV_ANGSTROM * 1.0001, X_POINTS)


def klein_nishina_dcs_cm2(energy_kev: float | FloatArray, cos_theta: FloatArray) -> FloatArray:
    """Klein-Nishina dsigma/dOmega per free electron (cm^2/sr)."""
    k = np.asarray(energy_kev) / ELECTRON_REST_ENERGY_KEV
    ratio = 1.0 / (1.0 + k * (1.0 - cos_theta))
    r_e2 = CLASSICAL_ELECTRON_RADIUS_CM**2
    return np.asarray(0.5 * r_e2 * ratio**2 * (ratio + 1.0 / ratio - (1.0 - cos_theta**2)))


def klein_nishina_total_cm2(energy_kev: FloatArray) -> FloatArray:
    """Total Klein-Nishina cross section per free electron (cm^2), closed form."""
    k = np.asarray(energy_kev, dtype=np.float64) / ELECTRON_REST_ENERGY_KEV
    r_e2 = CLASSICAL_ELECTRON_RADIUS_CM**2
    a = (1 + k) / k**2 * (2 * (1 + k) / (1 + 2 * k) - np.log(1 + 2 * k) / k)
    b = np.log(1 + 2 * k) / (2 * k) - (1 + 3 * k) / (1 + 2 * k) ** 2
    return np.asarray(2 * np.pi * r_e2 * (a + b))


# ---------------------------------------------------------------- per-element data (cached)


@cache
def _z_and_a(symbol: str) -> tuple[int, float]:
    return int(xraydb.atomic_number(symbol)), float(xraydb.atomic_mass(symbol))


@cache
def _element_partials(symbol: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Photoelectric, incoherent (bound) and coherent mass coefficients on the grid, cm^2/g."""
    ev = energy_grid_kev() * 1000.0
    return (
        np.asarray(xraydb.mu_elam(symbol, ev, kind="photo"), dtype=np.float64),
        np.asarray(xraydb.mu_elam(symbol, ev, kind="incoh"), dtype=np.float64),
        np.asarray(xraydb.mu_elam(symbol, ev, kind="coh"), dtype=np.float64),
    )


@cache
def _form_factor_on_grid(symbol: str) -> FloatArray:
    return np.asarray(xraydb.f0(symbol, x_grid_inv_angstrom()), dtype=np.float64)


def _form_factor(symbol: str, x: FloatArray) -> FloatArray:
    """Atomic form factor F(x) (electrons), interpolated from its values on the x grid."""
    return np.asarray(np.interp(x, x_grid_inv_angstrom(), _form_factor_on_grid(symbol)))


@cache
def incoherent_s_exponent(symbol: str) -> float:
    """Exponent p of the model S = Z [1 - (F/Z)^p], fitted to xraydb's incoherent totals."""
    z, a = _z_and_a(symbol)
    if z == 1:
        return 2.0  # exact for the one-electron atom
    mu = np.linspace(-1.0, 1.0, 1001)
    e = np.asarray(_FIT_ENERGIES_KEV)[:, None]
    x = np.sqrt((1.0 - mu[None, :]) / 2.0) * e / HC_KEV_ANGSTROM
    ratios = np.clip(_form_factor(symbol, x) / z, 0.0, 1.0)
    kn = 2 * np.pi * klein_nishina_dcs_cm2(e, mu[None, :])
    ref = np.asarray(xraydb.mu_elam(symbol, np.asarray(_FIT_ENERGIES_KEV) * 1000.0, kind="incoh"))
    scale = AVOGADRO_PER_MOL / a * z

    def cost(p: float) -> float:
        model = np.trapezoid(kn * (1.0 - ratios**p), mu, axis=1)
        return float(np.sum(np.log(model * scale / ref) ** 2))

    lo, hi = 0.3, 3.0  # golden-section search: the cost is unimodal in p
    g = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = hi - g * (hi - lo), lo + g * (hi - lo)
    for _ in range(60):
        if cost(c) < cost(d):
            hi = d
        else:
            lo = c
        c, d = hi - g * (hi - lo), lo + g * (hi - lo)
    return 0.5 * (lo + hi)


def incoherent_scattering_function(symbol: str, x: FloatArray) -> FloatArray:
    """Modelled S(x, Z) (number of electrons) at momentum transfer x (1/Angstrom)."""
    z, _ = _z_and_a(symbol)
    p = incoherent_s_exponent(symbol)
    return np.asarray(z * (1.0 - np.clip(_form_factor(symbol, x) / z, 0.0, 1.0) ** p))


def incoherent_model_residuals(symbol: str) -> FloatArray:
    """Relative difference of the KN x S integral from xraydb's incoherent cross section."""
    _, a = _z_and_a(symbol)
    mu = np.linspace(-1.0, 1.0, _MU_POINTS)
    out = []
    for e in _FIT_ENERGIES_KEV:
        x = np.sqrt((1.0 - mu) / 2.0) * e / HC_KEV_ANGSTROM
        s = incoherent_scattering_function(symbol, x)
        model = (
            np.trapezoid(2 * np.pi * klein_nishina_dcs_cm2(e, mu) * s, mu) * AVOGADRO_PER_MOL / a
        )
        out.append(model / float(xraydb.mu_elam(symbol, e * 1000.0, kind="incoh")) - 1.0)
    return np.asarray(out)


@cache
def _incoherent_energy_fraction(symbol: str, binding: bool) -> FloatArray:
    """Mean fraction of the photon energy given to the electron, <T/E>, on the energy grid."""
    # <T/E> is smooth in energy: evaluate on a 0.5 keV grid and interpolate
    coarse = np.arange(ENERGY_MIN_KEV, ENERGY_MAX_KEV + 0.5, 0.5)
    mu = np.linspace(-1.0, 1.0, _MU_POINTS)[None, :]
    e = coarse[:, None]
    w = klein_nishina_dcs_cm2(e, mu)
    if binding:
        x = np.sqrt((1.0 - mu) / 2.0) * e / HC_KEV_ANGSTROM
        w = w * incoherent_scattering_function(symbol, x)
    t = 1.0 - 1.0 / (1.0 + e / ELECTRON_REST_ENERGY_KEV * (1.0 - mu))
    frac = np.trapezoid(w * t, mu[0], axis=1) / np.trapezoid(w, mu[0], axis=1)
    return np.asarray(np.interp(energy_grid_kev(), coarse, frac))


@dataclass(frozen=True)
class FluorescenceLine:
    element: str
    edge_kev: float
    energy_kev: float
    #: probability of this line per photoabsorption in the element above the K edge
    probability_above_edge: float


@cache
def fluorescence_lines(symbol: str) -> tuple[FluorescenceLine, ...]:
    """The K-alpha and K-beta lines of ``symbol`` (intensity-weighted energies) with their
    probability per photoabsorption above the K edge; none below the transport cut-off."""
    edges = xraydb.xray_edges(symbol)
    if "K" not in edges:
        return ()
    k_edge = edges["K"]
    edge_kev = float(k_edge.energy) / 1000.0
    if edge_kev <= CUTOFF_KEV:
        return ()
    jump = float(k_edge.jump_ratio)
    p_k = (jump - 1.0) / jump if jump > 1.0 else 0.0
    yield_k = float(k_edge.fyield)
    lines = xraydb.xray_lines(symbol, "K")
    groups: dict[str, list[tuple[float, float]]] = {"Ka": [], "Kb": []}
    for name, line in lines.items():
        groups["Ka" if name.startswith("Ka") else "Kb"].append(
            (float(line.energy), float(line.intensity))
        )
    total_i = sum(i for g in groups.values() for _, i in g)
    out = []
    for g in groups.values():
        gi = sum(i for _, i in g)
        if gi <= 0 or total_i <= 0:
            continue
        e_kev = sum(e * i for e, i in g) / gi / 1000.0
        if e_kev <= CUTOFF_KEV:
            continue
        out.append(FluorescenceLine(symbol, edge_kev, e_kev, p_k * yield_k * gi / total_i))
    return tuple(out)


def fluorescence_per_absorption(
    element_photo: Sequence[tuple[str, FloatArray]], photo: FloatArray, energy_kev: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """The K lines of a mixture: their energies (keV) and their probability per photoabsorption,
    shape (lines, energies). ``element_photo``: each element's mass-weighted photoelectric cross
    section on ``energy_kev``; ``photo``: the mixture's. A line follows an absorption in its
    element above its K edge."""
    energies: list[float] = []
    probabilities: list[FloatArray] = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for el, share in element_photo:
            for line in fluorescence_lines(el):
                energies.append(line.energy_kev)
                above = np.where(energy_kev >= line.edge_kev, share, 0.0)
                per_absorption = np.where(photo > 0, above / photo, 0.0)
                probabilities.append(per_absorption * line.probability_above_edge)
    return (
        np.array(energies, dtype=np.float64),
        np.array(probabilities).reshape(len(energies), energy_kev.size),
    )


def fluorescence_arrays(
    lines: Sequence[tuple[FloatArray, FloatArray]], n_energies: int
) -> tuple[NDArray[np.int64], FloatArray, FloatArray]:
    """The kernels' ``fl_count``, ``fl_energy_kev`` and ``fl_cum`` (:class:`PhysArrays`) of
    materials whose lines are ``(energies, probabilities)`` (:func:`fluorescence_per_absorption`)."""
    n_lines = max(1, max(energies.size for energies, _ in lines))
    fl_count = np.zeros(len(lines), dtype=np.int64)
    fl_energy = np.zeros((len(lines), n_lines))
    fl_cum = np.zeros((len(lines), n_lines, n_energies))
    for i, (energies, probabilities) in enumerate(lines):
        k = energies.size
        fl_count[i] = k
        fl_energy[i, :k] = energies
        fl_cum[i, :k] = np.cumsum(probabilities, axis=0)
    return fl_count, fl_energy, fl_cum


# ----------------------------------------------------------------- per-material coefficients


@dataclass(frozen=True)
class MaterialCoefficients:
    """Mass coefficients (cm^2/g) of one material on the energy grid, for given options."""

    spec: MaterialSpec
    options: PhysicsOptions
    energy_kev: FloatArray
    photo: FloatArray
    incoh: FloatArray
    coh: FloatArray
    muen: FloatArray
    fluorescence_energy_kev: FloatArray
    #: probability per photoabsorption of each fluorescence line, shape (lines, energies)
    fluorescence_probability: FloatArray
    coherent_cumulative: FloatArray
    s_ratio: FloatArray
    elements: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total(self) -> FloatArray:
        return self.photo + self.incoh + self.coh


def _electrons_per_gram(spec: MaterialSpec) -> float:
    return (
        sum(w * _z_and_a(el)[0] / _z_and_a(el)[1] for el, w in spec.composition) * AVOGADRO_PER_MOL
    )


@cache
def material_coefficients(
    spec: MaterialSpec, options: PhysicsOptions = PhysicsOptions()
) -> MaterialCoefficients:
    """Interaction coefficients of ``spec`` under ``options`` (cached)."""
    e = energy_grid_kev()
    x = x_grid_inv_angstrom()
    photo = np.zeros_like(e)
    incoh = np.zeros_like(e)
    coh = np.zeros_like(e)
    incoh_tr = np.zeros_like(e)
    f2 = np.zeros_like(x)
    s_sum = np.zeros_like(x)
    z_sum = 0.0
    element_photo: list[tuple[str, FloatArray]] = []
    for el, w in spec.composition:
        z, a = _z_and_a(el)
        p_el, i_el, c_el = _element_partials(el)
        photo += w * p_el
        if options.binding:
            inc = w * i_el
        else:
            inc = w * klein_nishina_total_cm2(e) * z * AVOGADRO_PER_MOL / a
        incoh += inc
        incoh_tr += inc * _incoherent_energy_fraction(el, options.binding)
        coh += w * c_el
        f2 += w / a * _form_factor(el, x) ** 2
        if options.binding:
            s_sum += w / a * incoherent_scattering_function(el, x)
        else:
            s_sum += w / a * z
        z_sum += w / a * z
        if options.fluorescence:
            element_photo.append((el, w * p_el))
    if not options.coherent:
        coh = np.zeros_like(e)
    fl_energy, fl_prob = fluorescence_per_absorption(element_photo, photo, e)
    escape = (fl_prob * fl_energy[:, None]).sum(axis=0) / e if fl_energy.size else np.zeros_like(e)
    muen = photo * (1.0 - escape) + incoh_tr
    # cumulative integral of F^2 over x^2 (the coherent angular distribution's variable)
    x2 = x**2
    cum = np.concatenate(([0.0], np.cumsum(0.5 * (f2[1:] + f2[:-1]) * np.diff(x2))))
    return MaterialCoefficients(
        spec=spec,
        options=options,
        energy_kev=e,
        photo=photo,
        incoh=incoh,
        coh=coh,
        muen=muen,
        fluorescence_energy_kev=fl_energy,
        fluorescence_probability=fl_prob,
        coherent_cumulative=cum,
        s_ratio=np.clip(s_sum / z_sum, 0.0, 1.0),
        elements=tuple(el for el, _ in spec.composition),
    )


def _interp(energy_kev: float | FloatArray, values: FloatArray) -> FloatArray:
    e = np.asarray(energy_kev, dtype=np.float64)
    if np.any(e < ENERGY_MIN_KEV) or np.any(e > ENERGY_MAX_KEV):
        raise MaterialDataError(f"photon energy outside {ENERGY_MIN_KEV}-{ENERGY_MAX_KEV} keV")
    return np.asarray(np.interp(e, energy_grid_kev(), values))


def mass_attenuation_cm2_g(
    material: str | Mapping[str, Any] | MaterialSpec,
    energy_kev: float | FloatArray,
    options: PhysicsOptions = PhysicsOptions(),
) -> FloatArray:
    """Total mass attenuation coefficient mu/rho (cm^2/g) as the transport uses it."""
    return _interp(energy_kev, material_coefficients(resolve_material(material), options).total)


def mass_energy_absorption_cm2_g(
    material: str | Mapping[str, Any] | MaterialSpec,
    energy_kev: float | FloatArray,
    options: PhysicsOptions = PhysicsOptions(),
) -> FloatArray:
    """Mass energy-absorption coefficient mu_en/rho (cm^2/g), derived as the module explains."""
    return _interp(energy_kev, material_coefficients(resolve_material(material), options).muen)


# ------------------------------------------------------------------- arrays for the kernels


class PhysArrays(NamedTuple):
    """Interaction tables in the layout the numba kernels read (materials x energies)."""

    e_min_kev: float
    inv_de: float
    mu_rho: FloatArray  # (n_mat, n_e) total used in transport, cm^2/g
    cum_photo: FloatArray  # photo / total
    cum_incoh: FloatArray  # (photo + incoh) / total
    muen_rho: FloatArray  # (n_mat, n_e) cm^2/g
    fl_count: NDArray[np.int64]  # (n_mat,)
    fl_energy_kev: FloatArray  # (n_mat, n_lines_max)
    fl_cum: FloatArray  # (n_mat, n_lines_max, n_e) cumulative probability per photoabsorption
    inv_dx: float
    x2_grid: FloatArray  # (n_x,)
    coh_cum: FloatArray  # (n_mat, n_x)
    coh_guide: NDArray[np.int64]  # (n_mat, n_x + 1) guide tables of coh_cum (see guide.py)
    coh_guide_steps_per_unit: FloatArray  # (n_mat,) guide steps per unit of coh_cum
    s_ratio: FloatArray  # (n_mat, n_x)
    hc_kev_angstrom: float
    mec2_kev: float
    cutoff_kev: float
    scatter: bool


@dataclass(frozen=True)
class PhysicsTables:
    """Kernel tables for an ordered list of materials."""

    materials: tuple[MaterialSpec, ...]
    options: PhysicsOptions
    arrays: PhysArrays

    def index(self, name: str) -> int:
        for i, m in enumerate(self.materials):
            if m.name == name:
                return i
        raise MaterialDataError(f"material {name!r} is not in these tables")


def build_tables(
    materials: Sequence[MaterialSpec], options: PhysicsOptions = PhysicsOptions()
) -> PhysicsTables:
    """Stack the coefficients of ``materials`` into kernel arrays."""
    if not materials:
        raise MaterialDataError("at least one material is needed")
    coeffs = [material_coefficients(m, options) for m in materials]
    e = energy_grid_kev()
    x = x_grid_inv_angstrom()
    n_mat, n_e = len(coeffs), e.size
    mu = np.empty((n_mat, n_e))
    cum_photo = np.empty((n_mat, n_e))
    cum_incoh = np.empty((n_mat, n_e))
    muen = np.empty((n_mat, n_e))
    fl_count, fl_energy, fl_cum = fluorescence_arrays(
        [(c.fluorescence_energy_kev, c.fluorescence_probability) for c in coeffs], n_e
    )
    coh_cum = np.empty((n_mat, x.size))
    coh_guide = np.empty((n_mat, x.size + 1), dtype=np.int64)
    coh_steps = np.empty(n_mat)
    s_ratio = np.empty((n_mat, x.size))
    for i, c in enumerate(coeffs):
        total = c.total
        mu[i] = total
        cum_photo[i] = c.photo / total
        cum_incoh[i] = (c.photo + c.incoh) / total
        muen[i] = c.muen
        coh_cum[i] = c.coherent_cumulative
        coh_guide[i] = guide_table(coh_cum[i], coh_cum[i, -1], x.size)
        coh_steps[i] = x.size / coh_cum[i, -1]
        s_ratio[i] = c.s_ratio
    arrays = PhysArrays(
        e_min_kev=float(e[0]),
        inv_de=1.0 / ENERGY_STEP_KEV,
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
        coh_guide_steps_per_unit=coh_steps,
        s_ratio=s_ratio,
        hc_kev_angstrom=HC_KEV_ANGSTROM,
        mec2_kev=ELECTRON_REST_ENERGY_KEV,
        cutoff_kev=CUTOFF_KEV,
        scatter=options.scatter,
    )
    return PhysicsTables(materials=tuple(materials), options=options, arrays=arrays)
