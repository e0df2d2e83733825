"""Shielding discs: the model of one (backscatter in front, transmission behind) and the types."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import yaml
from numpy.typing import ArrayLike, NDArray

from openiort.devices.electron.errors import ElectronDataError, ElectronSettingError
from openiort.devices.electron.files import DISCS_FILE, data_text

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ShieldingDisc:
    """A protection disc slipped between the gland and the pectoral muscle.

    In front of it (upstream, water-equivalent distance ``s`` from its face) the dose rises by
    ``B(E) * exp(-(s - s_ref) / lambda)`` (``B`` interpolated in nominal energy, held at the
    published value for ``s < s_ref``); behind it the dose is ``transmission_fraction`` times
    the dose that the open beam gives at its face. Both figures and their verification levels
    are in ``data/electron/shielding_discs.yaml``.
    """

    name: str
    description: str
    layers: tuple[tuple[str, float], ...]
    backscatter_energies_mev: tuple[float, ...]
    backscatter_increase_pct: tuple[float, ...]
    backscatter_reference_distance_mm: float
    backscatter_decay_length_mm: float
    transmission_fraction: float
    max_stopped_energy_mev: float | None
    sources: tuple[str, ...]
    verification: dict[str, str] = field(hash=False, compare=False)
    diameters_mm: tuple[float, ...] = ()  # the sizes the department holds (empty: any)

    def __post_init__(self) -> None:
        if not 0.0 < self.transmission_fraction < 1.0:
            raise ElectronDataError(f"disc {self.name}: transmission must lie in (0, 1)")
        if self.backscatter_decay_length_mm <= 0:
            raise ElectronDataError(f"disc {self.name}: backscatter decay length must be positive")
        if len(self.backscatter_energies_mev) != len(self.backscatter_increase_pct):
            raise ElectronDataError(
                f"disc {self.name}: backscatter energies and values differ in length"
            )

    @property
    def thickness_mm(self) -> float:
        return float(sum(t for _, t in self.layers))

    def backscatter_increase(self, energy_mev: float, upstream_mm: ArrayLike) -> FloatArray:
        """Fractional dose increase at water-equivalent distance ``upstream_mm`` in front."""
        b = float(
            np.interp(energy_mev, self.backscatter_energies_mev, self.backscatter_increase_pct)
        )
        s = np.maximum(
            np.asarray(upstream_mm, dtype=np.float64), self.backscatter_reference_distance_mm
        )
        return (
            b
            / 100.0
            * np.exp(
                -(s - self.backscatter_reference_distance_mm) / self.backscatter_decay_length_mm
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "layers": [{"material": m, "thickness_mm": t} for m, t in self.layers],
            "backscatter_increase_pct": dict(
                zip(
                    [str(e) for e in self.backscatter_energies_mev],
                    self.backscatter_increase_pct,
                    strict=True,
                )
            ),
            "backscatter_reference_distance_mm": self.backscatter_reference_distance_mm,
            "backscatter_decay_length_mm": self.backscatter_decay_length_mm,
            "transmission_fraction": self.transmission_fraction,
            "sources": list(self.sources),
            "verification": dict(self.verification),
            **({"diameters_mm": list(self.diameters_mm)} if self.diameters_mm else {}),
        }


def discs_from_yaml(doc: Any, source: str) -> dict[str, ShieldingDisc]:
    """The disc types of a discs file (format of ``data/electron/shielding_discs.yaml``, each
    disc optionally with the ``diameters_mm`` held); one problem per malformed disc."""
    problems: list[str] = []
    discs: dict[str, ShieldingDisc] = {}
    try:
        decay = float(doc["backscatter_decay_length_mm"])
        decay_note = str(doc.get("backscatter_decay_verification", ""))
        entries = dict(doc["discs"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ElectronDataError(
            f"{source}: needs backscatter_decay_length_mm and a 'discs' mapping ({exc})",
            source=source,
        ) from None
    for name, d in entries.items():
        try:
            bs, tr = d["backscatter"], d["transmission"]
            discs[str(name)] = ShieldingDisc(
                name=str(name),
                description=str(d["description"]),
                layers=tuple(
                    (str(layer["material"]), float(layer["thickness_mm"])) for layer in d["layers"]
                ),
                backscatter_energies_mev=tuple(float(e) for e in bs["energies_mev"]),
                backscatter_increase_pct=tuple(float(v) for v in bs["increase_pct"]),
                backscatter_reference_distance_mm=float(bs["reference_distance_mm"]),
                backscatter_decay_length_mm=decay,
                transmission_fraction=float(tr["fraction"]),
                max_stopped_energy_mev=None
                if tr.get("max_stopped_energy_mev") is None
                else float(tr["max_stopped_energy_mev"]),
                sources=tuple(str(s) for s in d["sources"]),
                verification={
                    "backscatter": str(bs["verification"]),
                    "transmission": str(tr["verification"]),
                    "backscatter_decay_length": decay_note,
                },
                diameters_mm=tuple(float(v) for v in d.get("diameters_mm", ()) or ()),
            )
        except ElectronDataError as exc:
            problems += [f"{source}: {p}" for p in exc.problems]
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(
                f"{source}: disc {name}: needs description, layers (material, thickness_mm), "
                f"sources, backscatter and transmission with their verification ({exc!r})"
            )
    if problems:
        raise ElectronDataError(*problems, source=source)
    if not discs:
        raise ElectronDataError(f"{source}: no discs", source=source)
    return discs


@cache
def shielding_discs() -> dict[str, ShieldingDisc]:
    """The disc types in ``data/electron/shielding_discs.yaml``."""
    return discs_from_yaml(yaml.safe_load(data_text(DISCS_FILE)), DISCS_FILE)


def get_disc(name: str) -> ShieldingDisc:
    discs = shielding_discs()
    if name not in discs:
        raise ElectronSettingError(
            f"unknown shielding disc {name!r}; known: {', '.join(sorted(discs))}"
        )
    return discs[name]
