"""Ir-192 HDR brachytherapy devices: TG-43 source data, source decay and applicators.

Source data are the AAPM/ESTRO consensus tables (``data/tg43/``, sources in each file's header).
Every data file is checked at load against ``data/tg43/manifest_sha256.csv``, so edited data cannot
be used silently; :func:`source_data_sha256` gives the hash recorded in every dose result.

Conventions: TG-43 quantities are in cm, degrees and cGy h^-1 U^-1 as the consensus data are;
positions in the patient are (x, y, z) in mm (DICOM LPS). A source direction is the unit vector
along the source axis from the cable end towards the tip (theta = 0 of the anisotropy table).

Two applicators are modelled for breast IORT:

- :class:`BalloonApplicator`: a saline-filled spherical balloon filling the cavity, with one
  central catheter along the shaft direction (entering from the skin side).
- :class:`SurfaceApplicator`: a flat flap with parallel catheters 1 cm apart whose source path
  lies 5 mm from the tissue surface, lying on the cavity floor (the side facing the chest wall).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from openiort import datafiles
from openiort.datafiles import DataFileError, parse_commented_csv, sha256_bytes, sha256_texts
from openiort.errors import OpenIortInputError
from openiort.grid import Grid

FloatArray = NDArray[np.float64]
DATA_DIR = "data/tg43"
MANIFEST = datafiles.MANIFEST
SOURCES_FILE = "sources.csv"
DECAY_FILE = "ir192_decay.csv"
QA_FILE = "hebd_QA_along_away.csv"
APPLICATOR_FILE = "hdr_applicators.yaml"
WATER_CONDITIONS_FILE = "tg43_water_conditions.yaml"
SOURCE_STATUSES = ("consensus", "published", "provisional")


class HdrDataError(OpenIortInputError):
    """HDR device data that are missing, malformed or changed without updating the manifest."""


class UnknownSourceError(OpenIortInputError):
    """A source id that is not in the TG-43 source registry."""


class ApplicatorError(OpenIortInputError):
    """An applicator that cannot be built or does not fit the anatomy."""


# ---------------------------------------------------------------------------------------------
# data files and their hashes


def _folder() -> Path:
    return datafiles.data_folder("openiort.devices", DATA_DIR)


def _read_bytes(name: str) -> bytes:
    path = _folder() / name
    if not path.is_file():
        raise HdrDataError(f"HDR data file {DATA_DIR}/{name} is missing from the package")
    return path.read_bytes()


def data_file_names() -> tuple[str, ...]:
    """Names of the data files under ``devices/data/tg43`` (the manifest excluded)."""
    names = datafiles.data_names("openiort.devices", DATA_DIR)
    return tuple(n for n in names if n.endswith((".csv", ".yaml")))


def compute_manifest() -> dict[str, str]:
    """SHA-256 of every file of ``devices/data/tg43`` as it is now (file name -> hex digest)."""
    return datafiles.compute_manifest(_folder())


def recorded_manifest() -> dict[str, str]:
    """The SHA-256 recorded for every file in ``manifest_sha256.csv``."""
    try:
        return datafiles.recorded_manifest(_folder())
    except DataFileError as exc:
        raise HdrDataError(*exc.problems, source=exc.source) from None


@cache
def _checked_text(name: str) -> str:
    """A data file's text, after checking its SHA-256 against the manifest (the data layer's
    check, :func:`openiort.datafiles.verify`)."""
    data = _read_bytes(name)
    try:
        datafiles.verify(_folder(), name, sha256_bytes(data))
    except DataFileError as exc:
        raise HdrDataError(*exc.problems, source=exc.source) from None
    return data.decode("utf-8")


def data_file_sha256(name: str) -> str:
    """Checked SHA-256 of one data file."""
    _checked_text(name)
    return recorded_manifest()[name]


# ---------------------------------------------------------------------------------------------
# TG-43 source data


@dataclass(frozen=True)
class Tg43Source:
    """TG-43U1 2D line-source data of one Ir-192 source.

    ``f_table[i, j]`` is F(``f_r_cm[i]``, ``f_theta_deg[j]``). ``r_clip_cm`` is the smallest
    distance at which both g_L(r) and F(r, 0 deg) are tabulated (neither extrapolated nor
    filled); the engine never evaluates the formalism closer than that (see
    :mod:`openiort.dose.tg43`).
    """

    source_id: str
    title: str
    dose_rate_constant_cgy_h_u: float
    active_length_cm: float
    gl_r_cm: FloatArray
    gl: FloatArray
    f_r_cm: FloatArray
    f_theta_deg: FloatArray
    f_table: FloatArray
    r_clip_cm: float
    status: str
    reference: str
    provenance: str
    data_files: tuple[str, ...]
    data_sha256: str
    filled_f_entries: int = 0

    @property
    def is_consensus(self) -> bool:
        return self.status == "consensus"

    def notes(self) -> tuple[str, ...]:
        """Caveats to carry into every result that uses this source."""
        out = [
            f"TG-43 data: {self.title} ({self.reference}); status {self.status}.",
            f"TG-43 formalism clipped at r = {self.r_clip_cm:g} cm from a dwell centre (smallest "
            "distance at which g_L and F(r, 0 deg) are tabulated); closer points get the value "
            "at that distance in the same direction.",
        ]
        if self.status == "provisional":
            out.append(
                f"PROVISIONAL source data ({self.source_id}): {self.provenance}. Verify against "
                "the consensus dataset before any clinical use."
            )
        elif self.status == "published":
            out.append(
                f"Source data ({self.source_id}) are a published dataset not verified here as "
                f"the AAPM/ESTRO consensus: {self.provenance}."
            )
        return tuple(out)


@cache
def _source_rows() -> dict[str, dict[str, str]]:
    rows = parse_commented_csv(_checked_text(SOURCES_FILE))
    registry: dict[str, dict[str, str]] = {}
    for row in rows:
        if row["status"] not in SOURCE_STATUSES:
            raise HdrDataError(f"{SOURCES_FILE}: unknown status {row['status']!r}")
        registry[row["source_id"]] = row
    return registry


def source_ids() -> tuple[str, ...]:
    """Ids of all sources with TG-43 data, in registry order."""
    return tuple(_source_rows())


def _row(source_id: str) -> dict[str, str]:
    rows = _source_rows()
    if not isinstance(source_id, str) or source_id not in rows:
        raise UnknownSourceError(
            f"unknown HDR source id {source_id!r}; known sources: {', '.join(rows)}"
        )
    return rows[source_id]


def _select(rows: list[dict[str, str]], source_id: str, name: str) -> list[dict[str, str]]:
    if rows and "source_id" in rows[0]:
        rows = [r for r in rows if r["source_id"] == source_id]
    if not rows:
        raise HdrDataError(f"{name} has no rows for source {source_id!r}")
    return rows


def _is_tabulated(row: dict[str, str]) -> bool:
    return row.get("flag", "tabulated") in ("tabulated", "interpolated")


def _fill_missing_by_nearest_r(table: FloatArray, r_cm: FloatArray) -> tuple[FloatArray, int]:
    """Fill NaN entries of F from the nearest r holding a value at the same angle.

    Missing entries are points inside the source, capsule or cable, where TG-43 does not apply;
    TG-43U1 extrapolates F in r by its nearest tabulated value.
    """
    filled = table.copy()
    count = 0
    for j in range(table.shape[1]):
        have = np.flatnonzero(np.isfinite(table[:, j]))
        if have.size == 0:
            raise HdrDataError(f"anisotropy table has no value at angle index {j}")
        for i in np.flatnonzero(~np.isfinite(table[:, j])):
            k = have[np.argmin(np.abs(r_cm[have] - r_cm[i]) - 1e-9 * r_cm[have])]
            filled[i, j] = table[k, j]
            count += 1
    return filled, count


_REGISTERED: dict[str, Tg43Source] = {}


def register_source(source: Tg43Source) -> None:
    """Make a department-added model (:mod:`openiort.devices.hdr_source`) known by its id.

    Its id carries the hash of its tables, so a changed model is a new id."""
    _REGISTERED[source.source_id] = source


def load_source(source_id: str) -> Tg43Source:
    """TG-43 data of one source, checked against the manifest (or a registered department
    model).

    Raises
    ------
    UnknownSourceError
        If ``source_id`` is not in the registry (the message lists the known ids).
    HdrDataError
        If a data file is missing, malformed or altered.
    """
    if isinstance(source_id, str) and source_id in _REGISTERED:
        return _REGISTERED[source_id]
    return _load_shipped_source(source_id)


@cache
def _load_shipped_source(source_id: str) -> Tg43Source:
    row = _row(source_id)
    gl_name, f_name = row["gL_file"], row["F_file"]
    gl_rows = _select(parse_commented_csv(_checked_text(gl_name)), source_id, gl_name)
    f_rows = _select(parse_commented_csv(_checked_text(f_name)), source_id, f_name)
    files = (SOURCES_FILE, gl_name, f_name, DECAY_FILE)
    return build_source(
        source_id=source_id,
        title=row["title"],
        dose_rate_constant=float(row["Lambda_cGy_per_h_per_U"]),
        active_length_cm=float(row["L_active_cm"]),
        gl_rows=gl_rows,
        f_rows=f_rows,
        status=row["status"],
        reference=row["reference"],
        provenance=row["provenance"],
        data_files=files,
        data_sha256=_combined_sha256(files),
        names=(gl_name, f_name),
    )


def build_source(
    *,
    source_id: str,
    title: str,
    dose_rate_constant: float,
    active_length_cm: float,
    gl_rows: list[dict[str, str]],
    f_rows: list[dict[str, str]],
    status: str,
    reference: str,
    provenance: str,
    data_files: tuple[str, ...],
    data_sha256: str,
    names: tuple[str, str] = ("g_L table", "F table"),
) -> Tg43Source:
    """A :class:`Tg43Source` from g_L rows (r_cm, gL[, flag]) and F rows (r_cm, theta_deg,
    F[, flag]), checked: distinct radii, angles 0-180 deg, clip radius outside the source."""
    gl_name, f_name = names
    gl_pairs = sorted((float(r["r_cm"]), float(r["gL"])) for r in gl_rows)
    gl_r = np.array([p[0] for p in gl_pairs])
    gl = np.array([p[1] for p in gl_pairs])
    if gl_r.size < 2 or np.any(np.diff(gl_r) <= 0):
        raise HdrDataError(f"{gl_name}: radii of {source_id} must be distinct, at least two")
    gl_tab_min = min(float(r["r_cm"]) for r in gl_rows if _is_tabulated(r))

    f_r = np.array(sorted({float(r["r_cm"]) for r in f_rows}))
    f_t = np.array(sorted({float(r["theta_deg"]) for r in f_rows}))
    if f_t[0] != 0.0 or f_t[-1] != 180.0:
        raise HdrDataError(f"{f_name}: angles of {source_id} must span 0 to 180 degrees")
    table = np.full((f_r.size, f_t.size), np.nan)
    for r in f_rows:
        i = int(np.searchsorted(f_r, float(r["r_cm"])))
        j = int(np.searchsorted(f_t, float(r["theta_deg"])))
        table[i, j] = float(r["F"])
    table, n_filled = _fill_missing_by_nearest_r(table, f_r)
    f0_tab_min = min(
        float(r["r_cm"]) for r in f_rows if _is_tabulated(r) and float(r["theta_deg"]) == 0.0
    )
    r_clip = max(gl_tab_min, f0_tab_min)
    if r_clip <= active_length_cm / 2:
        raise HdrDataError(
            f"{source_id}: clip radius {r_clip} cm is not outside the active length "
            f"{active_length_cm} cm; the line-source geometry would be singular"
        )
    return Tg43Source(
        source_id=source_id,
        title=title,
        dose_rate_constant_cgy_h_u=dose_rate_constant,
        active_length_cm=active_length_cm,
        gl_r_cm=gl_r,
        gl=gl,
        f_r_cm=f_r,
        f_theta_deg=f_t,
        f_table=table,
        r_clip_cm=r_clip,
        status=status,
        reference=reference,
        provenance=provenance,
        data_files=data_files,
        data_sha256=data_sha256,
        filled_f_entries=n_filled,
    )


def _combined_sha256(files: tuple[str, ...]) -> str:
    return sha256_texts(*(f"{name} {data_file_sha256(name)}\n" for name in files))


def source_data_sha256(source_id: str) -> str:
    """SHA-256 identifying the data behind a source's dose.

    It is the SHA-256 of the lines ``"<file name> <file SHA-256>\\n"`` for the registry, the
    source's g_L and F files and the Ir-192 decay file, in that order; each file's own hash is
    checked against ``manifest_sha256.csv`` first.
    """
    return load_source(source_id).data_sha256


def qa_along_away_table(source_id: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The consensus along-away QA table of a HEBD source: (z_cm, y_cm, cGy h^-1 U^-1)."""
    _row(source_id)
    rows = [r for r in parse_commented_csv(_checked_text(QA_FILE)) if r["source_id"] == source_id]
    if not rows:
        raise HdrDataError(f"no consensus along-away QA table for source {source_id!r}")
    z = np.array([float(r["z_along_cm"]) for r in rows])
    y = np.array([float(r["y_away_cm"]) for r in rows])
    rate = np.array([float(r["dose_rate_per_Sk_cGy_per_h_per_U"]) for r in rows])
    return z, y, rate


