"""Regenerate docs/widget-desktop.png and docs/widget-mobile.png from a real demo server.

    python docs/make_screenshots.py   (needs the test extra and Debian's chromium)
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM_FLAGS, chromium_path  # noqa: E402
from tests.support import free_port  # noqa: E402


def main() -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        demo = subprocess.Popen(
            [sys.executable, "-m", "widget_server", "demo", "--port", str(port),
             "--db", f"{tmp}/demo.db"], stdout=subprocess.PIPE, text=True)
        assert demo.stdout is not None
        output = ""
        while "API token:" not in output:
            output += demo.stdout.readline()
        token = re.search(r"API token:\s+(\S+)", output).group(1)  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                httpx.get(base + "/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        try:
            shoot(base, token)
        finally:
            demo.terminate()
            demo.wait()


def shoot(base: str, token: str) -> None:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(base + "/demo")
        widget = page.locator("help-widget")
        widget.get_by_role("button", name="Help").click()
        widget.get_by_role("button", name="Start a new request").click()
        widget.get_by_label("High").check()
        widget.get_by_label("Describe the problem").fill(
            "The nightly CSV export has been empty since yesterday's update.")
        widget.get_by_role("button", name="Send").click()
        widget.get_by_role("log").get_by_text("Request #1 received").wait_for()
        httpx.post(f"{base}/api/v1/tickets/1/messages",
                   headers={"Authorization": f"Bearer {token}"},
                   json={"body": "Thanks, we can **reproduce** it. A fix is on its way; "
                                 "meanwhile the export works from here:\n\n"
                                 "1. open **Reports**\n2. choose `Download`"})
        widget.get_by_text("we can reproduce it").wait_for()
        page.screenshot(path=str(ROOT / "docs" / "widget-desktop.png"))
        page.set_viewport_size({"width": 390, "height": 844})
        widget.get_by_role("button", name="← All requests").click()
        page.screenshot(path=str(ROOT / "docs" / "widget-mobile.png"))
        browser.close()


if __name__ == "__main__":
    main()
