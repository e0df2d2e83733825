"""The team's web app: case entry, guideline verdicts, plans, approval, downloads (``iort serve``).

A thin FastAPI shell over the library (:mod:`openiort.pipeline`, :mod:`openiort.clinical`,
:mod:`openiort.report`, :mod:`openiort.io`) and the treatment records
(:mod:`openiort.records`). Pages are rendered on the server and work offline: every asset is
shipped in this package (``templates/``, ``static/``). The JSON API under ``/api/`` mirrors the
pages with the same authorisation; its OpenAPI description is at ``/api/openapi.json``.

Modules, each importing only those listed before it (no cycle; ``tests/web`` checks):
``config`` (settings and the session key), ``sessions`` (signed session cookies and CSRF
tokens), ``ratelimit`` (login throttling), ``safelog`` (logging without patient data),
``auth`` (who is asking, and may they), ``caseform`` (the case form from the case model),
``slices`` and ``dvhplot`` (the dose viewer), ``worker`` (planning in a worker process),
``artifacts`` (a plan's files on disk), ``jobs`` (the planning queue, off the event loop),
``results`` (filing a finished plan),
``formatting`` (templates and their helpers), ``state`` (what the routes share: ``WebApp``,
``web_of``), ``operations`` (what pages and API both do), ``downloads`` (PDF, DICOM zip, plan
JSON, for pages and API), ``routing`` (id parameters, redirects, messages), ``errorpages`` and
``middleware`` (error answers, sessions and headers), ``api_models`` (the API's bodies), the
routes ``api``, ``pages_site``, ``pages_cases``, ``pages_plans`` and ``pages_delivery``,
``app`` (the factory, which only wires these) and ``commands`` (``iort serve``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so that the planning worker process imports no web framework.
    if name == "create_app":
        from openiort.web.app import create_app

        return create_app
    raise AttributeError(name)
