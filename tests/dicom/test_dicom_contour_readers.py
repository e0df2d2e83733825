"""Our structures as third-party readers see them (issue 16, part 3), and every standard contour
form read back.

plastimatch (Debian package, default mode: the contours of a plane are united) rasterises our
RTSTRUCT on the CT; dicompyler-core 0.5.6 (reads CLOSED_PLANAR contours only) gives each ROI's
volume on the dose grid. Tolerances, as the issue states them: structures of 10 cc or more within
2 % of plan.json's volume; thin shells (the skin) within their surface area times half a voxel
(the volume a boundary drawn half a voxel off would add). For the demo's skin, one 2 mm voxel
thick, that tolerance is as large as the shell itself (119 cc for 84.5 cc: its inner and outer
faces, 1.19e5 mm2, times 1 mm), so the skin is also held to SKIN_REL = 1 %. Measured on the
demo x-ray plan at 2 mm: every structure within 0.4 % by both readers (skin +0.38 %, target
+0.15 %, breast +0.01 %, chest wall, ribs, lung, heart exact); with holes written as separate
contours (before keyholes) plastimatch read the target 29.3 %, the lung 17.5 % and the breast
3.0 % too large.
"""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import contourpy
import numpy as np
import pydicom
import pydicom.dicomio
import pytest
import yaml

from openiort.anatomy.phantom import Phantom
from openiort.case import parse_case
from openiort.dosegrid import DoseGrid
from openiort.inputs.ct import load_ct_phantom
from openiort.io.dicom_export import export_plan
from openiort.planning.xray import plan_xray

DEMO = Path(__file__).resolve().parents[2] / "examples" / "left_upper_outer_30mm.yaml"
LARGE_CC = 10.0
LARGE_REL = 0.02
THIN_SHELLS = ("skin",)
SKIN_REL = 0.01  # measured +0.38 % (module docstring)


NDArrayBool = Any  # a numpy bool array


def read_nrrd_mask(path: Path) -> NDArrayBool:
    """The voxels of a plastimatch NRRD mask (uncompressed or gzip), as a flat bool array."""
    raw = path.read_bytes()
    head, _, data = raw.partition(b"\n\n")
    fields = dict(
        line.split(": ", 1)
        for line in head.decode("ascii").splitlines()[1:]
        if ": " in line and not line.startswith("#")
    )
    payload = gzip.decompress(data) if fields["encoding"] == "gzip" else data
    return np.frombuffer(payload, np.uint8).astype(bool)


def shell_tolerance_cc(mask: NDArrayBool, spacing_mm: tuple[float, float, float]) -> float:
    """Surface area of a mask (its exposed voxel faces) times half the in-plane voxel size."""
    dx, dy, dz = spacing_mm
    area = 0.0
    for axis, face in ((0, dx * dy), (1, dx * dz), (2, dy * dz)):
        padded = np.pad(mask, 1)
        area += np.count_nonzero(np.diff(padded.astype(np.int8), axis=axis)) * face
    return area * 0.5 * max(dx, dy) / 1000.0


@pytest.fixture(scope="module")
def demo_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    plan = plan_xray(parse_case(yaml.safe_load(DEMO.read_text())), spacing_mm=2.0)
    out = tmp_path_factory.mktemp("demo") / "dicom"
    export_plan(plan.phantom, plan.dose, plan.to_json_dict(), out)
    return out, plan


def check_volume(name: str, theirs_cc: float, plan: Any) -> None:
    ours = plan.metrics[name].volume_cc
    if name in THIN_SHELLS:
        tol = shell_tolerance_cc(plan.phantom.structures[name], plan.phantom.grid.spacing_mm)
        assert abs(theirs_cc - ours) <= tol, (name, theirs_cc, ours, tol)
        assert theirs_cc == pytest.approx(ours, rel=SKIN_REL), name
    elif ours >= LARGE_CC:
        assert theirs_cc == pytest.approx(ours, rel=LARGE_REL), name


