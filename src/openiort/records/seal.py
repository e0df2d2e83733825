"""The approval seal of a plan (DESIGN.md, "Plan lifecycle").

At approval the plan JSON, less the approval fields, is put in RFC 8785 canonical form and
hashed with SHA-256. The hash is then signed with HMAC-SHA256 under a key only the server
holds, together with what identifies the approval (plan, case, version, approver, time). The
hash alone shows that the JSON changed; the signature shows that the JSON and its hash (or
the approver) were changed together, which anyone with write access to the database could do.

The key lives outside the data folder (docs/deployment.md, "Keys"): ``OPENIORT_SEAL_KEY``
(at least 32 characters) when set, else the file named by ``OPENIORT_SEAL_KEY_FILE``, else
``seal.key`` in the key folder (``OPENIORT_KEY_DIR``, default ``~/.config/openiort/keys``). It
is made once, with ``iort key init``; a missing key is an error, never silently made again
(every approved plan would then read as tampered). Each seal and record event carries the id
of its key: ``iort key rotate`` moves the current key to ``retired/`` in the key folder, where
it still verifies what it sealed, and makes a new one. Losing the keys makes existing seals
unverifiable: back them up apart from the database.
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

import platformdirs
import rfc8785

from openiort.records.db import APP_NAME, data_dir
from openiort.records.errors import RecordsValueError, SealKeyError

SEAL_KEY_ENV = "OPENIORT_SEAL_KEY"
SEAL_KEY_FILE_ENV = "OPENIORT_SEAL_KEY_FILE"
SEAL_KEY_FILENAME = "seal.key"
KEY_DIR_ENV = "OPENIORT_KEY_DIR"
RETIRED_DIR = "retired"
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


def key_dir() -> Path:
    """The key folder: ``OPENIORT_KEY_DIR``, else ``keys`` in the user's configuration folder
    (``~/.config/openiort/keys`` on Linux), never the data folder."""
    env = os.environ.get(KEY_DIR_ENV, "").strip()
    return Path(env) if env else platformdirs.user_config_path(APP_NAME) / "keys"


def _key_file() -> Path:
    env = os.environ.get(SEAL_KEY_FILE_ENV)
    return Path(env) if env else key_dir() / SEAL_KEY_FILENAME


def _retired_dir() -> Path:
    return _key_file().parent / RETIRED_DIR


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _missing_key_error(path: Path) -> SealKeyError:
    old = data_dir() / SEAL_KEY_FILENAME
    if old.exists() and old != path:
        return SealKeyError(
            f"the seal key is in the data folder ({old}), where whoever can change the "
            f"database can usually change it too: move it to {path} (mode 0600) or name it "
            f"with {SEAL_KEY_FILE_ENV} (docs/deployment.md, 'Keys')"
        )
    return SealKeyError(
        f"no seal key at {path}: restore it from the key backup, or, on a new installation "
        f"only, make one with `iort key init` (a new key cannot verify what the old one "
        "sealed)"
    )


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
    """The server's (current) seal key.

    Raises
    ------
    SealKeyError
        If there is no key (it is never made here: see :func:`create_key`), if
        ``OPENIORT_SEAL_KEY`` is shorter than 32 characters, or the key file is unsafe
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
    raise _missing_key_error(path)


def _write_new_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(KEY_BYTES) + "\n")
    return _read_key_file(path)


def create_key() -> tuple[Path, str]:
    """Make the seal key file (``iort key init``); its path and key id.

    Raises
    ------
    SealKeyError
        If the key is given in the environment, a key file exists already, or the key file
        would sit in the data folder.
    """
    if os.environ.get(SEAL_KEY_ENV) is not None:
        raise SealKeyError(f"the seal key is given in {SEAL_KEY_ENV}: no key file is made")
    path = _key_file()
    if _inside(path, data_dir()):
        raise SealKeyError(
            f"the key file {path} would be in the data folder {data_dir()}: keep keys "
            f"elsewhere ({KEY_DIR_ENV} or {SEAL_KEY_FILE_ENV})"
        )
    try:
        key = _write_new_key(path)
    except FileExistsError:
        raise SealKeyError(f"a seal key exists already at {path}; it is kept") from None
    return path, key_id(key)


