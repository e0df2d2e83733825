"""The packaged electron data files (read against their manifest) and the planning defaults."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from openiort.datafiles import data_path, read_data
from openiort.devices.electron.errors import ElectronDataError

DATA_DIR = "data/electron"
DEFAULT_MANIFEST = "liac_hwl.yaml"
DISCS_FILE = "shielding_discs.yaml"
PLANNING_DEFAULTS_FILE = "planning_defaults.yaml"


def data_text(name: str) -> str:
    """A file of the packaged device data, checked against ``data/electron``'s manifest."""
    return read_data("openiort.devices", f"{DATA_DIR}/{name}").text


def data_file_path(name: str) -> Path:
    return data_path("openiort.devices", f"{DATA_DIR}/{name}")


@cache
def planning_defaults() -> dict[str, Any]:
    """Planning defaults and literature constants (``data/electron/planning_defaults.yaml``)."""
    doc: dict[str, Any] = yaml.safe_load(data_text(PLANNING_DEFAULTS_FILE))
    return doc


def entry_value(entry: Any) -> Any:
    """A YAML entry is either a bare value or a mapping with ``value`` and its source."""
    return entry["value"] if isinstance(entry, dict) and "value" in entry else entry


def limits_pair(values: Any) -> tuple[float, float]:
    lo, hi = (float(v) for v in values)
    if not lo < hi:
        raise ElectronDataError(f"limits must be (low, high), got {values}")
    return lo, hi


def planning_value(name: str) -> Any:
    return entry_value(planning_defaults()[name])
