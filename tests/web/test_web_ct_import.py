"""CT import of a case with its mapping step (issue 16): a zip of a CT series and its RT
Structure Set uploaded through the page, the ROI names proposed from the synonym table, the
user's changes checked (laterality, duplicates, missing cavity), the confirmed mapping stored
with the CT. The CT is the session's demo plan exported as DICOM, its ROIs renamed with TG-263
and clinical names."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pydicom
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from web_testkit import DemoPlan, api_client, build_app, page_csrf, seed_case

from openiort.io.dicom_export import export_plan
from openiort.web import ct_import

TG263_NAMES = {
    "breast": "Breast_L",
    "skin": "Skin",
    "cavity": "Lumpectomy cavity",
    "target": "CTV_Boost",
    "chest_wall": "Chestwall_L",
    "ribs": "Ribs_L",
    "lung": "Lung_L",
    "heart": "Heart",
}


def _rename_rois(rs: Path, names: dict[str, str], drop: tuple[str, ...] = ()) -> None:
    ds = pydicom.dcmread(rs)
    dropped = {int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName in drop}
    for roi in ds.StructureSetROISequence:
        roi.ROIName = names.get(roi.ROIName, roi.ROIName)
    ds.StructureSetROISequence = [
        r for r in ds.StructureSetROISequence if int(r.ROINumber) not in dropped
    ]
    ds.RTROIObservationsSequence = [
        r for r in ds.RTROIObservationsSequence if int(r.ReferencedROINumber) not in dropped
    ]
    ds.ROIContourSequence = [
        r for r in ds.ROIContourSequence if int(r.ReferencedROINumber) not in dropped
    ]
    ds.save_as(rs)


@pytest.fixture(scope="module")
def ct_zip(tmp_path_factory: pytest.TempPathFactory, demo_plan: DemoPlan) -> bytes:
    """The demo plan's phantom as a CT of patient DEMO-001 with a TG-263-named structure set
    (the applicator removed: not on a CT taken before it is placed), zipped in folders."""
    out = tmp_path_factory.mktemp("ctzip") / "dicom"
    result = demo_plan.result
    export_plan(
        result.phantom,
        result.dose,
        result.to_json_dict(),
        out,
        patient_name="Doe^Jane",
        patient_id=demo_plan.case_data["patient"]["id"],
    )
    _rename_rois(out / "RS.dcm", TG263_NAMES, drop=("applicator",))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(out.iterdir()):
            if f.name.startswith(("CT", "RS")):
                zf.write(f, f"study/series/{f.name}")
            elif f.name.startswith("RD"):
                zf.write(f, f"study/other/{f.name}")  # other objects are dropped
        zf.writestr("README.txt", "not DICOM")
    return buffer.getvalue()


@pytest.fixture
def ct_app(tmp_path: Path, demo_plan: DemoPlan) -> Any:
    application = build_app(tmp_path / "web", demo_plan, max_upload_bytes=64 * 1024 * 1024)
    with TestClient(application):
        yield application


def _upload(client: TestClient, case_id: int, data: bytes, csrf: str | None = None) -> Any:
    csrf = csrf if csrf is not None else page_csrf(client, f"/cases/{case_id}/ct-import")
    return client.post(
        f"/cases/{case_id}/ct-import",
        data={"csrf_token": csrf},
        files={"archive": ("ct.zip", data, "application/zip")},
        follow_redirects=False,
    )


def _page_client(app: FastAPI, username: str = "phys") -> TestClient:
    client = api_client(app, username)
    client.headers.pop("X-CSRF-Token")  # the pages send the form's token, as a browser does
    return client


def _selected(text: str) -> dict[str, str]:
    rows = re.findall(
        r'<td class="mono">([^<]+)</td>\s*<td><select name="roi-\d+"[^>]*>(.*?)</select>',
        text,
        re.S,
    )
    out = {}
    for name, options in rows:
        chosen = re.search(r'<option value="([^"]+)" selected>', options)
        out[name.replace("&#39;", "'")] = chosen.group(1) if chosen else ""
    return out


def test_upload_lists_rois_with_their_default_structures(
    ct_app: FastAPI, demo_plan: DemoPlan, ct_zip: bytes
) -> None:
    case_id = seed_case(ct_app, demo_plan.case_data, patient_name="Doe^Jane")
    client = _page_client(ct_app)
    r = _upload(client, case_id, ct_zip)
    assert r.status_code == 303, r.text[:500]
    assert r.headers["location"] == f"/cases/{case_id}/ct-import?msg=uploaded"
    page = client.get(r.headers["location"])
    assert _selected(page.text) == {v: k for k, v in TG263_NAMES.items()}
    folder = ct_import.import_dir(ct_app.state.web.config.files_dir, case_id)
    assert (folder / "RS.dcm").is_file()
    info = ct_import.read_import(ct_app.state.web.config.files_dir, case_id)
    assert info is not None and info["slices"] == len(list((folder / "ct").iterdir())) > 10
    assert not list(folder.glob("*.txt"))  # the non-DICOM file and the RT Dose were dropped
    assert "Mapping not yet confirmed" in page.text


def test_user_changes_mapping_errors_beside_it_then_confirms(
    ct_app: FastAPI, demo_plan: DemoPlan, ct_zip: bytes
) -> None:
    case_id = seed_case(ct_app, demo_plan.case_data, patient_name="Doe^Jane")
    client = _page_client(ct_app)
    assert _upload(client, case_id, ct_zip).status_code == 303
    page = client.get(f"/cases/{case_id}/ct-import")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    names = list(_selected(page.text))
    choice = dict(_selected(page.text))
    # the cavity ignored, and the heart called the lung: both errors shown on the page
    wrong = {**choice, "Lumpectomy cavity": "ignore", "Heart": "lung"}
    form = {f"roi-{i}": wrong[n] for i, n in enumerate(names)}
    r = client.post(
        f"/cases/{case_id}/ct-import/mapping",
        data={"csrf_token": csrf, **form},
        follow_redirects=False,
    )
    assert r.status_code == 422
    assert "missing required" in r.text
    assert "2 ROIs are mapped to lung" in r.text
    # without a CSRF token: refused
    r = client.post(f"/cases/{case_id}/ct-import/mapping", data=form, follow_redirects=False)
    assert r.status_code == 403
    # the user's own choice: the CTV ignored (planning makes its own target)
    right = {**choice, "CTV_Boost": "ignore"}
    form = {f"roi-{i}": right[n] for i, n in enumerate(names)}
    r = client.post(
        f"/cases/{case_id}/ct-import/mapping",
        data={"csrf_token": csrf, **form},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:2000]
    info = ct_import.read_import(ct_app.state.web.config.files_dir, case_id)
    assert info is not None and info["confirmed"] and info["confirmed_by"] == "phys"
    assert info["mapping"]["CTV_Boost"] == "ignore"
    assert info["mapping"]["Lumpectomy cavity"] == "cavity"
    page = client.get(r.headers["location"])
    assert 'data-testid="mapping-confirmed"' in page.text


def test_other_side_roi_is_an_error_beside_it(
    ct_app: FastAPI, demo_plan: DemoPlan, ct_zip: bytes
) -> None:
    case_id = seed_case(ct_app, demo_plan.case_data, patient_name="Doe^Jane")
    client = _page_client(ct_app)
    assert _upload(client, case_id, ct_zip).status_code == 303
    info = ct_import.read_import(ct_app.state.web.config.files_dir, case_id)
    assert info is not None
    names = info["roi_names"]
    mapping = {**info["mapping"]}
    from openiort.case import parse_case

    left_case = parse_case(demo_plan.case_data)
    check = ct_import.check_mapping(left_case, names, mapping)
    assert check.ok and not check.warnings  # every organ at risk of the x-ray limits mapped
    renamed = [n.replace("Lung_L", "Lung_R") for n in names]
    mapping = {n.replace("Lung_L", "Lung_R"): s for n, s in mapping.items()}
    check = ct_import.check_mapping(left_case, renamed, mapping)
    assert check.by_roi["Lung_R"] == ["a structure of the right side, but the case is left-sided"]


def test_wrong_patient_ct_refused(ct_app: FastAPI, demo_plan: DemoPlan, ct_zip: bytes) -> None:
    data = {**demo_plan.case_data, "patient": {**demo_plan.case_data["patient"], "id": "OTHER-9"}}
    case_id = seed_case(ct_app, data)
    client = _page_client(ct_app)
    r = _upload(client, case_id, ct_zip)
    assert r.status_code == 422
    assert "right patient" in r.text
    assert ct_import.read_import(ct_app.state.web.config.files_dir, case_id) is None


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def test_unsafe_and_oversized_archives_refused(
    tmp_path: Path, demo_plan: DemoPlan, ct_zip: bytes
) -> None:
    app = build_app(tmp_path / "web", demo_plan, max_upload_bytes=len(ct_zip) + 10_000)
    with TestClient(app):
        case_id = seed_case(app, demo_plan.case_data, patient_name="Doe^Jane")
        client = _page_client(app)
        r = _upload(client, case_id, _zip({"../evil.dcm": b"x"}))
        assert r.status_code == 422 and "&#39;..&#39;" in r.text
        assert _upload(client, case_id, _zip({"a.dcm": b"x"}), csrf="forged").status_code == 403
        r = _upload(client, case_id, b"not a zip")
        assert r.status_code == 422 and "not a zip archive" in r.text
        r = _upload(client, case_id, _zip({"a.dcm": b"x"}))
        assert r.status_code == 422 and "no CT image" in r.text
        # beyond the upload limit: refused before it is read
        r = _upload(client, case_id, ct_zip + b"\0" * 20_000)
        assert r.status_code == 413
        # a viewer may look but not upload
        viewer = _page_client(app, "view")
        assert viewer.get(f"/cases/{case_id}/ct-import").status_code == 200
        assert _upload(viewer, case_id, ct_zip).status_code == 403
    assert not list(ct_import.imports_root(tmp_path / "web" / "plans").glob("case-*"))


def test_zip_bomb_stopped_at_the_unpacked_limit(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(_zip({"zeros.dcm": b"\0" * 5_000_000}))  # ~5 kB packed
    assert archive.stat().st_size < 50_000
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ct_import.CtImportError, match="more than 1000000 bytes"):
        ct_import.unpack_zip(archive, out, max_unzipped_bytes=1_000_000)


def _confirm_defaults(client: TestClient, case_id: int) -> None:
    page = client.get(f"/cases/{case_id}/ct-import")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    choice = _selected(page.text)
    form = {f"roi-{i}": choice[n] for i, n in enumerate(choice)}
    r = client.post(
        f"/cases/{case_id}/ct-import/mapping",
        data={"csrf_token": csrf, **form},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:2000]


def test_plan_on_the_imported_ct_is_queued_with_the_ct_and_map(
    tmp_path: Path, demo_plan: DemoPlan, ct_zip: bytes
) -> None:
    from web_testkit import stand_in_planner

    from openiort.web.worker import CT_IMPORT_KEY

    seen: list[dict[str, Any]] = []
    stand_in = stand_in_planner(demo_plan)

    def planner(case_data: dict[str, Any], out_dir: str) -> Any:
        seen.append(case_data)
        return stand_in(case_data, out_dir)

    app = build_app(tmp_path / "web", demo_plan, planner=planner, max_upload_bytes=64 << 20)
    with TestClient(app):
        case_id = seed_case(app, demo_plan.case_data, patient_name="Doe^Jane")
        client = _page_client(app)
        csrf = page_csrf(client, f"/cases/{case_id}/ct-import")
        # not before the mapping is confirmed
        assert _upload(client, case_id, ct_zip, csrf).status_code == 303
        r = client.post(
            f"/cases/{case_id}/ct-import/plan", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert r.status_code == 409 and "confirm the CT import" in r.text
        _confirm_defaults(client, case_id)
        assert 'data-testid="plan-on-ct"' in client.get(f"/cases/{case_id}/ct-import").text
        r = client.post(
            f"/cases/{case_id}/ct-import/plan", data={"csrf_token": csrf}, follow_redirects=True
        )
        assert r.status_code == 200
        assert "/plans/" in str(r.url) or "/jobs/" in str(r.url)
    assert len(seen) == 1
    job_ct = seen[0][CT_IMPORT_KEY]
    assert job_ct["roi_map"]["Lumpectomy cavity"] == "cavity"
    assert job_ct["roi_map"]["Heart"] == "heart"
    assert Path(job_ct["rtstruct"]).is_file()


def test_plan_on_the_imported_ct_end_to_end(
    tmp_path: Path, demo_plan: DemoPlan, ct_zip: bytes
) -> None:
    """The real planning worker through the queue, then the plan's DICOM download: its objects
    reference the imported CT (its series, study and patient) and no CT is written."""
    import time

    from openiort.web.worker import compute_plan_files

    app = build_app(
        tmp_path / "web", demo_plan, planner=compute_plan_files, max_upload_bytes=64 << 20
    )
    with TestClient(app):
        case_id = seed_case(app, demo_plan.case_data, patient_name="Doe^Jane")
        client = _page_client(app)
        csrf = page_csrf(client, f"/cases/{case_id}/ct-import")
        assert _upload(client, case_id, ct_zip, csrf).status_code == 303
        _confirm_defaults(client, case_id)
        r = client.post(
            f"/cases/{case_id}/ct-import/plan", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/jobs/")
        job_url, deadline = r.headers["location"], time.monotonic() + 120
        while True:
            r = client.get(job_url, follow_redirects=False)
            if r.status_code == 303 and r.headers["location"].startswith("/plans/"):
                break
            assert r.status_code == 200 and "failed" not in r.text.lower(), r.text[:2000]
            assert time.monotonic() < deadline, "plan on the CT not done in 120 s"
            time.sleep(0.5)
        plan_url = r.headers["location"]
        plan_json = client.get(f"{plan_url}/plan.json").json()
        assert "Lumpectomy cavity" in str(plan_json)
        dicom = client.get(f"{plan_url}/dicom.zip")
        assert dicom.status_code == 200, dicom.text[:1000]
    info = ct_import.read_import(app.state.web.config.files_dir, case_id)
    assert info is not None
    with zipfile.ZipFile(io.BytesIO(dicom.content)) as zf:
        names = zf.namelist()
        rs = pydicom.dcmread(io.BytesIO(zf.read("dicom/RS.dcm")))
    assert not [n for n in names if n.startswith("dicom/CT")]  # the patient's CT is referenced
    assert rs.StudyInstanceUID == info["study_instance_uid"]
    assert rs.PatientID == demo_plan.case_data["patient"]["id"]
    series = rs.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
    assert series.RTReferencedSeriesSequence[0].SeriesInstanceUID == info["series_instance_uid"]


def test_an_ignored_roi_named_like_a_structure_is_not_used() -> None:
    assert ct_import.roi_map_of({"heart": "ignore", "Herz": "heart", "Lung_R": "ignore"}) == {
        "Herz": "heart",
        "heart": "heart (ignored)",
    }
