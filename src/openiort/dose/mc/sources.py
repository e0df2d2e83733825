"""Photon sources: mono-energetic and spectral isotropic point sources.

A source is an energy distribution (``bin_edges_kev`` with the probability of each bin, uniform
in energy within a bin; a mono-energetic source is one bin of zero width) emitted isotropically
from a point. An optional shadow cone (unit axis, half-angle) removes the photons that a probe
shaft absorbs at emission; they count as emitted and are booked as "blocked".
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from openiort.dose.mc.guide import guide_table
from openiort.dose.mc.physics import CUTOFF_KEV, ENERGY_MAX_KEV
from openiort.errors import OpenIortInputError

FloatArray = NDArray[np.float64]


class SourceError(OpenIortInputError):
    """A source definition that cannot be sampled."""


class SourceArrays(NamedTuple):
    """What the kernels read: the energy CDF (with its guide table) and the shadow cone."""

    edges_kev: FloatArray
    cdf: FloatArray
    cdf_guide: NDArray[np.int64]  # guide table over [0, 1], one step per bin (see guide.py)
    shadow_cos: float  # photons with u . axis > shadow_cos are blocked; > 1 means no shadow
    shadow_ux: float
    shadow_uy: float
    shadow_uz: float


@dataclass(frozen=True)
class PointSource:
    """Isotropic point source with a binned energy spectrum."""

    bin_edges_kev: tuple[float, ...]
    probabilities: tuple[float, ...]
    label: str
    shadow_axis: tuple[float, float, float] | None = None
    shadow_half_angle_deg: float = 0.0

    def __post_init__(self) -> None:
        edges = np.asarray(self.bin_edges_kev, dtype=np.float64)
        p = np.asarray(self.probabilities, dtype=np.float64)
        if edges.ndim != 1 or p.ndim != 1 or edges.size != p.size + 1 or p.size == 0:
            raise SourceError("a spectrum needs n+1 bin edges for n bin probabilities")
        if np.any(~np.isfinite(edges)) or np.any(np.diff(edges) < 0):
            raise SourceError("spectrum bin edges must be finite and non-decreasing")
        if edges[0] < CUTOFF_KEV or edges[-1] > ENERGY_MAX_KEV:
            raise SourceError(
                f"source energies must lie within {CUTOFF_KEV}-{ENERGY_MAX_KEV} keV, "
                f"got {edges[0]:g}-{edges[-1]:g} keV"
            )
        if np.any(~np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
            raise SourceError("spectrum probabilities must be non-negative with a positive sum")
        if self.shadow_axis is not None:
            a = np.asarray(self.shadow_axis, dtype=np.float64)
            if a.shape != (3,) or not np.isfinite(a).all() or np.linalg.norm(a) == 0:
                raise SourceError("shadow axis must be a non-zero 3-vector")
            if not 0.0 <= self.shadow_half_angle_deg < 90.0:
                raise SourceError("shadow half-angle must be in [0, 90) degrees")

    @property
    def mean_energy_kev(self) -> float:
        edges = np.asarray(self.bin_edges_kev)
        p = np.asarray(self.probabilities)
        return float(np.sum(p * 0.5 * (edges[1:] + edges[:-1])) / p.sum())

    @property
    def blocked_fraction(self) -> float:
        if self.shadow_axis is None or self.shadow_half_angle_deg == 0:
            return 0.0
        return 0.5 * (1.0 - math.cos(math.radians(self.shadow_half_angle_deg)))

    def arrays(self) -> SourceArrays:
        edges = np.asarray(self.bin_edges_kev, dtype=np.float64)
        p = np.asarray(self.probabilities, dtype=np.float64)
        cdf = np.concatenate(([0.0], np.cumsum(p) / p.sum()))
        cdf[-1] = 1.0
        guide = guide_table(cdf, 1.0, p.size)
        if self.shadow_axis is None or self.shadow_half_angle_deg == 0:
            return SourceArrays(edges, cdf, guide, 2.0, 0.0, 0.0, 1.0)
        a = np.asarray(self.shadow_axis, dtype=np.float64)
        a = a / np.linalg.norm(a)
        return SourceArrays(
            edges,
            cdf,
            guide,
            math.cos(math.radians(self.shadow_half_angle_deg)),
            float(a[0]),
            float(a[1]),
            float(a[2]),
        )

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(np.asarray(self.bin_edges_kev, dtype=np.float64).tobytes())
        h.update(np.asarray(self.probabilities, dtype=np.float64).tobytes())
        h.update(repr((self.shadow_axis, self.shadow_half_angle_deg)).encode())
        return h.hexdigest()


def monoenergetic(energy_kev: float) -> PointSource:
    """Isotropic point source of one photon energy."""
    e = float(energy_kev)
    if not math.isfinite(e):
        raise SourceError(f"photon energy must be finite, got {energy_kev}")
    return PointSource((e, e), (1.0,), label=f"mono-energetic {e:g} keV")


def spectral(
    bin_edges_kev: Sequence[float] | FloatArray,
    probabilities: Sequence[float] | FloatArray,
    label: str = "spectrum",
) -> PointSource:
    """Isotropic point source with a binned spectrum (uniform in energy within each bin)."""
    return PointSource(
        tuple(float(x) for x in np.asarray(bin_edges_kev).ravel()),
        tuple(float(x) for x in np.asarray(probabilities).ravel()),
        label=label,
    )


def as_point_source(
    source: float | tuple[Sequence[float], Sequence[float]] | PointSource,
) -> PointSource:
    """The radial_dose source argument: keV, ``(bin_edges_kev, probabilities)`` or a source."""
    if isinstance(source, PointSource):
        return source
    if isinstance(source, int | float | np.floating | np.integer):
        return monoenergetic(float(source))
    if isinstance(source, tuple | list) and len(source) == 2:
        return spectral(source[0], source[1])
    raise SourceError("source must be an energy in keV or a (bin_edges_kev, probabilities) pair")
