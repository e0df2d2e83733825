"""The approval seal of a plan (DESIGN.md, "Plan lifecycle").

At approval the plan JSON, less the approval fields, is put in RFC 8785 canonical form and
hashed with SHA-256. The hash is then signed with HMAC-SHA256 under a key only the server
holds, together with what identifies the approval (plan, case, version, approver, time). The
hash alone shows that the JSON changed; the signature shows that the JSON and its hash (or
the approver) were changed together, which anyone with write access to the database could do.

The key is ``OPENIORT_SEAL_KEY`` (at least 32 characters) when set, else the file named by
``OPENIORT_SEAL_KEY_FILE``, else ``seal.key`` in the data directory, created with 0600
permissions on first use. Losing the key makes existing seals unverifiable: back it up apart
from the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785

from openiort.records.db import data_dir
from openiort.records.errors import RecordsValueError, SealKeyError

SEAL_KEY_ENV = "OPENIORT_SEAL_KEY"
SEAL_KEY_FILE_ENV = "OPENIORT_SEAL_KEY_FILE"
SEAL_KEY_FILENAME = "seal.key"
# 256-bit keys: HMAC-SHA256 gains nothing from longer ones and is weakened by shorter ones.
KEY_BYTES = 32
MIN_ENV_KEY_CHARS = 32
SEAL_ALGORITHM = "sha256-rfc8785+hmac-sha256"
# Top-level plan JSON keys that change at or after approval and so are not sealed.
UNSEALED_KEYS: frozenset[str] = frozenset({"status", "approval", "seal"})


@dataclass(frozen=True)
class Seal:
    """A plan's seal: canonical hash, its signature and the id of the key that signed it."""

    canonical_sha256: str
    hmac_sha256: str
    key_id: str


def _key_file() -> Path:
    env = os.environ.get(SEAL_KEY_FILE_ENV)
    return Path(env) if env else data_dir() / SEAL_KEY_FILENAME


def _read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SealKeyError(
            f"seal key file {path} is readable by other users (mode {stat.S_IMODE(mode):04o}); "
            "restrict it with `chmod 600` before the server uses it"
        )
    text = path.read_text(encoding="ascii").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise SealKeyError(f"seal key file {path} does not hold a hexadecimal key") from None
    if len(key) < KEY_BYTES:
        raise SealKeyError(f"seal key file {path} holds {len(key)} bytes; {KEY_BYTES} needed")
    return key


def seal_key() -> bytes:
    """The server's seal key, creating the key file on first use.

    Raises
    ------
    SealKeyError
        If ``OPENIORT_SEAL_KEY`` is shorter than 32 characters, or the key file is unsafe
        (readable by group or others) or malformed.
    """
    env = os.environ.get(SEAL_KEY_ENV)
    if env is not None:
        if len(env) < MIN_ENV_KEY_CHARS:
            raise SealKeyError(
                f"{SEAL_KEY_ENV} must be at least {MIN_ENV_KEY_CHARS} characters "
                f"(got {len(env)}); generate one with `python -c 'import secrets; "
                "print(secrets.token_hex(32))'`"
            )
        return env.encode("utf-8")
    path = _key_file()
    if path.exists():
        return _read_key_file(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return _read_key_file(path)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(KEY_BYTES) + "\n")
    return _read_key_file(path)


def key_id(key: bytes) -> str:
    """A short public fingerprint of ``key`` (it reveals nothing useful about the key)."""
    return hashlib.sha256(b"openiort seal key id\x00" + key).hexdigest()[:16]


def sealed_content(plan_json: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a plan's JSON that the seal covers: everything but :data:`UNSEALED_KEYS`."""
    return {k: v for k, v in plan_json.items() if k not in UNSEALED_KEYS}


def canonical_json(plan_json: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of the sealed content of ``plan_json``.

    Raises
    ------
    RecordsValueError
        If the plan holds values JSON cannot represent (NaN, infinity, non-string keys).
    """
    try:
        return rfc8785.dumps(sealed_content(plan_json))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise RecordsValueError(f"plan JSON cannot be canonicalised: {exc}") from None


def canonical_sha256(plan_json: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(plan_json)).hexdigest()


def _message(
    digest: str,
    *,
    plan_id: int,
    case_id: int,
    version_number: int,
    approved_by: str,
    approved_at: dt.datetime,
) -> bytes:
    if approved_at.tzinfo is None:
        raise RecordsValueError("approved_at must be timezone-aware")
    return rfc8785.dumps(
        {
            "algorithm": SEAL_ALGORITHM,
            "canonical_sha256": digest,
            "plan_id": plan_id,
            "case_id": case_id,
            "version_number": version_number,
            "approved_by": approved_by,
            "approved_at": approved_at.astimezone(dt.UTC).isoformat(),
        }
    )


def make_seal(
    plan_json: Mapping[str, Any],
    *,
    plan_id: int,
    case_id: int,
    version_number: int,
    approved_by: str,
    approved_at: dt.datetime,
    key: bytes | None = None,
) -> Seal:
    """Seal a plan at approval.

    Parameters
    ----------
    plan_json:
        The plan as stored.
    plan_id, case_id, version_number:
        Where the plan is stored: a sealed plan copied to another row or case fails.
    approved_by, approved_at:
        The approver's username and the approval time (timezone-aware).
    key:
        Seal key (default :func:`seal_key`).
    """
    key = seal_key() if key is None else key
    digest = canonical_sha256(plan_json)
    message = _message(
        digest,
        plan_id=plan_id,
        case_id=case_id,
        version_number=version_number,
        approved_by=approved_by,
        approved_at=approved_at,
    )
    signature = hmac.new(key, message, hashlib.sha256).hexdigest()
    return Seal(canonical_sha256=digest, hmac_sha256=signature, key_id=key_id(key))


def seal_problem(
    plan_json: Mapping[str, Any],
    seal: Seal,
    *,
    plan_id: int,
    case_id: int,
    version_number: int,
    approved_by: str,
    approved_at: dt.datetime,
    key: bytes | None = None,
) -> str | None:
    """Why ``seal`` does not match the plan, or ``None`` when it does.

    The stored hash is checked against the content first (an edit of the JSON alone), then
    the signature against the stored hash and approval (an edit of the JSON and its hash
    together, or of the approver or time). Comparisons are constant-time.
    """
    key = seal_key() if key is None else key
    if not hmac.compare_digest(seal.key_id, key_id(key)):
        return (
            f"it was sealed with another server key (key id {seal.key_id}; this server holds "
            f"{key_id(key)}), so it cannot be verified here"
        )
    try:
        digest = canonical_sha256(plan_json)
    except RecordsValueError as exc:
        return f"its stored JSON is not valid plan JSON ({exc})"
    if not hmac.compare_digest(digest, seal.canonical_sha256):
        return "its content no longer matches the SHA-256 recorded at approval (the plan JSON was edited)"
    message = _message(
        seal.canonical_sha256,
        plan_id=plan_id,
        case_id=case_id,
        version_number=version_number,
        approved_by=approved_by,
        approved_at=approved_at,
    )
    expected = hmac.new(key, message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, seal.hmac_sha256):
        return (
            "its signature does not match: the plan and its recorded hash, or its approver, "
            "approval time or place, were altered after approval"
        )
    return None
