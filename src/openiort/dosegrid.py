"""Dose on a grid, with its unit, medium, normalisation and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from openiort.grid import Grid

DoseMedium = Literal["water_in_water", "medium_in_medium", "water_in_medium"]

MEDIUM_LABELS: dict[str, str] = {
    "water_in_water": "dose to water in water (D_w,w; TG-43 / TG-186 terms)",
    "medium_in_medium": "dose to medium in medium (D_m,m; TG-186)",
    "water_in_medium": "dose to water in medium (D_w,m; TG-186)",
}


@dataclass(frozen=True)
class Provenance:
    """Where a dose result comes from, so that results never drift silently."""

    engine: str
    engine_version: str
    device_data: str
    device_data_sha256: str
    inputs_sha256: str
    calibration: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DoseGrid:
    """Absorbed dose in Gy for one session (single fraction), on ``grid``.

    ``rel_uncertainty`` is the relative standard uncertainty per voxel (Monte Carlo only).
    """

    grid: Grid
    dose_gy: NDArray[np.float64]
    medium: DoseMedium
    normalisation: str
    provenance: Provenance
    rel_uncertainty: NDArray[np.float64] | None = None
    per_session: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.dose_gy.shape != self.grid.shape:
            raise ValueError(f"dose shape {self.dose_gy.shape} != grid shape {self.grid.shape}")
        if self.rel_uncertainty is not None and self.rel_uncertainty.shape != self.grid.shape:
            raise ValueError("uncertainty shape differs from the grid shape")

    @property
    def medium_label(self) -> str:
        return MEDIUM_LABELS[self.medium]
