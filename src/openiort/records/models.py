"""SQLAlchemy 2 models of the treatment records.

One table per record kind: users, patients, cases (optimistically locked), plans (versioned and
sealed on approval), reviews, approvals, deliveries, in-vivo dosimetry readings, the source's
daily output and isotropy checks, and the audit log. The schema itself is created and changed
only by the Alembic migrations in :mod:`openiort.records.migrations`; a test checks that the
migrated schema matches these models on SQLite and PostgreSQL.

Times are stored as UTC and come back timezone-aware on both backends.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from openiort.records.roles import ROLES

PLAN_STATUSES: tuple[str, ...] = ("draft", "reviewed", "approved", "delivered")
TECHNIQUES: tuple[str, ...] = ("xray", "electron", "hdr")
REVIEW_DECISIONS: tuple[str, ...] = ("accepted", "changes_requested")

# Stable constraint names so that later migrations (batch mode on SQLite) can address them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and returned timezone-aware on every backend.

    SQLite keeps no zone, so naive values read back are UTC by construction; naive values
    written are refused because their zone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware (UTC); got a naive datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"User(id={self.id}, username={self.username!r}, role={self.role!r})"


class Patient(Base):
    """A patient. ``name`` and ``birth_date`` identify her: they never enter logs or audit."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    cases: Mapped[list[Case]] = relationship(back_populates="patient", order_by="Case.id")

    def __repr__(self) -> str:  # never the name
        return f"Patient(id={self.id}, external_id={self.external_id!r})"


class Case(Base):
    """A case file (the :class:`openiort.case.Case` vocabulary) as JSON.

    ``version`` increases on every update; an update made against an older version is
    refused (optimistic locking), so two concurrent edits never silently overwrite each other.
    """

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    patient: Mapped[Patient] = relationship(back_populates="cases")
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    updated_by: Mapped[User | None] = relationship(foreign_keys=[updated_by_id])
    plans: Mapped[list[Plan]] = relationship(back_populates="case", order_by="Plan.version_number")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy declares it)

    def __repr__(self) -> str:
        return f"Case(id={self.id}, patient_id={self.patient_id}, version={self.version})"


class Plan(Base):
    """One version of a plan for a case.

    A plan is never edited once approved: a change is stored as a new version. The seal
    (``canonical_sha256``, ``seal_hmac``, ``seal_key_id``, ``approved_by``, ``approved_at``) is
    written once, at approval.
    """

    __tablename__ = "plans"
    __table_args__ = (
        UniqueConstraint("case_id", "version_number", name="uq_plans_case_version"),
        CheckConstraint(_in("status", PLAN_STATUSES), name="status"),
        CheckConstraint(_in("technique", TECHNIQUES), name="technique"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    version_number: Mapped[int] = mapped_column(Integer)
    parent_plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    case_version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    technique: Mapped[str] = mapped_column(String(16))
    plan_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    canonical_sha256: Mapped[str | None] = mapped_column(String(64))
    seal_hmac: Mapped[str | None] = mapped_column(String(64))
    seal_key_id: Mapped[str | None] = mapped_column(String(16))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[dt.datetime | None] = mapped_column()
    delivered_at: Mapped[dt.datetime | None] = mapped_column()
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)

    case: Mapped[Case] = relationship(back_populates="plans")
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id])
    reviews: Mapped[list[Review]] = relationship(back_populates="plan", order_by="Review.id")
    approval: Mapped[Approval | None] = relationship(back_populates="plan")
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="plan", order_by="Delivery.sequence"
    )

    __mapper_args__ = {"version_id_col": row_version}  # noqa: RUF012 (SQLAlchemy declares it)

    @property
    def sealed(self) -> bool:
        """Whether the plan has been approved (and so carries a seal)."""
        return self.status in ("approved", "delivered")

    def __repr__(self) -> str:
        return (
            f"Plan(id={self.id}, case_id={self.case_id}, version={self.version_number}, "
            f"status={self.status!r})"
        )


