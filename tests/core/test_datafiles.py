"""The data layer: every data folder has a manifest that lists and matches every file, and a
changed, unlisted or unmanifested file is refused when it is read."""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
import tomllib
from pathlib import Path

import pytest

from openiort import datafiles
from openiort.datafiles import (
    DATA_FOLDERS,
    MANIFEST,
    DataFileError,
    comment_header,
    compute_manifest,
    data_folder,
    manifest_problems,
    parse_commented_csv,
    read_checked,
    read_data,
    read_path,
    record_file,
    recorded_manifest,
    sha256_bytes,
    sha256_file,
    sha256_texts,
    write_manifest,
)
from openiort.errors import OpenIortInputError

ROOT = datafiles.package_dir("openiort")
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
# Folders of package files that are code, not data (templates and static web assets).
NOT_DATA = {
    "clinical/templates",
    "report/templates",
    "report/templates/sections",
    "web/static",
    "web/templates",
}
FOLDER_IDS = [f"{p}:{f}" for p, f in DATA_FOLDERS]


def _relative(package: str, folder: str) -> str:
    return data_folder(package, folder).relative_to(ROOT).as_posix()


def test_every_folder_of_package_files_is_a_data_folder() -> None:
    # A new data folder must be added to DATA_FOLDERS (and so get a manifest).
    found = set()
    for folder in ROOT.rglob("*"):
        if not folder.is_dir() or "__pycache__" in folder.parts:
            continue
        if (folder / "__init__.py").is_file():
            continue  # a package of code
        files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
        if any(p.suffix not in (".py", ".pyc") for p in files):
            found.add(folder.relative_to(ROOT).as_posix())
    listed = {_relative(p, f) for p, f in DATA_FOLDERS}
    assert found - NOT_DATA == listed


@pytest.mark.parametrize(("package", "folder"), DATA_FOLDERS, ids=FOLDER_IDS)
def test_manifest_lists_and_matches_every_file(package: str, folder: str) -> None:
    # A data edit without a manifest update fails here (and when the file is read).
    path = data_folder(package, folder)
    assert (path / MANIFEST).is_file()
    assert manifest_problems(path) == []
    assert recorded_manifest(path) == compute_manifest(path)
    assert compute_manifest(path)  # never an empty folder


@pytest.mark.parametrize(("package", "folder"), DATA_FOLDERS, ids=FOLDER_IDS)
def test_every_data_file_reads_through_the_layer_and_ships(package: str, folder: str) -> None:
    globs = tomllib.loads(PYPROJECT.read_text("utf-8"))["tool"]["setuptools"]["package-data"]
    patterns = [g.rsplit("/", 1)[-1] for g in globs["openiort"]]
    for name in [*datafiles.data_names(package, folder), MANIFEST]:
        assert any(fnmatch.fnmatch(name, p) for p in patterns), f"{folder}/{name} is not shipped"
    for name in datafiles.data_names(package, folder):
        file = read_data(package, f"{folder}/{name}")
        assert file.sha256 == hashlib.sha256(file.data).hexdigest()
        assert file.label == f"{_relative(package, folder)}/{name}"


@pytest.fixture
def copied(tmp_path: Path) -> Path:
    """A copy of the anatomy data folder, manifest included."""
    folder = tmp_path / "data"
    shutil.copytree(data_folder("openiort.anatomy", "data"), folder)
    return folder


def test_unchanged_copy_reads(copied: Path) -> None:
    file = read_checked(copied, "materials.csv")
    assert file.sha256 == read_data("openiort.anatomy", "data/materials.csv").sha256
    assert file.rows()[0]["name"]


def test_changed_file_is_refused(copied: Path) -> None:
    path = copied / "materials.csv"
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01  # one bit of one byte in the last row
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match=r"materials\.csv has SHA-256") as info:
        read_checked(copied, "materials.csv")
    assert isinstance(info.value, OpenIortInputError)
    assert "python -m openiort.datafiles" in str(info.value) and "restore" in str(info.value)
    assert manifest_problems(copied) == [f"{path}: SHA-256 differs from the manifest"]
    # the other files of the folder still read
    assert read_checked(copied, "phantom_anatomy.yaml").yaml()


