"""50 kV miniature x-ray source with spherical applicators (INTRABEAM-type).

Dose-rate data come in two definitions (AAPM TG-292): ``TARGIT`` (the trials' definition) and
``V4.0`` (closer to absorbed dose to water). The relative depth-dose curve is dose to water and
is normalised to the V4.0 surface rate; TARGIT-definition values follow from the published
V4.0/TARGIT ratios at 0, 10 and 20 mm, and between and beyond those depths from the shape of a
shifted-chamber model, TARGIT(d) proportional to V4.0(d + shift), the shift fitted to the 24
published ratios with the source's own depth-dose (:func:`fit_targit_shift`; 0.74 mm for the
example source). A straight line between the published depths overstates the ratio at 5 mm by
up to 4.6 % (1.5 cm applicator).

The built-in source is TG-292's single example source; a clinic loads its own commissioning
data with :func:`load_commissioning` (format documented there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from numpy.typing import NDArray

from openiort.datafiles import (
    DataFileError,
    parse_commented_csv,
    read_data,
    read_department_file,
    sha256_texts,
)
from openiort.delivery import DeviceDataRef
from openiort.devices.xray_second_check import (
    DEFAULT_TOLERANCE_PCT,
    SecondCheckReference,
    second_check_time,
)
from openiort.errors import OpenIortInputError

DoseDefinition = Literal["TARGIT", "V4.0"]
RATIO_DEPTHS_MM = (0.0, 10.0, 20.0)
EXAMPLE_SOURCE_LABEL = "example source, not your source (AAPM TG-292 Table IV example XRS)"
DEPTH_DOSE_TABLE = "data/xray50_depth_dose_water.csv"


class DeviceDataError(OpenIortInputError):
    """Device data that are missing, malformed or do not cover the request."""


@dataclass(frozen=True)
class ApplicatorData:
    diameter_cm: float
    surface_rate_v40_gy_min: float
    surface_rate_targit_gy_min: float
    ratio_depth_mm: tuple[float, ...]
    ratio_v40_over_targit: tuple[float, ...]
    depth_mm: NDArray[np.float64]
    relative_dose_water: NDArray[np.float64]

    @property
    def radius_mm(self) -> float:
        return self.diameter_cm * 5.0


@dataclass(frozen=True)
class XraySource:
    """Dose-rate model of one 50 kV source with its spherical applicators."""

    name: str
    is_example_source: bool
    applicators: dict[float, ApplicatorData]
    data_sha256: str
    depth_dose_origin: str
    output_check_factor: float = 1.0
    notes: tuple[str, ...] = field(default_factory=tuple)
    version: str | None = None
    effective_date: str | None = None
    commissioned_by: str | None = None
    serial: str | None = None
    #: the department's absolute anchor of the independent second check (None: the model's own)
    second_check_reference: SecondCheckReference | None = None
    #: the difference between the primary time and the second check that raises a warning
    second_check_tolerance_pct: float = DEFAULT_TOLERANCE_PCT
    #: shift (mm) of the shifted-chamber model that shapes V4.0/TARGIT between the published
    #: depths (None: linear interpolation); fitted to the ratio table by :func:`fit_targit_shift`
    targit_shift_mm: float | None = None

    def data_ref(self) -> DeviceDataRef:
        """The device data behind a plan, as its delivery records them."""
        return DeviceDataRef(
            name=self.name,
            status="example" if self.is_example_source else "department",
            version=self.version,
            effective_date=self.effective_date,
            commissioned_by=self.commissioned_by,
            serial=self.serial,
            sha256=self.data_sha256,
        )

    @property
    def diameters_cm(self) -> list[float]:
        return sorted(self.applicators)

    def applicator(self, diameter_cm: float) -> ApplicatorData:
        for d, app in self.applicators.items():
            if abs(d - diameter_cm) < 1e-6:
                return app
        raise DeviceDataError(
            f"applicator {diameter_cm} cm is not in the source data; available: "
            f"{', '.join(f'{d:g}' for d in self.diameters_cm)} cm"
        )

    def ratio_v40_over_targit(
        self, diameter_cm: float, depth_mm: NDArray[np.float64] | float
    ) -> NDArray[np.float64]:
        """V4.0/TARGIT at depth: the published ratios at 0, 10 and 20 mm, and between and beyond
        them the shape of the shifted-chamber model, TARGIT(d) proportional to V4.0(d + shift)
        (the larger TARGIT chamber reads as if deeper), so that the ratio follows this source's
        own depth-dose instead of a straight line (a line overstates it at 5 mm by up to 4 %)."""
        app = self.applicator(diameter_cm)
        d = np.asarray(depth_mm, dtype=np.float64)
        linear = np.interp(d, app.ratio_depth_mm, app.ratio_v40_over_targit)
        if self.targit_shift_mm is None:
            return np.asarray(linear)
        published = np.asarray(app.ratio_depth_mm, dtype=np.float64)
        at = self._chamber_shape(diameter_cm, np.maximum(d, 0.0))
        at_published = self._chamber_shape(diameter_cm, published)
        return np.asarray(linear * at / np.interp(d, published, at_published))

    def _chamber_shape(
        self, diameter_cm: float, depth_mm: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """V4.0(d) / V4.0(d + shift): the model's ratio up to a constant factor."""
        assert self.targit_shift_mm is not None
        return np.asarray(
            self.relative_dose_water(diameter_cm, depth_mm)
            / self.relative_dose_water(diameter_cm, depth_mm + self.targit_shift_mm)
        )

    def relative_dose_water(
        self, diameter_cm: float, depth_mm: NDArray[np.float64] | float
    ) -> NDArray[np.float64]:
        """Relative dose to water at depth below the applicator surface (1 at the surface)."""
        app = self.applicator(diameter_cm)
        d = np.asarray(depth_mm, dtype=np.float64)
        if np.any(d > app.depth_mm[-1]):
            # Beyond the table: continue the last decade's log-slope (dose falls ~exponentially
            # times inverse square); it only matters for far organs, never the prescription.
            tail = app.depth_mm >= app.depth_mm[-1] - 10.0
            slope = np.polyfit(app.depth_mm[tail], np.log(app.relative_dose_water[tail]), 1)[0]
            inside = np.interp(
                np.minimum(d, app.depth_mm[-1]), app.depth_mm, app.relative_dose_water
            )
            beyond = np.exp(slope * np.maximum(d - app.depth_mm[-1], 0.0))
            return np.asarray(inside * beyond)
        return np.asarray(np.interp(d, app.depth_mm, app.relative_dose_water))

    def dose_rate_gy_min(
        self, diameter_cm: float, depth_mm: NDArray[np.float64] | float, definition: DoseDefinition
    ) -> NDArray[np.float64]:
        """Dose rate at depth below the applicator surface in the given dose definition."""
        app = self.applicator(diameter_cm)
        water = (
            app.surface_rate_v40_gy_min
            * self.output_check_factor
            * self.relative_dose_water(diameter_cm, depth_mm)
        )
        if definition == "V4.0":
            return np.asarray(water)
        return np.asarray(water / self.ratio_v40_over_targit(diameter_cm, depth_mm))


