"""End-to-end: Debian's Chromium (headless, driven by Playwright) against ``iort serve``
(uvicorn in its own process, real planning worker) on 127.0.0.1.

Log in, enter a case (first with a wrong value, shown beside its field), see the verdicts,
compute the plan, scroll the dose slices, review, approve, download the PDF and the DICOM
files, compute the console values of the day and record the delivery against them; a viewer
cannot approve; a logged-out user is sent to the login page. The server's log is checked for
patient data at the end of each test that entered some.

Set ``OPENIORT_WEB_SCREENSHOTS=<folder>`` to save screenshots of the main pages there.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pydicom
import pypdf
import pytest
from web_testkit import (
    DEPARTMENT_SOURCE,
    PASSWORD,
    REPO,
    SEAL_KEY,
    SESSION_SECRET,
    USERS,
    DemoPlan,
    link_tree,
    user,
)

from openiort.records import service
from openiort.records import users as users_module
from openiort.records.chain import bind_key
from openiort.records.db import prepare_database, session_scope
from openiort.records.department import set_setting
from openiort.web.caseform import FIELDS, case_data_to_form

# One worker runs the whole module (make test runs xdist with --dist loadgroup), so the browser
# tests do not start Chromium and a server on both workers at once.
pytestmark = pytest.mark.xdist_group("browser-e2e")
import playwright.sync_api as playwright_api  # noqa: E402  (missing fails, never skips)

expect = playwright_api.expect

CHROMIUM = os.environ.get("OPENIORT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PATIENT_ID = "E2E-0001"
PATIENT_NAME = "Erika Endtoend"
SERVER_START_S = 90.0
PLAN_TIMEOUT_MS = 180_000  # worker start-up plus a 10-20 s plan on a busy 2-core machine
DOWNLOAD_TIMEOUT_MS = 180_000


@dataclass(frozen=True)
class Server:
    url: str
    database_url: str
    files_dir: Path
    log: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``iort serve`` in a subprocess on a free port, with the test users registered."""
    root = tmp_path_factory.mktemp("e2e")
    database_url = f"sqlite:///{root / 'records.sqlite3'}"
    engine = prepare_database(database_url)
    bind_key(engine, SEAL_KEY)  # the server's key (OPENIORT_SEAL_KEY below) signs the record
    with session_scope(engine) as s:
        for name, role in USERS.items():
            users_module.create_user(s, name, role, PASSWORD)
        # One browser user computes, reviews and approves: the department turns the
        # four-eyes rule off (an audited setting; test_web_flows tests the rule).
        set_setting(s, "four-eyes", False, reason="e2e: one user in the browser")
    engine.dispose()
    port = _free_port()
    files_dir = root / "plans"
    log = root / "server.log"
    env = {
        **os.environ,
        "OPENIORT_DATA_DIR": str(root / "data"),
        "OPENIORT_SEAL_KEY": SEAL_KEY.decode(),
        "OPENIORT_SESSION_SECRET": SESSION_SECRET.decode(),
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(REPO / ".numba_cache")),
    }
    code = (
        "from pathlib import Path\n"
        "from openiort.web.commands import serve\n"
        f"serve(host='127.0.0.1', port={port}, database_url={database_url!r}, "
        f"files_dir=Path({str(files_dir)!r}), plan_workers=1, max_pending_plans=4, "
        "four_eyes=None, ssl_certfile=None, ssl_keyfile=None, forwarded_allow_ips=None, "
        f"log_level='info', xray_source_data=Path({str(DEPARTMENT_SOURCE)!r}))\n"
    )
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_S
    try:
        while True:
            try:
                if httpx.get(url + "/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n" + log.read_text(errors="replace"))
            time.sleep(0.3)
        yield Server(url, database_url, files_dir, log)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's chromium package "
            "(the project's set-up does) or set OPENIORT_CHROMIUM"
        )
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _shoot(page: object, name: str) -> None:
    folder = os.environ.get("OPENIORT_WEB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)  # type: ignore[attr-defined]


def _shoot_section(locator: object, name: str) -> None:
    """A screenshot of one part of a page (the screenshot folder as for :func:`_shoot`)."""
    folder = os.environ.get("OPENIORT_WEB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        locator.screenshot(path=str(Path(folder) / name))  # type: ignore[attr-defined]


def _until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def _watch_console(page: object) -> list[str]:
    """Script errors and CSP violations of the page (an HTTP error status, such as the 422
    of a rejected form, is logged by the browser too and is not counted)."""
    errors: list[str] = []

    def on_console(message: object) -> None:
        text = message.text  # type: ignore[attr-defined]
        if message.type == "error" and not text.startswith("Failed to load resource"):  # type: ignore[attr-defined]
            errors.append(text)

    page.on("console", on_console)  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: errors.append(str(exc)))  # type: ignore[attr-defined]
    return errors


def _login(page: object, server: Server, username: str) -> None:
    page.goto(server.url + "/login")  # type: ignore[attr-defined]
    page.fill("#username", username)  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r".*/cases$"))  # type: ignore[attr-defined]