def test_unlisted_file_is_refused(copied: Path) -> None:
    (copied / "extra.csv").write_text("# a new table\na,b\n1,2\n", "utf-8")
    with pytest.raises(DataFileError, match=r"extra\.csv is not listed in .*manifest_sha256"):
        read_checked(copied, "extra.csv")
    assert any("extra.csv: not listed" in p for p in manifest_problems(copied))


def test_missing_manifest_is_refused(copied: Path) -> None:
    (copied / MANIFEST).unlink()
    with pytest.raises(DataFileError, match="has no readable manifest"):
        read_checked(copied, "materials.csv")
    assert len(manifest_problems(copied)) == 1


def test_missing_file_is_refused(copied: Path) -> None:
    (copied / "materials.csv").unlink()
    with pytest.raises(DataFileError, match=r"materials\.csv cannot be read"):
        read_checked(copied, "materials.csv")
    assert manifest_problems(copied) == [
        f"{copied / 'materials.csv'}: listed in the manifest but missing"
    ]


def test_write_manifest_records_a_reviewed_change(copied: Path) -> None:
    (copied / "materials.csv").write_text("# changed\nname\nwater\n", "utf-8")
    (copied / "extra.csv").write_text("# new\na\n1\n", "utf-8")
    entries = write_manifest(copied)
    assert set(entries) == {*compute_manifest(copied)} and "extra.csv" in entries
    assert manifest_problems(copied) == []
    assert read_checked(copied, "extra.csv").rows() == [{"a": "1"}]
    text = (copied / MANIFEST).read_text("utf-8")
    assert text.startswith("# SHA-256 of every file") and "\nfile,sha256\n" in text


def test_a_generator_records_only_the_file_it_wrote(
    copied: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as `iort commission` does for the package's table: one row changes, the others are kept
    monkeypatch.setattr(datafiles, "_package_folder_of", lambda path: copied)
    before = dict(recorded_manifest(copied))
    (copied / "hu_calibration.csv").write_text("# regenerated\nmaterial\nair\n", "utf-8")
    (copied / "materials.csv").write_text("# edited by hand\nname\nwater\n", "utf-8")
    assert record_file(copied / "hu_calibration.csv")
    after = recorded_manifest(copied)
    assert after["hu_calibration.csv"] == sha256_file(copied / "hu_calibration.csv")
    assert {k: v for k, v in after.items() if k != "hu_calibration.csv"} == {
        k: v for k, v in before.items() if k != "hu_calibration.csv"
    }
    assert manifest_problems(copied) == [
        f"{copied / 'materials.csv'}: SHA-256 differs from the manifest"
    ]


def test_files_outside_the_package_are_read_as_they_are(copied: Path) -> None:
    # a department's own file (e.g. a calibration given by path): no manifest, just its hash
    own = copied.parent / "own.csv"
    own.write_text("# ours\na\n1\n", "utf-8")
    file = read_path(own)
    assert file.package == "" and file.sha256 == sha256_file(own)
    assert not record_file(own)
    # a package data file named by its path is still checked
    packaged = data_folder("openiort.anatomy", "data") / "materials.csv"
    assert read_path(packaged).sha256 == recorded_manifest(packaged.parent)["materials.csv"]


def test_commented_csv_and_header() -> None:
    text = "# Title line\n#   continued: Source X 2020\n#no space\nname,value\n# inline\nc,1\n"
    assert comment_header(text) == ["Title line", "  continued: Source X 2020", "no space"]
    assert parse_commented_csv(text) == [{"name": "c", "value": "1"}]
    assert comment_header("a,b\n# not a header\n") == []
    assert comment_header("\n# after a blank line\n\n# and another\nx\n") == [
        "after a blank line",
        "and another",
    ]


def test_header_of_a_real_file_cites_its_source() -> None:
    header = read_data("openiort.anatomy", "data/materials.csv").header
    assert header[0].startswith("Tissue and device materials")
    assert any("ICRU Report 44" in line for line in header)
    tg43 = read_data("openiort.devices", "data/tg43/sources.csv").header
    assert any("Perez-Calatayud" in line for line in tg43)


def test_hash_helpers(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    data = bytes(range(256)) * 5000  # more than one 1 MiB chunk
    path.write_bytes(data)
    assert sha256_file(path) == sha256_bytes(data) == hashlib.sha256(data).hexdigest()
    assert sha256_texts("ab", "c") == hashlib.sha256(b"abc").hexdigest()


def test_maintenance_check_passes_on_the_package() -> None:
    assert datafiles.main(["--check"]) == 0
