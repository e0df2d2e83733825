"""What a planning worker runs: plan a case and write all of its files into one folder.

Runs in a separate process (or thread) so that a plan's 10-20 s of computing never holds up
the server. It imports no web framework, returns only plain data (the plan JSON and the
hashes of the files the seal should cover), and turns every failure into a
:class:`WorkerOutcome` rather than an exception (a case error's message is for the user who
entered the case; an unexpected error's is not, and is reduced to its type and code location).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openiort.case import Case, parse_case
from openiort.datafiles import sha256_file
from openiort.errors import OpenIortInputError

if TYPE_CHECKING:
    from openiort.plan import PlanResult

PLAN_JSON = "plan.json"
REPORT_HTML = "report.html"
ARRAYS_NPZ = "plan_arrays.npz"
SUMMARY_HTML = "patient-summary.html"
# Files whose SHA-256 goes into the stored plan JSON (and so under the approval seal).
SEALED_FILES = (REPORT_HTML, ARRAYS_NPZ)
OUTPUTS_KEY = "outputs_sha256"
# A plan on a case's imported CT (openiort.web.ct_import): the job's case data carries the CT
# folder, the structure set and the confirmed ROI map under this key (never stored).
CT_IMPORT_KEY = "_ct_import"


@dataclass(frozen=True)
class WorkerOutcome:
    """The result of one planning run.

    ``kind`` is ``ok``, ``case`` (the case cannot be planned: ``problems`` says why, fit to
    show the user), or ``error`` (unexpected: ``where`` gives the code location, for the log).
    """

    kind: str
    plan_json: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    error_type: str = ""
    where: str = ""
    seconds: float = 0.0


# Planning runs at a lower CPU priority than the server's requests (nice(2) increment), so
# that pages stay quick while a plan is computed on a machine with few cores.
PLAN_NICE_INCREMENT = 10


def init_process() -> None:
    """Initialiser of each planning process."""
    import contextlib
    import os

    with contextlib.suppress(AttributeError, OSError):  # no nice() here, or not permitted
        os.nice(PLAN_NICE_INCREMENT)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def init_pool_process() -> None:
    """Initialiser of a planning process of a server's own pool: as :func:`init_process`, and
    the kernel kills the process when its server dies (a server killed with SIGKILL cannot
    stop its pool, which would otherwise compute on and hold its memory for good). A thread
    watching the parent would not do: a compiled kernel can hold the interpreter for minutes."""
    import contextlib
    import ctypes
    import os
    import signal

    init_process()
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no such call
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the server died before the call above
        os._exit(1)


def warm_up() -> bool:
    """Import the planning stack (numba caches, data files) before the first plan is asked."""
    import openiort.pipeline
    import openiort.report.outputs  # noqa: F401

    return True


def write_plan_files(plan: PlanResult, case: Case, out_dir: str | Path) -> dict[str, Any]:
    """Write a computed plan's files into ``out_dir`` (all or nothing) and return the plan
    JSON to store: ``plan.json``'s content plus the hashes of the sealed files and the
    applicator position the DICOM export needs."""
    from openiort.clinical.summary import write_patient_summary
    from openiort.report.outputs import write_plan_outputs
    from openiort.web.slices import write_viewer_data

    write_plan_outputs(
        plan,
        out_dir,
        extra_writers=(
            lambda d: write_patient_summary(case, d),
            lambda d: write_viewer_data(plan, d),
        ),
    )
    out = Path(out_dir)
    plan_json: dict[str, Any] = json.loads((out / PLAN_JSON).read_text("utf-8"))
    plan_json[OUTPUTS_KEY] = {name: sha256_file(out / name) for name in SEALED_FILES}
    # DICOM RTPLAN needs the applicator position (a plan.json key of openiort.io).
    centre = plan.phantom.applicator_centre_mm
    if centre is not None:
        plan_json.setdefault("applicator_centre_mm", [float(v) for v in centre])
    return plan_json


def compute_plan_files(
    case_data: dict[str, Any],
    out_dir: str,
    source_data: str | None = None,
    machine_data: str | None = None,
    hdr_source_data: str | None = None,
) -> WorkerOutcome:
    """Plan ``case_data`` and write plan.json, report.html, plan_arrays.npz, the patient
    summary and the viewer arrays into ``out_dir`` (created; nothing is left on failure).
    ``source_data`` is the department's x-ray source commissioning file, ``machine_data`` its
    electron machine file.
    """
    from openiort.pipeline import plan_case
    from openiort.web.safelog import code_locations

    started = time.perf_counter()
    ct_import = case_data.get(CT_IMPORT_KEY)
    case_data = {k: v for k, v in case_data.items() if k != CT_IMPORT_KEY}
    try:
        case = parse_case(case_data)
        ct_phantom = None
        if ct_import is not None:  # as `iort plan --ct --rtstruct --roi-map`
            from openiort.inputs.ct import load_ct

            ct_phantom, _ = load_ct(
                ct_import["ct_dir"],
                ct_import["rtstruct"],
                roi_names=ct_import["roi_map"],
                laterality=case.laterality,
                synonyms=False,  # the user confirmed every ROI's structure
            )
        xray_data = source_data if case.intent.technique == "xray" else None  # x-ray file
        if case.intent.technique == "hdr":
            xray_data = hdr_source_data  # the afterloader's source record
        electron_data = machine_data if case.intent.technique == "electron" else None
        plan = plan_case(
            case,
            Path(xray_data) if xray_data else None,
            machine_data=electron_data,
            ct_phantom=ct_phantom,
        )
        plan_json = write_plan_files(plan, case, out_dir)
        return WorkerOutcome("ok", plan_json, seconds=time.perf_counter() - started)
    except OpenIortInputError as exc:  # the case, or what it asks of the devices, cannot be used
        return WorkerOutcome("case", problems=list(exc.problems))
    except Exception as exc:  # reported to the user by reference only
        return WorkerOutcome(
            "error",
            error_type=type(exc).__name__,
            where=code_locations(exc),
            seconds=time.perf_counter() - started,
        )
