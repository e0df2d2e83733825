"""Filing a finished planning job: its plan into the records and its files beside them."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from openiort.errors import OpenIortInputError
from openiort.records import service
from openiort.records.errors import ConflictError, PermissionDeniedError, RecordsError
from openiort.records.models import User
from openiort.web import safelog
from openiort.web.artifacts import PlanFiles
from openiort.web.jobs import Job
from openiort.web.worker import WorkerOutcome

logger = logging.getLogger("openiort.web")


class DatabaseUnavailableError(Exception):
    """The database could not store a computed plan (unreachable, locked, read-only): the
    plan's files are back in their staging folder and the job unchanged, to be filed again
    once the database answers."""


def store_outcome(
    db: Callable[[], AbstractContextManager[Session]],
    files: PlanFiles,
    job: Job,
    outcome: WorkerOutcome,
    staging: Path,
) -> None:
    """Called in a background thread when a worker has finished ``job``.

    A plan is stored only if the case is still at the version planned; the job says what
    happened (done with its plan id, or failed with a message and the case's problems).

    Raises
    ------
    DatabaseUnavailableError
        When the database cannot be written now; nothing is lost and the call can be repeated.
    """
    if outcome.kind == "case":
        job.state, job.message, job.problems = (
            "failed",
            "The case cannot be planned as entered:",
            list(outcome.problems),
        )
        job.finished_at = time.time()
        return
    if outcome.kind != "ok" or outcome.plan_json is None:
        ref = safelog.error_reference()
        logger.error("planning failed: %s (ref %s) at %s", outcome.error_type, ref, outcome.where)
        job.state = "failed"
        job.message = f"Planning failed on the server (reference {ref})."
        job.finished_at = time.time()
        return
    adopted: Path | None = None
    try:
        with db() as s:
            user = s.get(User, job.user_id)
            case = service.get_case(s, job.case_id)
            if user is None:
                raise PermissionDeniedError("the user who asked for the plan no longer exists")
            if case.version != job.case_version:
                who = case.updated_by.username if case.updated_by else "another user"
                raise ConflictError(
                    "case", case.id, job.case_version, case.version, who, case.updated_at
                )
            plan = service.store_plan(s, user, job.case_id, outcome.plan_json)
            adopted = files.adopt(staging, plan.id)
            plan_id = plan.id
    except (OperationalError, InterfaceError) as exc:
        if adopted is not None:
            os.replace(adopted, staging)
        raise DatabaseUnavailableError(type(exc).__name__) from exc
    except (RecordsError, OpenIortInputError, ValueError) as exc:
        if adopted is not None:
            files.discard(adopted)
        job.state = "failed"
        job.message = (
            "The case was changed while the plan was computed; compute the plan again "
            "from the current case."
            if isinstance(exc, ConflictError)
            else f"The plan was not stored: {exc}"
        )
        job.finished_at = time.time()
        return
    except Exception as exc:
        if adopted is not None:
            files.discard(adopted)
        ref = safelog.error_reference()
        safelog.log_unexpected(exc, ref, "store plan")
        job.state = "failed"
        job.message = f"The plan could not be stored (reference {ref})."
        job.finished_at = time.time()
        return
    job.plan_id = plan_id
    job.state = "done"
    job.finished_at = time.time()
    logger.info("plan %d stored for case %d in %.1f s", plan_id, job.case_id, outcome.seconds)