def test_logged_out_user_is_sent_to_login(server: Server, browser: object) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(server.url + "/plans/1")
    assert re.search(r"/login\?next=/plans/1$", page.url)
    assert page.locator("h1").inner_text() == "Log in"
    _shoot(page, "web-login.png")
    context.close()


def test_enter_plan_approve_download(
    server: Server, browser: object, tmp_path: Path, demo_plan: DemoPlan
) -> None:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(30_000)
    console_errors = _watch_console(page)
    _login(page, server, "phys")

    # Case entry: a wrong value is reported beside its field and the entries are kept.
    page.click("text=New case")
    page.fill("#f-patient_name", PATIENT_NAME)
    # Every field of the demo case, as a user would enter it, with one value out of range.
    values = case_data_to_form(demo_plan.case_data)
    values["patient.id"] = PATIENT_ID
    values["anatomy.cavity_diameter_mm"] = "300"  # wrong: the model allows 10-80 mm
    for name, value in values.items():
        selector = "#f-" + name.replace(".", "\\.")
        if FIELDS[name].kind == "select":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    page.click("button:has-text('Save case')")
    error = page.locator('.field-error[data-field="anatomy.cavity_diameter_mm"]')
    assert "less than or equal to 80" in error.inner_text()
    field = page.locator(".field.has-error").filter(
        has=page.locator("#f-anatomy\\.cavity_diameter_mm")
    )
    assert field.count() == 1  # the message sits in the field's own box
    assert page.input_value("#f-pathology\\.size_mm") == "14"
    _shoot(page, "web-case-entry.png")
    page.fill("#f-anatomy\\.cavity_diameter_mm", "30")
    page.click("button:has-text('Save case')")
    page.wait_for_url(re.compile(r".*/cases/\d+\?msg=created$"))

    # Verdicts.
    verdicts = page.locator('[data-testid="verdicts"]')
    assert verdicts.locator('[data-guideline="ASTRO-2017"]').inner_text() == "suitable"
    assert verdicts.locator('[data-guideline="GEC-ESTRO-2010"]').inner_text() == "low-risk"
    _shoot(page, "web-case.png")

    # Plan: the real worker computes it; the job page refreshes itself until done.
    page.click('[data-testid="plan-button"]')
    page.wait_for_url(re.compile(r".*/plans/\d+$"), timeout=PLAN_TIMEOUT_MS)
    assert page.locator('[data-testid="plan-status"]').inner_text() == "draft"
    treatment = page.locator('[data-testid="treatment-time"]').inner_text()
    assert re.match(r"\d+\.\d\d min", treatment)

    # Scroll the dose slices.
    # (Locator assertions, not wait_for_function: the pages' CSP forbids string evaluation.)
    image = page.locator('[data-testid="slice-image"]')
    _until(lambda: image.evaluate("img => img.complete && img.naturalWidth") > 0)
    first_src = image.get_attribute("src")
    first_label = page.locator("#slice-position").inner_text()
    image.focus()
    for _ in range(5):
        page.keyboard.press("ArrowDown")
    expect(image).not_to_have_attribute("src", first_src or "")
    assert page.locator("#slice-position").inner_text() != first_label
    page.click("button.axis[data-axis=coronal]")
    expect(image).to_have_attribute("src", re.compile(r"/coronal/\d+\.png$"))
    page.locator("#slice-slider").fill("20")
    expect(image).to_have_attribute("src", re.compile(r"/coronal/20\.png$"))
    _until(lambda: image.evaluate("img => img.complete && img.naturalWidth") > 0)
    page.click("button.axis[data-axis=axial]")
    # DVH read-out at the pointer.
    dvh = page.locator("svg.dvh")
    dvh.scroll_into_view_if_needed()
    box = dvh.bounding_box()
    assert box is not None
    dvh.hover(position={"x": box["width"] * 0.4, "y": box["height"] * 0.5})
    assert re.match(r"\d+\.\d\d Gy:.*target \d+\.\d %", page.locator("#dvh-readout").inner_text())
    _shoot(page, "web-plan.png")

    # Review and approve (the approval asks for the password again).
    page.click('[data-testid="review-accept"]')
    page.wait_for_url(re.compile(r".*msg=reviewed$"))
    assert page.locator('[data-testid="plan-status"]').inner_text() == "reviewed"
    page.fill("#approve-password", PASSWORD)
    page.click('[data-testid="approve-button"]')
    page.wait_for_url(re.compile(r".*msg=approved$"))
    assert page.locator('[data-testid="plan-status"]').inner_text() == "approved"
    assert "Approved and sealed" in page.locator('[data-testid="seal"]').inner_text()
    _shoot(page, "web-plan-approved.png")

    # Downloads.
    with page.expect_download(timeout=DOWNLOAD_TIMEOUT_MS) as info:
        page.click('[data-testid="download-pdf"]')
    pdf_path = tmp_path / "report.pdf"
    info.value.save_as(pdf_path)
    text = pypdf.PdfReader(pdf_path).pages[0].extract_text()
    assert "Treatment record: approved" in text and f"IORT plan report: {PATIENT_ID}" in text
    # The chart on the first page names the patient as entered in the web app.
    assert PATIENT_NAME in text and "Medical physicist" in text and "Radiation oncologist" in text
    with page.expect_download(timeout=DOWNLOAD_TIMEOUT_MS) as info:
        page.click('[data-testid="download-dicom"]')
    zip_path = tmp_path / "dicom.zip"
    info.value.save_as(zip_path)
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        assert {"dicom/RS.dcm", "dicom/RD.dcm", "dicom/RP.dcm"} <= names
        assert sum(n.startswith("dicom/CT_") for n in names) > 50
        rtplan = pydicom.dcmread(io.BytesIO(zf.read("dicom/RP.dcm")))
    assert rtplan.ApprovalStatus == "APPROVED" and rtplan.PatientID == PATIENT_ID
    with page.expect_download() as info:
        page.click('[data-testid="download-json"]')
    assert '"seal"' in Path(info.value.path()).read_text("utf-8")

    # The day's output check of the source in the probe adapter, on the QA page: reading 10.2
    # against 10.0 at reference air gives the output factor 1.02 (issue 15); without it the
    # delivery below would be refused.
    plan_url = page.url
    page.goto(server.url + "/qa")
    serial = demo_plan.plan_json["delivery"]["device"]["serial"]
    for field, value in (
        ("source_serial", serial), ("chamber_serial", "PTW-34013-0525"), ("reading", "10.2"),
        ("reference_reading", "10.0"), ("pressure_hpa", "1013.25"), ("temperature_c", "20"),
        ("tolerance_pct", "5"),
    ):  # fmt: skip
        page.fill(f"#o-{field}", value)
    page.click('[data-testid="qa-output-button"]')
    page.wait_for_url(re.compile(r".*msg=qa-recorded$"))
    assert "1.0200" in page.locator('[data-testid="qa-output-checks"]').inner_text()
    page.goto(plan_url.split("?")[0])

    # The conditions of the day: today's output factor 1.02 divides the time (`iort console`).
    planned_text = page.locator('[data-testid="treatment-time"]').inner_text()
    planned = float(planned_text.split()[0])
    planned_s = float(re.search(r"\(([\d.]+) s\)", planned_text).group(1))  # type: ignore[union-attr]
    today_section = page.locator('[data-testid="console-today"]')
    page.fill("#c-output", "1.02")
    page.fill("#c-fraction", "1")
    page.click('[data-testid="console-compute"]')
    today_text = today_section.locator('[data-testid="console-today-value"]').inner_text()
    today_s = float(re.search(r"\(([\d.]+) s\)", today_text).group(1))  # type: ignore[union-attr]
    assert today_s == pytest.approx(planned_s / 1.02, abs=0.1)
    factors = today_section.locator('[data-testid="console-factors"]').inner_text()
    assert "daily output: 1.02000 (day's QA record)" in factors
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d$", page.input_value("#c-at"))  # now, UTC
    _shoot_section(today_section, "web-console-today.png")

    # Delivery: the reference time no longer matches and is refused; the day's is recorded.
    page.fill("#d-applicator", "3")
    page.fill("#d-time", f"{planned:.2f}")
    page.click('[data-testid="delivery-button"]')
    refused = page.locator('[data-testid="delivery-errors"]')
    assert "treatment time: entered" in refused.inner_text()
    assert "for the conditions of the day" in refused.inner_text()
    assert page.input_value("#d-time") == f"{planned:.2f}"  # the entry is kept
    _shoot(page, "web-delivery-refused.png")
    minutes, rest = divmod(today_s, 60.0)
    page.fill("#d-time", f"{int(minutes)}:{rest:04.1f}")  # as the console shows it, mm:ss.s
    page.click('[data-testid="delivery-button"]')
    page.wait_for_url(re.compile(r".*msg=delivered$"))
    assert page.locator('[data-testid="plan-status"]').inner_text() == "delivered"
    assert console_errors == []
    context.close()
    _assert_log_holds_no_patient_data(server)


