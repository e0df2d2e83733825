"""Reading a machine-data set (:mod:`.machine_format`) into an :class:`ElectronDevice`.

Two places hold machine data: the package (the example machines, checked against the manifest
of ``data/electron``) and a department's folder (checked against the folder's own
``manifest_sha256.csv``, made by ``iort devices manifest FOLDER`` once the data are reviewed).
Every problem of a set is reported, one line each, before anything is planned.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from openiort.datafiles import (
    DataFile,
    DataFileError,
    parse_commented_csv,
    read_data,
    read_department_file,
    sha256_chunks,
)
from openiort.devices.electron.beam_data import BeamSource, resolve_source
from openiort.devices.electron.discs import ShieldingDisc, discs_from_yaml
from openiort.devices.electron.errors import ElectronDataError
from openiort.devices.electron.files import DATA_DIR, data_file_path, planning_value
from openiort.devices.electron.machine_format import FORMAT, MachineFile, Sourced
from openiort.devices.electron.pdd_beams import MeasuredBeam, Profile, depth_of

Key = tuple[int, int, int]
STANDARD_PRESSURE_HPA = 1013.25  # placeholder reference where the chamber takes no air input
EXAMPLE_MACHINES = {"liac_hwl": "liac_hwl.yaml", "mobetron_1000": "mobetron_1000.yaml"}
DEPARTMENT_KEYS = ("serial", "version", "effective_date", "commissioned_by")
_BEAM_COLUMNS = ("applicator_cm", "bevel_deg", "energy_mev")


# ---------------------------------------------------------------------------------------------
# where the files are


@dataclass(frozen=True)
class _Reader:
    """Reads the files of one machine set, each checked against its folder's manifest."""

    folder: Path | None  # None: the package's data/electron

    def read(self, name: str) -> DataFile:
        if self.folder is None:
            return read_data("openiort.devices", f"{DATA_DIR}/{name}")
        try:
            return read_department_file(self.folder, name, "machine data")
        except DataFileError as exc:
            raise ElectronDataError(*exc.problems, source=str(self.folder)) from None

    def path(self, name: str) -> Path:
        if self.folder is None:
            return data_file_path(name)
        self.read(name)  # checked against the manifest
        return self.folder / name


# ---------------------------------------------------------------------------------------------
# tables


def _setting(key: Key) -> str:
    a, b, e = key
    return f"applicator {a} cm / bevel {b} deg / energy {e} MeV"


def _rows(
    reader: _Reader, name: str, columns: tuple[str, ...], problems: list[str]
) -> list[tuple[int, dict[str, str]]]:
    """The rows of one CSV with their line numbers; a missing column is one problem."""
    try:
        text = reader.read(name).text
    except ElectronDataError as exc:
        problems += exc.problems
        return []
    rows = parse_commented_csv(text)
    present = set(rows[0]) if rows else set()
    missing = [c for c in columns if c not in present]
    if not rows:
        problems.append(f"{name}: no rows (expected columns {', '.join(columns)})")
        return []
    if missing:
        problems.append(
            f"{name}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(expected {', '.join(columns)})"
        )
        return []
    first = 1 + sum(1 for line in text.splitlines() if line.lstrip().startswith("#")) + 1
    return [(first + i, row) for i, row in enumerate(rows)]


def _key(row: dict[str, str]) -> Key:
    return int(row["applicator_cm"]), int(row["bevel_deg"]), int(row["energy_mev"])


def _numbers(
    name: str, line: int, row: dict[str, str], value_cols: tuple[str, ...], problems: list[str]
) -> tuple[Key | None, list[float] | None]:
    """(setting, values) of a row; None where it is not readable (the problem is recorded)."""
    try:
        key: Key | None = _key(row)
    except (TypeError, ValueError):
        problems.append(
            f"{name} line {line}: applicator_cm, bevel_deg and energy_mev must be whole numbers"
        )
        return None, None
    values = []
    for col in value_cols:
        try:
            v = float(row[col])
        except (TypeError, ValueError):
            problems.append(f"{name} line {line}: {col} {row[col]!r} is not a number")
            return key, None
        if not np.isfinite(v):
            problems.append(f"{name} line {line}: {col} must be a finite number")
            return key, None
        values.append(v)
    return key, values