# ---------------------------------------------------------------------------------------------
# source decay


@cache
def ir192_half_life_d() -> float:
    """Ir-192 half-life in days (ICRP Publication 107; see ``ir192_decay.csv``)."""
    rows = [r for r in parse_commented_csv(_checked_text(DECAY_FILE)) if r["nuclide"] == "Ir-192"]
    if len(rows) != 1:
        raise HdrDataError(f"{DECAY_FILE} must hold exactly one Ir-192 row")
    return float(rows[0]["half_life_d"])


def decay_factor(elapsed_days: float | FloatArray) -> float | FloatArray:
    """Fraction of the air-kerma strength left after ``elapsed_days`` of Ir-192 decay."""
    days = np.asarray(elapsed_days, dtype=np.float64)
    if not np.all(np.isfinite(days)):
        raise ValueError("elapsed_days must be finite")
    factor = np.exp(-math.log(2.0) * days / ir192_half_life_d())
    return float(factor) if factor.ndim == 0 else factor


def decayed_air_kerma_strength_u(
    sk_calibration_u: float, calibrated_at: datetime | date, treated_at: datetime | date
) -> float:
    """Air-kerma strength (U) at treatment, from the certificate value at calibration.

    Both times must be of the same kind (dates, naive or time-zone aware datetimes). A
    treatment before the calibration date gives a strength above the certificate value.
    """
    if not (math.isfinite(sk_calibration_u) and sk_calibration_u > 0):
        raise ValueError(f"air-kerma strength must be positive, got {sk_calibration_u} U")
    if isinstance(calibrated_at, datetime) != isinstance(treated_at, datetime):
        raise ValueError("calibration and treatment times must both be dates or both datetimes")
    try:
        elapsed = treated_at - calibrated_at  # type: ignore[operator]
    except TypeError as exc:
        raise ValueError(f"cannot compare calibration and treatment times: {exc}") from exc
    days = elapsed.total_seconds() / 86400.0
    return float(sk_calibration_u * decay_factor(days))