def test_viewer_cannot_approve(server: Server, browser: object, demo_plan: DemoPlan) -> None:
    # A reviewed plan filed directly in the server's database and plan folder.
    engine = prepare_database(server.database_url)
    bind_key(engine, SEAL_KEY)  # the server's key signs the record
    data = {**demo_plan.case_data, "patient": {**demo_plan.case_data["patient"], "id": "E2E-VIEW"}}
    with session_scope(engine) as s:
        from openiort.web.operations import new_case

        case = new_case(s, user(s, "surg"), data)
        plan_json = {**demo_plan.plan_json, "case_id": "E2E-VIEW"}
        plan_id = service.store_plan(s, user(s, "phys"), case.id, plan_json).id
        service.review_plan(s, user(s, "onc"), plan_id)
    engine.dispose()
    link_tree(demo_plan.folder, server.files_dir / str(plan_id))

    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    _login(page, server, "view")
    page.goto(f"{server.url}/plans/{plan_id}")
    assert page.locator('[data-testid="plan-status"]').inner_text() == "reviewed"
    assert page.locator('[data-testid="approve-form"]').count() == 0
    assert (
        "Only physicists and oncologists approve"
        in page.locator('[data-testid="no-approve"]').inner_text()
    )
    # Posting the approval anyway (with the page's own CSRF token) is refused.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = page.request.post(
        f"{server.url}/plans/{plan_id}/approve",
        form={"csrf_token": token or "", "password": PASSWORD},
        headers={"Origin": server.url},
        max_redirects=0,
    )
    assert response.status == 403
    page.reload()
    assert page.locator('[data-testid="plan-status"]').inner_text() == "reviewed"
    context.close()
    _assert_log_holds_no_patient_data(server)


def _assert_log_holds_no_patient_data(server: Server) -> None:
    """Called at the end of each test that entered and viewed a patient's plan.

    Inside those tests, not a separate one, so it always reads the log of the server that saw
    the patient: xdist may run another module between two of these tests, and the module's
    server is then started again."""
    log = server.log.read_text(errors="replace")
    assert "GET /plans/{plan_id}" in log  # the access log names routes, not paths
    for secret in (PATIENT_ID, PATIENT_NAME, "Erika", "E2E-VIEW"):
        assert secret not in log
    assert "Traceback" not in log
