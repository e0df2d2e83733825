"""One dose-engine interface and the registry of engines, by name.

Every engine has the same shape: ``compute(delivery, phantom) -> DoseGrid`` for the deliveries
of its technique. An engine is made for one device (the data it computes with) by
:func:`make_engine`; a new engine is one class and one registry line.

Registered: ``xray.table`` (depth-dose tables in water), ``xray.mc`` (kV photon Monte Carlo,
dose to medium), ``electron.beamdata`` (the machine's 3D beam data in the phantom), ``hdr.tg43``
(AAPM TG-43U1 line source in water), ``hdr.mc`` (TG-43 corrected by Ir-192 Monte Carlo in the tissues, dose to medium).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from openiort import __version__
from openiort.anatomy.phantom import Phantom
from openiort.delivery import ElectronDelivery, HdrDelivery, Technique, XrayDelivery
from openiort.dosegrid import DoseGrid
from openiort.errors import OpenIortInputError

AnyDelivery = XrayDelivery | ElectronDelivery | HdrDelivery


class EngineError(OpenIortInputError):
    """An engine that does not exist, or a delivery it cannot compute."""


class DoseEngine(Protocol):
    """What every dose engine offers."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def technique(self) -> Technique: ...

    def compute(self, delivery: Any, phantom: Phantom) -> DoseGrid:
        """Dose (Gy, one session) of ``delivery`` on every voxel of ``phantom``."""
        ...


def _expect(delivery: AnyDelivery, kind: type[AnyDelivery], engine: str) -> None:
    if not isinstance(delivery, kind):
        raise EngineError(
            f"engine {engine!r} computes {kind.__name__} deliveries, not {type(delivery).__name__}",
            source=engine,
        )


@dataclass(frozen=True)
class XrayTableEngine:
    """Depth-dose tables in water about the spherical applicator (D_w,w)."""

    source: Any  # openiort.devices.xray.XraySource
    name: str = "xray.table"
    version: str = __version__
    technique: Technique = "xray"

    def compute(self, delivery: XrayDelivery, phantom: Phantom) -> DoseGrid:
        from openiort.dose import table

        _expect(delivery, XrayDelivery, self.name)
        return table.compute(
            self.source, delivery.applicator_diameter_cm, delivery.treatment_time_min, phantom
        )


@dataclass(frozen=True)
class McSettings:
    """Monte Carlo run settings."""

    histories: int = 30_000_000
    seed: int = 1
    n_batches: int = 10
    scheduler_address: str | None = None
    use_dask: bool = False
    progress: bool = True

    def run_options(self) -> dict[str, Any]:
        """The keyword arguments every Monte Carlo dose function takes from these settings."""
        return {
            "histories": self.histories,
            "seed": self.seed,
            "n_batches": self.n_batches,
            "scheduler_address": self.scheduler_address,
            "use_dask": self.use_dask,
            "progress": self.progress,
        }


@dataclass(frozen=True)
class XrayMcEngine:
    """kV photon Monte Carlo in the phantom's tissues: dose to medium in medium (D_m,m)."""

    source: Any  # openiort.devices.xray.XraySource
    settings: McSettings = McSettings()
    name: str = "xray.mc"
    version: str = __version__
    technique: Technique = "xray"

    def compute(self, delivery: XrayDelivery, phantom: Phantom) -> DoseGrid:
        # The Monte Carlo stack is imported only here: it costs seconds of start-up.
        from openiort.dose.mc import engine as mc_engine

        _expect(delivery, XrayDelivery, self.name)
        dose, _ = mc_engine.compute(
            phantom,
            delivery.applicator_diameter_cm,
            dwell_time_s=delivery.treatment_time_min * 60.0,
            source=self.source,
            **self.settings.run_options(),
        )
        return dose