def _coverage(
    name: str, what: str, found: Iterable[Key], expected: set[Key], problems: list[str]
) -> None:
    """One problem per energy with no rows at all, else per missing beam; and per extra beam."""
    found = set(found)
    missing = expected - found
    by_energy: dict[int, set[Key]] = defaultdict(set)
    for k in expected:
        by_energy[k[2]].add(k)
    for e in sorted(by_energy):
        gone = by_energy[e] & missing
        if gone == by_energy[e]:
            problems.append(f"{name}: energy {e} MeV has no {what}")
        else:
            problems += [f"{name}: {_setting(k)} has no {what}" for k in sorted(gone)]
    for k in sorted(found - expected):
        problems.append(
            f"{name}: {what} for {_setting(k)}, a setting the machine file does not list"
        )


def _value_table(
    reader: _Reader,
    name: str,
    column: str,
    what: str,
    expected: set[Key],
    problems: list[str],
    positive: bool = True,
) -> dict[Key, float]:
    table: dict[Key, float] = {}
    seen: set[Key] = set()  # rows with a bad value count as given (one problem, not two)
    for line, row in _rows(reader, name, (*_BEAM_COLUMNS, column), problems):
        key, values = _numbers(name, line, row, (column,), problems)
        if key is not None:
            seen.add(key)
        if key is None or values is None:
            continue
        (value,) = values
        if positive and value <= 0:
            problems.append(f"{name} line {line}: {what} {value:g} must be positive")
            continue
        if key in table:
            problems.append(f"{name} line {line}: {_setting(key)} is given twice")
            continue
        table[key] = value
    if seen or not any(p.startswith(f"{name}:") for p in problems):
        _coverage(name, what, seen, expected, problems)
    return table


def _pdds(
    reader: _Reader, name: str, expected: set[Key], problems: list[str]
) -> dict[Key, tuple[np.ndarray, np.ndarray]]:
    points: dict[Key, list[tuple[float, float]]] = defaultdict(list)
    for line, row in _rows(reader, name, (*_BEAM_COLUMNS, "depth_mm", "pdd_pct"), problems):
        key, values = _numbers(name, line, row, ("depth_mm", "pdd_pct"), problems)
        if key is not None and values is not None:
            points[key].append((values[0], values[1]))
    out: dict[Key, tuple[np.ndarray, np.ndarray]] = {}
    for key, pts in points.items():
        depth = np.array([d for d, _ in pts])
        pdd = np.array([p for _, p in pts])
        where = f"{name}: {_setting(key)}"
        if len(pts) < 5 or np.any(np.diff(depth) <= 0) or depth[0] < 0:
            problems.append(f"{where}: needs 5 or more depths from 0 mm, strictly increasing")
        elif np.any(pdd < 0) or abs(float(pdd.max()) - 100.0) > 1.0:
            problems.append(
                f"{where}: the PDD must be >= 0 and 100 at its maximum (maximum {pdd.max():g})"
            )
        elif depth_of(depth, pdd, 20.0) is None:
            problems.append(
                f"{where}: the PDD does not fall below 20 % within the data (deepest "
                f"{depth[-1]:g} mm): measure deeper"
            )
        else:
            out[key] = (depth, pdd)
    if points or not any(p.startswith(f"{name}:") for p in problems):
        _coverage(name, "PDD", points, expected, problems)
    return out


def _profiles(
    reader: _Reader, name: str, expected: set[Key], problems: list[str]
) -> dict[Key, tuple[tuple[Profile, ...], tuple[Profile, ...]]]:
    columns = (*_BEAM_COLUMNS, "depth_mm", "axis", "off_axis_mm", "relative_pct")
    points: dict[tuple[Key, str, float], list[tuple[float, float]]] = defaultdict(list)
    for line, row in _rows(reader, name, columns, problems):
        key, values = _numbers(
            name, line, row, ("depth_mm", "off_axis_mm", "relative_pct"), problems
        )
        if key is None or values is None:
            continue
        axis = row["axis"].strip().lower()
        if axis not in ("x", "y"):
            problems.append(f"{name} line {line}: axis must be x or y, got {row['axis']!r}")
            continue
        depth, off_axis, value = values
        points[(key, axis, depth)].append((off_axis, value))
    per_beam: dict[Key, dict[str, list[Profile]]] = defaultdict(lambda: {"x": [], "y": []})
    for (key, axis, depth), pts in sorted(points.items()):
        s = np.array([p for p, _ in pts])
        v = np.array([q for _, q in pts])
        where = f"{name}: {_setting(key)}, {axis} profile at {depth:g} mm"
        if len(pts) < 5 or np.any(np.diff(s) <= 0) or not s[0] < 0 < s[-1]:
            problems.append(f"{where}: needs 5 or more points, increasing, on both sides of 0")
        elif np.any(v < 0) or abs(float(np.interp(0.0, s, v)) - 100.0) > 2.0:
            problems.append(f"{where}: must be >= 0 and 100 on the clinical axis")
        elif max(v[0], v[-1]) > 20.0:
            problems.append(f"{where}: must fall below 20 % at both ends (measure wider)")
        else:
            per_beam[key][axis].append(Profile(depth, s, v))
    out = {}
    for key, axes in per_beam.items():
        if len(axes["x"]) < 2:
            problems.append(f"{name}: {_setting(key)} needs x profiles at 2 or more depths")
            continue
        out[key] = (tuple(axes["x"]), tuple(axes["y"]))
    if points or not any(p.startswith(f"{name}:") for p in problems):
        _coverage(name, "profiles", {k for k, _, _ in points}, expected, problems)
    return out


