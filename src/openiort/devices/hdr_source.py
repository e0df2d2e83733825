"""The department's HDR source record: afterloader, source, certificate and well-chamber check.

A record is department data (``iort plan --source-data FILE`` for an HDR case): a YAML file in a
folder whose ``manifest_sha256.csv`` (``iort devices manifest FOLDER``) records every file's
hash, as for the x-ray source's commissioning data::

    afterloader_name: "GammaMed Plus iX"      # shown in the RT Plan's treatment machine
    afterloader_serial: "GM-1234"
    source_model: GammaMed_HDR_Plus           # a shipped TG-43 set (openiort.devices.hdr) or
                                              # the id of tg43_model below
    source_serial: "IR-1234-56"
    certificate:
      air_kerma_strength_u: 40700             # S_K on the certificate (U = uGy m^2 h^-1)
      reference: 2026-11-02T12:00:00+01:00    # its date and time, with the zone
    well_chamber:
      measured_u: 40620                       # the department's measurement, decayed to the
      measured_on: 2026-11-03                 # certificate's reference
    version: "2026-11 source exchange"
    effective_date: 2026-11-03
    commissioned_by: "A. Physicist"
    tg43_model:                               # optional: a model openiort does not ship
      id: Vendor_X                            # (TG-43U1 2D tables, same columns as the
      title: "Vendor X HDR Ir-192"            # shipped hebd_gL.csv / hebd_F.csv files)
      citation: "Author et al. Med Phys 20xx;nn:pp"
      dose_rate_constant_cgy_h_u: 1.109
      active_length_cm: 0.35
      gL_csv: vendor_x_gL.csv                 # r_cm,gL
      F_csv: vendor_x_F.csv                   # r_cm,theta_deg,F

A source exchange is a new record (a new file, a new version). Plans are computed at the
certificate's reference: the certificate S_K and its date go into the sealed delivery, and the
session of the day (:mod:`openiort.session`) derives the decayed strength and the dwell times the
afterloader shows after its own decay correction.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from openiort.datafiles import (
    DataFileError,
    parse_commented_csv,
    read_department_file,
    sha256_texts,
)
from openiort.devices.hdr import (
    HdrDataError,
    Tg43Source,
    UnknownSourceError,
    build_source,
    decay_factor,
    load_source,
    register_source,
    source_ids,
)
from openiort.errors import OpenIortInputError

PROTOCOL_FILE = "hdr_protocol.yaml"
REQUIRED_KEYS = (
    "afterloader_name",
    "afterloader_serial",
    "source_model",
    "source_serial",
    "certificate",
    "well_chamber",
    "version",
    "effective_date",
    "commissioned_by",
)


class HdrSourceRecordError(OpenIortInputError):
    """A department HDR source record that cannot be used."""


@cache
def hdr_protocol() -> dict[str, Any]:
    """The checked ``hdr_protocol.yaml`` (source record, course, balloon quality, applicators)."""
    from openiort.devices.hdr import _checked_text

    raw: dict[str, Any] = yaml.safe_load(_checked_text(PROTOCOL_FILE))
    for key in ("source_record", "course", "balloon_quality", "applicators"):
        if not isinstance(raw.get(key), dict):
            raise HdrDataError(f"{PROTOCOL_FILE}: missing section {key!r}")
    return raw


@dataclass(frozen=True)
class HdrSourceRecord:
    """One source in one afterloader, as the department commissioned it."""

    path: str
    afterloader_name: str
    afterloader_serial: str
    source_model: str  # the TG-43 source id the dose is computed with
    source_model_title: str
    source_serial: str
    certificate_sk_u: float
    certificate_reference_utc: dt.datetime
    well_chamber_u: float
    well_chamber_on: str
    version: str
    effective_date: str
    commissioned_by: str
    sha256: str  # of the record's files (record, and the model's tables when added)
    department_model: bool = False

    @property
    def well_chamber_deviation_percent(self) -> float:
        """(well chamber / certificate - 1) x 100, both at the certificate's reference."""
        return 100.0 * (self.well_chamber_u / self.certificate_sk_u - 1.0)

    def strength_u(self, at: dt.datetime) -> float:
        """Decayed S_K (U) at ``at`` (time-zone aware)."""
        days = (at - self.certificate_reference_utc).total_seconds() / 86400.0
        return self.certificate_sk_u * float(decay_factor(days))

    def warnings(self) -> list[str]:
        limit = float(hdr_protocol()["source_record"]["well_chamber_warn_percent"])
        dev = self.well_chamber_deviation_percent
        if abs(dev) > limit:
            return [
                f"Source {self.source_serial}: the department's well-chamber value differs from "
                f"the certificate by {dev:+.2f} % (above {limit:g} %); the plan uses the "
                "certificate value: resolve the difference before treatment."
            ]
        return []

    def describe(self) -> dict[str, Any]:
        """The record as plan.json shows it (no file contents)."""
        return {
            "afterloader_name": self.afterloader_name,
            "afterloader_serial": self.afterloader_serial,
            "source_model": self.source_model,
            "source_model_title": self.source_model_title,
            "source_serial": self.source_serial,
            "certificate_air_kerma_strength_u": self.certificate_sk_u,
            "certificate_reference_utc": self.certificate_reference_utc.isoformat(),
            "well_chamber_u": self.well_chamber_u,
            "well_chamber_on": self.well_chamber_on,
            "well_chamber_deviation_percent": round(self.well_chamber_deviation_percent, 3),
            "version": self.version,
            "effective_date": self.effective_date,
            "commissioned_by": self.commissioned_by,
            "department_model": self.department_model,
            "sha256": self.sha256,
        }


