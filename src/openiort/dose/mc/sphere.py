"""Dose in spherical shells around a point source in concentric spherical media.

``radial_dose`` is the validation API other tools call: an isotropic point source at the
centre of a homogeneous sphere of radius 15 cm with vacuum outside, dose to the medium in Gy
per emitted photon averaged over each shell's volume. :func:`shell_dose` is the general form
(layers of different media, e.g. an applicator sphere in water, and any response medium).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from openiort.dose.mc.physics import (
    MaterialSpec,
    PhysArrays,
    PhysicsOptions,
    build_tables,
    resolve_material,
)
from openiort.dose.mc.runner import run_batches
from openiort.dose.mc.scoring import DEPOSIT_TALLY_TO_GY_MM3, KERMA_TALLY_TO_GY_MM3
from openiort.dose.mc.sources import PointSource, SourceArrays, as_point_source
from openiort.dose.mc.sphere_kernel import run_sphere
from openiort.errors import OpenIortInputError

FloatArray = NDArray[np.float64]
SPHERE_RADIUS_MM = 150.0
MaterialLike = str | Mapping[str, Any] | MaterialSpec


class GeometryError(OpenIortInputError):
    """Shells, layers or phantoms that do not describe a valid geometry."""


@dataclass
class SphereProblem:
    """Picklable description of a concentric-sphere transport problem."""

    source: SourceArrays
    region_r_mm: FloatArray
    region_mat: NDArray[np.int64]
    region_rho: FloatArray
    edges_mm: FloatArray
    score_mat: NDArray[np.int64]
    analog: bool
    phys: PhysArrays
    band_cos: float = 2.0
    description: str = "kV photon Monte Carlo (spheres)"

    def tally_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.edges_mm.size - 1,),)

    def tally_dtypes(self) -> tuple[type[np.floating], ...]:
        return (np.float64,)

    def transport(
        self,
        key: np.uint64,
        first: int,
        stop: int,
        batch_size: int,
        tallies: tuple[FloatArray, ...],
        balance: FloatArray,
    ) -> None:
        run_sphere(
            key,
            first,
            stop,
            batch_size,
            self.source,
            self.region_r_mm,
            self.region_mat,
            self.region_rho,
            self.edges_mm,
            self.score_mat,
            self.analog,
            self.band_cos,
            self.phys,
            tallies[0],
            balance,
            np.empty(1, dtype=np.uint64),
            np.empty(self.phys.mu_rho.shape[0]),
            np.empty(self.region_r_mm.shape[0]),
        )


@dataclass(frozen=True)
class ShellDose:
    """Shell-averaged dose per emitted photon with its uncertainty and energy balance."""

    edges_mm: FloatArray
    dose_gy_per_photon: FloatArray
    rel_unc: FloatArray
    histories: int
    balance_kev: FloatArray  # emitted, deposited, escaped, blocked (whole run)
    deposited_kev_per_photon: FloatArray | None  # analog runs: energy deposited per shell


def _check_edges(shell_edges_mm: ArrayLike, outer_mm: float) -> FloatArray:
    edges = np.asarray(shell_edges_mm, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2:
        raise GeometryError("shell_edges_mm needs at least two radii")
    if not np.all(np.isfinite(edges)) or edges[0] < 0 or np.any(np.diff(edges) <= 0):
        raise GeometryError("shell_edges_mm must be finite, non-negative and strictly increasing")
    if edges[-1] > outer_mm + 1e-9:
        raise GeometryError(
            f"shell edges reach {edges[-1]:g} mm, beyond the {outer_mm:g} mm sphere"
        )
    return edges


def shell_dose(
    source: PointSource,
    layers: Sequence[tuple[float, MaterialLike]],
    shell_edges_mm: ArrayLike,
    histories: int,
    seed: int,
    *,
    response: Sequence[MaterialLike] | MaterialLike | None = None,
    n_batches: int = 10,
    analog: bool = False,
    options: PhysicsOptions | None = None,
    workers: int | None = None,
    progress: bool = False,
    scheduler_address: str | None = None,
    use_dask: bool = False,
    equatorial_band_cos: float | None = None,
) -> ShellDose:
    """Dose in spherical shells for a point source at the centre of concentric layers.

    ``layers`` lists ``(outer_radius_mm, material)`` from the inside out; vacuum lies beyond
    the last. ``response`` is the medium whose mu_en/rho converts fluence to dose in each shell
    (default: the layer medium at the shell's mid-radius, i.e. dose to medium).
    ``equatorial_band_cos`` restricts scoring to |cos(polar angle about z)| below it (the plane
    perpendicular to a probe shaft along z); the dose is then the average over that band.
    """
    opts = options or PhysicsOptions()
    return run_shells(
        source.arrays(),
        layers,
        shell_edges_mm,
        histories,
        seed,
        lambda specs: build_tables(specs, opts).arrays,
        description=f"kV MC, {source.label}",
        response=response,
        n_batches=n_batches,
        analog=analog,
        workers=workers,
        progress=progress,
        scheduler_address=scheduler_address,
        use_dask=use_dask,
        equatorial_band_cos=equatorial_band_cos,
    )


def run_shells(
    source: SourceArrays,
    layers: Sequence[tuple[float, MaterialLike]],
    shell_edges_mm: ArrayLike,
    histories: int,
    seed: int,
    physics: Callable[[list[MaterialSpec]], PhysArrays],
    *,
    description: str,
    response: Sequence[MaterialLike] | MaterialLike | None = None,
    n_batches: int = 10,
    analog: bool = False,
    workers: int | None = None,
    progress: bool = False,
    scheduler_address: str | None = None,
    use_dask: bool = False,
    equatorial_band_cos: float | None = None,
) -> ShellDose:
    """:func:`shell_dose` for any source's kernel arrays and any physics: ``physics`` makes
    the kernels' tables of the media it is given (the kV engine's, or the Ir-192 engine's)."""
    if not layers:
        raise GeometryError("at least one layer is needed")
    radii = np.array([float(r) for r, _ in layers])
    if np.any(~np.isfinite(radii)) or radii[0] <= 0 or np.any(np.diff(radii) <= 0):
        raise GeometryError("layer radii must be positive and increasing")
    edges = _check_edges(shell_edges_mm, float(radii[-1]))
    specs: list[MaterialSpec] = []

    def index_of(m: MaterialLike) -> int:
        spec = resolve_material(m)
        if spec not in specs:
            specs.append(spec)
        return specs.index(spec)

    layer_mat = np.array([index_of(m) for _, m in layers], dtype=np.int64)
    layer_rho = np.array([resolve_material(m).density_g_cm3 for _, m in layers], dtype=np.float64)
    mid = 0.5 * (edges[1:] + edges[:-1])
    layer_of_shell = np.minimum(np.searchsorted(radii, mid, side="right"), radii.size - 1)
    if response is None:
        score_mat = layer_mat[layer_of_shell]
    elif isinstance(response, str | Mapping | MaterialSpec):
        score_mat = np.full(mid.size, index_of(response), dtype=np.int64)
    else:
        if len(response) != mid.size:
            raise GeometryError("one response medium per shell is needed")
        score_mat = np.array([index_of(m) for m in response], dtype=np.int64)
    band = 2.0 if equatorial_band_cos is None else float(equatorial_band_cos)
    if not 0.0 < band <= 2.0:
        raise GeometryError("equatorial_band_cos must be in (0, 1]")
    problem = SphereProblem(
        source=source,
        region_r_mm=radii,
        region_mat=layer_mat,
        region_rho=layer_rho,
        edges_mm=edges,
        score_mat=score_mat,
        analog=analog,
        phys=physics(specs),
        band_cos=band,
        description=description,
    )
    acc = run_batches(
        problem,
        histories,
        seed,
        n_batches,
        workers=workers,
        progress=progress,
        scheduler_address=scheduler_address,
        use_dask=use_dask,
    )
    volume_mm3 = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3) * min(band, 1.0)
    mean = acc.mean_per_history(0)
    if analog:
        rho = layer_rho[layer_of_shell]
        dose = mean / (rho * volume_mm3) * DEPOSIT_TALLY_TO_GY_MM3
        deposited = mean
    else:
        dose = mean / volume_mm3 * KERMA_TALLY_TO_GY_MM3
        deposited = None
    return ShellDose(
        edges, dose, acc.relative_uncertainty(0), acc.histories, acc.balance_kev.copy(), deposited
    )


