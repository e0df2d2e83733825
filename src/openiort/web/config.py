"""Settings of the web app and the key that signs its session cookies."""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from openiort.errors import OpenIortInputError
from openiort.records.db import data_dir

if TYPE_CHECKING:
    from openiort.io.dicom_settings import DicomSettings

SESSION_SECRET_ENV = "OPENIORT_SESSION_SECRET"
SESSION_SECRET_FILENAME = "session.key"
PLANS_DIRNAME = "plans"
SECRET_BYTES = 32
MIN_ENV_SECRET_CHARS = 32


class WebConfigError(OpenIortInputError):
    """A setting of the web app that cannot be used (named in the message)."""


@dataclass(frozen=True)
class WebConfig:
    """Everything :func:`openiort.web.app.create_app` needs besides the database.

    Attributes
    ----------
    files_dir:
        Where each plan's files (plan.json, report, dose arrays, viewer data) are kept,
        one folder per plan record: ``files_dir / <plan id>``.
    session_secret:
        Key that signs session cookies (at least 32 bytes).
    secure_cookies:
        ``True`` marks cookies Secure always, ``False`` never, ``None`` when the request came
        over https (directly or, from a trusted proxy, through ``X-Forwarded-Proto``).
    session_max_age_s, session_idle_s:
        A session ends this long after login, or after this long without a request.
    login_max_failures, login_window_s:
        Failed logins allowed per username and per client address within the window before
        further attempts are refused (HTTP 429) until the window has passed.
    plan_workers:
        Planning processes (each plan takes one core for 10-20 s).
    max_pending_plans:
        Plans queued or running at once; more are refused with HTTP 503 and a retry time.
    executor:
        ``process`` (default: planning cannot slow the event loop) or ``thread``.
    external_planning:
        ``False`` (default): this process plans, in ``plan_workers`` processes of its own.
        ``True`` (``iort serve --workers N``): jobs go to the database queue and ``iort worker``
        processes compute them (:mod:`openiort.web.db_jobs`).
    plan_heartbeat_s, plan_stale_after_s:
        A plan being computed here is stamped every ``plan_heartbeat_s``; a job whose planner
        stopped stamping for ``plan_stale_after_s`` (a server killed mid-plan) is taken back
        and computed again at the next start (as ``iort worker --heartbeat-s/--stale-after-s``).
    require_second_person:
        Four-eyes rule: the author or reviewer of a plan may not approve it. ``None``: the
        department's audited setting (on unless turned off with ``iort db setting``).
    xray_source_data:
        The department's 50 kV source commissioning file (format of
        :func:`openiort.devices.xray.load_commissioning`); without it x-ray plans use the
        built-in example source and cannot be approved.
    electron_machine_data:
        The department's electron machine file (format of
        :mod:`openiort.devices.electron.machine_format`); without it electron plans use the
        example machine (LIAC HWL) and cannot be approved.
    hdr_source_data:
        The department's HDR source record (format of :mod:`openiort.devices.hdr_source`);
        without it HDR plans use the example source and cannot be approved. It is also the
        department's current source: the day's HDR console values and deliveries use it, and
        after a source exchange (another serial than the plan's) rescale the dwell times to it.
    hdr_other_source_data:
        Further HDR source records the server knows (another afterloader, or a source kept
        beside the current one); a console computation or delivery chooses one by its serial
        (``source_serial``), else the current record is used.
    allowed_hosts, max_body_bytes:
        Host allowlist (``None``: any host) and request body limit, checked before anything
        else (:mod:`openiort.web.guards`).
    dicom_settings:
        The department's DICOM settings file (:mod:`openiort.io.dicom_settings`); ``None``:
        ``$OPENIORT_DICOM_SETTINGS``, else the defaults. Read once at start; the settings
        page shows them, DICOM downloads use them.
    """

    files_dir: Path
    session_secret: bytes
    secure_cookies: bool | None = None
    session_max_age_s: int = 12 * 3600
    session_idle_s: int = 2 * 3600
    login_max_failures: int = 5
    login_window_s: float = 300.0
    plan_workers: int = 1
    max_pending_plans: int = 4
    executor: Literal["process", "thread"] = "process"
    external_planning: bool = False
    plan_heartbeat_s: float = 5.0
    plan_stale_after_s: float = 60.0
    require_second_person: bool | None = None
    xray_source_data: Path | None = None
    electron_machine_data: Path | None = None
    hdr_source_data: Path | None = None
    hdr_other_source_data: tuple[Path, ...] = ()
    # Host names the server answers to (None: any; `iort serve` always sets them) and the
    # largest request body read (openiort.web.guards).
    allowed_hosts: tuple[str, ...] | None = None
    max_body_bytes: int = 1024 * 1024
    dicom_settings: Path | None = None
    # A CT import's zip (openiort.web.ct_import): upload size, and its size unpacked.
    max_upload_bytes: int = 200 * 1024 * 1024
    max_unzipped_bytes: int = 1024 * 1024 * 1024

    def __post_init__(self) -> None:
        if len(self.session_secret) < SECRET_BYTES:
            raise WebConfigError(
                f"session secret: at least {SECRET_BYTES} bytes needed, got "
                f"{len(self.session_secret)}"
            )
        if self.plan_workers < 1:
            raise WebConfigError(f"plan_workers: at least 1, got {self.plan_workers}")
        if self.max_pending_plans < 1:
            raise WebConfigError(f"max_pending_plans: at least 1, got {self.max_pending_plans}")
        if self.login_max_failures < 1 or self.login_window_s <= 0:
            raise WebConfigError("login rate limit: max failures >= 1 and a positive window")
        if self.executor not in ("process", "thread"):
            raise WebConfigError(f"executor: 'process' or 'thread', got {self.executor!r}")
        if self.xray_source_data is not None:
            from openiort.devices.xray import load_commissioning

            load_commissioning(self.xray_source_data)  # refuse bad data at start, not per plan
        if self.electron_machine_data is not None:
            from openiort.devices.electron.machine import load_machine_data

            load_machine_data(self.electron_machine_data)  # the same: refused at start
        if self.hdr_source_data is not None:
            from openiort.devices.hdr_source import load_hdr_source_record

            load_hdr_source_record(self.hdr_source_data)  # the same: refused at start
        if self.dicom_settings is not None:
            dicom_settings_for(self)  # refused at start, not per download
        if self.hdr_other_source_data:
            from openiort.devices.hdr_source import load_hdr_source_record

            serials = [load_hdr_source_record(p).source_serial for p in self.hdr_other_source_data]
            if self.hdr_source_data is not None:
                serials.append(load_hdr_source_record(self.hdr_source_data).source_serial)
            if len(set(serials)) != len(serials):
                raise WebConfigError(
                    "HDR source records: each must be of another source (serials "
                    f"{', '.join(serials)})"
                )


