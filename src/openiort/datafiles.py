"""The package's data files: one reader, one hash, one manifest per data folder.

Every data folder of the package (:data:`DATA_FOLDERS`; a sub-folder is a folder of its own)
holds ``manifest_sha256.csv``: the SHA-256 of every regular file in the folder (README and
LICENCE files too; the manifest itself and hidden files excepted), one ``file,sha256`` row each,
under ``#`` comment lines saying what it is. :func:`read_data` (text and tables) and
:func:`data_path` (files read by path, such as ``.npz``) check a file against its folder's
manifest when it is first read; a changed file, a file the manifest does not list and a folder
without a manifest raise :class:`DataFileError`, naming the file and how to put it right. So a
data file cannot change without a reviewed change of its manifest.

Files that a department supplies at a path of its own (commissioning data, beam-data
directories, calibration files) have no manifest: their hashes are computed with
:func:`sha256_bytes` / :func:`sha256_file` and recorded in the results that used them.

Maintenance, after a reviewed change of data files (numbers and source header together)::

    python -m openiort.datafiles           # re-write every folder's manifest, list what changed
    python -m openiort.datafiles --check   # only compare; exit status 1 if a manifest is stale

The generators that write package data files (``iort commission``, the SpekPy spectrum) record
the new hash themselves with :func:`record_file`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from openiort.errors import OpenIortInputError

MANIFEST = "manifest_sha256.csv"

#: Every folder of the package that holds data files: (package, folder inside the package).
DATA_FOLDERS: tuple[tuple[str, str], ...] = (
    ("openiort", "data"),
    ("openiort.anatomy", "data"),
    ("openiort.clinical", "data"),
    ("openiort.clinical", "guidelines"),
    ("openiort.clinical", "policies"),
    ("openiort.devices", "data"),
    ("openiort.devices", "data/electron"),
    ("openiort.devices", "data/tg43"),
    ("openiort.dose.mc", "data"),
    ("openiort.evaluation", "data"),
    ("openiort.io", "data"),
    ("openiort.radiobiology", "data"),
)

_FIX_CHANGED = (
    "restore the file (reinstall openiort, or `git checkout` it in a source tree); if the change "
    "is reviewed (numbers and source header), re-make the manifest with "
    "`python -m openiort.datafiles`"
)


class DataFileError(OpenIortInputError):
    """A package data file that is missing, changed, or not listed in its folder's manifest."""


# ---------------------------------------------------------------------------------------------
# hashes


def sha256_bytes(data: bytes) -> str:
    """SHA-256 (hex) of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_chunks(chunks: Iterable[bytes]) -> str:
    """SHA-256 of byte strings hashed one after the other (no separator), without joining them."""
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def sha256_texts(*texts: str) -> str:
    """SHA-256 of several texts hashed one after the other (UTF-8, no separator)."""
    return sha256_chunks(text.encode("utf-8") for text in texts)


# ---------------------------------------------------------------------------------------------
# parsing


def parse_commented_csv(text: str) -> list[dict[str, str]]:
    """Rows of a CSV whose comment lines start with ``#`` (the comment lines skipped)."""
    body = "".join(line for line in io.StringIO(text) if not line.lstrip().startswith("#"))
    return list(csv.DictReader(io.StringIO(body)))


def comment_header(text: str) -> list[str]:
    """The comment lines at the top of a file (its source header), without the ``#``.

    One space after the ``#`` is removed with it; the header ends at the first line that is
    neither a comment nor blank.
    """
    out: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            body = stripped[1:]
            out.append(body[1:] if body.startswith(" ") else body)
        elif stripped:
            break
    return out


# ---------------------------------------------------------------------------------------------
# data files


@dataclass(frozen=True)
class DataFile:
    """One data file as read: ``package`` and ``path`` inside it, its bytes and SHA-256.

    ``package`` is empty for a file read by its folder or path (:func:`read_checked`,
    :func:`read_path`); ``path`` is then where it was read.
    """

    package: str
    path: str
    data: bytes = field(repr=False)
    sha256: str

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def label(self) -> str:
        """Where the file is, as messages and results name it (``devices/data/tg43/sources.csv``)."""
        if not self.package:
            return path_label(Path(self.path))
        return path_label(package_dir(self.package) / self.path)

    @property
    def text(self) -> str:
        """The file's text (UTF-8)."""
        return self.data.decode("utf-8")

    @property
    def header(self) -> list[str]:
        """The file's source header: its leading comment lines without the ``#``."""
        return comment_header(self.text)

    def rows(self) -> list[dict[str, str]]:
        """The rows of the file as a commented CSV."""
        return parse_commented_csv(self.text)

    def yaml(self) -> Any:
        """The file parsed as YAML."""
        return yaml.safe_load(self.text)