# ---------------------------------------------------------------------------------------------
# the machine file


def _value(entry: Any) -> Any:
    return entry.value if isinstance(entry, Sourced) else entry


def _identity_problems(m: MachineFile, name: str) -> list[str]:
    if m.status != "department":
        return []
    return [
        f"{name}: {key} is required (department data name the machine's serial number, the "
        "data's version, their effective date and who commissioned them)"
        for key in DEPARTMENT_KEYS
        if getattr(m, key) in (None, "")
    ]


def _structure_problems(m: MachineFile, name: str) -> list[str]:
    problems = []
    for what, values in (
        ("applicators_cm", m.applicators_cm),
        ("bevels_deg", m.bevels_deg),
        ("energies_mev", m.energies_mev),
    ):
        if len(set(values)) != len(values) or sorted(values) != list(values):
            problems.append(f"{name}: {what} must be increasing, each once")
        if min(values) < 0 or (what != "bevels_deg" and min(values) <= 0):
            problems.append(f"{name}: {what} must be positive")
    if max(m.bevels_deg) >= 90:
        problems.append(f"{name}: bevels_deg must be below 90")
    if m.beam_data_kind == "dose_3d":
        for key in ("beam_data_file", "beam_data_sha256", "r90_csv"):
            if getattr(m, key) is None:
                problems.append(f"{name}: {key} is required with beam_data_kind dose_3d")
        if m.output_factor_depth_mm is not None:
            problems.append(
                f"{name}: output_factor_depth_mm needs PDD tables (beam_data_kind pdd_profiles); "
                "give the output factors at the dose maximum"
            )
    else:
        for key in ("pdd_csv", "profiles_csv"):
            if getattr(m, key) is None:
                problems.append(f"{name}: {key} is required with beam_data_kind pdd_profiles")
    sc = m.second_check
    if sc.kind == "output_factors_csv" and sc.csv is None:
        problems.append(f"{name}: second_check.csv is required with kind output_factors_csv")
    if sc.kind == "monte_carlo_output_factor" and m.beam_data_kind != "dose_3d":
        problems.append(
            f"{name}: second_check monte_carlo_output_factor needs 3D Monte Carlo beam data; "
            "give independent output factors (kind output_factors_csv)"
        )
    chamber = m.monitor_chamber
    if (
        chamber.correction in ("pressure", "pressure_temperature")
        and _value(chamber.reference_pressure_hpa) is None
    ):
        problems.append(
            f"{name}: monitor_chamber.reference_pressure_hpa is required with correction "
            f"{chamber.correction}"
        )
    if (
        chamber.correction == "pressure_temperature"
        and _value(chamber.reference_temperature_c) is None
    ):
        problems.append(
            f"{name}: monitor_chamber.reference_temperature_c is required with correction "
            "pressure_temperature"
        )
    cal = m.calibration
    if cal.applicator_cm not in m.applicators_cm or cal.bevel_deg not in m.bevels_deg:
        problems.append(f"{name}: the calibration applicator and bevel must be among the settings")
    return problems