@dataclass(frozen=True)
class ElectronBeamDataEngine:
    """The machine's 3D beam data in water, placed on the phantom (depth scaled by density)."""

    device: Any  # openiort.devices.electron.ElectronDevice
    name: str = "electron.beamdata"
    version: str = __version__
    technique: Technique = "electron"

    def compute(self, delivery: ElectronDelivery, phantom: Phantom) -> DoseGrid:
        from openiort.dose.electron import DiscPlacement, compute_dose

        _expect(delivery, ElectronDelivery, self.name)
        d, place = delivery, delivery.placement
        beam = self.device.beam(d.applicator_diameter_cm, d.bevel_deg, d.energy_mev)
        disc = None
        if place.disc_type is not None:
            if place.disc_depth_mm is None or place.disc_diameter_mm is None:
                raise EngineError("a disc needs its depth and diameter", source=self.name)
            disc = DiscPlacement(
                self.device.disc(place.disc_type),  # the machine's own disc set
                depth_mm=place.disc_depth_mm,
                diameter_mm=place.disc_diameter_mm,
                centre_xy_mm=place.disc_centre_xy_mm,
            )
        return compute_dose(
            beam,
            phantom,
            place.entry_point_mm,
            place.axis,
            dose_max_gy=d.dose_max_gy,
            bevel_direction=place.bevel_direction,
            disc=disc,
            bolus_mm=place.bolus_mm,
            density_scaling=place.density_scaling,
            calibration=(
                f"{d.monitor_units} MU x {d.output_factor_cgy_per_mu:g} cGy/MU (measured output "
                f"factor) / chamber correction {d.chamber_correction_factor:.4f}; "
                f"{self.device.calibration}"
            ),
        )


@dataclass(frozen=True)
class HdrTg43Engine:
    """AAPM TG-43U1 2D line-source formalism with the consensus data: dose to water in water."""

    name: str = "hdr.tg43"
    version: str = __version__
    technique: Technique = "hdr"

    def dose_gy(self, delivery: HdrDelivery, phantom: Phantom) -> np.ndarray:
        """The dose array alone (Gy), for planners that describe the grid themselves."""
        from openiort.dose.tg43 import compute_dose

        _expect(delivery, HdrDelivery, self.name)
        return compute_dose(
            _dwells(delivery), delivery.source_id, delivery.air_kerma_strength_u, phantom.grid
        )

    def compute(self, delivery: HdrDelivery, phantom: Phantom) -> DoseGrid:
        from openiort.dose.tg43 import dwells_sha256
        from openiort.dosegrid import Provenance

        dose = self.dose_gy(delivery, phantom)
        strength_u = delivery.air_kerma_strength_u
        return DoseGrid(
            grid=phantom.grid,
            dose_gy=dose,
            medium="water_in_water",
            normalisation=f"dwell times x S_K {strength_u:g} U (TG-43U1, {delivery.source_id})",
            provenance=Provenance(
                engine=f"openiort {self.name} (AAPM TG-43U1 2D line source)",
                engine_version=self.version,
                device_data=delivery.device.name,
                device_data_sha256=delivery.device.sha256,
                inputs_sha256=dwells_sha256(_dwells(delivery), delivery.source_id, strength_u),
                calibration=f"S_K {strength_u:g} U",
            ),
        )


@dataclass(frozen=True)
class HdrMcEngine:
    """Ir-192 photon Monte Carlo in the phantom's or CT's tissues, dose to medium in medium
    (TG-186): the modelled source (core and capsule) normalised by S_K, or, for a source
    without a model, TG-43 x a point-source heterogeneity correction
    (:mod:`openiort.dose.mc.hdr_dose`)."""

    settings: McSettings = McSettings()
    name: str = "hdr.mc"
    version: str = __version__
    technique: Technique = "hdr"

    def compute(self, delivery: HdrDelivery, phantom: Phantom) -> DoseGrid:
        from openiort.dose.mc import hdr_dose
        from openiort.dose.tg43 import dwells_sha256
        from openiort.dosegrid import Provenance

        _expect(delivery, HdrDelivery, self.name)
        s = self.settings
        dwells = _dwells(delivery)
        strength_u = delivery.air_kerma_strength_u
        result = hdr_dose.compute(
            phantom,
            dwells.positions_mm,
            dwells.directions,
            dwells.times_s,
            HdrTg43Engine().dose_gy(delivery, phantom),
            source_id=delivery.source_id,
            air_kerma_strength_u=strength_u,
            **s.run_options(),
        )
        if result.method == "source model":
            normalisation = (
                f"dwell times x S_K {strength_u:g} U / the modelled source's S_K per photon "
                f"({result.air_kerma_strength_per_photon_u_h:.4e} U h, {delivery.source_id})"
            )
            method = "Ir-192 photon Monte Carlo with the source's core and capsule"
            how = (
                f"The Monte Carlo follows each photon from the {delivery.source_id} source's "
                "iridium core through its steel capsule into the tissues, oriented along each "
                "dwell's catheter; TG-43 is not used in this dose."
            )
        else:
            normalisation = (
                f"TG-43U1 ({delivery.source_id}, S_K {strength_u:g} U) x Monte Carlo "
                "heterogeneity correction (Ir-192 point sources in the tissues / in unbounded "
                "water)"
            )
            method = "TG-43U1 x Ir-192 photon Monte Carlo heterogeneity correction"
            how = (
                f"No core and capsule model is shipped for {delivery.source_id}: the Monte "
                "Carlo runs point sources of the Ir-192 lines at the dwell positions in the "
                "phantom's tissues and divides by the same in unbounded water; TG-43 keeps "
                "the source's line geometry, capsule and anisotropy."
            )
        return DoseGrid(
            grid=phantom.grid,
            dose_gy=result.dose_gy,
            medium="medium_in_medium",
            normalisation=normalisation,
            provenance=Provenance(
                engine=f"openiort {self.name} ({method}, collision kerma)",
                engine_version=self.version,
                device_data=delivery.device.name,
                device_data_sha256=delivery.device.sha256,
                inputs_sha256=dwells_sha256(dwells, delivery.source_id, strength_u),
                calibration=f"S_K {strength_u:g} U; {result.histories} histories, seed {s.seed}",
            ),
            rel_uncertainty=result.rel_uncertainty,
            notes=(
                how,
                "Dose to medium in medium (TG-186) by collision kerma; the balloon and cavity "
                "are their phantom materials.",
                "Nothing lies beyond the phantom's grid: tissue of the patient outside it "
                "scatters nothing back, which lowers the Monte Carlo dose near the grid's "
                "edges (far from the balloon: lung, heart).",
            ),
        )