def fit_targit_shift(applicators: dict[float, ApplicatorData]) -> float:
    """The shift (mm, 0-2 in 0.01 steps) of TARGIT(d) = V4.0(d + shift) / factor that fits the
    published V4.0/TARGIT ratios of all applicators best (least squares in log, the factor
    free), with the applicators' own water depth-dose."""
    best: tuple[float, float] | None = None
    for shift in np.arange(0.0, 2.0001, 0.01):
        logs = []
        for app in applicators.values():
            z = np.asarray(app.ratio_depth_mm)
            rel = np.interp(z, app.depth_mm, app.relative_dose_water)
            rel_shifted = np.interp(z + shift, app.depth_mm, app.relative_dose_water)
            logs.append(np.log(np.asarray(app.ratio_v40_over_targit)) - np.log(rel / rel_shifted))
        spread = float(np.std(np.concatenate(logs)))
        if best is None or spread < best[1]:
            best = (round(float(shift), 2), spread)
    assert best is not None
    return best[0]


def _ratios_from_pct(row: dict[str, str]) -> tuple[float, float, float]:
    """V4.0/TARGIT at 0, 10, 20 mm: from the two rates at the surface, 1/(1 - pct/100) deeper."""
    r0 = float(row["surface_rate_v40_gy_min"]) / float(row["surface_rate_targit_gy_min"])
    r10 = 1.0 / (1.0 - float(row["pct_diff_10mm"]) / 100.0)
    r20 = 1.0 / (1.0 - float(row["pct_diff_20mm"]) / 100.0)
    return r0, r10, r20


