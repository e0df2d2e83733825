"""Plan pages: planning jobs, the plan with its dose viewer, review, approval, downloads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from openiort.io.plan_dir import PLAN_DIR_KEYS
from openiort.plan import REPORT_DEPTHS_MM, depth_key
from openiort.plan_document import AnyPlanDocument, parse_plan_document
from openiort.plan_figures import FIGURES_OF, ElectronFigures, Figures, HdrFigures, XrayFigures
from openiort.records.delivery import remaining
from openiort.records.errors import NotFoundError
from openiort.records.models import Plan
from openiort.records.plan_data import planned_delivery
from openiort.records.qa import list_qa_checks
from openiort.records.seal import UNSEALED_KEYS
from openiort.web import downloads, operations
from openiort.web.auth import check_csrf, page_user
from openiort.web.dvhplot import dvh_legend, dvh_svg
from openiort.web.routing import CaseId, PlanId, message, redirect
from openiort.web.slices import AXES, ViewerError, legend, render_slice_png
from openiort.web.state import web_of
from openiort.web.worker import OUTPUTS_KEY

router = APIRouter(include_in_schema=False)

# (top, left, right, bottom) labels of each view, radiological convention.
ORIENTATIONS = {
    "axial": ("A", "R", "L", "P"),
    "coronal": ("S", "R", "L", "I"),
    "sagittal": ("S", "A", "P", "I"),
}
SLICE_SCALE = 3


@router.post("/cases/{case_id}/plans", dependencies=[Depends(check_csrf)])
def start_plan(request: Request, case_id: CaseId, version: int | None = Form(None)) -> Response:
    web = web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        job = operations.start_plan(web, s, user, case_id, version)
    return redirect(f"/jobs/{job.id}")


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str) -> Response:
    web = web_of(request)
    with web.db() as s:
        page_user(request, s)
    job = web.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, detail="no such planning job (jobs are kept for an hour)")
    if job.state == "done" and job.plan_id is not None:
        return redirect(f"/plans/{job.plan_id}")
    info = job.to_dict(web.jobs.position(job))
    return web.render(
        request,
        "job.html",
        {"job": job, "position": info["queue_position"], "computing_s": info["computing_s"]},
    )


# What the record keeps beside plan.json's content: the web worker's file hashes and the
# applicator position for the DICOM export, an export's approval and seal, and the dose keys
# that plan directories of earlier releases added.
_BESIDE_THE_DOCUMENT = frozenset(
    {OUTPUTS_KEY, "applicator_centre_mm", *(UNSEALED_KEYS - {"status"}), *PLAN_DIR_KEYS}
)


def stored_plan_document(pj: Mapping[str, Any]) -> AnyPlanDocument | None:
    """A stored plan's JSON as its typed plan document, or None for a plan stored by a
    release before the typed deliveries (its JSON has no ``delivery`` block)."""
    try:
        return parse_plan_document({k: v for k, v in pj.items() if k not in _BESIDE_THE_DOCUMENT})
    except ValidationError:
        return None


def stored_plan_figures(pj: Mapping[str, Any], document: AnyPlanDocument | None) -> Figures | None:
    """The technique's plan figures of a stored plan: its document's, or for a plan stored by
    an earlier release, the same figures read from its top-level keys (None if they do not
    read as the technique's figures)."""
    if document is not None:
        return document  # a plan document is also its technique's figures
    figures = FIGURES_OF.get(str(pj.get("technique")))
    if figures is None:
        return None
    try:
        return figures.model_validate({k: pj[k] for k in figures.model_fields if k in pj})
    except ValidationError:
        return None


def _summary_rows(figures: Figures | None) -> list[tuple[str, str]]:
    if isinstance(figures, XrayFigures):
        other = figures.prescription_other_definition
        check = figures.second_check
        return [
            ("treatment time basis", figures.treatment_time_label),
            (
                "same prescription in the other definition",
                f"{other.dose_gy:.2f} Gy ({other.dose_definition})",
            ),
            (
                "independent second check",
                f"{check.treatment_time_min:.2f} min ({check.difference_pct:+.2f} %)",
            ),
        ]
    if isinstance(figures, ElectronFigures):
        mu_check = figures.second_check
        return [
            ("treatment time basis", figures.treatment_time_label),
            (
                "independent second check",
                f"{mu_check.monitor_units} MU ({mu_check.difference_pct:+.1f} %)",
            ),
            ("pressure (hPa)", str(figures.pressure_hpa)),
        ]
    if isinstance(figures, HdrFigures):
        rows = [
            ("source", figures.source_title),
            ("air-kerma strength (U)", str(figures.air_kerma_strength_u)),
            ("TRAK (uGy at 1 m)", str(figures.trak_ugy_at_1m)),
            ("dwell positions", str(len(figures.dwell_times_s))),
            (
                "V150 / V200 (tissue)",
                f"{figures.hot_spots.v150_cc:.1f} cc / {figures.hot_spots.v200_cc:.1f} cc",
            ),
        ]
        record, course = figures.source_record, figures.course
        if record:
            rows.append(
                (
                    "source record",
                    f"{record['afterloader_name']}, source {record['source_serial']}, "
                    f"certificate {record['certificate_air_kerma_strength_u']:g} U at "
                    f"{record['certificate_reference_utc']}",
                )
            )
        if course and course.get("fractions", 1) > 1:
            rows.append(
                (
                    "course",
                    f"{course['fractions']} x {course['prescription_per_fraction_gy']:g} Gy = "
                    f"{course['total_prescription_gy']:g} Gy, at least "
                    f"{course['min_interval_h']:g} h apart",
                )
            )
        return rows
    return []


def _axes(volume: Any) -> list[dict[str, Any]]:
    grid = volume.meta["grid"]
    centre = volume.meta["centre_index_zyx"]
    out = []
    for i, name in enumerate(AXES):
        coord = "zyx"[i]
        spacing = float(grid["spacing_mm"][2 - i])
        origin = float(grid["origin_mm"][2 - i])
        count = volume.axis_length(name)
        index = int(centre[i])
        shape = volume.shape
        width_cells = shape[2] if name in ("axial", "coronal") else shape[1]
        col_mm = grid["spacing_mm"][0] if name in ("axial", "coronal") else grid["spacing_mm"][1]
        finest = min(grid["spacing_mm"])
        out.append(
            {
                "name": name,
                "coord": coord,
                "count": count,
                "index": index,
                "origin_mm": origin,
                "spacing_mm": spacing,
                "orient": ORIENTATIONS[name],
                "width_px": int(width_cells * round(SLICE_SCALE * col_mm / finest)),
            }
        )
    return out


def plan_context(request: Request, s: Any, user: Any, plan_id: PlanId) -> dict[str, Any]:
    web = web_of(request)
    plan = operations.load_plan(web, s, user, plan_id)
    pj = plan.plan_json
    document = stored_plan_document(pj)
    volume = web.viewer_volume(plan.id)
    curves = volume.meta["dvh"]["curves"]
    if document is not None:
        clinical = document.clinical
    else:  # a plan stored by an earlier release
        clinical = pj.get("clinical") if isinstance(pj.get("clinical"), dict) else None
    approver_role = (
        plan.approval.approver_role
        if plan.approval
        else (plan.approved_by.role if plan.approved_by else "")
    )
    checks: list[Any] = []
    if plan.status == "approved":
        outputs, _ = list_qa_checks(s)
        checks = [c for c in outputs if c.technique == plan.technique][:10]
    return {
        "plan": plan,
        "case": plan.case,
        "patient": plan.case.patient,
        "pj": pj,
        "document": document,
        "console": planned_delivery(pj),
        "summary_rows": _summary_rows(stored_plan_figures(pj, document)),
        "reviews": plan.reviews,
        "approver_role": approver_role,
        "deliveries": plan.deliveries,
        "remaining": remaining(plan) if plan.status in ("approved", "delivered") else None,
        "output_checks": checks,
        "axes": _axes(volume),
        "orientations": ORIENTATIONS,
        "legend": legend(volume),
        "dose_medium": volume.meta.get("dose_medium", ""),
        "dvh_svg": dvh_svg(
            curves, volume.meta["dvh"]["max_dose_gy"], volume.meta["prescription_gy"]
        ),
        "dvh_legend": dvh_legend(curves),
        "dvh_curves": curves,
        "depth_keys": [depth_key(z) for z in REPORT_DEPTHS_MM],
        "verdicts": clinical.get("verdicts", []) if clinical else [],
        "message": message(request),
        "delivery_errors": [],
        "delivery_values": {},
    }


@router.get("/plans/{plan_id}", response_class=HTMLResponse)
def plan_page(request: Request, plan_id: PlanId) -> Response:
    web = web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        return web.render(request, "plan.html", plan_context(request, s, user, plan_id))


@router.get("/plans/{plan_id}/slices/{axis}/{index}.png")
def slice_png(
    request: Request,
    plan_id: PlanId,
    axis: Annotated[str, Path(max_length=10)],
    index: Annotated[int, Path(ge=0, le=100_000)],
) -> Response:
    web = web_of(request)
    if axis not in AXES:
        raise ViewerError(f"axis: one of {', '.join(AXES)}")
    with web.db() as s:
        page_user(request, s)
        # Display only, and the most frequent request: the plan must exist, but its seal is
        # checked by the plan page and every download, not for each slice.
        pid = s.scalar(select(Plan.id).where(Plan.id == plan_id))  # no plan JSON loaded
        if pid is None:
            raise NotFoundError(f"plan {plan_id} does not exist")
    key = (pid, axis, index)
    png = web.png_cache.get(key)
    if png is None:
        volume = web.viewer_volume(pid)
        png = render_slice_png(volume, axis, index, scale=SLICE_SCALE)
        web.png_cache.put(key, png)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=600"})


@router.post("/plans/{plan_id}/review", dependencies=[Depends(check_csrf)])
def review_submit(
    request: Request,
    plan_id: PlanId,
    decision: str = Form(...),
    comment: str = Form("", max_length=4000),
) -> Response:
    if decision not in ("accept", "changes"):
        raise HTTPException(400, detail="decision: accept or changes")
    web = web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        operations.load_plan(web, s, user, plan_id)
        operations.review(s, user, plan_id, decision == "accept", comment or None)
    return redirect(f"/plans/{plan_id}?msg={'reviewed' if decision == 'accept' else 'changes'}")


@router.post("/plans/{plan_id}/approve", dependencies=[Depends(check_csrf)])
def approve_submit(
    request: Request,
    plan_id: PlanId,
    password: str = Form(..., max_length=2000),
    comment: str = Form("", max_length=4000),
) -> Response:
    web = web_of(request)
    with web.db() as s:
        user = page_user(request, s)
        operations.require_approver(user)
        try:
            operations.check_approval_password(web, request, user, password)
        except HTTPException as exc:
            code = "throttled" if exc.status_code == 429 else "wrong-password"
            return redirect(f"/plans/{plan_id}?msg={code}")
        operations.approve(web, s, user, plan_id, comment or None)
    return redirect(f"/plans/{plan_id}?msg=approved")


@router.get("/plans/{plan_id}/report.pdf")
def report_pdf(request: Request, plan_id: PlanId) -> Response:
    return downloads.report_pdf_response(request, plan_id, page_user)


@router.get("/plans/{plan_id}/report.html", response_class=HTMLResponse)
def report_html(request: Request, plan_id: PlanId) -> Response:
    return downloads.report_html_response(request, plan_id, page_user)


@router.get("/plans/{plan_id}/dicom.zip")
def dicom_zip(request: Request, plan_id: PlanId, anonymise: bool = False) -> Response:
    return downloads.dicom_zip_response(request, plan_id, page_user, anonymise)


@router.get("/plans/{plan_id}/treatment-records.zip")
def treatment_records_zip(request: Request, plan_id: PlanId) -> Response:
    return downloads.treatment_record_zip_response(request, plan_id, page_user)


@router.get("/plans/{plan_id}/plan.json")
def plan_json(request: Request, plan_id: PlanId) -> Response:
    return downloads.plan_json_response(request, plan_id, page_user)