def radial_dose(
    source: float | tuple[Sequence[float], Sequence[float]] | PointSource,
    material: MaterialLike,
    shell_edges_mm: ArrayLike,
    histories: int,
    seed: int,
    **kwargs: Any,
) -> tuple[FloatArray, FloatArray]:
    """Dose to the medium around an isotropic point source in a 15 cm sphere (vacuum outside).

    Parameters
    ----------
    source:
        Photon energy in keV, or ``(bin_edges_kev, probabilities)``: the probability of a
        photon in each bin, uniform in energy within the bin.
    material:
        A material name from :mod:`openiort.anatomy.materials` (``water``, ``adipose``,
        ``gland``, ``breast_50_50``, ``muscle``, ``skin``, ``cortical_bone``, ``lung``, ...) or
        ``{"composition": {element: mass fraction}, "density_g_cm3": value}``.
    shell_edges_mm:
        Radii of the shell boundaries, increasing, within 150 mm.
    histories, seed:
        Number of emitted photons and the seed (same seed, same answer).
    **kwargs:
        Passed to :func:`shell_dose` (``n_batches``, ``options``, ``workers``, ``analog``,
        ``response``, ``progress``, ``scheduler_address``).

    Returns
    -------
    (dose, rel_unc):
        Dose to the medium in Gy per emitted photon averaged over each shell's volume, and its
        relative standard uncertainty (history-by-batch method).
    """
    result = shell_dose(
        as_point_source(source),
        [(SPHERE_RADIUS_MM, material)],
        shell_edges_mm,
        histories,
        seed,
        **kwargs,
    )
    return result.dose_gy_per_photon, result.rel_unc