def _checked(path: Path, name: str) -> str:
    try:
        return read_department_file(path.parent, name, "source records").text
    except DataFileError as exc:
        raise HdrSourceRecordError(*exc.problems, source=str(path)) from None


def _aware(value: object, what: str, problems: list[str]) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        when = value
    else:
        try:
            when = dt.datetime.fromisoformat(str(value))
        except ValueError:
            problems.append(f"{what}: {value!r} is not an ISO date and time")
            return None
    if when.tzinfo is None:
        problems.append(
            f"{what}: give the time zone (e.g. 2026-11-02T12:00:00+01:00): a certificate's "
            "reference time without one is ambiguous by hours"
        )
        return None
    return when.astimezone(dt.UTC)


def _positive(value: object, what: str, problems: list[str]) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        problems.append(f"{what}: must be a number, got {value!r}")
        return math.nan
    if not (math.isfinite(number) and number > 0):
        problems.append(f"{what}: must be a positive number, got {value!r}")
    return number


def _department_model(path: Path, spec: object, problems: list[str]) -> Tg43Source | None:
    """A department-added TG-43 model, validated: citation, Lambda in range, g_L(1 cm) = 1,
    F(1 cm, 90 deg) = 1, angles 0-180 deg."""
    if not isinstance(spec, dict):
        problems.append("tg43_model: must be a mapping (see openiort.devices.hdr_source)")
        return None
    keys = (
        "id",
        "title",
        "citation",
        "dose_rate_constant_cgy_h_u",
        "active_length_cm",
        "gL_csv",
        "F_csv",
    )
    missing = [k for k in keys if spec.get(k) in (None, "")]
    if missing:
        problems.append(
            "tg43_model: " + ", ".join(missing) + " required (a department-added model names "
            "its tables and the publication they come from)"
        )
        return None
    lo, hi = hdr_protocol()["source_record"]["dose_rate_constant_range_cgy_h_u"]
    lam = _positive(spec["dose_rate_constant_cgy_h_u"], "tg43_model.dose_rate_constant", problems)
    if math.isfinite(lam) and not lo <= lam <= hi:
        problems.append(
            f"tg43_model.dose_rate_constant_cgy_h_u {lam:g} outside {lo:g}-{hi:g} (Ir-192)"
        )
    length = _positive(spec["active_length_cm"], "tg43_model.active_length_cm", problems)
    if str(spec["id"]) in source_ids():
        problems.append(f"tg43_model.id {spec['id']!r} is a shipped source: choose another id")
    if problems:
        return None
    gl_text = _checked(path, str(spec["gL_csv"]))
    f_text = _checked(path, str(spec["F_csv"]))
    try:
        gl_rows = parse_commented_csv(gl_text)
        f_rows = parse_commented_csv(f_text)
        gl = {float(r["r_cm"]): float(r["gL"]) for r in gl_rows}
        f_at = {(float(r["r_cm"]), float(r["theta_deg"])): float(r["F"]) for r in f_rows}
    except (KeyError, TypeError, ValueError) as exc:
        problems.append(f"tg43_model tables: columns r_cm,gL and r_cm,theta_deg,F ({exc})")
        return None
    if abs(gl.get(1.0, math.nan) - 1.0) > 1e-3:
        problems.append("tg43_model g_L table: g_L(1 cm) must be 1 (TG-43U1 normalisation)")
    if abs(f_at.get((1.0, 90.0), math.nan) - 1.0) > 1e-3:
        problems.append("tg43_model F table: F(1 cm, 90 deg) must be 1 (TG-43U1 normalisation)")
    if problems:
        return None
    sha = sha256_texts(gl_text, f_text, yaml.safe_dump(spec, sort_keys=True))
    try:
        return build_source(
            source_id=f"department:{spec['id']}:{sha[:12]}",
            title=str(spec["title"]),
            dose_rate_constant=lam,
            active_length_cm=length,
            gl_rows=gl_rows,
            f_rows=f_rows,
            status="published",
            reference=str(spec["citation"]),
            provenance=f"department-added model in {path}",
            data_files=(str(spec["gL_csv"]), str(spec["F_csv"])),
            data_sha256=sha,
        )
    except HdrDataError as exc:
        problems.extend(f"tg43_model: {p}" for p in exc.problems)
        return None


