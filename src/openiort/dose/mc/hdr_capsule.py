"""The Ir-192 source's core, capsule and cable in the photon transport.

Each history starts at a random point of the iridium core (uniform in its volume) with an
isotropic direction and a line energy, and is followed through the core, the gas-filled gap
around it, the capsule and the modelled length of cable (coaxial cylinders with flat ends;
geometry and media from ``data/hdr_source_capsules.yaml``,
:mod:`openiort.dose.mc.hdr_capsule_data`) until it leaves them or is absorbed. Interactions in
the core and the metal use the tissues' sampling (:mod:`openiort.dose.mc.interactions`) on
tables built like theirs (:mod:`openiort.dose.mc.hdr_physics`), K fluorescence included. A
photon that leaves the source enters the voxel phantom at its exit point, rotated from the
source's frame (z along the source axis, cable to tip) into the patient's; the energy left in
the source is booked as "blocked".

Left out, by design: the gap's gas (at most 0.1 mm of air); photons that scatter in the tissue
and come back through the source, which cross it as if it were the surrounding medium (the
source is well under a voxel); the betas and their bremsstrahlung; pair production above
1022 keV (0.024 % of the photons carry that much energy: iridium's cross section there is the
log-log continuation of :mod:`openiort.dose.mc.hdr_physics`, 0.7 % below NIST SRD 126 at
1 MeV and 5 % at 1.5 MeV).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from openiort.dose.mc.constants import KEV_TO_JOULE, MM_PER_CM
from openiort.dose.mc.hdr_capsule_data import CapsuleGeometry, capsule_geometry
from openiort.dose.mc.hdr_physics import build_hdr_tables
from openiort.dose.mc.interactions import energy_index, interact, isotropic, lookup
from openiort.dose.mc.kernel_common import sample_energy
from openiort.dose.mc.photon_data import material_coefficients
from openiort.dose.mc.physics import MaterialSpec, PhysArrays
from openiort.dose.mc.rng import batch_key, photon_state, uniform
from openiort.dose.mc.sources import SourceArrays

FloatArray = NDArray[np.float64]
_INF = 1.0e30
#: Step past a surface so that the next position falls in the next region (mm; far below any
#: dimension of a source and far above rounding at these magnitudes).
_NUDGE_MM = 1.0e-7
#: Cylinder rows of :class:`CapsuleArrays`, tested in this order: the core, the gas-filled
#: cavity around it (radius 0 where the core sits in solid metal), the capsule, the cable.
CORE, CAVITY, CAPSULE, CABLE = 0, 1, 2, 3
#: Material rows of the source's tables (the cavity is left empty).
CORE_MEDIUM, CAPSULE_MEDIUM, CABLE_MEDIUM = 0, 1, 2


class CapsuleArrays(NamedTuple):
    """What the voxel kernel reads. ``cyl`` rows (radius, z_low, z_high) in mm for the core,
    the cavity, the capsule and the cable (source frame); ``rho``: the densities (g/cm3) of the
    core, capsule and cable media; ``rot``: source frame to patient frame (its third column is
    the source axis)."""

    enabled: bool
    cyl: FloatArray
    rho: FloatArray
    rot: FloatArray
    phys: PhysArrays


def rotation_to(axis: ArrayLike) -> FloatArray:
    """A rotation whose third column is the unit vector ``axis`` (the source frame's z)."""
    z = np.asarray(axis, dtype=np.float64)
    norm = float(np.linalg.norm(z))
    if z.shape != (3,) or not np.isfinite(norm) or norm == 0.0:
        raise ValueError("the source axis must be a finite non-zero 3-vector")
    z = z / norm
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.ascontiguousarray(np.stack([x, y, z], axis=1))


def _materials(g: CapsuleGeometry) -> tuple[MaterialSpec, ...]:
    return tuple(
        MaterialSpec(
            f"source_{m.name}", tuple(sorted(m.mass_fractions.items())), float(m.density_g_cm3)
        )
        for m in (g.core_material, g.capsule_material, g.cable_material)
    )


@cache
def _capsule_phys(source_id: str) -> PhysArrays:
    materials = _materials(capsule_geometry(source_id))
    return build_hdr_tables(materials, energy_absorption=False).arrays


def capsule_arrays(source_id: str, axis: ArrayLike = (0.0, 0.0, 1.0)) -> CapsuleArrays:
    """The kernel arrays of ``source_id``'s source, its axis (cable to tip) along ``axis``."""
    g = capsule_geometry(source_id)
    back = g.capsule_back_from_core_centre_mm
    cavity = (0.0, 0.0, 0.0)
    if g.capsule_inner_diameter_mm is not None:
        cavity = (
            0.5 * g.capsule_inner_diameter_mm,
            -float(g.cavity_back_from_core_centre_mm or 0.0),
            float(g.cavity_tip_from_core_centre_mm or 0.0),
        )
    cyl = np.array(
        [
            (0.5 * g.core_diameter_mm, -g.core_half_length_mm, g.core_half_length_mm),
            cavity,
            (0.5 * g.capsule_outer_diameter_mm, -back, g.capsule_tip_from_core_centre_mm),
            (0.5 * g.cable_diameter_mm, -back - g.cable_length_modelled_mm, -back),
        ]
    )
    rho = np.array([g.core_material.density_g_cm3, g.capsule_density_g_cm3, g.cable_density_g_cm3])
    return CapsuleArrays(True, cyl, rho, rotation_to(axis), _capsule_phys(source_id))


def no_capsule(phys: PhysArrays) -> CapsuleArrays:
    """A bare point source (the kernel's type needs a table; ``phys`` is never read)."""
    return CapsuleArrays(False, np.zeros((4, 3)), np.ones(3), np.eye(3), phys)


@njit(cache=True, inline="always")
def _cylinder_span(
    px: float, py: float, pz: float, ux: float, uy: float, uz: float, cyl: np.ndarray, k: int
) -> tuple[float, float]:
    """The interval of t along p + t u inside cylinder ``k`` (empty: t_in >= t_out)."""
    r = cyl[k, 0]
    a = ux * ux + uy * uy
    c = px * px + py * py - r * r
    if a < 1e-300:
        if c >= 0.0:
            return _INF, -_INF
        t0 = -_INF
        t1 = _INF
    else:
        b = px * ux + py * uy
        disc = b * b - a * c
        if disc <= 0.0:
            return _INF, -_INF
        root = math.sqrt(disc)
        t0 = (-b - root) / a
        t1 = (-b + root) / a
    if uz == 0.0:
        if pz <= cyl[k, 1] or pz >= cyl[k, 2]:
            return _INF, -_INF
    else:
        z0 = (cyl[k, 1] - pz) / uz
        z1 = (cyl[k, 2] - pz) / uz
        if z0 > z1:
            z0, z1 = z1, z0
        t0 = max(t0, z0)
        t1 = min(t1, z1)
    return t0, t1


@njit(cache=True, inline="always")
def _inside(px: float, py: float, pz: float, cyl: np.ndarray, k: int) -> bool:
    return px * px + py * py < cyl[k, 0] * cyl[k, 0] and cyl[k, 1] < pz < cyl[k, 2]


@njit(cache=True)
def through_capsule(
    e: float, ux: float, uy: float, uz: float, cap: CapsuleArrays, state: np.ndarray
) -> tuple[float, float, float, float, float, float, float]:
    """Follow a photon born in the core with energy ``e`` and direction ``u`` (source frame)
    out of the source. Returns (energy, position mm, direction), energy 0 if absorbed."""
    cyl = cap.cyl
    phys = cap.phys
    rad = cyl[CORE, 0] * math.sqrt(uniform(state))
    phi = 2.0 * math.pi * uniform(state)
    px = rad * math.cos(phi)
    py = rad * math.sin(phi)
    pz = cyl[CORE, 1] + (cyl[CORE, 2] - cyl[CORE, 1]) * uniform(state)
    i, f = energy_index(e, phys)
    while True:
        if _inside(px, py, pz, cyl, CORE):
            m = CORE_MEDIUM
        elif _inside(px, py, pz, cyl, CAVITY):
            m = -1
        elif _inside(px, py, pz, cyl, CAPSULE):
            m = CAPSULE_MEDIUM
        elif _inside(px, py, pz, cyl, CABLE):
            m = CABLE_MEDIUM
        else:
            return e, px, py, pz, ux, uy, uz
        # the nearest surface ahead: every entry or exit of the four cylinders
        t_next = _INF
        for k in range(4):
            t0, t1 = _cylinder_span(px, py, pz, ux, uy, uz, cyl, k)
            if t0 < t1:
                if 0.0 < t0 < t_next:
                    t_next = t0
                if 0.0 < t1 < t_next:
                    t_next = t1
        if m < 0:
            s = _INF  # the cavity's gas: nothing happens before its wall
        else:
            s = -math.log(uniform(state)) / (lookup(phys.mu_rho, m, i, f) * cap.rho[m] / MM_PER_CM)
        if s >= t_next:
            s = t_next + _NUDGE_MM
            px += s * ux
            py += s * uy
            pz += s * uz
            continue
        px += s * ux
        py += s * uy
        pz += s * uz
        e_out, ux, uy, uz, _ = interact(e, m, ux, uy, uz, phys, state)
        if e_out < phys.cutoff_kev:
            return 0.0, px, py, pz, ux, uy, uz
        if e_out != e:
            e = e_out
            i, f = energy_index(e, phys)


@njit(cache=True)
def _leave_source(
    n: int, key: np.uint64, src: SourceArrays, cap: CapsuleArrays
) -> tuple[np.ndarray, np.ndarray]:
    """Energies (0: absorbed) and source-frame cos(theta) of ``n`` photons leaving the source."""
    state = np.empty(1, dtype=np.uint64)
    energy = np.empty(n)
    cos_theta = np.empty(n)
    for k in range(n):
        state[0] = photon_state(key, k)
        e = sample_energy(src, state)
        ux, uy, uz = isotropic(state)
        e_out, _, _, _, _, _, vz = through_capsule(e, ux, uy, uz, cap, state)
        energy[k] = e_out
        cos_theta[k] = vz
    return energy, cos_theta


@dataclass(frozen=True)
class SourceEmission:
    """Photons that leave the source, per photon emitted in the core."""

    histories: int
    energy_kev: FloatArray  # 0 for a photon absorbed in the source
    cos_theta: FloatArray  # direction against the source axis (cable to tip)

    @property
    def escaping_fraction(self) -> float:
        return float(np.mean(self.energy_kev > 0.0))


def source_emission(
    source_id: str, spectrum: SourceArrays, histories: int, seed: int = 1
) -> SourceEmission:
    """Run ``histories`` photons of ``spectrum`` (the Ir-192 lines,
    :func:`openiort.dose.mc.hdr_engine.ir192_source_arrays`) out of the source."""
    energy, cos_theta = _leave_source(
        int(histories), batch_key(seed, 0), spectrum, capsule_arrays(source_id)
    )
    return SourceEmission(int(histories), energy, cos_theta)


#: Half-width in cos(theta) of the transverse band that stands for the source's transverse
#: axis in :func:`air_kerma_strength_per_photon` (the emission is flat there to well under 1 %).
TRANSVERSE_BAND = 0.1
#: Energy cut-off of S_K (TG-43U1's delta, which excludes photons that do not reach tissue):
#: the spectrum's own lower limit; below it only photons scattered in the steel, which carry
#: a negligible share of the air kerma.
SK_CUTOFF_KEV = 10.0


@dataclass(frozen=True)
class AirKermaStrength:
    """Air-kerma strength per photon emitted in the core, in U h (uGy m2)."""

    ugy_m2_per_photon: float
    rel_uncertainty: float


def air_kerma_strength_per_photon(emission: SourceEmission) -> AirKermaStrength:
    """S_K per emitted photon: the air kerma in vacuo at distance d on the transverse axis,
    times d^2, from the photons leaving within :data:`TRANSVERSE_BAND` of it (at distances
    where S_K is defined, d much larger than the source, the source is a point)."""
    e = emission.energy_kev
    band = (e >= SK_CUTOFF_KEV) & (np.abs(emission.cos_theta) < TRANSVERSE_BAND)
    muen_m2_kg = material_coefficients("air", e[band]).muen_over_rho_cm2_g * 0.1
    kerma_gy_m2 = e[band] * KEV_TO_JOULE * muen_m2_kg
    solid_angle_sr = 4.0 * math.pi * TRANSVERSE_BAND
    n = emission.histories
    total = float(kerma_gy_m2.sum())
    if total <= 0.0:
        raise ValueError("no photon left the source across its transverse axis")
    # the per-photon scores are independent: the sum's variance is n Var(x)
    per = np.zeros(n)
    per[: kerma_gy_m2.size] = kerma_gy_m2
    rel = float(np.sqrt(n * per.var()) / total)
    return AirKermaStrength(total / (n * solid_angle_sr) * 1.0e6, rel)
