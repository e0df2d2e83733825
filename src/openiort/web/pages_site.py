"""Site pages: the home redirect, login, logout and the API reference page."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from openiort.records.users import authenticate
from openiort.web import operations
from openiort.web.auth import (
    check_csrf,
    end_session,
    ensure_anonymous_session,
    page_user,
    safe_next,
    start_session,
    user_for,
)
from openiort.web.routing import message, redirect
from openiort.web.state import web_of

router = APIRouter(include_in_schema=False)


@router.get("/")
def home() -> RedirectResponse:
    return redirect("/cases")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/cases") -> Response:
    web = web_of(request)
    with web.db() as s:
        if user_for(request.state.session, s) is not None:
            return redirect(safe_next(next))
    ensure_anonymous_session(request)
    return web.render(request, "login.html", {"next": safe_next(next), "message": message(request)})


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(check_csrf)])
def login(
    request: Request,
    username: str = Form(..., max_length=200),
    password: str = Form(..., max_length=2000),
    next: str = Form("/cases", max_length=2000),
) -> Response:
    web = web_of(request)
    address = operations.client_address(request)
    target = safe_next(next)
    wait = web.limiter.retry_after_s(username, address)
    if wait:
        response = web.render(
            request,
            "login.html",
            {
                "next": target,
                "username": username,
                "error": f"Too many failed attempts: try again in {wait} s.",
            },
            status_code=429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    with web.db() as s, operations.hash_slot(web):
        user = authenticate(s, username, password)
        user_id = user.id if user is not None else None
    if user_id is None:
        web.limiter.failed(username, address)
        operations.logger_login_failed(address)
        return web.render(
            request,
            "login.html",
            {"next": target, "username": username, "error": "Unknown user or wrong password."},
            status_code=401,
        )
    web.limiter.succeeded(username, address)
    start_session(request, web.sessions, user_id)
    return redirect(target)


@router.post("/logout", dependencies=[Depends(check_csrf)])
def logout(request: Request) -> Response:
    end_session(request, web_of(request).sessions)
    return redirect("/login?msg=logged-out")


@router.get("/api/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> Response:
    web = web_of(request)
    with web.db() as s:
        page_user(request, s)
    schema = request.app.openapi()
    operations_list = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            operations_list.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": (op.get("description") or "").split("\n")[0],
                }
            )
    return web.render(
        request,
        "api_docs.html",
        {
            "operations": operations_list,
            "openapi_version": schema.get("openapi", ""),
            "nav": "api",
        },
    )
