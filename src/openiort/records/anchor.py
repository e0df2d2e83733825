"""The heads of the record chains, kept outside the database.

After each commit the newest event of every chain it extended is written to a small JSON file
(chain -> sequence number and HMAC) beside the seal key, where whoever can write the database
usually cannot. :func:`openiort.records.chain.verify` then finds a chain whose last events
were deleted, which the chain alone cannot show. The file is ``OPENIORT_CHAIN_HEADS_FILE``
when set, else ``chain-heads.json`` in the folder of the seal key file (or in
``OPENIORT_KEY_DIR``); with the key given in the environment and neither named, heads are not
kept (``iort db verify`` says so).

Heads only move forward: several processes may write the file (under a lock); a head older
than the one stored is ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from openiort.records.seal import KEY_DIR_ENV, key_dir, key_file_in_use

HEADS_FILE_ENV = "OPENIORT_CHAIN_HEADS_FILE"
HEADS_FILENAME = "chain-heads.json"

logger = logging.getLogger("openiort.records")


def configured_heads_file() -> Path | None:
    """``OPENIORT_CHAIN_HEADS_FILE``, or ``None`` when it is not set."""
    env = os.environ.get(HEADS_FILE_ENV, "").strip()
    return Path(env) if env else None


def heads_file() -> Path | None:
    """Where the chain heads of the server's key are kept, or ``None`` when nowhere is
    configured (the key given in the environment and no head file named)."""
    env = configured_heads_file()
    if env is not None:
        return env
    key = key_file_in_use()
    if key is not None and key.exists():
        return key.parent / HEADS_FILENAME
    if os.environ.get(KEY_DIR_ENV, "").strip():
        return key_dir() / HEADS_FILENAME
    return None


def _parse(text: str) -> dict[str, tuple[int, str]]:
    data = json.loads(text) if text.strip() else {}
    chains = data.get("chains", {}) if isinstance(data, dict) else {}
    return {str(k): (int(v["seq"]), str(v["hmac"])) for k, v in chains.items()}


def read_heads(path: Path | None = None) -> dict[str, tuple[int, str]]:
    """The recorded head of each chain (empty when no file is configured or written yet)."""
    path = heads_file() if path is None else path
    if path is None or not path.exists():
        return {}
    return _parse(path.read_text(encoding="utf-8"))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def advance(heads: Mapping[str, tuple[int, str]], path: Path | None = None) -> None:
    """Record newer heads (after a commit). A failure is logged, never raised: the change is
    committed; the next commit of the chain, or ``iort db verify``, catches up."""
    path = heads_file() if path is None else path
    if path is None or not heads:
        return
    try:
        with _locked(path):
            stored = read_heads(path)
            changed = False
            for chain, (seq, digest) in heads.items():
                if chain not in stored or stored[chain][0] < seq:
                    stored[chain] = (seq, digest)
                    changed = True
            if not changed:
                return
            tmp = path.with_name(path.name + ".tmp")
            body = {"chains": {k: {"seq": s, "hmac": h} for k, (s, h) in sorted(stored.items())}}
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(body, fh, indent=0)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    except OSError as exc:
        logger.error("could not write the chain heads to %s: %s", path, type(exc).__name__)


def reset(heads: Mapping[str, tuple[int, str]], path: Path | None = None) -> None:
    """Replace the heads outright (after a restore from backup, where they go back)."""
    path = heads_file() if path is None else path
    if path is None:
        return
    with _locked(path):
        if path.exists():
            path.unlink()
    advance(heads, path)
