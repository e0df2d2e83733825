"""Ir-192 (HDR) photon Monte Carlo: dose to medium in medium by collision kerma (TG-186).

The transport is the kV engine's, unchanged: the same compiled kernels (Woodcock tracking,
Klein-Nishina x S(x) and form-factor sampling, track-length scoring, counter-based random
streams, batches merged in order, threads or Dask) read the 1 keV-1.5 MeV tables of
:mod:`openiort.dose.mc.hdr_physics` and a line source built here. Two geometries:

- :func:`hdr_shell_dose`: a point source at the centre of concentric spheres, dose in shells
  (validation against published radial dose functions, :func:`radial_dose_function`);
- :func:`build_hdr_voxel_problem`: a point source in a voxel phantom of materials and densities,
  run with :func:`openiort.dose.mc.voxel.run_problem` (dose to medium D_m,m in column 0 of the
  tallies, dose to water in medium D_w,m in column 1).

Source model: an isotropic point emitting the NNDC Ir-192 photon lines at or above 10 keV
(:mod:`openiort.dose.mc.ir192_spectrum`), each line with its photons per decay; or, with
``capsule`` (:mod:`openiort.dose.mc.hdr_capsule`), the same lines emitted in the source's
iridium core and followed through its steel capsule and cable before they enter the phantom.
The bare point leaves out what the core and capsule do: they absorb the 8.9-9.4 keV L x-rays
entirely, attenuate the 61-80 keV K x-rays strongly and the gamma lines by a few per cent, and
make the dose anisotropic along the source axis (TG-43's F(r, theta)); its results are per
emitted photon or relative (g(r)). Left out by both: the betas (absorbed in the core and
capsule), their bremsstrahlung, and electrons leaving the capsule.

Dose: collision kerma, K_col = sum E (mu_en/rho) l / V of the voxel's (or shell's) own medium,
by the track-length estimator; secondary electrons deposit where they are set in motion.
TG-186 (Beaulieu L et al., Med Phys 2012;39:6208-6236) recommends reporting dose to medium in
medium, D_m,m, and (our reading, to be checked against the report's text before it is quoted:
the search tools of this session did not return the passage) accepts collision kerma in place
of absorbed dose for Ir-192 at the voxel sizes of clinical grids, as the secondary electrons'
ranges (CSDA range of a 0.6 MeV electron in water about 2 mm, NIST ESTAR; most far shorter)
keep charged-particle equilibrium except within about a millimetre of the source and of
interfaces. The differences that remain there are not modelled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from openiort.anatomy.phantom import Phantom
from openiort.dose.mc.guide import guide_table
from openiort.dose.mc.hdr_capsule import CapsuleArrays
from openiort.dose.mc.hdr_physics import build_hdr_tables
from openiort.dose.mc.ir192_spectrum import DEFAULT_MIN_ENERGY_KEV, LineSpectrum, ir192_spectrum
from openiort.dose.mc.majorant import majorant_cells
from openiort.dose.mc.sources import SourceArrays
from openiort.dose.mc.sphere import GeometryError, MaterialLike, ShellDose, run_shells
from openiort.dose.mc.voxel import VoxelProblem, density_bounds, voxel_media

FloatArray = NDArray[np.float64]
#: Reference distance of the TG-43 radial dose function (1 cm).
R0_MM = 10.0


def line_source_arrays(spectrum: LineSpectrum) -> SourceArrays:
    """Kernel arrays for an isotropic point source of discrete lines.

    The kernels sample a binned spectrum, uniform within a bin; each line becomes a bin of zero
    width holding its probability, and the gaps between lines bins of zero probability.
    """
    e = np.asarray(spectrum.energy_kev, dtype=np.float64)
    p = np.asarray(spectrum.probabilities, dtype=np.float64)
    if e.size == 0 or np.any(np.diff(e) <= 0):
        raise GeometryError("line energies must be strictly increasing")
    edges = np.repeat(e, 2)
    probs = np.zeros(edges.size - 1)
    probs[0::2] = p
    cdf = np.concatenate(([0.0], np.cumsum(probs) / probs.sum()))
    cdf[-1] = 1.0
    return SourceArrays(edges, cdf, guide_table(cdf, 1.0, probs.size), 2.0, 0.0, 0.0, 1.0)


def ir192_source_arrays(min_energy_kev: float = DEFAULT_MIN_ENERGY_KEV) -> SourceArrays:
    """The bare Ir-192 point source (NNDC lines at or above ``min_energy_kev``)."""
    return line_source_arrays(ir192_spectrum(min_energy_kev))


def hdr_shell_dose(
    layers: Sequence[tuple[float, MaterialLike]],
    shell_edges_mm: ArrayLike,
    histories: int,
    seed: int,
    *,
    source: SourceArrays | None = None,
    response: MaterialLike | None = None,
    n_batches: int = 10,
    analog: bool = False,
    scatter: bool = True,
    workers: int | None = None,
    scheduler_address: str | None = None,
    use_dask: bool = False,
    progress: bool = False,
) -> ShellDose:
    """Dose to medium in spherical shells around the Ir-192 point source (default ``source``)
    at the centre of concentric ``layers`` (``(outer_radius_mm, material)``, inside out;
    vacuum beyond the last). Gy per emitted photon, with the history-by-batch uncertainty.
    ``response`` scores every shell with that medium's mu_en/rho instead (e.g. ``"air"``).
    """
    return run_shells(
        source if source is not None else ir192_source_arrays(),
        layers,
        shell_edges_mm,
        histories,
        seed,
        lambda specs: build_hdr_tables(specs, scatter=scatter).arrays,
        description="Ir-192 MC (spheres)",
        response=response,
        n_batches=n_batches,
        analog=analog,
        workers=workers,
        progress=progress,
        scheduler_address=scheduler_address,
        use_dask=use_dask,
    )


def shell_inverse_square_mm2(edges_mm: ArrayLike) -> FloatArray:
    """Volume average of 1/r^2 over each shell: the point-source geometry factor of a shell."""
    e = np.asarray(edges_mm, dtype=np.float64)
    return np.asarray(3.0 * (e[1:] - e[:-1]) / (e[1:] ** 3 - e[:-1] ** 3))


def radial_dose_function(result: ShellDose, r0_mm: float = R0_MM) -> tuple[FloatArray, FloatArray]:
    """Point-source radial dose function g(r) = D(r) G(r0) / (D(r0) G(r)) at the shell centres.

    G is the shell-averaged inverse square; D(r0) is interpolated log-linearly in r^2 D between
    the shells around ``r0_mm``. Returns (shell mid-radii in mm, g).
    """
    mid = 0.5 * (result.edges_mm[1:] + result.edges_mm[:-1])
    r2d = result.dose_gy_per_photon / shell_inverse_square_mm2(result.edges_mm)
    if not mid[0] <= r0_mm <= mid[-1]:
        raise GeometryError(f"the shells do not reach the reference distance {r0_mm:g} mm")
    ref = float(np.exp(np.interp(r0_mm, mid, np.log(np.maximum(r2d, 1e-300)))))
    return mid, r2d / ref


def build_hdr_voxel_problem(
    phantom: Phantom,
    source_position_mm: tuple[float, float, float],
    *,
    source: SourceArrays | None = None,
    capsule: CapsuleArrays | None = None,
    scatter: bool = True,
    analog: bool = False,
) -> VoxelProblem:
    """Kernel arrays for the Ir-192 source at ``source_position_mm`` in ``phantom``: a point,
    or the core and capsule of ``capsule`` (:func:`openiort.dose.mc.hdr_capsule.capsule_arrays`)
    centred there.

    Run it with :func:`openiort.dose.mc.voxel.run_problem`; D_m,m is the medium dose, D_w,m
    the water dose. No applicator is modelled here (balloons and their fill are phantom voxels).
    ``analog=True`` scores the energy deposited at each interaction instead (energy balance).
    """
    grid = phantom.grid
    mat, rho, specs = voxel_media(phantom, ("water",))
    water = next(s for s in specs if s.name == "water")
    tables = build_hdr_tables(specs, scatter=scatter)
    lo = np.array(grid.origin_mm) - 0.5 * np.array(grid.spacing_mm)
    hi = lo + np.array(grid.spacing_mm) * np.array(grid.shape[::-1])
    pos = np.asarray(source_position_mm, dtype=np.float64)
    if pos.shape != (3,) or np.any(pos <= lo) or np.any(pos >= hi):
        raise GeometryError("the source must lie inside the phantom grid")
    flat_mat = mat.ravel()
    rho_lo, rho_hi = density_bounds(flat_mat, rho.ravel(), len(specs))
    spacing = np.array(grid.spacing_mm, dtype=np.float64)
    return VoxelProblem(
        source=source if source is not None else ir192_source_arrays(),
        src_pos=pos,
        lo=lo,
        sp=spacing,
        shape_xyz=np.array(grid.shape[::-1], dtype=np.int64),
        mat=flat_mat,
        rho=rho.ravel(),
        rho_lo=rho_lo,
        rho_hi=rho_hi,
        app=np.array([pos[0], pos[1], pos[2], 0.0]),
        app_mat=specs.index(water),
        app_rho=float(water.density_g_cm3),
        cells=majorant_cells(mat, tables.arrays.mu_rho, rho_hi, spacing),
        water=specs.index(water),
        analog=analog,
        phys=tables.arrays,
        description="Ir-192 MC (voxels)",
        capsule=capsule,
    )
