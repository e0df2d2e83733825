"""A plan's files on disk, next to its database record.

Each stored plan has a folder ``<files_dir>/<plan record id>/`` written by the planning worker
(:mod:`openiort.web.worker`): ``plan.json``, ``report.html``, ``plan_arrays.npz``,
``patient-summary.html`` and ``viewer/``. Derived downloads (the PDF, the DICOM zip) are made
on first request into ``cache/`` and reused. The SHA-256 of ``report.html`` and
``plan_arrays.npz`` is part of the stored plan JSON, and so of the approval seal: before a
report or DICOM export is made from these files their hashes are checked against the record,
so that files swapped on disk are refused like a tampered record.

Every file of the folder (the viewer arrays among them) and every derived download made into
``cache/`` is also listed, with its SHA-256, in ``files-manifest.json``, signed with the seal
key (HMAC-SHA256 over the plan id and the list): written when the plan is adopted and when a
download is made, checked before a file is served. A cached download that does not match is
made again from the checked sources; a viewer array that does not match is refused. A file's
hash is re-checked whenever its inode, size or change time moves.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from openiort.datafiles import sha256_file
from openiort.errors import OpenIortInputError
from openiort.web.worker import OUTPUTS_KEY, SEALED_FILES

CACHE_DIR = "cache"
MANIFEST_NAME = "files-manifest.json"
MANIFEST_ALGORITHM = "openiort-plan-files-v1 hmac-sha256"

logger = logging.getLogger("openiort.web")
StatSignature = tuple[int, int, int, int]


def _stat_signature(path: Path) -> StatSignature:
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class PlanFilesError(OpenIortInputError):
    """A plan's files are missing or do not match its record (named in the message)."""


class PlanFiles:
    """The folder of plan files, with staging for plans being computed."""

    def __init__(self, root: Path, key: bytes | None = None) -> None:
        self.root = Path(root)
        self.staging = self.root / ".staging"
        self.staging.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Without a key (tools, tests of the files alone) no manifest is kept or checked.
        self.key = key
        self._checked: dict[Path, tuple[StatSignature, str]] = {}

    # ------------------------------------------------------------ the signed manifest

    def _signature(self, plan_id: int, files: Mapping[str, str]) -> str:
        assert self.key is not None
        body = json.dumps(
            {"algorithm": MANIFEST_ALGORITHM, "plan_id": int(plan_id), "files": dict(files)},
            sort_keys=True,
            separators=(",", ":"),
        ).encode("utf-8")
        return hmac.new(self.key, body, hashlib.sha256).hexdigest()

    def manifest(self, plan_id: int) -> dict[str, str] | None:
        """The plan's signed list of files and their SHA-256 (``None`` if it has none).

        Raises
        ------
        PlanFilesError
            If the manifest was altered (its signature does not match) or cannot be read.
        """
        path = self.plan_dir(plan_id) / MANIFEST_NAME
        if self.key is None or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text("utf-8"))
            files = {str(k): str(v) for k, v in data["files"].items()}
            signature = str(data["hmac_sha256"])
        except (OSError, ValueError, KeyError, AttributeError, TypeError):
            raise PlanFilesError(f"plan {plan_id}: the list of its files cannot be read") from None
        if not hmac.compare_digest(signature, self._signature(plan_id, files)):
            raise PlanFilesError(
                f"plan {plan_id}: the signed list of its files was altered; its files are refused"
            )
        return files

    def _write_manifest(self, plan_id: int, files: Mapping[str, str]) -> None:
        folder = self.plan_dir(plan_id)
        body = {
            "algorithm": MANIFEST_ALGORITHM,
            "plan_id": int(plan_id),
            "files": dict(sorted(files.items())),
            "hmac_sha256": self._signature(plan_id, files),
        }
        fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(body, fh, indent=1)
        os.replace(tmp, folder / MANIFEST_NAME)

    def record_files(self, plan_id: int, names: Iterable[str]) -> None:
        """Hash the named files (relative to the plan's folder) into its manifest."""
        if self.key is None:
            return
        folder = self.plan_dir(plan_id)
        with self._lock(f"{plan_id}/{MANIFEST_NAME}"):
            files = self.manifest(plan_id)
            if files is None:  # adopted now, or stored before manifests were kept
                names = [*self._all_files(plan_id), *names]
                files = {}
            for name in names:
                files[name] = sha256_file(folder / name)
            self._write_manifest(plan_id, files)

    def _all_files(self, plan_id: int) -> list[str]:
        folder = self.plan_dir(plan_id)
        return sorted(
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and p.name != MANIFEST_NAME and not p.name.startswith(".")
        )

    def _matches(self, path: Path, expected: str) -> bool:
        signature = _stat_signature(path)
        seen = self._checked.get(path)
        if seen is not None and seen[0] == signature:
            return hmac.compare_digest(seen[1], expected)
        digest = sha256_file(path)
        self._checked[path] = (signature, digest)
        return hmac.compare_digest(digest, expected)

    def verify_files(self, plan_id: int, names: Iterable[str]) -> tuple[StatSignature, ...]:
        """Check the named files against the manifest before they are served; their stat
        signatures (what a cache of their content should be keyed by).

        A plan stored before manifests were kept gets one now, from the files as they are.

        Raises
        ------
        PlanFilesError
            If a file is missing, or differs from the hash the manifest recorded.
        """
        names = list(names)
        folder = self.existing_dir(plan_id)
        if self.key is not None:
            files = self.manifest(plan_id)
            if files is None:
                logger.warning("plan %d: its files had no manifest; recorded now", plan_id)
                self.record_files(plan_id, [])
                files = self.manifest(plan_id) or {}
            for name in names:
                path = folder / name
                expected = files.get(name)
                if not path.is_file():
                    raise PlanFilesError(f"plan {plan_id}: {name} is missing")
                if expected is None or not self._matches(path, expected):
                    raise PlanFilesError(
                        f"plan {plan_id}: {name} on disk does not match the SHA-256 recorded "
                        "when it was made; the file was changed and is refused"
                    )
        return tuple(_stat_signature(folder / name) for name in names)

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
        self.record_files(plan_id, [])
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
        relative = f"{CACHE_DIR}/{name}"
        if path.is_file() and self._cached_ok(plan_id, relative, path):
            return path
        with self._lock(f"{plan_id}/{name}"):
            if path.is_file() and self._cached_ok(plan_id, relative, path):
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
            self.record_files(plan_id, [relative])
        return path

    def _cached_ok(self, plan_id: int, relative: str, path: Path) -> bool:
        """Whether a cached download matches the hash recorded when it was made (else it is
        removed, to be made again from the checked sources)."""
        if self.key is None:
            return True
        expected = (self.manifest(plan_id) or {}).get(relative)
        if expected is not None and self._matches(path, expected):
            return True
        logger.warning(
            "plan %d: cached %s does not match the hash recorded when it was made; made again",
            plan_id,
            relative,
        )
        path.unlink(missing_ok=True)
        return False

    def clean_staging(self, older_than_s: float = 0.0) -> None:
        """Remove staging folders left by a server that stopped while planning (with
        ``older_than_s``, only those untouched for that long: other processes may be writing
        theirs)."""
        cutoff = time.time() - older_than_s
        for p in self.staging.iterdir():
            with contextlib.suppress(OSError):  # another process removed it first
                if older_than_s <= 0 or p.stat().st_mtime < cutoff:
                    shutil.rmtree(p, ignore_errors=True)
