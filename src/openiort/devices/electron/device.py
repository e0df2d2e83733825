"""The electron device: manifest, measured tables, monitor chamber, beam lookup, beam-on time."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from openiort.datafiles import path_label
from openiort.delivery import DeviceDataRef
from openiort.devices.electron.beam_data import BeamSource, load_beam
from openiort.devices.electron.beams import ElectronBeam, beam_key
from openiort.devices.electron.discs import ShieldingDisc, get_disc
from openiort.devices.electron.errors import ElectronDataError, ElectronSettingError
from openiort.devices.electron.files import DEFAULT_MANIFEST, data_text, planning_value
from openiort.devices.electron.machine_format import ChamberMode

BEAM_DATA_ENV = "OPENIORT_ELECTRON_BEAM_DATA"

Settings = tuple[int, int, int]


@dataclass(frozen=True)
class TypicalBeamOnTime:
    """Typical beam-on time of one fraction, with its verification status and source.

    The beam data hold no dose rate: the figure serves the radiobiological protraction factor
    and the plan's display, never the delivery (which is set in monitor units).
    """

    minutes: float
    status: str
    source: str

    def __post_init__(self) -> None:
        if not self.minutes > 0:
            raise ElectronDataError(f"typical beam-on time must be positive, got {self.minutes}")


def _beam_on_time(entry: Any) -> TypicalBeamOnTime | None:
    """``typical_beam_on_time_min`` of the manifest (value, status, source), if it has one."""
    if entry is None:
        return None
    try:
        return TypicalBeamOnTime(
            minutes=float(entry["value"]), status=str(entry["status"]), source=str(entry["source"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ElectronDataError(
            f"typical_beam_on_time_min needs a numeric value, a status and a source ({exc})"
        ) from None


@dataclass(frozen=True, eq=False)
class ElectronDevice:
    """A mobile electron linac: its settings, tables, calibration and 3D beam data."""

    name: str
    manufacturer: str
    data_version: str
    citations: tuple[str, ...]
    applicators_cm: tuple[int, ...]
    bevels_deg: tuple[int, ...]
    energies_mev: tuple[int, ...]
    output_factor_cgy_per_mu: dict[Settings, float]
    r90_measured_mm: dict[Settings, float]
    reference_pressure_hpa: float
    temperature_correction: bool
    reference_temperature_c: float | None
    pressure_limits_hpa: tuple[float, float]
    temperature_limits_c: tuple[float, float]
    max_dose_cgy: float
    calibration_applicator_cm: int
    calibration_bevel_deg: int
    calibration_cgy_per_mu: float
    calibration: str
    beam_data_path: str
    beam_data_kind: str
    beam_data_sha256: str
    beam_data_matches_release: bool
    data_notes: tuple[str, ...] = ()
    typical_beam_on_time: TypicalBeamOnTime | None = None
    # Identity and provenance (docs/electron-machine-data.md): example or department data.
    status: str = "example"
    model: str = ""
    serial: str | None = None
    effective_date: str | None = None
    commissioned_by: str | None = None
    chamber_correction_mode: ChamberMode = "pressure"
    data_sha256: str = ""
    machine_file: str = ""
    discs: dict[str, ShieldingDisc] | None = field(default=None, repr=False)
    independent_output_factors: dict[Settings, float] | None = field(default=None, repr=False)
    second_check_description: str = ""
    _source: BeamSource | None = field(default=None, repr=False)
    _beam_factory: Callable[[int, int, int], ElectronBeam] | None = field(default=None, repr=False)
    _beams: dict[Settings, ElectronBeam] = field(default_factory=dict, repr=False)

    @property
    def is_example(self) -> bool:
        return self.status != "department"

    @property
    def label(self) -> str:
        """The machine as plans name it; example data say so."""
        serial = f" (serial {self.serial})" if self.serial else ""
        if self.is_example:
            return f"{self.name}: example machine, not your machine"
        return f"{self.name}{serial}"

    def data_ref(self) -> DeviceDataRef:
        """The device data behind a plan, as its delivery records them."""
        return DeviceDataRef(
            name=self.name,
            status="department" if self.status == "department" else "example",
            version=self.data_version or None,
            effective_date=self.effective_date,
            commissioned_by=self.commissioned_by,
            serial=self.serial,
            sha256=self.data_sha256 or self.beam_data_sha256,
        )

    def disc(self, name: str) -> ShieldingDisc:
        """A shielding disc of this machine's set (the packaged discs when it names none)."""
        if self.discs is None:
            return get_disc(name)
        if name not in self.discs:
            raise ElectronSettingError(
                f"unknown shielding disc {name!r} for {self.name}; known: "
                f"{', '.join(sorted(self.discs))}"
            )
        return self.discs[name]

    def independent_output_factor(
        self, applicator_cm: float, bevel_deg: float, energy_mev: float
    ) -> float:
        """The second check's output factor (cGy/MU): the department's independent table, or
        for 3D Monte Carlo beam data the Monte Carlo output factor."""
        key = self.check_settings(applicator_cm, bevel_deg, energy_mev)
        if self.independent_output_factors is not None:
            return self.independent_output_factors[key]
        return self.mc_output_factor(*key)

    @property
    def second_check_method(self) -> str:
        if self.second_check_description:
            return self.second_check_description
        return (
            "output factor from the Monte Carlo data (dose per history at the clinical-axis "
            f"maximum relative to the {self.calibration_applicator_cm} cm / "
            f"{self.calibration_bevel_deg} deg calibration applicator), same pressure correction"
        )

    def check_settings(self, applicator_cm: float, bevel_deg: float, energy_mev: float) -> Settings:
        """Validate a setting triple against the data, returning it as integers."""
        problems = []
        for value, allowed, what, unit in (
            (applicator_cm, self.applicators_cm, "applicator", "cm"),
            (bevel_deg, self.bevels_deg, "bevel", "deg"),
            (energy_mev, self.energies_mev, "energy", "MeV"),
        ):
            if value not in allowed:
                problems.append(
                    f"{what} {value} {unit} is not in the {self.name} data "
                    f"(available: {', '.join(str(v) for v in allowed)} {unit})"
                )
        if problems:
            raise ElectronSettingError("; ".join(problems))
        return int(applicator_cm), int(bevel_deg), int(energy_mev)

    def output_factor(self, applicator_cm: float, bevel_deg: float, energy_mev: float) -> float:
        """Measured cGy per MU at the clinical-axis maximum."""
        return self.output_factor_cgy_per_mu[
            self.check_settings(applicator_cm, bevel_deg, energy_mev)
        ]

    def r90_measured(self, applicator_cm: float, bevel_deg: float, energy_mev: float) -> float:
        """Measured depth of the 90 % dose on the clinical axis (mm)."""
        return self.r90_measured_mm[self.check_settings(applicator_cm, bevel_deg, energy_mev)]

    def beam(self, applicator_cm: float, bevel_deg: float, energy_mev: float) -> ElectronBeam:
        """The 3D beam data of a setting."""
        a, b, e = self.check_settings(applicator_cm, bevel_deg, energy_mev)
        if self._beam_factory is not None:
            if (a, b, e) not in self._beams:
                self._beams[(a, b, e)] = self._beam_factory(a, b, e)
            return self._beams[(a, b, e)]
        if self._source is None:
            raise ElectronDataError(f"{self.name}: no beam data source")
        beam = load_beam(
            self._source, beam_key(a, b, e), float(planning_value("surface_dose_depth_mm"))
        )
        if beam is None:
            raise ElectronDataError(f"{self.beam_data_path}: no beam data for {beam_key(a, b, e)}")
        return beam

    def beams(self) -> Iterable[ElectronBeam]:
        for a in self.applicators_cm:
            for b in self.bevels_deg:
                for e in self.energies_mev:
                    yield self.beam(a, b, e)

    def mc_output_factor(self, applicator_cm: float, bevel_deg: float, energy_mev: float) -> float:
        """Output factor (cGy/MU) from the Monte Carlo data alone, for an independent check.

        The ratio of the MC dose per history at the clinical-axis maximum to that of the
        calibration applicator at the same energy, times the calibration (cGy/MU).
        """
        a, b, e = self.check_settings(applicator_cm, bevel_deg, energy_mev)
        if self._beam_factory is not None:
            raise ElectronDataError(
                f"{self.name}: measured beam data carry no Monte Carlo output factor"
            )
        ref = self.beam(self.calibration_applicator_cm, self.calibration_bevel_deg, e)
        return self.calibration_cgy_per_mu * self.beam(a, b, e).mc_axis_max / ref.mc_axis_max

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "manufacturer": self.manufacturer,
            "data_version": self.data_version,
            "citations": list(self.citations),
            # Package data by their place in the package, not this installation's path.
            "beam_data_path": path_label(Path(self.beam_data_path)),
            "beam_data_kind": self.beam_data_kind,
            "beam_data_sha256": self.beam_data_sha256,
            "beam_data_matches_release": self.beam_data_matches_release,
            "reference_pressure_hpa": self.reference_pressure_hpa,
            "temperature_correction": self.temperature_correction,
            "calibration": self.calibration,
            "status": self.status,
            "example_machine": self.is_example,
            "label": self.label,
            "model": self.model,
            "serial": self.serial,
            "chamber_correction_mode": self.chamber_correction_mode,
            "data_sha256": self.data_sha256,
            "second_check_method": self.second_check_method,
        }