def test_plastimatch_default_mode_reads_plan_volumes(
    demo_export: tuple[Path, Any], tmp_path: Path, require_tool: Callable[[str], str]
) -> None:
    out, plan = demo_export
    ct = tmp_path / "ct"
    ct.mkdir()
    for f in out.glob("CT_*.dcm"):
        (ct / f.name).symlink_to(f)
    subprocess.run(
        [
            require_tool("plastimatch"),
            "convert",
            "--input",
            str(out / "RS.dcm"),
            "--referenced-ct",
            str(ct),
            "--output-prefix",
            str(tmp_path / "masks"),
            "--prefix-format",
            "nrrd",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    voxel_cc = float(np.prod(plan.phantom.grid.spacing_mm)) / 1000.0
    checked = []
    for name in plan.metrics:
        theirs = read_nrrd_mask(tmp_path / "masks" / f"{name}.nrrd").sum() * voxel_cc
        check_volume(name, theirs, plan)
        checked.append(name)
    assert {"target", "breast", "lung", "skin"} <= set(checked)


@pytest.mark.filterwarnings("ignore:The .pydicom.pixel_data_handlers. module:DeprecationWarning")
def test_dicompyler_core_reads_plan_volumes(demo_export: tuple[Path, Any]) -> None:
    if not hasattr(pydicom.dicomio, "read_file"):  # dicompyler-core 0.5.6 on pydicom 3
        pydicom.dicomio.read_file = pydicom.dcmread  # type: ignore[attr-defined]
    import dicompylercore.dvhcalc as dvhcalc

    out, plan = demo_export
    rs = pydicom.dcmread(out / "RS.dcm")
    numbers = {r.ROIName: int(r.ROINumber) for r in rs.StructureSetROISequence}
    for name in plan.metrics:
        theirs = dvhcalc.get_dvh(str(out / "RS.dcm"), str(out / "RD.dcm"), numbers[name]).volume
        check_volume(name, theirs, plan)


def test_every_standard_contour_form_reads_back(
    tmp_path: Path,
    phantom: Phantom,
    dose: DoseGrid,
    make_plan: Callable[[str], dict[str, Any]],
) -> None:
    """Keyhole (as written), CLOSEDPLANAR_XOR pairs, and nested CLOSED_PLANAR contours (how many
    systems write holes) give the same masks; points and open contours add nothing."""
    export_plan(phantom, dose, make_plan("xray"), tmp_path)
    rs_path = tmp_path / "RS.dcm"
    written = pydicom.dcmread(rs_path)
    numbers = {r.ROIName: int(r.ROINumber) for r in written.StructureSetROISequence}
    breast = next(
        i for i in written.ROIContourSequence if int(i.ReferencedROINumber) == numbers["breast"]
    )
    keyholes = [c for c in breast.ContourSequence if _has_channel(c)]
    assert keyholes, "the breast around the applicator is written with keyhole contours"
    reference = load_ct_phantom(tmp_path, rs_path).structures

    for form in ("CLOSEDPLANAR_XOR", "CLOSED_PLANAR"):
        ds = pydicom.dcmread(rs_path)
        item = next(
            i for i in ds.ROIContourSequence if int(i.ReferencedROINumber) == numbers["breast"]
        )
        contours = []
        for ring in _rings(phantom.structures["breast"], phantom.grid):
            new = pydicom.Dataset()
            new.ContourGeometricType = form
            new.NumberOfContourPoints = len(ring) // 3
            new.ContourData = ring
            contours.append(new)
        point = pydicom.Dataset()
        point.ContourGeometricType = "POINT"
        point.NumberOfContourPoints = 1
        point.ContourData = contours[0].ContourData[:3]
        contours.append(point)
        item.ContourSequence = contours
        path = tmp_path / f"RS_{form}.dcm"
        ds.save_as(path)
        back = load_ct_phantom(tmp_path, path).structures
        np.testing.assert_array_equal(back["breast"], reference["breast"], err_msg=form)
        np.testing.assert_array_equal(back["breast"], phantom.structures["breast"])


def _points(contour: Any) -> list[tuple[float, ...]]:
    data = [float(v) for v in contour.ContourData]
    return [tuple(data[i : i + 3]) for i in range(0, len(data), 3)]


def _has_channel(contour: Any) -> bool:
    pts = _points(contour)
    return len(pts) != len(set(pts))


def _rings(mask: Any, grid: Any) -> list[list[float]]:
    """Every boundary of a mask as a separate ring (outer boundaries and holes alike), in mm."""
    x0, y0, _ = grid.origin_mm
    dx, dy, _ = grid.spacing_mm
    z_mm = grid.axis_mm("z")
    out = []
    for k in np.flatnonzero(mask.any(axis=(1, 2))):
        gen = contourpy.contour_generator(z=np.pad(mask[k].astype(float), 1), name="serial")
        for line in gen.lines(0.5):
            uv = np.asarray(line)[:-1] - 1.0
            xyz = np.column_stack(
                [x0 + uv[:, 0] * dx, y0 + uv[:, 1] * dy, np.full(len(uv), z_mm[k])]
            )
            out.append([round(float(v), 4) for v in xyz.ravel()])
    return out
