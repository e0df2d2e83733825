"""Application state: settings, database, sessions, login limiter, plan files, queue, caches."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.applications import Starlette

from openiort.records.db import session_scope
from openiort.web.artifacts import PlanFiles
from openiort.web.auth import session_of
from openiort.web.config import WebConfig, dicom_settings_for
from openiort.web.db_jobs import DbJobs
from openiort.web.formatting import template_env
from openiort.web.jobs import Planner
from openiort.web.local_planners import LocalPlanners
from openiort.web.ratelimit import DbLoginRateLimiter
from openiort.web.sessions import DbRevocations, SessionManager
from openiort.web.slices import VIEWER_FILES, ViewerCache, ViewerVolume
from openiort.web.worker import compute_plan_files

PNG_CACHE_ITEMS = 2000


class LruCache:
    """A small thread-safe least-recently-used cache (rendered images, verdicts)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[Any, threading.Lock] = {}

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def lock_for(self, key: Any) -> threading.Lock:
        """A lock for computing ``key`` once when many threads miss it at the same time."""
        with self._lock:
            lock = self._key_locks.get(key)
            if lock is None:
                if len(self._key_locks) > 4 * self.size:
                    self._key_locks.clear()  # only in-flight computations need their locks
                lock = self._key_locks[key] = threading.Lock()
            return lock

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class WebApp:
    """Everything the routes share: settings, database, sessions, jobs, files, templates."""

    def __init__(
        self,
        config: WebConfig,
        engine: Engine,
        seal_key: bytes,
        planner: Planner = compute_plan_files,
    ) -> None:
        self.config = config
        self.engine = engine
        self.seal_key = seal_key
        self.sessions = SessionManager(
            config.session_secret,
            config.session_max_age_s,
            config.session_idle_s,
            config.secure_cookies,
            revocations=DbRevocations(engine),
        )
        self.limiter = DbLoginRateLimiter(engine, config.login_max_failures, config.login_window_s)
        self.files = PlanFiles(config.files_dir, key=seal_key)
        # The department's DICOM settings, read once (a change is made in the file, under
        # change control, and takes effect at the next start).
        self.dicom_settings = dicom_settings_for(config)
        if not config.external_planning:  # else workers of other processes are using it
            self.files.clean_staging()
        if planner is compute_plan_files and (
            config.xray_source_data is not None
            or config.electron_machine_data is not None
            or config.hdr_source_data is not None
        ):
            # A module-level function with bound data: picklable for the planning processes.
            planner = partial(
                compute_plan_files,
                source_data=None
                if config.xray_source_data is None
                else str(config.xray_source_data),
                machine_data=None
                if config.electron_machine_data is None
                else str(config.electron_machine_data),
                hdr_source_data=None
                if config.hdr_source_data is None
                else str(config.hdr_source_data),
            )
        local = None
        if not config.external_planning:
            local = LocalPlanners(
                engine,
                self.files,
                planner,
                workers=config.plan_workers,
                kind=config.executor,
                heartbeat_s=config.plan_heartbeat_s,
                stale_after_s=config.plan_stale_after_s,
            )
        self.jobs = DbJobs(engine, max_pending=config.max_pending_plans, local=local)
        self.viewer = ViewerCache()
        self.png_cache = LruCache(PNG_CACHE_ITEMS)
        self.cache = LruCache(256)
        self.templates = Jinja2Templates(env=template_env())

    def viewer_volume(self, plan_id: int) -> ViewerVolume:
        """The plan's viewer arrays, once their hashes match the plan files' manifest."""
        signature = self.files.verify_files(plan_id, VIEWER_FILES)
        return self.viewer.get(self.files.plan_dir(plan_id), signature)

    @contextmanager
    def db(self) -> Iterator[Session]:
        with session_scope(self.engine) as s:
            yield s

    def render(
        self, request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> HTMLResponse:
        data = session_of(request)
        ctx = {
            "request": request,
            "user": getattr(request.state, "user", None),
            "csrf": data.csrf if data else "",
            "message": None,
            "nav": "",
            **context,
        }
        response: HTMLResponse = self.templates.TemplateResponse(
            request, name, ctx, status_code=status_code
        )
        return response


def web_of(where: Request | Starlette) -> WebApp:
    """The application state of a request's app, or of an app."""
    app = where if isinstance(where, Starlette) else where.app
    web: WebApp = app.state.web
    return web