class Review(Base):
    """A reviewer's verdict on a plan version: accepted (draft -> reviewed) or changes requested."""

    __tablename__ = "plan_reviews"
    __table_args__ = (CheckConstraint(_in("decision", REVIEW_DECISIONS), name="decision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reviewer_role: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(24))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    plan: Mapped[Plan] = relationship(back_populates="reviews")
    reviewer: Mapped[User] = relationship()


class Approval(Base):
    """The approval of a plan version, with a copy of the seal it made."""

    __tablename__ = "plan_approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), unique=True)
    approver_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    approver_role: Mapped[str] = mapped_column(String(16))
    approved_at: Mapped[dt.datetime] = mapped_column()
    canonical_sha256: Mapped[str] = mapped_column(String(64))
    seal_hmac: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text)
    # The signed chart (openiort.records.chart_seal): patient details and signature lines as
    # approved, referencing the plan's seal, signed with the seal key (NULL: approved before
    # charts were signed).
    chart_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    chart_hmac: Mapped[str | None] = mapped_column(String(64))
    chart_key_id: Mapped[str | None] = mapped_column(String(16))

    plan: Mapped[Plan] = relationship(back_populates="approval")
    approver: Mapped[User] = relationship()


class SourceOutputCheck(Base):
    """A daily output check of a source or beam against its expected reading."""

    __tablename__ = "qa_output_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    device: Mapped[str] = mapped_column(String(100), index=True)
    technique: Mapped[str] = mapped_column(String(16))
    performed_at: Mapped[dt.datetime] = mapped_column()
    performed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    measured_value: Mapped[float] = mapped_column(Float)
    expected_value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))
    deviation_pct: Mapped[float] = mapped_column(Float)
    tolerance_pct: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(Boolean)
    energy_mev: Mapped[float | None] = mapped_column(Float)
    applicator: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    # what was measured (x-ray probe adapter: reading, air, serials), openiort.records.qa
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    performed_by: Mapped[User] = relationship()

    __table_args__ = (CheckConstraint(_in("technique", TECHNIQUES), name="technique"),)


class IsotropyCheck(Base):
    """A source isotropy check: readings in several directions compared with their mean."""

    __tablename__ = "qa_isotropy_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    device: Mapped[str] = mapped_column(String(100), index=True)
    performed_at: Mapped[dt.datetime] = mapped_column()
    performed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    readings: Mapped[dict[str, Any]] = mapped_column(JSON)
    unit: Mapped[str] = mapped_column(String(32))
    mean_value: Mapped[float] = mapped_column(Float)
    max_deviation_pct: Mapped[float] = mapped_column(Float)
    tolerance_pct: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    # the instrument (photodiode array serial), openiort.records.qa
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    performed_by: Mapped[User] = relationship()


class Delivery(Base):
    """One beam-on session of an approved plan, as entered at the console.

    Times are in seconds; ``set_*`` is what was entered at the console and ``given_*`` what was
    actually delivered (less than set when ``interrupted``). The remaining values are for the
    whole plan after this session, at the plan's reference conditions.

    When the conditions of the day were entered (:class:`openiort.session.TreatmentSession`),
    ``treatment_session`` holds them with the factors applied, ``session_scale`` the day's
    setting per reference setting (the set and given values are the day's; divided by it they
    are the plan's), and ``checked_*`` the value the console entry was checked against (the
    day's; without a session the plan's reference value).
    """

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("plan_id", "sequence", name="uq_deliveries_plan_sequence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    delivered_at: Mapped[dt.datetime] = mapped_column()
    delivered_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    applicator: Mapped[str] = mapped_column(String(40))
    energy_mev: Mapped[float | None] = mapped_column(Float)
    bevel_deg: Mapped[float | None] = mapped_column(Float)
    set_time_s: Mapped[float | None] = mapped_column(Float)
    given_time_s: Mapped[float | None] = mapped_column(Float)
    set_monitor_units: Mapped[float | None] = mapped_column(Float)
    given_monitor_units: Mapped[float | None] = mapped_column(Float)
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    delivered_fraction: Mapped[float] = mapped_column(Float)
    cumulative_fraction: Mapped[float] = mapped_column(Float)
    remaining_dose_gy: Mapped[float] = mapped_column(Float)
    remaining_time_s: Mapped[float | None] = mapped_column(Float)
    remaining_monitor_units: Mapped[float | None] = mapped_column(Float)
    output_check_id: Mapped[int | None] = mapped_column(ForeignKey("qa_output_checks.id"))
    warnings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    note: Mapped[str | None] = mapped_column(Text)
    treatment_session: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    session_scale: Mapped[float | None] = mapped_column(Float)
    checked_time_s: Mapped[float | None] = mapped_column(Float)
    checked_monitor_units: Mapped[float | None] = mapped_column(Float)

    plan: Mapped[Plan] = relationship(back_populates="deliveries")
    delivered_by: Mapped[User] = relationship()
    output_check: Mapped[SourceOutputCheck | None] = relationship()
    invivo_readings: Mapped[list[InVivoReading]] = relationship(
        back_populates="delivery", order_by="InVivoReading.id"
    )


class InVivoReading(Base):
    """An in-vivo dosimetry reading taken during a delivery."""

    __tablename__ = "invivo_readings"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    detector: Mapped[str] = mapped_column(String(60))
    position: Mapped[str] = mapped_column(String(100))
    measured_dose_gy: Mapped[float] = mapped_column(Float)
    expected_dose_gy: Mapped[float] = mapped_column(Float)
    deviation_pct: Mapped[float] = mapped_column(Float)
    tolerance_pct: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(Boolean)
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)

    delivery: Mapped[Delivery] = relationship(back_populates="invivo_readings")
    recorded_by: Mapped[User] = relationship()