def _depth_dose_tables(
    text: str,
) -> tuple[dict[float, tuple[NDArray[np.float64], NDArray[np.float64]]], str]:
    rows = parse_commented_csv(text)
    tables: dict[float, tuple[list[float], list[float]]] = {}
    for r in rows:
        d = float(r["applicator_diameter_cm"])
        tables.setdefault(d, ([], []))
        tables[d][0].append(float(r["depth_mm"]))
        tables[d][1].append(float(r["relative_dose_water"]))
    origin_lines: list[str] = []
    for line in text.splitlines():  # "# origin:" and its indented continuation lines
        if line.startswith("# origin:") or (origin_lines and line.startswith("#   ")):
            origin_lines.append(line.removeprefix("# origin:").lstrip("# ").strip())
        elif origin_lines:
            break
    origin = " ".join(origin_lines) or "unknown"
    out = {}
    for d, (depth, rel) in tables.items():
        depth_a, rel_a = np.asarray(depth), np.asarray(rel)
        if (
            np.any(np.diff(depth_a) <= 0)
            or np.any(rel_a <= 0)
            or abs(rel_a[0] - 1.0) > 1e-6
            or depth_a[0] != 0
        ):
            raise DeviceDataError(
                f"depth-dose table for {d} cm must start at 0 mm with 1.0 and increase in depth"
            )
        out[d] = (depth_a, rel_a)
    return out, origin


def load_example_source() -> XraySource:
    """TG-292's example source with the package's water depth-dose table."""
    rates_text = read_data("openiort.devices", "data/xray50_tg292_example_source.csv").text
    dd_text = read_data("openiort.devices", DEPTH_DOSE_TABLE).text
    tables, origin = _depth_dose_tables(dd_text)
    applicators = {}
    for row in parse_commented_csv(rates_text):
        d = float(row["applicator_diameter_cm"])
        if d not in tables:
            raise DeviceDataError(
                f"no depth-dose table for the {d} cm applicator in {DEPTH_DOSE_TABLE}"
            )
        applicators[d] = ApplicatorData(
            diameter_cm=d,
            surface_rate_v40_gy_min=float(row["surface_rate_v40_gy_min"]),
            surface_rate_targit_gy_min=float(row["surface_rate_targit_gy_min"]),
            ratio_depth_mm=RATIO_DEPTHS_MM,
            ratio_v40_over_targit=_ratios_from_pct(row),
            depth_mm=tables[d][0],
            relative_dose_water=tables[d][1],
        )
    return XraySource(
        name="TG-292 example XRS (50 kV, 40 uA)",
        is_example_source=True,
        applicators=applicators,
        targit_shift_mm=fit_targit_shift(applicators),
        data_sha256=sha256_texts(rates_text, dd_text),
        depth_dose_origin=origin,
        version="AAPM TG-292 (Culberson et al. 2020) Table IV example source",
    )


# Who and what department data must name: a plan records them with the data's hash.
REQUIRED_DEPARTMENT_KEYS = ("source_serial", "version", "effective_date", "commissioned_by")


def _department_metadata(p: Path, meta: object) -> dict[str, str]:
    """The commissioning file's identity, one problem per missing or empty key."""
    if not isinstance(meta, dict):
        raise DeviceDataError(f"{p}: must be a YAML mapping", source=str(p))
    problems = [
        f"{p}: {key} is required (department data name their source, version, effective "
        "date and who commissioned them)"
        for key in REQUIRED_DEPARTMENT_KEYS
        if meta.get(key) in (None, "")
    ]
    if problems:
        raise DeviceDataError(*problems, source=str(p))
    return {key: str(meta[key]) for key in REQUIRED_DEPARTMENT_KEYS}


def _checked_department_text(p: Path, name: str) -> str:
    """A department data file, checked against the manifest of its folder."""
    try:
        return read_department_file(p.parent, name, "source data").text
    except DataFileError as exc:
        raise DeviceDataError(*exc.problems, source=str(p)) from None


