"""The settings page: the DICOM settings and the department device data the server runs with.

The page shows; it does not edit. DICOM settings and device data are department configuration
under change control: they are changed in their files (``iort serve --dicom-settings``,
``--xray-source-data``, ...), reviewed like any commissioning change, and take effect when the
server starts again (docs/dicom-conformance.md, "Settings").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from openiort.io.dicom_settings import TECHNIQUE_KEYS
from openiort.web.auth import page_user
from openiort.web.state import WebApp, web_of

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class DeviceRow:
    """One device data set as the page lists it."""

    technique: str
    name: str
    serial: str
    version: str
    effective_date: str
    status: str  # "department" or "example"
    file: str


def _row(technique: str, ref: Any, file: Path | None) -> DeviceRow:
    return DeviceRow(
        technique=technique,
        name=str(ref.name or ""),
        serial=str(ref.serial or ""),
        version=str(ref.version or ""),
        effective_date=str(ref.effective_date or ""),
        status=str(ref.status),
        file=str(file) if file is not None else "",
    )


def _example(technique: str, name: str) -> DeviceRow:
    return DeviceRow(technique, name, "", "", "", "example", "")


def device_rows(web: WebApp) -> list[DeviceRow]:
    """The x-ray source, electron machine and HDR source(s) the server loaded (the examples
    where none was given: plans on them cannot be approved). Loaded once, then cached."""
    cached: list[DeviceRow] | None = web.cache.get("settings-device-rows")
    if cached is not None:
        return cached
    config = web.config
    rows: list[DeviceRow] = []
    if config.xray_source_data is not None:
        from openiort.devices.xray import load_commissioning

        source = load_commissioning(config.xray_source_data)
        rows.append(_row("50 kV x-ray source", source.data_ref(), config.xray_source_data))
    else:
        rows.append(_example("50 kV x-ray source", "built-in example source"))
    if config.electron_machine_data is not None:
        from openiort.devices.electron.machine import load_machine_data

        machine = load_machine_data(config.electron_machine_data)
        rows.append(_row("electron machine", machine.data_ref(), config.electron_machine_data))
    else:
        rows.append(_example("electron machine", "example machine (LIAC HWL)"))
    hdr_files = [p for p in (config.hdr_source_data,) if p is not None]
    hdr_files += list(config.hdr_other_source_data)
    if not hdr_files:
        rows.append(_example("HDR source", "built-in example source"))
    for i, path in enumerate(hdr_files):
        from openiort.devices.hdr_source import load_hdr_source_record

        record = load_hdr_source_record(path)
        current = i == 0 and config.hdr_source_data is not None
        rows.append(
            DeviceRow(
                technique="HDR source" + (" (current)" if current else " (other)"),
                name=f"{record.source_model_title} in {record.afterloader_name}",
                serial=record.source_serial,
                version=record.version,
                effective_date=record.effective_date,
                status="department",
                file=str(path),
            )
        )
    web.cache.put("settings-device-rows", rows)
    return rows


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request) -> Response:
    web = web_of(request)
    with web.db() as s:
        page_user(request, s)  # any logged-in user may see the configuration
    settings = web.dicom_settings
    machines = [(t, settings.machine_for(t) or "") for t in TECHNIQUE_KEYS]
    return web.render(
        request,
        "settings.html",
        {
            "settings": settings,
            "machines": machines,
            "devices": device_rows(web),
            "nav": "settings",
        },
    )