@cache
def package_dir(package: str) -> Path:
    """Where a package of openiort (``openiort`` or ``openiort.<sub>...``) is on disk.

    Found from the top package's folder, without importing the sub-package: importing some of
    them reads their data, and the maintenance command must work while a manifest is stale.
    """
    top, *subs = package.split(".")
    if top != "openiort":
        raise ValueError(f"not a package of openiort: {package!r}")
    return Path(str(resources.files("openiort"))).joinpath(*subs)


def path_label(path: Path) -> str:
    """A path inside the package relative to the package root, else the path as given."""
    try:
        return path.resolve().relative_to(package_dir("openiort").resolve()).as_posix()
    except ValueError:
        return str(path)


def data_folder(package: str, folder: str) -> Path:
    """Where a data folder of the package is on disk."""
    return package_dir(package) / folder


def data_names(package: str, folder: str) -> tuple[str, ...]:
    """Sorted names of the data files in a package data folder (the manifest excepted)."""
    return tuple(sorted(_folder_files(data_folder(package, folder))))


def _folder_files(folder: Path) -> dict[str, Path]:
    return {
        p.name: p
        for p in folder.iterdir()
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
    }


def read_manifest(folder: Path) -> dict[str, str]:
    """The SHA-256 that a folder's ``manifest_sha256.csv`` records for each file, read now."""
    path = folder / MANIFEST
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        raise DataFileError(
            f"data folder {path_label(folder)} has no readable manifest {MANIFEST}: restore it, or "
            "make it with `python -m openiort.datafiles` once the folder's files are reviewed",
            source=path_label(path),
        ) from None
    recorded: dict[str, str] = {}
    for row in parse_commented_csv(text):
        name, digest = (row.get("file") or "").strip(), (row.get("sha256") or "").strip().lower()
        if not name or len(digest) != 64 or name in recorded:
            raise DataFileError(
                f"manifest {path_label(path)} is malformed (row {row}): restore it, or re-make it "
                "with `python -m openiort.datafiles`",
                source=path_label(path),
            )
        recorded[name] = digest
    return recorded


# Package manifests are read once per process; a department's folder is read every time.
recorded_manifest = cache(read_manifest)


def verify(
    folder: Path, name: str, sha256: str, *, fresh: bool = False, fix: str = _FIX_CHANGED
) -> None:
    """Check that ``sha256`` is what ``folder``'s manifest records for ``name``.

    Raises
    ------
    DataFileError
        If the folder has no manifest, the manifest does not list the file, or records another
        hash; the message names the file and how to put it right.
    """
    label = path_label(folder / name)
    expected = (read_manifest if fresh else recorded_manifest)(folder).get(name)
    manifest = path_label(folder / MANIFEST)
    if expected is None:
        raise DataFileError(
            f"data file {label} is not listed in {manifest}: remove the file, or, once its "
            "content and source header are reviewed, add it with `python -m openiort.datafiles`",
            source=label,
        )
    if sha256 != expected:
        raise DataFileError(
            f"data file {label} has SHA-256 {sha256[:12]}..., but {manifest} records "
            f"{expected[:12]}...: the file changed without a reviewed manifest update; " + fix,
            source=label,
        )


def read_checked(
    folder: Path, name: str, *, fresh: bool = False, fix: str = _FIX_CHANGED
) -> DataFile:
    """Read ``folder/name`` and check it against ``folder``'s manifest (``fresh``: read the
    manifest now, not from the cache; ``fix``: what the message tells to do on a mismatch)."""
    path = folder / name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataFileError(
            f"data file {path_label(path)} cannot be read ({exc.strerror or exc}): restore it "
            "(reinstall openiort)",
            source=path_label(path),
        ) from None
    digest = sha256_bytes(data)
    verify(folder, name, digest, fresh=fresh, fix=fix)
    return DataFile("", str(path), data, digest)


def read_department_file(folder: Path, name: str, what: str) -> DataFile:
    """A file of a department's own device data (``what``: "machine data", "source record"),
    checked against its folder's manifest, which ``iort devices manifest FOLDER`` writes once
    the data are reviewed; a folder without one is refused, never trusted."""
    remake = f"`iort devices manifest {folder}`"
    if not (folder / MANIFEST).is_file():
        raise DataFileError(
            f"{path_label(folder)}: no {MANIFEST}: once the department's {what} are reviewed, "
            f"record their hashes with {remake}",
            source=path_label(folder),
        )
    fix = (
        f"restore the file from the reviewed {what}; if the change is reviewed, re-make the "
        f"manifest with {remake}"
    )
    return read_checked(folder, name, fresh=True, fix=fix)


@cache
def read_data(package: str, path: str) -> DataFile:
    """A package data file, e.g. ``read_data("openiort.anatomy", "data/materials.csv")``,
    checked against the manifest of its folder (cached: read and checked once per process)."""
    rel = PurePosixPath(path)
    checked = read_checked(package_dir(package) / rel.parent, rel.name)
    return replace(checked, package=package, path=rel.as_posix())