def load_commissioning(path: str | Path) -> XraySource:
    """Load a clinic's own commissioning data.

    The file is YAML, in a folder whose ``manifest_sha256.csv`` (made by
    ``iort devices manifest FOLDER`` once the data are reviewed) records every file's hash::

        source_serial: "XRS-507999"         # the source these data belong to
        version: "2026-1"                    # the department's version of these data
        effective_date: 2026-01-20           # from when plans use them
        commissioned_by: "A. Physicist"      # who commissioned them
        measured_on: 2026-01-15
        dose_definition: TARGIT              # definition of the tables below: TARGIT | V4.0
        output_check_factor: 1.000           # today's output check relative to the tables
        bare_probe_csv: bare_probe.csv       # distance_from_source_mm,dose_rate_gy_min
        transfer_coefficients_csv: transfer.csv
                                             # applicator_diameter_cm,depth_mm,transfer_coefficient
        second_check_reference:              # optional: the absolute anchor of the second check,
          distance_from_source_mm: 10.0      # e.g. the bare-probe rate from the calibration
          dose_rate_gy_min: 2.75             # certificate, NOT read from the tables above
          dose_definition: V4.0
          source: "calibration certificate 2026-01"
        second_check_tolerance_pct: 5.0      # optional: warn above this difference (default 5)

    As in the vendor's tables, the applicator dose rate at depth ``d`` below the surface is the
    bare-probe rate at distance ``radius + d`` times the applicator's transfer coefficient at
    ``d``. The other dose definition follows from the TG-292 ratio table (V4.0/TARGIT at 0, 10,
    20 mm) until the clinic supplies both.
    """
    p = Path(path)
    try:
        meta_text = _checked_department_text(p, p.name)
        meta = yaml.safe_load(meta_text)
        identity = _department_metadata(p, meta)
        bare_text = _checked_department_text(p, str(meta["bare_probe_csv"]))
        transfer_text = _checked_department_text(p, str(meta["transfer_coefficients_csv"]))
        definition = meta["dose_definition"]
        check = float(meta.get("output_check_factor", 1.0))
        serial = identity["source_serial"]
        reference = _second_check_reference(p, meta.get("second_check_reference"))
        tolerance = float(meta.get("second_check_tolerance_pct", DEFAULT_TOLERANCE_PCT))
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        if isinstance(exc, DeviceDataError):
            raise
        raise DeviceDataError(f"{p}: cannot read commissioning data ({exc})") from None
    if definition not in ("TARGIT", "V4.0"):
        raise DeviceDataError(f"{p}: dose_definition must be TARGIT or V4.0, got {definition!r}")
    if not 0.0 < tolerance <= 20.0:
        raise DeviceDataError(
            f"{p}: second_check_tolerance_pct {tolerance} outside the range 0-20 %"
        )
    if not 0.5 < check < 1.5:
        raise DeviceDataError(
            f"{p}: output_check_factor {check} outside the plausible range 0.5-1.5"
        )
    bare = parse_commented_csv(bare_text)
    bare_r = np.array([float(r["distance_from_source_mm"]) for r in bare])
    bare_rate = np.array([float(r["dose_rate_gy_min"]) for r in bare])
    example = load_example_source()
    per_app: dict[float, list[tuple[float, float]]] = {}
    for r in parse_commented_csv(transfer_text):
        per_app.setdefault(float(r["applicator_diameter_cm"]), []).append(
            (float(r["depth_mm"]), float(r["transfer_coefficient"]))
        )
    applicators = {}
    for d, pts in per_app.items():
        ref = example.applicator(d)
        depth = np.array([x for x, _ in sorted(pts)])
        transfer = np.array([t for _, t in sorted(pts)])
        distance = ref.radius_mm + depth
        if distance.min() < bare_r.min() or distance.max() > bare_r.max():
            raise DeviceDataError(
                f"{p}: bare-probe table does not cover the {d} cm applicator's depths"
            )
        rate = np.interp(distance, bare_r, bare_rate) * transfer
        ratio = np.interp(depth, RATIO_DEPTHS_MM, ref.ratio_v40_over_targit)
        water = rate * ratio if definition == "TARGIT" else rate
        applicators[d] = ApplicatorData(
            diameter_cm=d,
            surface_rate_v40_gy_min=float(water[0]),
            surface_rate_targit_gy_min=float(water[0] / ratio[0]),
            ratio_depth_mm=RATIO_DEPTHS_MM,
            ratio_v40_over_targit=ref.ratio_v40_over_targit,
            depth_mm=depth,
            relative_dose_water=water / water[0],
        )
    measured = meta.get("measured_on")
    return XraySource(
        name=f"clinic source {serial}"
        + (f" (measured {measured})" if isinstance(measured, date | str) else ""),
        is_example_source=False,
        applicators=applicators,
        data_sha256=sha256_texts(meta_text, bare_text, transfer_text),
        depth_dose_origin=f"clinic commissioning data ({definition} definition)",
        output_check_factor=check,
        version=identity["version"],
        effective_date=identity["effective_date"],
        commissioned_by=identity["commissioned_by"],
        serial=serial,
        second_check_reference=reference,
        second_check_tolerance_pct=tolerance,
        targit_shift_mm=fit_targit_shift(applicators),
    )