# ---------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class HdrSettings:
    """Applicator and planning settings from ``hdr_applicators.yaml`` (see its comments)."""

    default_source_id: str
    example_sk_u: float
    dwell_time_resolution_s: float
    balloon: dict[str, float]
    surface: dict[str, float]


@cache
def hdr_settings() -> HdrSettings:
    raw: dict[str, Any] = yaml.safe_load(_checked_text(APPLICATOR_FILE))
    try:
        settings = HdrSettings(
            default_source_id=str(raw["default_source_id"]),
            example_sk_u=float(raw["example_sk_u"]),
            dwell_time_resolution_s=float(raw["dwell_time_resolution_s"]),
            balloon={k: float(v) for k, v in raw["balloon"].items()},
            surface={k: float(v) for k, v in raw["surface"].items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise HdrDataError(f"{APPLICATOR_FILE} is malformed: {exc}") from exc
    _row(settings.default_source_id)
    return settings


@cache
def water_conditions() -> dict[str, Any]:
    """Thresholds and published effects for the TG-43 water-condition warnings."""
    raw: dict[str, Any] = yaml.safe_load(_checked_text(WATER_CONDITIONS_FILE))
    for key in ("dose_region_fraction", "skin_check_distance_mm", "scatter"):
        if key not in raw:
            raise HdrDataError(f"{WATER_CONDITIONS_FILE}: missing {key!r}")
    return raw


# ---------------------------------------------------------------------------------------------
# applicators


def unit_vector(v: tuple[float, float, float] | FloatArray, name: str = "direction") -> FloatArray:
    """``v`` normalised; a zero or non-finite vector is an error."""
    a = np.asarray(v, dtype=np.float64).reshape(3)
    norm = float(np.linalg.norm(a))
    if not np.all(np.isfinite(a)) or norm < 1e-9:
        raise ApplicatorError(f"{name} must be a finite non-zero 3-vector, got {tuple(a)}")
    return a / norm


def perpendicular_unit(normal: FloatArray) -> FloatArray:
    """A unit vector perpendicular to ``normal``: the projection of the patient's superior
    axis (+z, LPS) onto the plane, or of +x when the normal is nearly along z."""
    for axis in (np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])):
        v = axis - np.dot(axis, normal) * normal
        if np.linalg.norm(v) > 0.3:
            return v / np.linalg.norm(v)
    raise ApplicatorError("cannot find a direction perpendicular to the applicator normal")