def rotate_key() -> tuple[str, str]:
    """Retire the current key file (kept in ``retired/`` to verify what it sealed) and make
    a new one (``iort key rotate``); the old and new key ids."""
    if os.environ.get(SEAL_KEY_ENV) is not None:
        raise SealKeyError(
            f"the seal key is given in {SEAL_KEY_ENV}: rotate it where it is kept, and put the "
            f"old key in {_retired_dir()} as <key id>.key"
        )
    path = _key_file()
    old = seal_key()
    retired = _retired_dir()
    retired.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = retired / f"{key_id(old)}.key"
    if not target.exists():
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(old.hex() + "\n")
    path.unlink()
    return key_id(old), key_id(_write_new_key(path))


def retired_keys() -> dict[str, bytes]:
    """Keys retired by :func:`rotate_key`, by key id (they verify, they never sign)."""
    out: dict[str, bytes] = {}
    folder = _retired_dir()
    if folder.is_dir():
        for path in sorted(folder.glob("*.key")):
            key = _read_key_file(path)
            out[key_id(key)] = key
    return out


def key_file_in_use() -> Path | None:
    """The key file the server's key comes from (``None`` when the key is in the environment)."""
    if os.environ.get(SEAL_KEY_ENV) is not None:
        return None
    return _key_file()


def verification_keys(current: bytes | None = None) -> dict[str, bytes]:
    """The keys that verify seals and record events, by key id: ``current`` (default: the
    server's key, when there is one) and the retired keys."""
    keys = retired_keys()
    if current is None and (os.environ.get(SEAL_KEY_ENV) is not None or _key_file().exists()):
        current = seal_key()
    if current is not None:
        keys[key_id(current)] = current
    return keys


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
    current = seal_key() if key is None else key
    key = verification_keys(current).get(seal.key_id)
    if key is None:
        return (
            f"it was sealed with another server key (key id {seal.key_id}; this server holds "
            f"{key_id(current)}), so it cannot be verified here"
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


# A document signed beside a plan's seal (the printed chart): its own algorithm label, so that
# a chart signature can never be taken for a plan seal or the other way round.
DOCUMENT_ALGORITHM = "openiort-document-v1 rfc8785+hmac-sha256"


def _document_message(kind: str, document: Mapping[str, Any]) -> bytes:
    try:
        return rfc8785.dumps({"algorithm": DOCUMENT_ALGORITHM, "kind": kind, "document": document})
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise RecordsValueError(f"{kind} cannot be canonicalised: {exc}") from None


def sign_document(
    kind: str, document: Mapping[str, Any], key: bytes | None = None
) -> tuple[str, str]:
    """HMAC-SHA256 (hex) of a JSON document of ``kind`` in RFC 8785 form, and the key id."""
    key = seal_key() if key is None else key
    signature = hmac.new(key, _document_message(kind, document), hashlib.sha256).hexdigest()
    return signature, key_id(key)


def document_signature_problem(
    kind: str,
    document: Mapping[str, Any],
    signature: str,
    signed_key_id: str,
    key: bytes | None = None,
) -> str | None:
    """Why ``signature`` does not sign ``document``, or ``None`` when it does (constant time;
    retired keys verify what they signed)."""
    current = seal_key() if key is None else key
    verify_key = verification_keys(current).get(signed_key_id)
    if verify_key is None:
        return (
            f"it was signed with another server key (key id {signed_key_id}; this server "
            f"holds {key_id(current)}), so it cannot be verified here"
        )
    try:
        message = _document_message(kind, document)
    except RecordsValueError as exc:
        return str(exc)
    expected = hmac.new(verify_key, message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "its signature does not match: it was altered after it was signed"
    return None
