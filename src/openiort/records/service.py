"""The record services under one name, as the web app calls them (``service.load_plan``).

Plain functions taking a :class:`~sqlalchemy.orm.Session` and the acting :class:`User`. Each
checks the user's role, makes the change, and adds an audit entry in the same transaction; the
caller commits (for example with :func:`openiort.records.db.session_scope`). They live by
aggregate: :mod:`~openiort.records.patients`, :mod:`~openiort.records.cases`,
:mod:`~openiort.records.plans` (versions, review, approval) and
:mod:`~openiort.records.sealed_plans` (seal checks, export); deliveries are in
:mod:`~openiort.records.delivery`, users in :mod:`~openiort.records.users`.
"""

from __future__ import annotations

from openiort.records.cases import case_model, create_case, get_case, list_cases, update_case
from openiort.records.common import MAX_COMMENT_CHARS
from openiort.records.patients import (
    EXTERNAL_ID_PATTERN,
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
from openiort.records.sealed_plans import (
    load_plan,
    sealed_plan_json,
    verify_all_plans,
    verify_plan,
    verify_plan_json,
)

__all__ = [
    "EXTERNAL_ID_PATTERN",
    "MAX_COMMENT_CHARS",
    "approve_plan",
    "case_model",
    "create_case",
    "create_patient",
    "find_patient",
    "get_case",
    "get_patient",
    "get_plan",
    "latest_plan",
    "list_cases",
    "list_patients",
    "list_plans",
    "load_plan",
    "review_plan",
    "sealed_plan_json",
    "store_plan",
    "update_case",
    "update_patient",
    "verify_all_plans",
    "verify_plan",
    "verify_plan_json",
]