@dataclass(frozen=True)
class DwellGeometry:
    """Possible dwell positions (x, y, z mm), source directions and each one's catheter
    (0-based index; users see channel numbers, which count from 1)."""

    positions_mm: FloatArray
    directions: FloatArray
    catheter_index: NDArray[np.int64]  # 0-based; the afterloader channel is index + 1

    def __post_init__(self) -> None:
        n = self.positions_mm.shape[0]
        if self.positions_mm.shape != (n, 3) or self.directions.shape != (n, 3):
            raise ApplicatorError("dwell positions and directions must both have shape (n, 3)")
        if self.catheter_index.shape != (n,) or n == 0:
            raise ApplicatorError("an applicator needs at least one dwell position")

    @property
    def n(self) -> int:
        return int(self.positions_mm.shape[0])

    def neighbour_pairs(self) -> list[tuple[int, int]]:
        """Consecutive dwell positions on the same catheter (for smoothness penalties)."""
        return [
            (i, i + 1)
            for i in range(self.n - 1)
            if self.catheter_index[i] == self.catheter_index[i + 1]
        ]


def fibonacci_sphere(n: int) -> FloatArray:
    """``n`` nearly uniformly spread unit vectors (golden-angle spiral)."""
    if n < 1:
        raise ValueError("need at least one point")
    k = np.arange(n, dtype=np.float64) + 0.5
    cos_polar = 1.0 - 2.0 * k / n
    sin_polar = np.sqrt(1.0 - cos_polar**2)
    azimuth = np.pi * (3.0 - np.sqrt(5.0)) * k
    return np.stack([sin_polar * np.cos(azimuth), sin_polar * np.sin(azimuth), cos_polar], axis=1)