class AuditLog(Base):
    """Who did what to which record, and when. Data, not the application log.

    Each entry is also an event of a record chain: it names the rows it changed with their
    digests and carries an HMAC over itself and the previous entry of the same chain (a
    patient's record, or the department's), see :mod:`openiort.records.chain`.

    ``summary`` names the changed fields (and, for clinical fields, their old and new values);
    it never holds a patient's name or birth date. ``username`` is kept beside ``user_id`` so
    the entry stays readable if the user is later disabled.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_entity", "entity", "entity_id"),
        UniqueConstraint("chain", "chain_seq", name="uq_audit_log_chain_seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The record chain (openiort.records.chain); NULL only on entries older than the chains.
    # ``at`` is when the event happened, ``recorded_at`` when it was written down.
    recorded_at: Mapped[dt.datetime | None] = mapped_column()
    chain: Mapped[str | None] = mapped_column(String(40))
    chain_seq: Mapped[int | None] = mapped_column(Integer)
    prev_hmac: Mapped[str | None] = mapped_column(String(64))
    rows: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    key_id: Mapped[str | None] = mapped_column(String(16))
    entry_hmac: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return (
            f"AuditLog(id={self.id}, username={self.username!r}, action={self.action!r}, "
            f"entity={self.entity!r}, entity_id={self.entity_id})"
        )


class LoginAttempt(Base):
    """A failed login, or one under way, for a username or a client address key
    (``user:<name>``, ``addr:<address>``): the login limiter of every server process. Not part
    of the clinical record; rows older than the limiter's window are removed."""

    __tablename__ = "login_attempts"
    __table_args__ = (CheckConstraint(_in("kind", ("pending", "failed")), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    at: Mapped[dt.datetime] = mapped_column()


class RevokedSession(Base):
    """A logged-out (or replaced) login session, refused by every server process until it
    would have expired anyway. Keyed by the SHA-256 of the session id (the id itself, a bearer
    secret, is never stored); only sessions of a logged-in user are put here, so the table
    grows with logins, not with anonymous requests; expired rows are removed at each insert.
    Not part of the clinical record."""

    __tablename__ = "revoked_sessions"

    sid_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


PLAN_JOB_STATES: tuple[str, ...] = ("queued", "running", "done", "failed")


class PlanJob(Base):
    """A planning job shared by every server and worker process (openiort.records.job_queue):
    its inputs (the case data at ``case_version``), the claiming worker and its heartbeat, and
    its outcome (the stored plan, or a message and problems fit to show the user). Not part of
    the clinical record; finished jobs are pruned after a while."""

    __tablename__ = "plan_jobs"
    __table_args__ = (
        CheckConstraint(_in("state", PLAN_JOB_STATES), name="state"),
        Index("ix_plan_jobs_state_submitted_at", "state", "submitted_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    case_id: Mapped[int] = mapped_column(Integer)
    case_version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(8))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    submitted_at: Mapped[dt.datetime] = mapped_column()
    started_at: Mapped[dt.datetime | None] = mapped_column()
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    plan_id: Mapped[int | None] = mapped_column(Integer)
    result_dir: Mapped[str | None] = mapped_column(String(500))
    message: Mapped[str] = mapped_column(Text, default="")
    problems: Mapped[list[str]] = mapped_column(JSON, default=list)
