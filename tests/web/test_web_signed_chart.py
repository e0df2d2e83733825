"""The approved PDF is printed only while its chart matches the chart signed at approval
(issue 17): a chart changed in the database is refused; a genuine approved plan, also one whose
patient's name was corrected after approval, prints as before."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from web_testkit import DemoPlan, api_client, seed_case, seed_plan, user, web_of

from openiort.records import TamperedPlanError, service
from openiort.records.db import session_scope
from openiort.records.models import Approval
from openiort.report.pdf import TreatmentChart, print_html
from openiort.web import downloads


@pytest.fixture(autouse=True)
def _quick_print(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_print(report_html: str, chart: TreatmentChart | None = None) -> bytes:
        return print_html(report_html, chart).encode("utf-8")

    monkeypatch.setattr(downloads, "html_report_to_pdf", fake_print)


def test_a_genuine_approved_chart_is_printed(app: FastAPI, demo_plan: DemoPlan) -> None:
    plan_id = seed_plan(app, demo_plan, seed_case(app, demo_plan.case_data), "approved")
    r = api_client(app, "view").get(f"/plans/{plan_id}/report.pdf")
    assert r.status_code == 200, r.text


def test_a_changed_chart_is_not_printed(app: FastAPI, demo_plan: DemoPlan) -> None:
    plan_id = seed_plan(app, demo_plan, seed_case(app, demo_plan.case_data), "approved")
    web = web_of(app)
    table: sa.Table = Approval.__table__  # type: ignore[assignment]
    with session_scope(web.engine) as s:
        chart = dict(service.get_plan(s, plan_id).approval.chart_json)  # type: ignore[union-attr]
        chart["patient"] = {**chart["patient"], "birth_date": "1950-01-01"}
        s.execute(sa.update(table).where(table.c.plan_id == plan_id).values(chart_json=chart))
    # The page refuses the plan (its record no longer verifies) ...
    r = api_client(app, "view").get(f"/plans/{plan_id}/report.pdf")
    assert r.status_code == 409
    # ... and the PDF maker checks the signed chart itself, whoever calls it.
    with session_scope(web.engine) as s:
        plan = service.get_plan(s, plan_id)
        with pytest.raises(TamperedPlanError, match="signed chart"):
            downloads.report_pdf_path(web.files, plan)
    assert not list((web.files.plan_dir(plan_id) / "cache").glob("report-*.pdf"))


def test_a_name_corrected_after_approval_still_prints(app: FastAPI, demo_plan: DemoPlan) -> None:
    plan_id = seed_plan(app, demo_plan, seed_case(app, demo_plan.case_data), "approved")
    web = web_of(app)
    with session_scope(web.engine) as s:
        patient_id = service.get_plan(s, plan_id).case.patient_id
        service.update_patient(s, user(s, "surg"), patient_id, name="Corrected Name")
    r = api_client(app, "view").get(f"/plans/{plan_id}/report.pdf")
    assert r.status_code == 200, r.text
    assert "Corrected Name" in r.text  # the record as it is (fake printer: HTML)
