"""Write a plan's outputs (plan.json, report.html, arrays, extras) all or nothing."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from openiort.io.plan_dir import write_plan_dir
from openiort.plan import PlanResult
from openiort.report.html import render_report

REPORT_HTML = "report.html"


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
        # Compressing the arrays (zlib releases the GIL) overlaps with rendering the report.
        with ThreadPoolExecutor(max_workers=1) as pool:
            arrays = pool.submit(write_plan_dir, tmp, plan_json, plan.phantom, plan.dose)
            (tmp / REPORT_HTML).write_text(render_report(plan, plan_json), "utf-8")
            arrays.result()  # plan.json + plan_arrays.npz; re-raises a failure
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
