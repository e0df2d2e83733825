"""Batch statistics and unit conversion of the kernels' tallies.

The kernels tally, per scoring cell, either track-length kerma ``sum E (mu_en/rho) l`` in
keV cm^2 g^-1 mm or deposited energy in keV. Doses in Gy follow from the cell volume (mm^3)
and, for deposited energy, its mass. The relative standard uncertainty comes from the spread of
the per-history means of independent batches (history-by-batch method):
``u^2 = sum_b (x_b - xbar)^2 / (B (B - 1))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from openiort.dose.mc.constants import KEV_TO_JOULE
from openiort.dose.mc.kernel_common import BALANCE_SLOTS

FloatArray = NDArray[np.float64]

# keV cm^2 g^-1 mm / mm^3 -> Gy: keV->J, cm^2/g -> m^2/kg (0.1), mm -> m (1e-3), mm^-3 -> m^-3 (1e9)
KERMA_TALLY_TO_GY_MM3 = KEV_TO_JOULE * 0.1 * 1e-3 * 1e9
# keV per (g/cm^3 x mm^3) -> Gy: mass = rho (g/cm^3) x V (mm^3) x 1e-6 kg
DEPOSIT_TALLY_TO_GY_MM3 = KEV_TO_JOULE * 1e6


@dataclass
class BatchAccumulator:
    """Running sums of per-history batch means, merged strictly in batch order."""

    shapes: tuple[tuple[int, ...], ...]
    histories_per_batch: int
    n_batches: int = 0
    sum_x: list[FloatArray] = field(default_factory=list)
    sum_x2: list[FloatArray] = field(default_factory=list)
    balance_kev: FloatArray = field(default_factory=lambda: np.zeros(BALANCE_SLOTS))

    def __post_init__(self) -> None:
        self.sum_x = [np.zeros(s) for s in self.shapes]
        self.sum_x2 = [np.zeros(s) for s in self.shapes]

    def add(self, tallies: tuple[FloatArray, ...], balance_kev: FloatArray) -> None:
        for acc, acc2, t in zip(self.sum_x, self.sum_x2, tallies, strict=True):
            x = np.asarray(t, dtype=np.float64) / self.histories_per_batch
            acc += x
            acc2 += x * x
        self.balance_kev += balance_kev
        self.n_batches += 1

    @property
    def histories(self) -> int:
        return self.n_batches * self.histories_per_batch

    def mean_per_history(self, k: int = 0) -> FloatArray:
        return self.sum_x[k] / self.n_batches

    def relative_uncertainty(self, k: int = 0) -> FloatArray:
        """Relative standard uncertainty of the mean (0 where the mean is 0)."""
        b = self.n_batches
        if b < 2:
            raise ValueError("the uncertainty needs at least two batches")
        mean = self.sum_x[k] / b
        var = np.maximum(self.sum_x2[k] - self.sum_x[k] ** 2 / b, 0.0) / (b * (b - 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(mean > 0, np.sqrt(var) / np.where(mean > 0, mean, 1.0), 0.0)
        return np.asarray(rel)