def _dwells(delivery: HdrDelivery) -> Any:
    """The delivery's dwells in the TG-43 engine's form."""
    from openiort.dose.tg43 import Dwells

    return Dwells(
        np.array([d.position_mm for d in delivery.dwells], dtype=float),
        np.array([d.direction for d in delivery.dwells], dtype=float),
        np.array([d.time_s for d in delivery.dwells], dtype=float),
    )


@dataclass(frozen=True)
class EngineEntry:
    """A registered engine: its technique, what it computes, and how it is made."""

    name: str
    technique: Technique
    description: str
    make: Callable[..., DoseEngine]


def _register(*entries: EngineEntry) -> dict[str, EngineEntry]:
    return {e.name: e for e in entries}


REGISTRY: dict[str, EngineEntry] = _register(
    EngineEntry(
        "xray.table", "xray", "depth-dose tables in water (fast)", lambda d, **_: XrayTableEngine(d)
    ),
    EngineEntry(
        "xray.mc",
        "xray",
        "kV photon Monte Carlo, dose to medium",
        lambda d, settings=None, **_: XrayMcEngine(d, settings or McSettings()),
    ),
    EngineEntry(
        "electron.beamdata",
        "electron",
        "measured/Monte Carlo beam data in water, density-scaled",
        lambda d, **_: ElectronBeamDataEngine(d),
    ),
    EngineEntry(
        "hdr.tg43", "hdr", "TG-43U1 line source in water", lambda d=None, **_: HdrTg43Engine()
    ),
    EngineEntry(
        "hdr.mc",
        "hdr",
        "Ir-192 Monte Carlo with the source modelled (else TG-43 x a Monte Carlo correction), dose to medium (TG-186)",
        lambda d=None, settings=None, **_: HdrMcEngine(settings or McSettings()),
    ),
)

# Names the command line accepted before engines had technique prefixes.
LEGACY_NAMES = {"table": "xray.table", "mc": "xray.mc"}


def engine_names(technique: Technique) -> list[str]:
    """Registered engines of a technique, the default first."""
    return [name for name, e in REGISTRY.items() if e.technique == technique]


def resolve_engine_name(technique: Technique, requested: str | None) -> str:
    """The registered engine name for ``requested`` (None: the technique's default)."""
    names = engine_names(technique)
    if requested is None:
        return names[0]
    name = LEGACY_NAMES.get(requested, requested) if technique == "xray" else requested
    if name not in names:
        raise EngineError(
            f"--engine: {requested!r} is not an engine for {technique} plans; "
            f"use one of {', '.join(names)}",
            source="--engine",
        )
    return name


def make_engine(name: str, device: object = None, **options: object) -> DoseEngine:
    """The engine ``name`` for ``device`` (its data), with engine-specific ``options``."""
    entry = REGISTRY.get(name)
    if entry is None:
        raise EngineError(
            f"no engine {name!r}; registered: {', '.join(REGISTRY)}", source="--engine"
        )
    return entry.make(device, **options)
