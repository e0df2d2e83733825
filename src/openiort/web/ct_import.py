"""A case's CT import: a zip of one CT series and its RT Structure Set, unpacked with guards,
its ROI names mapped onto openiort's structures, the mapping checked, stored with the CT.

What a case's import folder holds (``<files_dir>/ct-imports/case-<id>/``): ``ct/`` (the CT
slices), ``RS.dcm`` (the structure set) and ``import.json`` (the ROI names found, the mapping
and whether it was confirmed; UIDs but no patient identifiers). A new upload replaces the
folder whole. The page (:mod:`openiort.web.pages_ct_import`) proposes each ROI's structure from
the default synonym table (:mod:`openiort.inputs.roi_names`); the user may change any, and the
confirmed mapping is the ``roi_names`` map a plan on this CT is loaded with
(:func:`openiort.inputs.ct.load_ct`, as ``iort plan --ct --rtstruct --roi-map``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from openiort.anatomy.phantom import STRUCTURE_NAMES
from openiort.case import Case
from openiort.errors import OpenIortInputError
from openiort.inputs.roi_names import SIDES, _side_of, default_synonyms, normalise
from openiort.io.ct_reference import CtReference

IMPORTS_DIRNAME = "ct-imports"
IMPORT_JSON = "import.json"
RS_NAME = "RS.dcm"
CT_DIRNAME = "ct"
MAX_ENTRIES = 5000  # a CT series is a few hundred slices
COPY_CHUNK = 1024 * 1024
# What an ROI may be mapped to on the page (the structures planning and the limits use).
STRUCTURE_CHOICES = (
    "cavity",
    "target",
    "skin",
    "breast",
    "chest_wall",
    "ribs",
    "lung",
    "heart",
    "applicator",
)
IGNORE = "ignore"
CT_TECHNIQUES = ("xray", "hdr")  # planning on a CT (openiort.pipeline.plan_case)


class CtImportError(OpenIortInputError):
    """A CT import that cannot be used (one line per problem)."""


@dataclass
class ImportCheck:
    """A mapping's problems: beside each ROI, and for the mapping as a whole."""

    by_roi: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.general and not any(self.by_roi.values())


def imports_root(files_dir: Path) -> Path:
    return files_dir / IMPORTS_DIRNAME


def import_dir(files_dir: Path, case_id: int) -> Path:
    return imports_root(files_dir) / f"case-{int(case_id)}"


def _safe_member(name: str) -> bool:
    """A relative path without '..', drive or backslash tricks."""
    if "\\" in name or name.startswith("/") or ":" in name.split("/", 1)[0]:
        return False
    return ".." not in PurePosixPath(name).parts