def load_electron_device(beam_data: str | Path | None = None) -> ElectronDevice:
    """The built-in electron device (LIAC HWL) with its beam data.

    Parameters
    ----------
    beam_data:
        Where to read the 3D beam data: ``None`` for ``$OPENIORT_ELECTRON_BEAM_DATA`` or, if that
        is unset, the compact copy shipped in the package; otherwise a compact ``.npz`` or a
        directory of source-format ``C{a}B{b}_{e}MeV.npz`` files. Tables, calibration and the
        monitor-chamber corrections always come from the package's device manifest.

    Raises
    ------
    ElectronDataError
        If the data are missing, malformed, or the packaged copy fails its SHA-256 check.
    """
    chosen = str(beam_data) if beam_data is not None else os.environ.get(BEAM_DATA_ENV) or None
    if chosen is not None:
        chosen = str(Path(chosen).expanduser().resolve())
    return _load_device_cached(chosen)


@cache
def _load_device_cached(beam_data: str | None) -> ElectronDevice:
    from openiort.devices.electron.machine import _Reader, build_device

    device: ElectronDevice = build_device(
        data_text(DEFAULT_MANIFEST), DEFAULT_MANIFEST, _Reader(None), beam_data
    )
    return device


def with_monitor_chamber(device: ElectronDevice, **changes: Any) -> ElectronDevice:
    """A copy of ``device`` with other monitor-chamber data (e.g. a clinic's own calibration)."""
    allowed = {
        "reference_pressure_hpa",
        "temperature_correction",
        "reference_temperature_c",
        "pressure_limits_hpa",
        "temperature_limits_c",
    }
    if "temperature_correction" in changes and "chamber_correction_mode" not in changes:
        changes["chamber_correction_mode"] = (
            "pressure_temperature" if changes["temperature_correction"] else "pressure"
        )
    allowed.add("chamber_correction_mode")
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not monitor-chamber fields: {', '.join(sorted(unknown))}")
    fields = {k: getattr(device, k) for k in device.__dataclass_fields__ if k != "_beams"}
    fields.update(changes)
    return ElectronDevice(**fields)
