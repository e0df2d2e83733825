"""A plan's files on disk, next to its database record.

Each stored plan has a folder ``<files_dir>/<plan record id>/`` written by the planning worker
(:mod:`openiort.web.worker`): ``plan.json``, ``report.html``, ``plan_arrays.npz``,
``patient-summary.html`` and ``viewer/``. Derived downloads (the PDF, the DICOM zip) are made
on first request into ``cache/`` and reused. The SHA-256 of ``report.html`` and
``plan_arrays.npz`` is part of the stored plan JSON, and so of the approval seal: before a
report or DICOM export is made from these files their hashes are checked against the record,
so that files swapped on disk are refused like a tampered record.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from openiort.datafiles import sha256_file
from openiort.errors import OpenIortInputError
from openiort.web.worker import OUTPUTS_KEY, SEALED_FILES

CACHE_DIR = "cache"


class PlanFilesError(OpenIortInputError):
    """A plan's files are missing or do not match its record (named in the message)."""


class PlanFiles:
    """The folder of plan files, with staging for plans being computed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.staging = self.root / ".staging"
        self.staging.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def new_staging_dir(self) -> Path:
        """An empty folder for a worker to write a plan into (not yet tied to a record)."""
        return Path(tempfile.mkdtemp(prefix="job-", dir=self.staging))

    def discard(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def adopt(self, staging_dir: Path, plan_id: int) -> Path:
        """Move a finished staging folder to the plan record's place."""
        target = self.plan_dir(plan_id)
        if target.exists():  # a leftover of a plan id reused after a database reset
            shutil.rmtree(target)
        os.replace(staging_dir, target)
        return target

    def plan_dir(self, plan_id: int) -> Path:
        return self.root / str(int(plan_id))

    def existing_dir(self, plan_id: int) -> Path:
        path = self.plan_dir(plan_id)
        if not path.is_dir():
            raise PlanFilesError(
                f"the files of plan {plan_id} are missing from the server's plan folder"
            )
        return path

    def check(
        self, plan_id: int, plan_json: Mapping[str, Any], names: tuple[str, ...] = SEALED_FILES
    ) -> Path:
        """The plan's folder, once the named files match the hashes in the plan's record.

        Raises
        ------
        PlanFilesError
            If a file is missing or its SHA-256 differs from the record's.
        """
        folder = self.existing_dir(plan_id)
        recorded = plan_json.get(OUTPUTS_KEY)
        if not isinstance(recorded, Mapping):
            raise PlanFilesError(f"plan {plan_id}: the record lists no file hashes")
        for name in names:
            path = folder / name
            if not path.is_file():
                raise PlanFilesError(f"plan {plan_id}: {name} is missing")
            if recorded.get(name) != sha256_file(path):
                raise PlanFilesError(
                    f"plan {plan_id}: {name} on disk does not match the SHA-256 in its record; "
                    "the file was changed after planning and is refused"
                )
        return folder

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def cached(self, plan_id: int, name: str, make: Callable[[Path], None]) -> Path:
        """``cache/<name>`` of the plan, made once by ``make(path)`` (atomically) if missing."""
        if "/" in name or name.startswith("."):
            raise PlanFilesError(f"bad cache file name {name!r}")
        folder = self.existing_dir(plan_id) / CACHE_DIR
        path = folder / name
        if path.is_file():
            return path
        with self._lock(f"{plan_id}/{name}"):
            if path.is_file():
                return path
            folder.mkdir(exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=".", suffix=".part", dir=folder)
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                make(tmp)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        return path

    def clean_staging(self) -> None:
        """Remove staging folders left by a server that stopped while planning."""
        for p in self.staging.iterdir():
            shutil.rmtree(p, ignore_errors=True)