def unpack_zip(archive: Path, dest: Path, max_unzipped_bytes: int) -> list[Path]:
    """Unpack ``archive``'s files into ``dest`` under numbered names (the archive's own paths
    are never used as paths). Refused: not a zip, an entry with '..' or an absolute path, more
    than MAX_ENTRIES entries, and more than ``max_unzipped_bytes`` unpacked (counted as the
    bytes come out, so a zip whose headers understate its sizes is stopped too)."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError):
        raise CtImportError("the upload is not a zip archive") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        bad = [i.filename for i in zf.infolist() if not _safe_member(i.filename)]
        if bad:
            raise CtImportError(
                f"the zip has {len(bad)} entries with '..' or an absolute path: refused"
            )
        if len(infos) > MAX_ENTRIES:
            raise CtImportError(f"the zip has {len(infos)} files; at most {MAX_ENTRIES}")
        if sum(i.file_size for i in infos) > max_unzipped_bytes:
            raise CtImportError(
                f"the zip would unpack to more than {max_unzipped_bytes} bytes: refused"
            )
        written: list[Path] = []
        total = 0
        for n, info in enumerate(infos):
            out = dest / f"{n:05d}.dcm"
            try:
                with zf.open(info) as src, out.open("wb") as dst:
                    while chunk := src.read(COPY_CHUNK):
                        total += len(chunk)
                        if total > max_unzipped_bytes:
                            raise CtImportError(
                                f"the zip unpacks to more than {max_unzipped_bytes} bytes: refused"
                            )
                        dst.write(chunk)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
                raise CtImportError(f"the zip is damaged ({type(exc).__name__})") from None
            except NotImplementedError:
                raise CtImportError("the zip uses a compression method not supported") from None
            written.append(out)
        return written


def _sort_files(files: list[Path], ct_dir: Path, rs_path: Path) -> int:
    """Move the CT slices into ``ct_dir`` and the one RT Structure Set to ``rs_path``; other
    files (other objects, non-DICOM) are dropped. Returns the number of CT slices."""
    structure_sets: list[Path] = []
    slices = 0
    ct_dir.mkdir()
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["Modality"])
        except (InvalidDicomError, OSError, ValueError, AttributeError):
            f.unlink()
            continue
        modality = str(ds.get("Modality", ""))
        if modality == "CT":
            f.rename(ct_dir / f.name)
            slices += 1
        elif modality == "RTSTRUCT":
            structure_sets.append(f)
        else:
            f.unlink()
    problems = []
    if not slices:
        problems.append("the zip holds no CT image")
    if len(structure_sets) != 1:
        problems.append(
            f"the zip holds {len(structure_sets)} RT Structure Sets; exactly one is needed"
        )
    if problems:
        raise CtImportError(*problems)
    structure_sets[0].rename(rs_path)
    return slices


def roi_names_in(rs_path: Path) -> list[str]:
    """The ROI names of a structure set, in its order."""
    try:
        ds = pydicom.dcmread(rs_path, stop_before_pixels=True)
        return [str(r.ROIName) for r in ds.StructureSetROISequence]
    except (InvalidDicomError, AttributeError, OSError, ValueError):
        raise CtImportError("the RT Structure Set has no readable ROI list") from None


def suggested_mapping(names: list[str]) -> dict[str, str]:
    """Each ROI's structure by the default synonym table, or ``ignore``."""
    table = default_synonyms()
    out: dict[str, str] = {}
    for name in names:
        match = next((s for s in table if s.matches(name)), None)
        structure = match.structure if match is not None else IGNORE
        if normalise(name) in STRUCTURE_CHOICES and structure == IGNORE:
            structure = normalise(name)  # openiort's own names
        out[name] = structure if structure in STRUCTURE_CHOICES else IGNORE
    return out


def check_mapping(case: Case, names: list[str], mapping: Mapping[str, str]) -> ImportCheck:
    """The problems of ``mapping`` for ``case``: a choice not offered, two ROIs as one
    structure, an ROI of the other side (``Lung_R`` on a left case), a missing cavity (or
    applicator) when the case gives no cavity centre, a technique that cannot be planned on a
    CT; warnings for the technique's organs at risk that nothing maps."""
    from openiort.evaluation.limits import iort_default_limits

    check = ImportCheck(by_roi={n: [] for n in names})
    side = SIDES.get(str(case.laterality or "").lower(), "")
    roi_of: dict[str, list[str]] = {}
    for name in names:
        choice = mapping.get(name, IGNORE)
        if choice != IGNORE and choice not in STRUCTURE_CHOICES:
            check.by_roi[name].append(f"{choice!r} is not a structure openiort uses")
            continue
        if choice == IGNORE:
            continue
        roi_of.setdefault(choice, []).append(name)
        other = _side_of(name)
        if side and other and other != side:
            check.by_roi[name].append(
                f"a structure of the {'left' if other == 'L' else 'right'} side, but the case "
                f"is {case.laterality}-sided"
            )
    for structure, rois in roi_of.items():
        if len(rois) > 1:
            for name in rois:
                check.by_roi[name].append(
                    f"{len(rois)} ROIs are mapped to {structure}: choose one, ignore the others"
                )
    technique = case.intent.technique
    if technique not in CT_TECHNIQUES:
        check.general.append(
            f"planning on a CT is available for x-ray and HDR cases, not {technique!r}"
        )
    if (
        case.anatomy.cavity_centre_mm is None
        and "cavity" not in roi_of
        and "applicator" not in roi_of
    ):
        found = ", ".join(repr(n) for n in names) or "none"
        check.general.append(
            "missing required: no ROI is mapped to the cavity (or the applicator) and the case "
            f"gives no cavity centre; ROI names found: {found}"
        )
    if technique in CT_TECHNIQUES:
        wanted = sorted({lim.structure for lim in iort_default_limits().for_technique(technique)})
        missing = [s for s in wanted if s not in roi_of]
        if missing:
            check.warnings.append(
                f"no ROI mapped to {', '.join(missing)}: the plan will not check their "
                "organ-at-risk limits"
            )
    return check