def _voxel_positions_mm(grid: Grid) -> tuple[FloatArray, FloatArray, FloatArray]:
    z, y, x = grid.axes_mm()
    return z[:, None, None], y[None, :, None], x[None, None, :]


@dataclass(frozen=True)
class BalloonApplicator:
    """Saline-filled spherical balloon with a central catheter.

    ``shaft_direction`` points from the balloon centre towards the skin (where the catheter
    leaves the breast); the source travels the other way, so its direction (cable to tip) is
    ``-shaft_direction``. Dwell positions lie on the axis every ``step_mm`` (one at the centre),
    at most ``radius_mm - wall_clearance_mm`` from the centre.
    """

    centre_mm: tuple[float, float, float]
    radius_mm: float
    shaft_direction: tuple[float, float, float]
    step_mm: float
    wall_clearance_mm: float
    # Off-axis lumens of a multi-lumen balloon (mm from the central lumen, spread evenly round
    # it, the first towards the patient's superior side); none for a single-lumen balloon.
    lumen_offsets_mm: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for offset in self.lumen_offsets_mm:
            if not (math.isfinite(offset) and 0 < offset < self.radius_mm - self.wall_clearance_mm):
                raise ApplicatorError(
                    f"balloon lumen offset {offset} mm must be positive and inside the balloon"
                )
        for name in ("radius_mm", "step_mm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ApplicatorError(f"balloon {name} must be positive, got {value}")
        if not (0 <= self.wall_clearance_mm < self.radius_mm):
            raise ApplicatorError(
                f"balloon wall clearance {self.wall_clearance_mm} mm must be >= 0 and below "
                f"the radius {self.radius_mm} mm"
            )
        unit_vector(self.shaft_direction, "shaft_direction")

    @property
    def axis(self) -> FloatArray:
        return unit_vector(self.shaft_direction, "shaft_direction")

    def lumen_centres_mm(self) -> list[FloatArray]:
        """Where each lumen crosses the balloon's mid-plane: the centre, then the off-axis
        lumens evenly round it."""
        centre = np.asarray(self.centre_mm, dtype=np.float64)
        out = [centre]
        n = len(self.lumen_offsets_mm)
        if n:
            first = perpendicular_unit(self.axis)
            second = np.cross(self.axis, first)
            for i, offset in enumerate(self.lumen_offsets_mm):
                angle = 2.0 * math.pi * i / n
                out.append(centre + offset * (math.cos(angle) * first + math.sin(angle) * second))
        return out

    def dwell_geometry(self) -> DwellGeometry:
        source_dir = -self.axis
        positions, catheters = [], []
        for lumen, (through, offset) in enumerate(
            zip(self.lumen_centres_mm(), (0.0, *self.lumen_offsets_mm), strict=True)
        ):
            reach = math.sqrt(self.radius_mm**2 - offset**2) - self.wall_clearance_mm
            k_max = math.floor(reach / self.step_mm + 1e-9)
            # From the tip (deep end) back towards the shaft, as an afterloader steps.
            steps = self.step_mm * np.arange(-k_max, k_max + 1, dtype=np.float64)
            positions.append(through + steps[::-1, None] * source_dir[None, :])
            catheters.append(np.full(steps.size, lumen, dtype=np.int64))
        pos = np.concatenate(positions)
        directions = np.repeat(source_dir[None, :], pos.shape[0], axis=0)
        return DwellGeometry(pos, directions, np.concatenate(catheters))

    def prescription_points(self, depth_mm: float, n_points: int) -> FloatArray:
        """Points on the sphere ``depth_mm`` outside the balloon surface."""
        if depth_mm < 0:
            raise ApplicatorError(f"prescription depth must be >= 0 mm, got {depth_mm}")
        return np.asarray(self.centre_mm) + (self.radius_mm + depth_mm) * fibonacci_sphere(n_points)

    def inside_mask(self, grid: Grid) -> NDArray[np.bool_]:
        return grid.distance_from_mm(self.centre_mm) <= self.radius_mm

    def shell_mask(self, grid: Grid, thickness_mm: float) -> NDArray[np.bool_]:
        d = grid.distance_from_mm(self.centre_mm)
        return (d > self.radius_mm) & (d <= self.radius_mm + thickness_mm)

    def describe(self) -> dict[str, object]:
        return {
            "type": "balloon",
            "diameter_mm": 2 * self.radius_mm,
            "centre_mm": list(self.centre_mm),
            "catheter_axis": [float(v) for v in self.axis],
            "step_mm": self.step_mm,
            "wall_clearance_mm": self.wall_clearance_mm,
            "lumen_offsets_mm": list(self.lumen_offsets_mm),
            "filling": "saline (water-equivalent), no contrast modelled",
        }


@dataclass(frozen=True)
class SurfaceApplicator:
    """Flat multi-catheter surface applicator.

    ``tissue_centre_mm`` is the centre of the tissue surface under the applicator and
    ``normal`` the unit vector from the tissue towards the applicator. The catheters run along
    ``catheter_direction`` in the plane ``source_to_tissue_mm`` above the tissue surface,
    ``catheter_spacing_mm`` apart, centred on the tissue centre; dwell positions are every
    ``step_mm`` over ``length_mm`` along each catheter.
    """

    tissue_centre_mm: tuple[float, float, float]
    normal: tuple[float, float, float]
    catheter_direction: tuple[float, float, float]
    n_catheters: int
    catheter_spacing_mm: float
    length_mm: float
    source_to_tissue_mm: float
    step_mm: float

    def __post_init__(self) -> None:
        if self.n_catheters < 1:
            raise ApplicatorError(f"need at least one catheter, got {self.n_catheters}")
        for name in ("catheter_spacing_mm", "source_to_tissue_mm", "step_mm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ApplicatorError(f"surface applicator {name} must be positive, got {value}")
        if not (math.isfinite(self.length_mm) and self.length_mm >= 0):
            raise ApplicatorError(f"catheter length must be >= 0 mm, got {self.length_mm}")
        n = unit_vector(self.normal, "normal")
        c = unit_vector(self.catheter_direction, "catheter_direction")
        if abs(float(np.dot(n, c))) > 1e-6:
            raise ApplicatorError("catheter direction must lie in the applicator plane")

    @classmethod
    def for_cavity(
        cls,
        cavity_centre_mm: tuple[float, float, float],
        cavity_radius_mm: float,
        shaft_direction: tuple[float, float, float],
        size_mm: tuple[float, float] | None = None,
    ) -> SurfaceApplicator:
        """Applicator lying on the cavity floor (the point of the cavity wall opposite the
        shaft, facing the chest wall), catheters along the patient's superior axis projected
        on the plane. ``size_mm`` (across, along the catheters) defaults to the cavity
        diameter both ways."""
        settings = hdr_settings().surface
        if not (math.isfinite(cavity_radius_mm) and cavity_radius_mm > 0):
            raise ApplicatorError(f"cavity radius must be positive, got {cavity_radius_mm} mm")
        normal = unit_vector(shaft_direction, "shaft_direction")
        floor = np.asarray(cavity_centre_mm, dtype=np.float64) - cavity_radius_mm * normal
        width, length = size_mm if size_mm is not None else (2 * cavity_radius_mm,) * 2
        if width < 0 or length < 0:
            raise ApplicatorError(f"applicator size must be >= 0 mm, got {size_mm}")
        spacing = settings["catheter_spacing_mm"]
        step = settings["step_mm"]
        return cls(
            tissue_centre_mm=(float(floor[0]), float(floor[1]), float(floor[2])),
            normal=(float(normal[0]), float(normal[1]), float(normal[2])),
            catheter_direction=tuple(float(v) for v in perpendicular_unit(normal)),  # type: ignore[arg-type]
            n_catheters=math.floor(width / spacing + 1e-9) + 1,
            catheter_spacing_mm=spacing,
            length_mm=step * math.floor(length / step + 1e-9),
            source_to_tissue_mm=settings["source_to_tissue_mm"],
            step_mm=step,
        )

    @property
    def frame(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(across, along, normal) unit vectors of the applicator plane."""
        n = unit_vector(self.normal, "normal")
        along = unit_vector(self.catheter_direction, "catheter_direction")
        return np.cross(along, n), along, n

    @property
    def width_mm(self) -> float:
        return (self.n_catheters - 1) * self.catheter_spacing_mm

    def dwell_geometry(self) -> DwellGeometry:
        across, along, normal = self.frame
        centre = np.asarray(self.tissue_centre_mm) + self.source_to_tissue_mm * normal
        n_steps = round(self.length_mm / self.step_mm)
        # Tip first, stepping back along the catheter; the source points along +along.
        s_along = (self.step_mm * np.arange(n_steps + 1) - self.length_mm / 2)[::-1]
        s_across = self.catheter_spacing_mm * np.arange(self.n_catheters) - self.width_mm / 2
        pos = [centre + a * across + s * along for a in s_across for s in s_along]
        cath = np.repeat(np.arange(self.n_catheters, dtype=np.int64), s_along.size)
        positions = np.asarray(pos, dtype=np.float64)
        directions = np.repeat(along[None, :], positions.shape[0], axis=0)
        return DwellGeometry(positions, directions, cath)

    def plane_coordinates(self, points_mm: FloatArray) -> FloatArray:
        """(across, along, height above the tissue surface) in mm of points (..., 3)."""
        across, along, normal = self.frame
        rel = np.asarray(points_mm, dtype=np.float64) - np.asarray(self.tissue_centre_mm)
        return np.stack([rel @ across, rel @ along, rel @ normal], axis=-1)

    def prescription_points(self, depth_mm: float, spacing_mm: float) -> FloatArray:
        """Points ``depth_mm`` below the tissue surface over the catheter footprint."""
        if depth_mm < 0:
            raise ApplicatorError(f"prescription depth must be >= 0 mm, got {depth_mm}")
        across, along, normal = self.frame
        ua = _centred_steps(self.width_mm, spacing_mm)
        ub = _centred_steps(self.length_mm, spacing_mm)
        base = np.asarray(self.tissue_centre_mm) - depth_mm * normal
        pts = base + ua[:, None, None] * across + ub[None, :, None] * along
        return pts.reshape(-1, 3)

    def grid_coordinates(self, grid: Grid) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(across, along, height) in mm of every voxel centre, each of shape ``grid.shape``."""
        z, y, x = _voxel_positions_mm(grid)
        c = np.asarray(self.tissue_centre_mm)
        out = []
        for axis in self.frame:
            out.append((x - c[0]) * axis[0] + (y - c[1]) * axis[1] + (z - c[2]) * axis[2])
        return out[0], out[1], out[2]

    def _box(
        self, grid: Grid, half_w: float, half_l: float, low_mm: float, high_mm: float
    ) -> NDArray[np.bool_]:
        u, v, w = self.grid_coordinates(grid)
        return (np.abs(u) <= half_w) & (np.abs(v) <= half_l) & (w > low_mm) & (w <= high_mm)

    def slab_mask(self, grid: Grid, thickness_mm: float) -> NDArray[np.bool_]:
        """Voxels under the footprint, from the tissue surface to ``thickness_mm`` deep."""
        eps = 1e-6
        return self._box(
            grid, self.width_mm / 2 + eps, self.length_mm / 2 + eps, -thickness_mm - eps, eps
        )

    def flap_mask(self, grid: Grid) -> NDArray[np.bool_]:
        """Voxels occupied by the flap itself: modelled as a slab from the tissue surface to
        twice the source depth (catheters in its mid-plane), over the footprint plus half a
        catheter spacing and half a step all round."""
        return self._box(
            grid,
            self.width_mm / 2 + self.catheter_spacing_mm / 2,
            self.length_mm / 2 + self.step_mm / 2,
            0.0,
            2 * self.source_to_tissue_mm,
        )

    def describe(self) -> dict[str, object]:
        _across, along, normal = self.frame
        return {
            "type": "surface",
            "n_catheters": self.n_catheters,
            "catheter_spacing_mm": self.catheter_spacing_mm,
            "catheter_length_mm": self.length_mm,
            "source_to_tissue_mm": self.source_to_tissue_mm,
            "step_mm": self.step_mm,
            "tissue_centre_mm": list(self.tissue_centre_mm),
            "normal": [float(v) for v in normal],
            "catheter_direction": [float(v) for v in along],
        }


def _centred_steps(extent_mm: float, spacing_mm: float) -> FloatArray:
    if spacing_mm <= 0:
        raise ApplicatorError(f"point spacing must be positive, got {spacing_mm} mm")
    n = math.floor(extent_mm / spacing_mm + 1e-9)
    steps = spacing_mm * np.arange(n + 1, dtype=np.float64)
    return steps - steps[-1] / 2 if n > 0 else np.zeros(1)


__all__ = [
    "ApplicatorError",
    "BalloonApplicator",
    "DwellGeometry",
    "HdrDataError",
    "HdrSettings",
    "SurfaceApplicator",
    "Tg43Source",
    "UnknownSourceError",
    "build_source",
    "compute_manifest",
    "data_file_names",
    "data_file_sha256",
    "decay_factor",
    "decayed_air_kerma_strength_u",
    "fibonacci_sphere",
    "hdr_settings",
    "ir192_half_life_d",
    "load_source",
    "qa_along_away_table",
    "register_source",
    "source_data_sha256",
    "source_ids",
    "water_conditions",
]
