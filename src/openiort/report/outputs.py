"""Write a plan's outputs (plan.json, report.html, arrays, extras) all or nothing."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from openiort.errors import OpenIortInputError
from openiort.io.plan_dir import write_plan_dir
from openiort.plan import PlanResult
from openiort.report.html import render_report

REPORT_HTML = "report.html"
PLAN_JSON = "plan.json"


class OutputFolderError(OpenIortInputError):
    """The output folder cannot be written as asked (it holds files, or is not a folder)."""


def check_output_folder(out_dir: str | Path, overwrite: bool = False) -> None:
    """Raise :class:`OutputFolderError` unless ``out_dir`` may receive a plan's outputs.

    A folder that does not exist, or is empty, may. A folder with files in it may only with
    ``overwrite``, and only when it holds an earlier plan (its ``plan.json``): ``--overwrite``
    replaces a plan's output, never some other folder that was named by mistake.
    """
    out = Path(out_dir)
    source = str(out)
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise OutputFolderError("exists and is not a folder: choose another --out", source=source)
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise OutputFolderError(
            "the output folder exists and is not empty: choose another --out, or pass "
            "--overwrite to replace its contents",
            source=source,
        )
    here = Path.cwd().resolve()
    if out.resolve() == here or out.resolve() in here.parents:
        raise OutputFolderError(
            "the output folder is the current folder or holds it: choose another --out",
            source=source,
        )
    if not (out / PLAN_JSON).is_file():
        raise OutputFolderError(
            f"the output folder holds files but no {PLAN_JSON}: --overwrite replaces an earlier "
            "plan's output only; choose another --out",
            source=source,
        )


def write_plan_outputs(
    plan: PlanResult,
    out_dir: str | Path,
    extra_writers: tuple[Callable[[Path], object], ...] = (),
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write every output into a temporary folder, then put it in the place of ``out_dir``.

    ``out_dir`` must not exist or be empty, or, with ``overwrite``, hold an earlier plan
    (:func:`check_output_folder`), whose whole contents are then replaced: nothing of the old
    output is left beside the new. A failure part-way leaves ``out_dir`` as it was: no partial
    output.
    """
    check_output_folder(out_dir, overwrite)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp = work / "new"
    tmp.mkdir()  # the folder's permissions as any new folder's (mkdtemp's are 0700)
    try:
        plan_json = plan.to_json_dict()
        # Compressing the arrays (zlib releases the GIL) overlaps with rendering the report.
        with ThreadPoolExecutor(max_workers=1) as pool:
            arrays = pool.submit(write_plan_dir, tmp, plan_json, plan.phantom, plan.dose)
            (tmp / REPORT_HTML).write_text(render_report(plan, plan_json), "utf-8")
            arrays.result()  # plan.json + plan_arrays.npz; re-raises a failure
        for writer in extra_writers:
            writer(tmp)
        check_output_folder(out, overwrite)  # again: it may have changed while planning
        _swap_in(tmp, out, work / "old")
        return {f.name: out / f.name for f in sorted(out.iterdir())}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _swap_in(new: Path, out: Path, old: Path) -> None:
    """Put the folder ``new`` in the place of ``out``, moving an existing ``out`` to ``old``
    first and back if the move fails (renames on one file system)."""
    if not out.exists():
        os.replace(new, out)
        return
    os.chmod(new, stat.S_IMODE(out.stat().st_mode))  # keep the folder's permissions
    os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        os.replace(old, out)
        raise