def roi_map_of(mapping: Mapping[str, str]) -> dict[str, str]:
    """The confirmed mapping as ``load_ct``'s ``roi_names``. An ignored ROI keeps its own
    name, except one named like an openiort structure (an ignored ROI ``heart``), which is
    renamed so that nothing uses it as that structure."""
    out = {roi: s for roi, s in mapping.items() if s != IGNORE}
    for roi, s in mapping.items():
        if s == IGNORE and roi in STRUCTURE_NAMES:
            out[roi] = f"{roi} (ignored)"
    return out


def store_upload(
    files_dir: Path,
    case_id: int,
    archive: Path,
    max_unzipped_bytes: int,
    patient_check: Callable[[CtReference], None] | None = None,
) -> dict[str, Any]:
    """Unpack and sort an uploaded zip into the case's import folder (replacing an earlier
    import only when this one is usable: ``patient_check``, the wrong-patient check, raises
    for a CT of another patient); its ``import.json`` content."""
    from openiort.inputs.ct import load_ct_reference

    root = imports_root(files_dir)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        raw = staging / "raw"
        raw.mkdir()
        files = unpack_zip(archive, raw, max_unzipped_bytes)
        slices = _sort_files(files, staging / CT_DIRNAME, staging / RS_NAME)
        shutil.rmtree(raw)
        names = roi_names_in(staging / RS_NAME)
        reference = load_ct_reference(staging / CT_DIRNAME)
        if patient_check is not None:
            patient_check(reference)
        info: dict[str, Any] = {
            "slices": slices,
            "series_instance_uid": reference.series_instance_uid,
            "study_instance_uid": reference.study_instance_uid,
            "roi_names": names,
            "mapping": suggested_mapping(names),
            "confirmed": False,
        }
        (staging / IMPORT_JSON).write_text(json.dumps(info, indent=2), "utf-8")
        final = import_dir(files_dir, case_id)
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
        return info
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def read_import(files_dir: Path, case_id: int) -> dict[str, Any] | None:
    path = import_dir(files_dir, case_id) / IMPORT_JSON
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def write_import(files_dir: Path, case_id: int, info: dict[str, Any]) -> None:
    path = import_dir(files_dir, case_id) / IMPORT_JSON
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2), "utf-8")
    tmp.replace(path)


def ct_reference_for_plan_files(
    files_dir: Path, case_id: int, description: Mapping[str, object]
) -> CtReference | None:
    """The imported CT a plan was made on (its objects reference it and join its study), or
    None for a plan on openiort's phantom. Refused when the case's import no longer holds the
    series the plan recorded (a later upload replaced it)."""
    from openiort.io.commands import ct_reference_for_plan

    if description.get("ct_series_instance_uid") is None:
        return None
    folder = import_dir(files_dir, case_id) / CT_DIRNAME
    if not folder.is_dir():
        raise CtImportError(
            "this plan was made on the patient's CT, which is no longer stored with the case: "
            "upload the same CT series again to export the plan as DICOM"
        )
    return ct_reference_for_plan(description, folder)
