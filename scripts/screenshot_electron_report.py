"""Screenshots of an electron plan's report for docs/: the dose slices in the operating-room
phantom and the MU hand-calculation block, taken in a real browser (Debian Chromium).

    .venv/bin/iort plan examples/left_electron_eliot.yaml --out /tmp/eplan
    .venv/bin/python scripts/screenshot_electron_report.py /tmp/eplan/report.html docs/

Chromium is found at $OPENIORT_CHROMIUM (default /usr/bin/chromium), as in tests/web.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("OPENIORT_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu"]


def main(report: Path, out: Path) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(report.resolve().as_uri())
        # the slices: the "Dose distribution" heading, its two notes and the figure below them
        heading = page.locator("h2", has_text="Dose distribution").first
        figure = heading.locator("xpath=following-sibling::div[1]")
        top, bottom = heading.bounding_box(), figure.bounding_box()
        assert top is not None and bottom is not None
        x = min(top["x"], bottom["x"]) - 8
        clip = {
            "x": x,
            "y": top["y"] - 8,
            "width": max(top["x"] + top["width"], bottom["x"] + bottom["width"]) - x + 8,
            "height": bottom["y"] + bottom["height"] - top["y"] + 16,
        }
        page.screenshot(path=str(out / "electron-plan-slices.png"), clip=clip, full_page=True)
        page.locator("#mu-worksheet").screenshot(path=str(out / "electron-mu-handcalc.png"))
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
