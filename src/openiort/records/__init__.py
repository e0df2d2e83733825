"""Treatment records: patients, cases, versioned and sealed plans, deliveries, QA, audit.

SQLAlchemy 2 models with Alembic migrations; SQLite by default, PostgreSQL through
``OPENIORT_DATABASE_URL``. The service functions take a session and the acting user, check
the user's role and write the audit log::

    from openiort.records import db, service
    engine = db.prepare_database()
    with db.session_scope(engine) as s:
        plan = service.load_plan(s, plan_id)   # refuses a plan whose seal does not match
"""

from openiort.records import chain
from openiort.records import guards as _guards
from openiort.records.cases import case_model, create_case, get_case, list_cases, update_case
from openiort.records.db import (
    data_dir,
    database_url,
    make_engine,
    prepare_database,
    session_scope,
    upgrade,
)
from openiort.records.delivery import (
    check_console,
    list_deliveries,
    record_delivery,
    record_invivo_reading,
    remaining,
)
from openiort.records.errors import (
    ConflictError,
    DeliveryCheckError,
    ExampleDataError,
    LifecycleError,
    NotFoundError,
    PermissionDeniedError,
    RecordsError,
    RecordsValueError,
    SchemaError,
    SealKeyError,
    TamperedPlanError,
    TamperedRecordError,
)
from openiort.records.models import (
    Approval,
    AuditLog,
    Case,
    Delivery,
    InVivoReading,
    IsotropyCheck,
    Patient,
    Plan,
    Review,
    SourceOutputCheck,
    User,
)
from openiort.records.patients import (
    create_patient,
    find_patient,
    get_patient,
    list_patients,
    update_patient,
)
from openiort.records.plans import (
    approve_plan,
    get_plan,
    latest_plan,
    list_plans,
    review_plan,
    store_plan,
)
from openiort.records.qa import (
    latest_output_check,
    list_qa_checks,
    record_isotropy_check,
    record_output_check,
)
from openiort.records.roles import ROLES, allowed
from openiort.records.sealed_plans import (
    load_plan,
    sealed_plan_json,
    verify_all_plans,
    verify_plan,
    verify_plan_json,
)
from openiort.records.users import (
    authenticate,
    create_user,
    find_user,
    get_user,
    list_users,
    set_active,
    set_password,
    set_role,
    verify_password,
)

_guards.install()
chain.install()

__all__ = [
    "ROLES",
    "Approval",
    "AuditLog",
    "Case",
    "ConflictError",
    "Delivery",
    "DeliveryCheckError",
    "ExampleDataError",
    "InVivoReading",
    "IsotropyCheck",
    "LifecycleError",
    "NotFoundError",
    "Patient",
    "PermissionDeniedError",
    "Plan",
    "RecordsError",
    "RecordsValueError",
    "Review",
    "SchemaError",
    "SealKeyError",
    "SourceOutputCheck",
    "TamperedPlanError",
    "TamperedRecordError",
    "User",
    "allowed",
    "approve_plan",
    "authenticate",
    "case_model",
    "check_console",
    "create_case",
    "create_patient",
    "create_user",
    "data_dir",
    "database_url",
    "find_patient",
    "find_user",
    "get_case",
    "get_patient",
    "get_plan",
    "get_user",
    "latest_output_check",
    "latest_plan",
    "list_cases",
    "list_deliveries",
    "list_patients",
    "list_plans",
    "list_qa_checks",
    "list_users",
    "load_plan",
    "make_engine",
    "prepare_database",
    "record_delivery",
    "record_invivo_reading",
    "record_isotropy_check",
    "record_output_check",
    "remaining",
    "review_plan",
    "sealed_plan_json",
    "session_scope",
    "set_active",
    "set_password",
    "set_role",
    "store_plan",
    "update_case",
    "update_patient",
    "upgrade",
    "verify_all_plans",
    "verify_password",
    "verify_plan",
    "verify_plan_json",
]
