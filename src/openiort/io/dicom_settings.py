"""A department's DICOM settings: its organisation UID root, names and treatment machines.

A YAML file (every key optional), given as ``--dicom-settings FILE`` to ``iort export`` and
``iort plan --dicom``, or named by the environment variable ``OPENIORT_DICOM_SETTINGS``::

    organisation_uid_root: "1.2.826.0.1.3680043.10.543"   # the root your organisation owns
    institution_name: "City Hospital"                     # Institution Name (0008,0080)
    department_name: "Radiation Oncology"                 # Institutional Department Name
    station_name: "IORT-PLAN-1"                           # Station Name (0008,1010)
    treatment_machines:                                   # Treatment Machine Name (300A,00B2)
      xray: "INTRABEAM 1"                                 # as the record-and-verify system
      electron: "MOBETRON 1"                              # knows each machine (16 characters)
      hdr: "FLEXITRON 1"

Without a UID root, UIDs are ``2.25.`` UUID-derived (PS3.5 B.2); with one, every UID is the
root followed by digits. The root must be one your organisation was assigned (PS3.5 9.1):
digits and dots, no component with a leading zero, at most 40 characters so that the UIDs
built on it keep room for their own digits. See docs/dicom-conformance.md.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydicom.uid import generate_uid

from openiort.io.errors import DicomExportError

SETTINGS_ENV = "OPENIORT_DICOM_SETTINGS"
MAX_ROOT_LENGTH = 40
_ROOT = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$")
TECHNIQUE_KEYS = ("xray", "electron", "hdr")
_KEYS = (
    "organisation_uid_root",
    "institution_name",
    "department_name",
    "station_name",
    "treatment_machines",
)
_LIMITS = {"institution_name": 64, "department_name": 64, "station_name": 16}


@dataclass(frozen=True)
class DicomSettings:
    organisation_uid_root: str | None = None
    institution_name: str = ""
    department_name: str = ""
    station_name: str = ""
    treatment_machines: dict[str, str] = field(default_factory=dict)
    source: str = "defaults"

    @property
    def uid_prefix(self) -> str | None:
        """The root as a prefix for pydicom (ending with '.'), or None for 2.25 UIDs."""
        return None if self.organisation_uid_root is None else self.organisation_uid_root + "."

    def machine_for(self, technique: str) -> str | None:
        return self.treatment_machines.get(technique) or None


def check_uid_root(root: str, where: str = "organisation_uid_root") -> str:
    root = root.strip().rstrip(".")
    if not _ROOT.match(root):
        raise DicomExportError(
            f"{where}: {root!r} is not a UID root (digits and dots, no leading zeros)"
        )
    if len(root) > MAX_ROOT_LENGTH:
        raise DicomExportError(f"{where}: longer than {MAX_ROOT_LENGTH} characters")
    return root


def parse_settings(data: Any, source: str) -> DicomSettings:
    """Settings from a parsed YAML mapping; every problem reported at once."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DicomExportError(f"{source}: expected a mapping of settings")
    problems = [f"{source}: unknown key {k!r}" for k in data if k not in _KEYS]
    root = data.get("organisation_uid_root")
    if root is not None:
        try:
            root = check_uid_root(str(root), f"{source}: organisation_uid_root")
        except DicomExportError as exc:
            problems += exc.problems
    texts: dict[str, str] = {}
    for key, limit in _LIMITS.items():
        value = data.get(key, "")
        value = "" if value is None else str(value)
        if len(value) > limit or "\\" in value:
            problems.append(f"{source}: {key} must be at most {limit} characters, no backslash")
        texts[key] = value
    machines_raw = data.get("treatment_machines") or {}
    machines: dict[str, str] = {}
    if not isinstance(machines_raw, dict):
        problems.append(f"{source}: treatment_machines must map xray/electron/hdr to names")
    else:
        for technique, name in machines_raw.items():
            if technique not in TECHNIQUE_KEYS:
                problems.append(f"{source}: treatment_machines: unknown technique {technique!r}")
            elif not name or len(str(name)) > 16 or "\\" in str(name):
                problems.append(f"{source}: treatment_machines.{technique} must be 1-16 characters")
            else:
                machines[technique] = str(name)
    if problems:
        raise DicomExportError(*problems, source=source)
    return DicomSettings(
        organisation_uid_root=root,
        institution_name=texts["institution_name"],
        department_name=texts["department_name"],
        station_name=texts["station_name"],
        treatment_machines=machines,
        source=source,
    )


def load_settings(path: str | Path | None = None) -> DicomSettings:
    """The settings of ``path``, else of ``$OPENIORT_DICOM_SETTINGS``, else the defaults."""
    chosen = path if path is not None else os.environ.get(SETTINGS_ENV) or None
    if chosen is None:
        return DicomSettings()
    p = Path(chosen)
    try:
        data = yaml.safe_load(p.read_text("utf-8"))
    except OSError as exc:
        raise DicomExportError(f"{p}: cannot read the DICOM settings ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise DicomExportError(f"{p}: not valid YAML ({exc})") from exc
    return parse_settings(data, str(p))


def stable_uid(root: str | None, *parts: str) -> str:
    """The same UID for the same ``parts`` under the same root: ``root.<digits of a SHA-512>``,
    or without a root ``2.25.<a name-based UUID>`` (PS3.5 B.2; ISO/IEC 9834-8)."""
    key = "\x1f".join(("openiort", *parts))
    if root is None:
        digest = hashlib.sha256(key.encode("utf-8")).digest()[:16]
        return f"2.25.{uuid.UUID(bytes=digest, version=5).int}"
    return str(generate_uid(prefix=root.rstrip(".") + ".", entropy_srcs=[key]))