def parse_machine_file(text: str, name: str) -> MachineFile:
    """The machine file's content, validated; one problem per bad or missing key."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ElectronDataError(f"{name}: not valid YAML ({exc})", source=name) from None
    if not isinstance(doc, dict):
        raise ElectronDataError(f"{name}: must be a YAML mapping", source=name)
    if doc.get("format") != FORMAT:
        raise ElectronDataError(
            f"{name}: format must be {FORMAT!r} (got {doc.get('format')!r}); see "
            "docs/electron-machine-data.md",
            source=name,
        )
    try:
        machine = MachineFile.model_validate(doc)
    except ValidationError as exc:
        problems = [f"{name}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ElectronDataError(*problems, source=name) from None
    problems = _identity_problems(machine, name) + _structure_problems(machine, name)
    if problems:
        raise ElectronDataError(*problems, source=name)
    return machine


@dataclass(frozen=True)
class MachineTables:
    """What the device is built from, besides the machine file."""

    output_factors: dict[Key, float]
    r90_mm: dict[Key, float]
    independent_output_factors: dict[Key, float] | None
    measured: dict[Key, MeasuredBeam]
    discs: dict[str, ShieldingDisc]
    beam_source: BeamSource | None
    beam_matches_release: bool
    data_sha256: str  # over the tables' hashes (the machine file is added by build_device)


def _read_tables(
    m: MachineFile, reader: _Reader, beam_data: str | None, name: str
) -> MachineTables:
    expected = {(a, b, e) for a in m.applicators_cm for b in m.bevels_deg for e in m.energies_mev}
    problems: list[str] = []
    hashes: dict[str, str] = {}
    of = _value_table(
        reader, m.output_factors_csv, "cgy_per_mu", "output factor", expected, problems
    )
    measured: dict[Key, MeasuredBeam] = {}
    r90: dict[Key, float] = {}
    if m.beam_data_kind == "pdd_profiles":
        assert m.pdd_csv is not None and m.profiles_csv is not None
        pdds = _pdds(reader, m.pdd_csv, expected, problems)
        profiles = _profiles(reader, m.profiles_csv, expected, problems)
        for key in expected & set(pdds) & set(profiles):
            depth, pdd = pdds[key]
            measured[key] = MeasuredBeam(*key, depth, pdd, *profiles[key])
            r90_value = depth_of(depth, pdd, 90.0)
            assert r90_value is not None  # the PDD falls below 20 %
            r90[key] = r90_value
        if m.output_factor_depth_mm is not None:
            for key in set(of) & set(pdds):
                depth, pdd = pdds[key]
                if m.output_factor_depth_mm > depth[-1]:
                    problems.append(f"{m.pdd_csv}: {_setting(key)} ends above the output depth")
                    continue
                of[key] *= 100.0 / float(np.interp(m.output_factor_depth_mm, depth, pdd))
    if m.r90_csv is not None:
        r90 = _value_table(reader, m.r90_csv, "r90_mm", "R90", expected, problems)
    independent = None
    if m.second_check.kind == "output_factors_csv":
        assert m.second_check.csv is not None
        independent = _value_table(
            reader,
            m.second_check.csv,
            "cgy_per_mu",
            "independent output factor",
            expected,
            problems,
        )
    discs: dict[str, ShieldingDisc] = {}
    try:
        discs_file = reader.read(m.discs_file)
        discs = discs_from_yaml(yaml.safe_load(discs_file.text), m.discs_file)
    except (ElectronDataError, yaml.YAMLError) as exc:
        problems += exc.problems if isinstance(exc, ElectronDataError) else [f"{exc}"]
    cal = m.calibration
    for e in m.energies_mev:
        value = of.get((cal.applicator_cm, cal.bevel_deg, e))
        if value is not None and abs(value - cal.cgy_per_mu) > 1e-6 * cal.cgy_per_mu:
            problems.append(
                f"{m.output_factors_csv}: the calibration beam ({cal.applicator_cm} cm / "
                f"{cal.bevel_deg} deg) at {e} MeV has {value:g} cGy/MU, not the calibration "
                f"{cal.cgy_per_mu:g} cGy/MU"
            )
    source: BeamSource | None = None
    matches = True
    if m.beam_data_kind == "dose_3d" and not problems:
        assert m.beam_data_file is not None
        manifest = {
            "beam_data_file": m.beam_data_file,
            "beam_data_sha256": m.beam_data_sha256,
            "source_sha256": m.source_sha256,
        }
        if reader.folder is None:
            source, matches = resolve_source(beam_data, manifest)
        else:
            source, matches = resolve_source(str(reader.path(m.beam_data_file)), manifest)
            if not matches:
                problems.append(
                    f"{m.beam_data_file}: SHA-256 {source.sha256[:12]}... differs from "
                    f"beam_data_sha256 {str(m.beam_data_sha256)[:12]}... of {name}"
                )
        hashes[m.beam_data_file] = source.sha256
    if problems:
        raise ElectronDataError(*problems, source=name)
    for f in (
        m.output_factors_csv,
        m.pdd_csv,
        m.profiles_csv,
        m.r90_csv,
        m.discs_file,
        m.second_check.csv,
    ):
        if f is not None:
            hashes[f] = reader.read(f).sha256
    digest = sha256_chunks(f"{k}:{v}\n".encode() for k, v in sorted(hashes.items()))
    return MachineTables(of, r90, independent, measured, discs, source, matches, digest)


def build_device(
    text: str, name: str, reader: _Reader, beam_data: str | None = None
) -> Any:  # ElectronDevice (imported late: the device module imports this one)
    """An :class:`ElectronDevice` from a machine file's text and the reader of its folder."""
    from openiort.devices.electron.device import ElectronDevice, TypicalBeamOnTime
    from openiort.devices.electron.pdd_beams import build_beam

    m = parse_machine_file(text, name)
    tables = _read_tables(m, reader, beam_data, name)
    data_sha256 = sha256_chunks([tables.data_sha256.encode(), text.encode("utf-8")])
    chamber = m.monitor_chamber
    mode = chamber.correction
    p_ref = _value(chamber.reference_pressure_hpa)
    t_ref = _value(chamber.reference_temperature_c)
    surface_depth = float(planning_value("surface_dose_depth_mm"))
    factory: Callable[[int, int, int], Any] | None = None
    if tables.measured:
        measured = tables.measured

        def factory(a: int, b: int, e: int) -> Any:
            return build_beam(measured[(a, b, e)], data_sha256, surface_depth)

    source = tables.beam_source
    beam_on = m.typical_beam_on_time_min
    folder = reader.folder
    return ElectronDevice(
        name=m.name,
        manufacturer=m.manufacturer,
        data_version=m.version or "",
        citations=tuple(m.citations),
        applicators_cm=tuple(m.applicators_cm),
        bevels_deg=tuple(m.bevels_deg),
        energies_mev=tuple(m.energies_mev),
        output_factor_cgy_per_mu=tables.output_factors,
        r90_measured_mm=tables.r90_mm,
        reference_pressure_hpa=float(p_ref) if p_ref is not None else STANDARD_PRESSURE_HPA,
        temperature_correction=mode == "pressure_temperature",
        reference_temperature_c=None if t_ref is None else float(t_ref),
        pressure_limits_hpa=_pair(_value(chamber.pressure_limits_hpa), name),
        temperature_limits_c=_pair(_value(chamber.temperature_limits_c), name),
        max_dose_cgy=float(_value(m.max_dose_cgy)),
        calibration_applicator_cm=m.calibration.applicator_cm,
        calibration_bevel_deg=m.calibration.bevel_deg,
        calibration_cgy_per_mu=m.calibration.cgy_per_mu,
        calibration=m.calibration.description,
        beam_data_path=str(source.path) if source is not None else str(folder or DATA_DIR),
        beam_data_kind=source.kind if source is not None else "pdd_profiles",
        beam_data_sha256=source.sha256 if source is not None else data_sha256,
        beam_data_matches_release=tables.beam_matches_release,
        data_notes=tuple(m.data_notes),
        typical_beam_on_time=TypicalBeamOnTime(beam_on.value, beam_on.status, beam_on.source),
        status=m.status,
        model=m.model,
        serial=m.serial,
        effective_date=None if m.effective_date is None else str(m.effective_date),
        commissioned_by=m.commissioned_by,
        chamber_correction_mode=mode,
        data_sha256=data_sha256,
        machine_file=name if folder is None else str(folder / name),
        discs=tables.discs,
        independent_output_factors=tables.independent_output_factors,
        second_check_description=m.second_check.description,
        _source=source,
        _beam_factory=factory,
    )


def _pair(values: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in values)
    except (TypeError, ValueError):
        raise ElectronDataError(f"{name}: limits must be [low, high]", source=name) from None
    if not lo < hi:
        raise ElectronDataError(f"{name}: limits must be [low, high], got {values}", source=name)
    return lo, hi


def load_machine_data(path: str | Path) -> Any:
    """A department's machine (or a shipped example by its name: ``liac_hwl``,
    ``mobetron_1000``), validated; every problem is one line of an ElectronDataError."""
    text_path = str(path)
    if text_path in EXAMPLE_MACHINES:
        file = EXAMPLE_MACHINES[text_path]
        return build_device(
            read_data("openiort.devices", f"{DATA_DIR}/{file}").text, file, _Reader(None)
        )
    p = Path(path).expanduser()
    if not p.is_file():
        raise ElectronDataError(
            f"machine data not found: {p} (a machine file, or one of the examples: "
            f"{', '.join(EXAMPLE_MACHINES)})",
            source=str(p),
        )
    reader = _Reader(p.resolve().parent)
    return build_device(reader.read(p.name).text, p.name, reader)
