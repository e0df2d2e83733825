"""Stored plan.json of the shipped examples and the demo: the behaviour a refactor must keep.

The outputs in tests/reference_outputs/ were made by this module from the release before a
change. `make reference-outputs` (or `python tests/core/reference_plans.py`) re-makes them;
a change that alters a plan on purpose re-makes them in the same commit, so the diff of the
stored JSON is reviewed with the code.

Comparison rules: numbers equal to 1e-9 relative (a refactor that reorders floating-point
operations changes the last bits, nothing more), strings and structure equal; hashes,
timestamps and software versions are ignored; keys the new output adds are allowed (new typed
fields), keys it drops are not. HDR dwell times are compared through the dose they give,
since the optimum of the dwell-time problem need not be unique.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
STORED = REPO / "tests" / "reference_outputs"
EXAMPLES = REPO / "examples"
DEMO = "demo_case"

RELATIVE_TOLERANCE = 1e-9
ABSOLUTE_FLOOR = 1e-12  # numbers this close to zero are round-off either way
DOSE_RELATIVE_TOLERANCE = 1e-6  # HDR: dose from the stored and the new dwell times
IGNORED_KEYS = frozenset({"created_utc", "version", "engine_version"})
HDR_DWELL_KEYS = frozenset({"dwell_times_s"})


def case_names() -> list[str]:
    return [*sorted(p.stem for p in EXAMPLES.glob("*.yaml")), DEMO]


def case_path(name: str) -> Path:
    if name == DEMO:
        return Path(str(resources.files("openiort").joinpath("data/demo_case.yaml")))
    return EXAMPLES / f"{name}.yaml"


def plan_json(name: str) -> dict[str, Any]:
    """plan.json of one reference case as the current code makes it."""
    from openiort.case import load_case
    from openiort.pipeline import plan_case

    plan = plan_case(load_case(case_path(name)))
    return json.loads(json.dumps(plan.to_json_dict(), allow_nan=False))


def stored_json(name: str) -> dict[str, Any]:
    path = STORED / f"{name}.plan.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run `make reference-outputs` on the base release")
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


def _ignored(key: str) -> bool:
    return key in IGNORED_KEYS or "sha256" in key


def differences(stored: Any, new: Any, path: str = "") -> Iterator[str]:
    """Every place where ``new`` departs from ``stored`` under the rules above."""
    if isinstance(stored, dict):
        if not isinstance(new, dict):
            yield f"{path}: object became {type(new).__name__}"
            return
        for key, value in stored.items():
            if _ignored(key) or key in HDR_DWELL_KEYS:
                continue
            if key not in new:
                yield f"{path}.{key}: missing"
                continue
            yield from differences(value, new[key], f"{path}.{key}")
    elif isinstance(stored, list):
        if not isinstance(new, list) or len(new) != len(stored):
            yield f"{path}: list of {len(stored)} became {_describe(new)}"
            return
        for i, (a, b) in enumerate(zip(stored, new, strict=True)):
            yield from differences(a, b, f"{path}[{i}]")
    elif isinstance(stored, bool) or stored is None or isinstance(stored, str):
        if stored != new:
            yield f"{path}: {stored!r} became {new!r}"
    elif isinstance(stored, int | float):
        numeric = isinstance(new, int | float) and not isinstance(new, bool)
        if not (numeric and _close(stored, new)):
            yield f"{path}: {stored!r} became {new!r}"
    else:  # pragma: no cover - JSON has no other types
        yield f"{path}: unexpected {type(stored).__name__}"


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=ABSOLUTE_FLOOR)


def _describe(value: Any) -> str:
    return f"list of {len(value)}" if isinstance(value, list) else type(value).__name__


def hdr_dwell_dose_difference(stored: dict[str, Any], new: dict[str, Any]) -> float:
    """Largest relative difference between the TG-43 dose of the stored dwell times and that
    of the new ones, at six points 10 mm outside the applicator along the axes."""
    import numpy as np

    from openiort.dose.tg43 import dose_rate_matrix

    positions_mm = np.asarray(stored["dwell_positions_mm"], dtype=float)
    if new["dwell_positions_mm"] != stored["dwell_positions_mm"]:
        return math.inf
    reach_mm = float(stored["applicator_geometry"].get("diameter_mm", 30.0)) / 2 + 10.0
    axes = np.vstack([np.eye(3), -np.eye(3)])
    points_mm = positions_mm.mean(axis=0) + reach_mm * axes
    rate = dose_rate_matrix(
        stored["source_id"], points_mm, positions_mm, stored["dwell_directions"]
    )
    old = rate @ np.asarray(stored["dwell_times_s"], dtype=float)
    now = rate @ np.asarray(new["dwell_times_s"], dtype=float)
    return float(np.max(np.abs(now - old) / np.abs(old)))


def regenerate(names: list[str]) -> None:
    STORED.mkdir(parents=True, exist_ok=True)
    for name in names:
        text = json.dumps(plan_json(name), indent=1, sort_keys=True, allow_nan=False)
        (STORED / f"{name}.plan.json").write_text(text + "\n", encoding="utf-8")
        print(f"wrote {STORED / name}.plan.json")


if __name__ == "__main__":
    regenerate(sys.argv[1:] or case_names())