def _second_check_reference(p: Path, raw: object) -> SecondCheckReference | None:
    """The optional ``second_check_reference`` block of department data, checked."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise DeviceDataError(f"{p}: second_check_reference must be a mapping")
    try:
        ref = SecondCheckReference(
            distance_from_source_mm=float(raw["distance_from_source_mm"]),
            dose_rate_gy_min=float(raw["dose_rate_gy_min"]),
            dose_definition=raw["dose_definition"],
            source=str(raw["source"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DeviceDataError(
            f"{p}: second_check_reference needs distance_from_source_mm, dose_rate_gy_min, "
            f"dose_definition and source ({exc})"
        ) from None
    if ref.dose_definition not in ("TARGIT", "V4.0"):
        raise DeviceDataError(f"{p}: second_check_reference.dose_definition must be TARGIT or V4.0")
    if not (3.0 <= ref.distance_from_source_mm <= 70.0 and 0 < ref.dose_rate_gy_min < 1000):
        raise DeviceDataError(
            f"{p}: second_check_reference outside 3-70 mm or with a non-positive dose rate"
        )
    return ref


def choose_applicator(source: XraySource, cavity_diameter_mm: float) -> float:
    """The largest applicator that fits the cavity (TARGIT practice: tissue conforms to it)."""
    fitting = [d for d in source.diameters_cm if d * 10.0 <= cavity_diameter_mm + 1e-6]
    if not fitting:
        raise DeviceDataError(
            f"anatomy.cavity_diameter_mm {cavity_diameter_mm:g} mm is smaller than the smallest "
            f"applicator ({source.diameters_cm[0] * 10:g} mm)"
        )
    return max(fitting)


@dataclass(frozen=True)
class TreatmentTime:
    """Treatment time for a prescription, computed two ways."""

    time_min: float
    second_check_time_min: float
    difference_pct: float
    primary_path: str
    second_path: str
    tolerance_pct: float = DEFAULT_TOLERANCE_PCT

    @property
    def agrees(self) -> bool:
        return abs(self.difference_pct) <= self.tolerance_pct


def primary_path_label(source: XraySource, definition: DoseDefinition) -> str:
    """Which of the source's own tables the primary time comes from."""
    convert = ", converted by the V4.0/TARGIT ratio table (TG-292)"
    if source.is_example_source:
        return "TG-292 Table IV V4.0 surface rate x the package's water depth-dose table" + (
            convert if definition == "TARGIT" else ""
        )
    return (
        f"the department's bare-probe table x transfer coefficients ({source.depth_dose_origin}), "
        "converted by the TG-292 V4.0/TARGIT ratio table where the prescription's definition differs"
    )


def treatment_time(
    source: XraySource,
    diameter_cm: float,
    prescription_gy: float,
    definition: DoseDefinition,
    prescription_depth_mm: float = 0.0,
) -> TreatmentTime:
    """Time to give ``prescription_gy`` at ``prescription_depth_mm`` below the applicator surface.

    Primary: the source's own tables (TG-292 rates and the package's depth-dose for the example
    source; the department's bare-probe and transfer tables when loaded), the other definition by
    the ratio table. Second check: the Monte Carlo source model
    (:mod:`openiort.devices.xray_second_check`), which shares none of those tables.
    """
    if prescription_gy <= 0:
        raise ValueError(f"prescription must be positive, got {prescription_gy} Gy")
    rate = float(source.dose_rate_gy_min(diameter_cm, prescription_depth_mm, definition))
    primary = prescription_gy / rate
    second = second_check_time(
        source, diameter_cm, prescription_gy, definition, prescription_depth_mm
    )
    return TreatmentTime(
        time_min=primary,
        second_check_time_min=second.time_min,
        difference_pct=100.0 * (second.time_min - primary) / primary,
        primary_path=primary_path_label(source, definition),
        second_path=second.path,
        tolerance_pct=source.second_check_tolerance_pct,
    )