@cache
def data_path(package: str, path: str) -> Path:
    """Where a package data file is on disk, for readers that need a path (``numpy.load``),
    after checking the file against the manifest of its folder."""
    rel = PurePosixPath(path)
    folder = package_dir(package) / rel.parent
    file = folder / rel.name
    if not file.is_file():
        raise DataFileError(
            f"data file {path_label(file)} is missing: restore it (reinstall openiort)",
            source=path_label(file),
        )
    verify(folder, rel.name, sha256_file(file))
    return file


def _package_folder_of(path: Path) -> Path | None:
    folder = path.resolve().parent
    for package, sub in DATA_FOLDERS:
        if data_folder(package, sub).resolve() == folder:
            return folder
    return None


def read_path(path: str | Path) -> DataFile:
    """A file named by its path: checked against its manifest if it is one of the package's data
    files, read as it is otherwise (a department's own file).

    Raises
    ------
    DataFileError
        For a package data file that fails its check.
    OSError
        If a file outside the package cannot be read.
    """
    p = Path(path)
    folder = _package_folder_of(p)
    if folder is not None:
        return read_checked(folder, p.name)
    data = p.read_bytes()
    return DataFile("", str(p), data, sha256_bytes(data))


# ---------------------------------------------------------------------------------------------
# manifests


def compute_manifest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file in ``folder`` as it is now (name -> hex digest, sorted by name)."""
    files = _folder_files(folder)
    return {name: sha256_file(files[name]) for name in sorted(files)}


PACKAGE_REMAKE = "python -m openiort.datafiles"


def _manifest_text(folder: Path, entries: dict[str, str], remake: str) -> str:
    where = f"openiort/{path_label(folder)}/" if remake == PACKAGE_REMAKE else str(folder)
    lines = [
        f"# SHA-256 of every file in {where} (this manifest excepted), checked",
        "# when openiort reads them (openiort.datafiles). Re-make it only with a reviewed change of a",
        f"# file and its source header: {remake}",
        "file,sha256",
    ]
    lines += [f"{name},{entries[name]}" for name in sorted(entries)]
    return "\n".join(lines) + "\n"


def clear_caches() -> None:
    """Forget every file read and manifest seen (after files or manifests were re-written)."""
    recorded_manifest.cache_clear()
    read_data.cache_clear()
    data_path.cache_clear()


def write_manifest(folder: Path, *, remake: str = PACKAGE_REMAKE) -> dict[str, str]:
    """Write ``folder``'s manifest from the files as they are now; returns its entries.

    ``remake`` is the command the manifest's header names for re-making it.
    """
    entries = compute_manifest(folder)
    (folder / MANIFEST).write_text(_manifest_text(folder, entries, remake), encoding="utf-8")
    clear_caches()
    return entries


def record_file(path: str | Path) -> bool:
    """Record the new hash of one package data file that a generator has just re-written.

    Other rows of the manifest are kept as they are. Returns False (and writes nothing) when the
    file is not in a package data folder with a manifest.
    """
    p = Path(path)
    folder = _package_folder_of(p)
    if folder is None or not (folder / MANIFEST).is_file():
        return False
    entries = dict(recorded_manifest(folder))
    entries[p.name] = sha256_file(folder / p.name)
    (folder / MANIFEST).write_text(
        _manifest_text(folder, entries, PACKAGE_REMAKE), encoding="utf-8"
    )
    clear_caches()
    return True


def manifest_problems(folder: Path) -> list[str]:
    """Every way the files of ``folder`` differ from its manifest (empty if none)."""
    try:
        recorded = recorded_manifest(folder)
    except DataFileError as exc:
        return list(exc.problems)
    actual = compute_manifest(folder)
    problems = []
    for name in sorted(set(recorded) | set(actual)):
        label = path_label(folder / name)
        if name not in actual:
            problems.append(f"{label}: listed in the manifest but missing")
        elif name not in recorded:
            problems.append(f"{label}: not listed in the manifest")
        elif actual[name] != recorded[name]:
            problems.append(f"{label}: SHA-256 differs from the manifest")
    return problems


def _changes(old: dict[str, str], new: dict[str, str]) -> Iterable[str]:
    for name in sorted(set(old) | set(new)):
        if name not in new:
            yield f"-{name}"
        elif name not in old:
            yield f"+{name}"
        elif old[name] != new[name]:
            yield f"~{name}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m openiort.datafiles [--check]``: re-write (or check) every data manifest."""
    parser = argparse.ArgumentParser(
        prog="python -m openiort.datafiles",
        description="Re-write the SHA-256 manifest of every package data folder, after a "
        "reviewed change of its files; --check only reports what differs.",
    )
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = False
    for package, sub in DATA_FOLDERS:
        folder = data_folder(package, sub)
        if args.check:
            for problem in manifest_problems(folder):
                print(problem)
                stale = True
            continue
        try:
            old = dict(recorded_manifest(folder))
        except DataFileError:
            old = {}
        changes = list(_changes(old, write_manifest(folder)))
        print(f"{path_label(folder)}: {' '.join(changes) if changes else 'unchanged'}")
    return 1 if stale else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
