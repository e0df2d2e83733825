"""Write a plan's outputs (plan.json, report.html, arrays) all or nothing."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from openiort.plan import PlanResult
from openiort.report.html import render_report

PLAN_JSON = "plan.json"
REPORT_HTML = "report.html"
ARRAYS_NPZ = "plan_arrays.npz"


def write_arrays(plan: PlanResult, path: Path) -> None:
    """Phantom, structures and dose for DICOM export and later re-analysis (see io docs)."""
    ph = plan.phantom
    arrays: dict[str, np.ndarray] = {
        "material_ids": ph.material_ids,
        "density_g_cm3": ph.density_g_cm3,
        "dose_gy": plan.dose.dose_gy.astype(np.float32),
        "grid_origin_mm": np.asarray(ph.grid.origin_mm),
        "grid_spacing_mm": np.asarray(ph.grid.spacing_mm),
        "materials": np.asarray(ph.materials),
    }
    arrays.update({f"structure_{k}": v for k, v in ph.structures.items()})
    # np.savez_compressed uses zlib's default level; level 1 is several times faster on these
    # mostly-constant label arrays at a similar size.
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, array in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(array), allow_pickle=False)


def write_plan_outputs(
    plan: PlanResult,
    out_dir: str | Path,
    extra_writers: tuple[Callable[[Path], object], ...] = (),
) -> dict[str, Path]:
    """Write every output into a temporary folder, then move them into ``out_dir``.

    A failure part-way leaves ``out_dir`` as it was: no partial output.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        plan_json = plan.to_json_dict()
        (tmp / PLAN_JSON).write_text(json.dumps(plan_json, indent=2, allow_nan=False), "utf-8")
        (tmp / REPORT_HTML).write_text(render_report(plan, plan_json), "utf-8")
        write_arrays(plan, tmp / ARRAYS_NPZ)
        for writer in extra_writers:
            writer(tmp)
        out.mkdir(exist_ok=True)
        written = {}
        for f in sorted(tmp.iterdir()):
            if f.is_dir() and (out / f.name).is_dir():
                shutil.rmtree(out / f.name)
            os.replace(f, out / f.name)
            written[f.name] = out / f.name
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
