"""What the route modules share: record-id parameters, redirects and the messages after them.

URLs carry record ids only (never a patient's identifier). Messages after a redirect are named
by a code in the query string (``?msg=approved``) so that no text from the request is echoed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import RedirectResponse
from pydantic import Field

# Record ids are 32-bit on PostgreSQL; larger numbers are refused as invalid (422), never
# passed to the database.
MAX_ID = 2_147_483_647
CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="case record id")]
PlanId = Annotated[int, Path(ge=1, le=MAX_ID, description="plan record id")]
Version = Annotated[int, Field(ge=1, le=MAX_ID)]

MESSAGES = {
    "created": "Case saved.",
    "saved": "Changes saved.",
    "unchanged": "Nothing had changed; the case was not saved again.",
    "reviewed": "Review recorded.",
    "changes": "Changes requested; the plan stays a draft.",
    "approved": "Plan approved and sealed.",
    "wrong-password": "The password did not match: the plan was not approved.",
    "throttled": "Too many wrong passwords: wait a few minutes before approving.",
    "logged-out": "You have logged out.",
    "delivered": "Delivery recorded: the console settings matched the approved plan.",
    "interrupted": "Interrupted delivery recorded; the remainder is shown below.",
    "qa-recorded": "QA check recorded.",
}


def message(request: Request) -> str | None:
    """The message named by the request's ``msg`` code, if any."""
    return MESSAGES.get(request.query_params.get("msg", ""))


def redirect(url: str) -> RedirectResponse:
    """See other: the answer to every page form that succeeded."""
    return RedirectResponse(url, status_code=303)


async def form_text(request: Request) -> dict[str, str]:
    """The text fields of a posted form (the pages take no file uploads)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}