def load_hdr_source_record(path: str | Path, *, now: dt.datetime | None = None) -> HdrSourceRecord:
    """Read and check a department HDR source record (format in the module docstring).

    Refused, with one problem per line: a missing key, a source model openiort has no TG-43
    data for, a certificate reference in the future (after ``now``, default the present), a
    well-chamber value beyond the protocol's tolerance, a department model that fails its
    checks.
    """
    p = Path(path)
    text = _checked(p, p.name)
    try:
        meta = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HdrSourceRecordError(f"{p}: not YAML ({exc})", source=str(p)) from None
    if not isinstance(meta, dict):
        raise HdrSourceRecordError(f"{p}: must be a YAML mapping", source=str(p))
    problems = [
        f"{key} is required (an HDR source record names the afterloader, the source, its "
        "certificate and the department's well-chamber check)"
        for key in REQUIRED_KEYS
        if meta.get(key) in (None, "")
    ]
    if problems:
        raise HdrSourceRecordError(*(f"{p}: {x}" for x in problems), source=str(p))
    certificate, chamber = meta["certificate"], meta["well_chamber"]
    if not isinstance(certificate, dict) or not isinstance(chamber, dict):
        raise HdrSourceRecordError(
            f"{p}: certificate and well_chamber must be mappings", source=str(p)
        )
    sk = _positive(
        certificate.get("air_kerma_strength_u"), "certificate.air_kerma_strength_u", problems
    )
    reference = _aware(certificate.get("reference"), "certificate.reference", problems)
    measured = _positive(chamber.get("measured_u"), "well_chamber.measured_u", problems)
    now = now or dt.datetime.now(dt.UTC)
    if reference is not None and reference > now:
        problems.append(
            f"certificate.reference {reference.isoformat()} is in the future: a certificate "
            "states the strength at a time already past; check the date"
        )
    model_id = str(meta["source_model"])
    dept: Tg43Source | None = None
    if "tg43_model" in meta:
        if (
            str(meta["tg43_model"].get("id") if isinstance(meta["tg43_model"], dict) else "")
            != model_id
        ):
            problems.append("source_model must name tg43_model.id when a tg43_model is given")
        else:
            dept = _department_model(p, meta["tg43_model"], problems)
    elif model_id not in source_ids():
        problems.append(
            f"source_model {model_id!r} has no TG-43 data in openiort (shipped: "
            f"{', '.join(source_ids())}); add the model's tables as tg43_model"
        )
    if not problems and math.isfinite(sk) and math.isfinite(measured):
        refuse = float(hdr_protocol()["source_record"]["well_chamber_refuse_percent"])
        dev = 100.0 * (measured / sk - 1.0)
        if abs(dev) > refuse:
            problems.append(
                f"well_chamber.measured_u differs from the certificate by {dev:+.2f} %, beyond "
                f"{refuse:g} %: resolve the calibration before the source is used"
            )
    if problems:
        raise HdrSourceRecordError(*(f"{p}: {x}" for x in problems), source=str(p))
    assert reference is not None
    if dept is not None:
        register_source(dept)
        source = dept
    else:
        try:
            source = load_source(model_id)
        except UnknownSourceError as exc:  # pragma: no cover - checked above
            raise HdrSourceRecordError(*exc.problems, source=str(p)) from None
    files_sha = sha256_texts(text, source.data_sha256)
    return HdrSourceRecord(
        path=str(p),
        afterloader_name=str(meta["afterloader_name"]),
        afterloader_serial=str(meta["afterloader_serial"]),
        source_model=source.source_id,
        source_model_title=source.title,
        source_serial=str(meta["source_serial"]),
        certificate_sk_u=sk,
        certificate_reference_utc=reference,
        well_chamber_u=measured,
        well_chamber_on=str(chamber.get("measured_on", "")),
        version=str(meta["version"]),
        effective_date=str(meta["effective_date"]),
        commissioned_by=str(meta["commissioned_by"]),
        sha256=files_sha,
        department_model=dept is not None,
    )


def decay_table(
    certificate_sk_u: float, reference_utc: dt.datetime, times: list[dt.datetime]
) -> list[tuple[dt.datetime, float]]:
    """(time, S_K) at each of ``times`` (aware datetimes, any zone): a certificate's decay table."""
    out = []
    for t in times:
        days = (t.astimezone(dt.UTC) - reference_utc).total_seconds() / 86400.0
        out.append((t, certificate_sk_u * float(np.exp2(-days / _half_life()))))
    return out


def _half_life() -> float:
    from openiort.devices.hdr import ir192_half_life_d

    return ir192_half_life_d()