def dicom_settings_for(config: WebConfig) -> DicomSettings:
    """The DICOM settings in effect: the configured file, else ``$OPENIORT_DICOM_SETTINGS``,
    else the defaults; a file that cannot be used is refused at start."""
    from openiort.io.dicom_settings import load_settings
    from openiort.io.errors import DicomExportError

    try:
        return load_settings(config.dicom_settings)
    except DicomExportError as exc:
        raise WebConfigError(*exc.problems, source=exc.source) from None


def _read_secret_file(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise WebConfigError(
            f"session key file {path} is readable by other users (mode "
            f"{stat.S_IMODE(mode):04o}); restrict it with `chmod 600`"
        )
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except ValueError:
        raise WebConfigError(f"session key file {path} does not hold a hexadecimal key") from None
    if len(key) < SECRET_BYTES:
        raise WebConfigError(f"session key file {path} holds {len(key)} bytes; 32 needed")
    return key


def session_secret(directory: Path | None = None) -> bytes:
    """The key that signs session cookies.

    ``OPENIORT_SESSION_SECRET`` (at least 32 characters) when set, else ``session.key`` in the
    data directory, created with 0600 permissions on first use so that sessions survive a
    restart of the server.
    """
    env = os.environ.get(SESSION_SECRET_ENV)
    if env is not None:
        if len(env) < MIN_ENV_SECRET_CHARS:
            raise WebConfigError(
                f"{SESSION_SECRET_ENV} must be at least {MIN_ENV_SECRET_CHARS} characters"
            )
        return env.encode("utf-8")
    path = (directory or data_dir()) / SESSION_SECRET_FILENAME
    if path.exists():
        return _read_secret_file(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another server process created it first
        return _read_secret_file(path)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(SECRET_BYTES) + "\n")
    return _read_secret_file(path)


def default_files_dir() -> Path:
    """``plans/`` in the records' data directory."""
    return data_dir() / PLANS_DIRNAME
