"""Debian tools the DICOM tests drive for real (dicom3tools' dciodvfy, dcmtk's storescp).

They come from the project's own set-up, ``scripts/install-system-deps.sh`` (``make
system-deps``, run by ``make test``). When one is missing the test runs that script itself
(it needs root); a tool that is still missing fails the test with the command to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None and hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(
            ["bash", str(REPO / "scripts" / "install-system-deps.sh")],
            check=False,
            capture_output=True,
            timeout=900,
        )
        path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run `make system-deps` (scripts/install-system-deps.sh, "
            "as root) to install dicom3tools and dcmtk"
        )
    return path
