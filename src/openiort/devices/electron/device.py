"""The electron device: manifest, measured tables, monitor chamber, beam lookup, beam-on time."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from openiort.datafiles import parse_commented_csv, path_label
from openiort.devices.electron.beam_data import BeamSource, load_beam, resolve_source
from openiort.devices.electron.beams import ElectronBeam, beam_key
from openiort.devices.electron.errors import ElectronDataError, ElectronSettingError
from openiort.devices.electron.files import (
    DEFAULT_MANIFEST,
    data_text,
    entry_value,
    limits_pair,
    planning_value,
)

BEAM_DATA_ENV = "OPENIORT_ELECTRON_BEAM_DATA"

Settings = tuple[int, int, int]


def _read_table(name: str, unit_scale: float) -> dict[Settings, float]:
    rows = parse_commented_csv(data_text(name))
    table: dict[Settings, float] = {}
    for row in rows:
        a, b = int(row["applicator_cm"]), int(row["bevel_deg"])
        for col, val in row.items():
            if col.startswith("energy_") and col.endswith("MeV"):
                e = int(col.removeprefix("energy_").removesuffix("MeV"))
                table[(a, b, e)] = float(val) * unit_scale
    if not table:
        raise ElectronDataError(f"{name}: no rows")
    return table


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
    _source: BeamSource | None = field(default=None, repr=False)

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
    manifest = yaml.safe_load(data_text(DEFAULT_MANIFEST))
    source, matches = resolve_source(beam_data, manifest)
    of = _read_table(str(manifest["output_factor_file"]), 1.0)
    r90 = _read_table(str(manifest["r90_file"]), 10.0)  # cm -> mm
    chamber = manifest["monitor_chamber"]
    cal = manifest["calibration"]
    applicators = tuple(int(v) for v in manifest["applicators_cm"])
    bevels = tuple(int(v) for v in manifest["bevels_deg"])
    energies = tuple(int(v) for v in manifest["energies_mev"])
    expected = {(a, b, e) for a in applicators for b in bevels for e in energies}
    for label, table in (("output factor", of), ("R90", r90)):
        if set(table) != expected:
            raise ElectronDataError(
                f"{manifest['name']}: the {label} table does not cover every setting"
            )
    cal_key = (int(cal["applicator_cm"]), int(cal["bevel_deg"]))
    for e in energies:
        if abs(of[(*cal_key, e)] - float(cal["cgy_per_mu"])) > 1e-9:
            raise ElectronDataError(
                f"{manifest['name']}: output factor of the calibration applicator at {e} MeV "
                f"is {of[(*cal_key, e)]}, not the calibration {cal['cgy_per_mu']} cGy/MU"
            )
    t_ref = chamber.get("reference_temperature_c")
    return ElectronDevice(
        name=str(manifest["name"]),
        manufacturer=str(manifest["manufacturer"]),
        data_version=str(manifest["data_version"]),
        citations=tuple(str(c) for c in manifest["citations"]),
        applicators_cm=applicators,
        bevels_deg=bevels,
        energies_mev=energies,
        output_factor_cgy_per_mu=of,
        r90_measured_mm=r90,
        reference_pressure_hpa=float(entry_value(chamber["reference_pressure_hpa"])),
        temperature_correction=bool(entry_value(chamber["temperature_correction"])),
        reference_temperature_c=None if entry_value(t_ref) is None else float(entry_value(t_ref)),
        pressure_limits_hpa=limits_pair(entry_value(chamber["pressure_limits_hpa"])),
        temperature_limits_c=limits_pair(entry_value(chamber["temperature_limits_c"])),
        max_dose_cgy=float(entry_value(manifest["max_dose_cgy"])),
        calibration_applicator_cm=cal_key[0],
        calibration_bevel_deg=cal_key[1],
        calibration_cgy_per_mu=float(cal["cgy_per_mu"]),
        calibration=str(cal["description"]),
        beam_data_path=str(source.path),
        beam_data_kind=source.kind,
        beam_data_sha256=source.sha256,
        beam_data_matches_release=matches,
        data_notes=tuple(str(n) for n in manifest.get("data_notes", [])),
        typical_beam_on_time=_beam_on_time(manifest.get("typical_beam_on_time_min")),
        _source=source,
    )


def with_monitor_chamber(device: ElectronDevice, **changes: Any) -> ElectronDevice:
    """A copy of ``device`` with other monitor-chamber data (e.g. a clinic's own calibration)."""
    allowed = {
        "reference_pressure_hpa",
        "temperature_correction",
        "reference_temperature_c",
        "pressure_limits_hpa",
        "temperature_limits_c",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not monitor-chamber fields: {', '.join(sorted(unknown))}")
    fields = {k: getattr(device, k) for k in device.__dataclass_fields__}
    fields.update(changes)
    return ElectronDevice(**fields)
