"""The plan directory: what ``iort plan`` leaves behind and ``iort export`` reads.

``PLAN_DIR/plan.json``
    The plan document (:mod:`openiort.plan_document`; what the export reads of it is listed in
    ``openiort.io.rtplan_writer``): the dose grid's medium, normalisation and whether it is per
    session come from its ``dose`` block and the provenance from ``provenance``. A plan dict
    that is not a plan document (plan.json of an earlier release, or one made by hand) gives
    them as top-level keys (:data:`PLAN_DIR_KEYS`, which :func:`write_plan_dir` adds to such a
    dict): ``dose_medium`` (``water_in_water``, ``medium_in_medium`` or ``water_in_medium``; a
    label such as ``"water_in_water (TG-43)"`` is read by its first word; ``dose.medium`` is
    also accepted), optional ``dose_normalisation`` (text), ``dose_per`` (``session``, default,
    or ``total``) and ``provenance`` (the ``Provenance`` fields: engine, engine_version,
    device_data, device_data_sha256, inputs_sha256, calibration).

``PLAN_DIR/plan_arrays.npz`` (``numpy.savez_compressed``; read without pickle)
    ``material_ids``       uint8 [z, y, x], indexes ``materials``
    ``density_g_cm3``      float32 [z, y, x]
    ``materials``          1-D array of str, material library names
    ``grid_origin_mm``     (3,) float, centre of voxel [0, 0, 0], (x, y, z) LPS mm
    ``grid_spacing_mm``    (3,) float, (dx, dy, dz) mm
    ``structure_<name>``   bool [z, y, x], one per structure (``structure_breast``, ...)
    ``dose_gy``            float [z', y', x'], dose per session in Gy
    optional:
    ``dose_grid_origin_mm``, ``dose_grid_spacing_mm``   the dose grid, when it is not the
                                                        phantom grid (its shape is dose_gy's)
    ``applicator_centre_mm`` (3,), ``applicator_radius_mm`` (), ``cavity_radius_mm`` ()
    ``dose_rel_uncertainty`` like ``dose_gy`` (Monte Carlo)

``write_plan_dir`` writes this format from the library types; ``read_plan_dir`` reads it back.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast, get_args

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from openiort.anatomy.phantom import Phantom
from openiort.dosegrid import DoseGrid, DoseMedium, Provenance
from openiort.grid import Grid
from openiort.io.errors import PlanDirError
from openiort.plan_document import AnyPlanDocument, parse_plan_document

PLAN_JSON = "plan.json"
PLAN_ARRAYS = "plan_arrays.npz"
STRUCTURE_PREFIX = "structure_"
# What a plan dict that is not a plan document gives beside it (plan.json of earlier releases
# held them beside the document too).
PLAN_DIR_KEYS = ("dose_medium", "dose_normalisation", "dose_per")
PROVENANCE_FIELDS = (
    "engine",
    "engine_version",
    "device_data",
    "device_data_sha256",
    "inputs_sha256",
    "calibration",
)


@dataclass(frozen=True)
class PlanDir:
    plan: dict[str, Any]
    phantom: Phantom
    dose: DoseGrid


@dataclass(frozen=True)
class _DoseFacts:
    medium: DoseMedium
    normalisation: str
    per_session: bool
    provenance: Provenance


def plan_document_of(plan: Mapping[str, Any]) -> AnyPlanDocument | None:
    """``plan`` as its typed plan document, or None for a plan dict that is not one (plan.json
    of a release before the typed deliveries, or a dict made by hand)."""
    content = {k: v for k, v in plan.items() if k not in PLAN_DIR_KEYS}
    try:
        return parse_plan_document(content)
    except ValidationError:
        return None


def _dose_facts(plan: Mapping[str, Any]) -> _DoseFacts:
    document = plan_document_of(plan)
    if document is None:
        return _DoseFacts(
            medium=_medium(plan),
            normalisation=_legacy_dose_value(plan, "dose_normalisation", "normalisation")
            or "not recorded in plan.json",
            per_session=_legacy_dose_value(plan, "dose_per", "per_session") not in ("total", False),
            provenance=_provenance(plan),
        )
    return _DoseFacts(
        medium=_medium({"dose_medium": document.dose.medium}),
        normalisation=document.dose.normalisation,
        per_session=document.dose.per_session,
        provenance=Provenance(**document.provenance.model_dump()),
    )


def _legacy_dose_value(plan: Mapping[str, Any], key: str, dose_key: str) -> Any:
    """A top-level dose key of an older plan dict, else the same fact in its ``dose`` block."""
    if plan.get(key) is not None:
        return plan[key]
    dose = plan.get("dose")
    return dose.get(dose_key) if isinstance(dose, Mapping) else None


def _medium(plan: Mapping[str, Any]) -> DoseMedium:
    raw = plan.get("dose_medium")
    if raw is None and isinstance(plan.get("dose"), Mapping):
        raw = plan["dose"].get("medium")
    allowed = get_args(DoseMedium)
    word = str(raw).split()[0] if raw else ""
    if word not in allowed:
        raise PlanDirError(f"{PLAN_JSON}: dose_medium must be one of {allowed}, got {raw!r}")
    return cast(DoseMedium, word)


def _provenance(plan: Mapping[str, Any]) -> Provenance:
    raw = plan.get("provenance")
    given: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    missing = "not recorded in plan.json"
    return Provenance(**{f: str(given.get(f, missing)) for f in PROVENANCE_FIELDS})


def _vector(arrays: Mapping[str, NDArray[Any]], key: str) -> tuple[float, float, float]:
    value = np.asarray(arrays[key], dtype=np.float64)
    if value.shape != (3,) or not np.all(np.isfinite(value)):
        raise PlanDirError(f"{PLAN_ARRAYS}: {key} must hold 3 finite numbers")
    return float(value[0]), float(value[1]), float(value[2])


def read_plan_dir(plan_dir: str | Path) -> PlanDir:
    """Read ``plan.json`` and ``plan_arrays.npz``; raises PlanDirError naming what is wrong."""
    root = Path(plan_dir)
    try:
        plan = json.loads((root / PLAN_JSON).read_text("utf-8"))
    except FileNotFoundError as exc:
        raise PlanDirError(f"{root / PLAN_JSON}: not found") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanDirError(f"{root / PLAN_JSON}: cannot read ({exc})") from exc
    if not isinstance(plan, dict):
        raise PlanDirError(f"{root / PLAN_JSON}: must hold a JSON object")
    try:
        with np.load(root / PLAN_ARRAYS, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError as exc:
        raise PlanDirError(f"{root / PLAN_ARRAYS}: not found") from exc
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise PlanDirError(f"{root / PLAN_ARRAYS}: cannot read ({exc})") from exc
    required = (
        "material_ids",
        "density_g_cm3",
        "materials",
        "grid_origin_mm",
        "grid_spacing_mm",
        "dose_gy",
    )
    missing = [k for k in required if k not in arrays]
    if missing:
        raise PlanDirError(f"{root / PLAN_ARRAYS}: missing arrays {missing}")
    try:
        material_ids = np.asarray(arrays["material_ids"])
        if material_ids.ndim != 3 or material_ids.dtype != np.uint8:
            raise PlanDirError(f"{PLAN_ARRAYS}: material_ids must be a 3-D uint8 array")
        grid = Grid(
            _vector(arrays, "grid_origin_mm"),
            _vector(arrays, "grid_spacing_mm"),
            (material_ids.shape[0], material_ids.shape[1], material_ids.shape[2]),
        )
        dose_gy = np.asarray(arrays["dose_gy"], dtype=np.float64)
        if dose_gy.ndim != 3:
            raise PlanDirError(f"{PLAN_ARRAYS}: dose_gy must be a 3-D array")
        if "dose_grid_origin_mm" in arrays:
            dose_grid = Grid(
                _vector(arrays, "dose_grid_origin_mm"),
                _vector(arrays, "dose_grid_spacing_mm"),
                (dose_gy.shape[0], dose_gy.shape[1], dose_gy.shape[2]),
            )
        else:
            dose_grid = grid
        structures = {
            key.removeprefix(STRUCTURE_PREFIX): np.asarray(value, dtype=bool)
            for key, value in arrays.items()
            if key.startswith(STRUCTURE_PREFIX)
        }
        materials = tuple(str(m) for m in np.asarray(arrays["materials"]).ravel())
        if material_ids.size and int(material_ids.max()) >= len(materials):
            raise PlanDirError(f"{PLAN_ARRAYS}: material_ids index beyond the materials list")

        def optional_float(key: str) -> float | None:
            return float(np.asarray(arrays[key])) if key in arrays else None

        phantom = Phantom(
            grid=grid,
            material_ids=material_ids,
            density_g_cm3=np.asarray(arrays["density_g_cm3"], dtype=np.float32),
            materials=materials,
            structures=structures,
            applicator_centre_mm=(
                _vector(arrays, "applicator_centre_mm")
                if "applicator_centre_mm" in arrays
                else None
            ),
            applicator_radius_mm=optional_float("applicator_radius_mm"),
            cavity_radius_mm=optional_float("cavity_radius_mm"),
            # plan.json's description of the anatomy: laterality, a CT's identity
            description=dict(plan["phantom"]) if isinstance(plan.get("phantom"), dict) else {},
        )
        uncertainty = arrays.get("dose_rel_uncertainty")
        facts = _dose_facts(plan)
        dose = DoseGrid(
            grid=dose_grid,
            dose_gy=dose_gy,
            medium=facts.medium,
            normalisation=str(facts.normalisation),
            provenance=facts.provenance,
            rel_uncertainty=None if uncertainty is None else np.asarray(uncertainty, np.float64),
            per_session=facts.per_session,
        )
    except PlanDirError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise PlanDirError(f"{root}: inconsistent plan arrays ({exc})") from exc
    return PlanDir(plan=plan, phantom=phantom, dose=dose)


def write_plan_dir(
    plan_dir: str | Path, plan: Mapping[str, Any], phantom: Phantom, dose: DoseGrid
) -> None:
    """Write ``plan.json`` and ``plan_arrays.npz``.

    A plan document is written as it is; another plan dict gets :data:`PLAN_DIR_KEYS` and
    ``provenance`` from ``dose`` where it lacks them.
    """
    root = Path(plan_dir)
    root.mkdir(parents=True, exist_ok=True)
    content = dict(plan)
    if plan_document_of(content) is None:
        content.setdefault("dose_medium", dose.medium)
        content.setdefault("dose_normalisation", dose.normalisation)
        content.setdefault("dose_per", "session" if dose.per_session else "total")
        content.setdefault("provenance", dose.provenance.to_dict())
    arrays: dict[str, NDArray[Any]] = {
        "material_ids": phantom.material_ids.astype(np.uint8),
        "density_g_cm3": phantom.density_g_cm3.astype(np.float32),
        "materials": np.array(phantom.materials, dtype=str),
        "grid_origin_mm": np.array(phantom.grid.origin_mm),
        "grid_spacing_mm": np.array(phantom.grid.spacing_mm),
        "dose_gy": np.asarray(dose.dose_gy, dtype=np.float64),
    }
    if dose.grid != phantom.grid:
        arrays["dose_grid_origin_mm"] = np.array(dose.grid.origin_mm)
        arrays["dose_grid_spacing_mm"] = np.array(dose.grid.spacing_mm)
    for name, mask in phantom.structures.items():
        arrays[STRUCTURE_PREFIX + name] = mask.astype(bool)
    if phantom.applicator_centre_mm is not None:
        arrays["applicator_centre_mm"] = np.array(phantom.applicator_centre_mm)
    if phantom.applicator_radius_mm is not None:
        arrays["applicator_radius_mm"] = np.array(phantom.applicator_radius_mm)
    if phantom.cavity_radius_mm is not None:
        arrays["cavity_radius_mm"] = np.array(phantom.cavity_radius_mm)
    if dose.rel_uncertainty is not None:
        arrays["dose_rel_uncertainty"] = dose.rel_uncertainty
    (root / PLAN_JSON).write_text(json.dumps(content, indent=2, default=str), "utf-8")
    save_npz_fast(root / PLAN_ARRAYS, arrays)


def save_npz_fast(path: Path, arrays: Mapping[str, NDArray[Any]]) -> None:
    """An ``.npz`` readable by ``np.load``, deflated at level 1.

    ``np.savez_compressed`` uses zlib's default level, several times slower on these large,
    mostly constant label and dose arrays for a similar size.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, array in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(array), allow_pickle=False)
