"""Liveness and readiness for the hospital's monitoring and the reverse proxy.

``/healthz``: the process answers (no database, no login). ``/readyz``: it can do its work:
the database answers at the expected schema, the seal key is loaded and verifies, the planning
queue accepts work; 503 with the failing checks otherwise. Neither needs a login nor says
anything about patients.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from openiort.records.db import check_schema
from openiort.records.seal import key_id
from openiort.web.state import web_of

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    web = web_of(request)
    checks: dict[str, Any] = {}
    try:
        with web.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        check_schema(web.engine)
        checks["database"] = "ok"
    except Exception as exc:  # any failure: not ready, and say which kind
        checks["database"] = f"failed: {type(exc).__name__}"
    checks["key"] = f"ok (key id {key_id(web.seal_key)})" if web.seal_key else "missing"
    try:
        checks["queue"] = "ok" if web.jobs.accepting() else "full or stopped"
    except Exception as exc:  # the queue is a table: the database's failure, said above
        checks["queue"] = f"failed: {type(exc).__name__}"
    ready = all(str(v).startswith("ok") for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
        headers={} if ready else {"Retry-After": "30"},
    )
