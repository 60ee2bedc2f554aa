"""`widget-server demo` as a newcomer meets it, in Chromium: credentials and sessions that
survive a restart (and --fresh), / leading somewhere, signing in as a demo customer, a page
that fits a phone, and severities with distinct targets."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
from playwright.sync_api import Browser, expect

from tests.support import free_port
from tests.test_cli import LineReader, field, wait_healthy


@contextmanager
def demo(folder: Path, port: int, *extra: str) -> Iterator[tuple[str, str]]:
    """A running demo: its URL and everything it printed before serving."""
    process = subprocess.Popen(
        [sys.executable, "-m", "widget_server", "demo", "--port", str(port), "--db",
         str(folder / "demo.db"), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=folder,
        env={**os.environ, "WIDGET_LOG_LEVEL": "warning"})
    reader = LineReader(process)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        reader.until("Credentials:", deadline)
        wait_healthy(base, process, deadline)
        yield base, "".join(reader.seen)
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.finish()
        assert process.stdout is not None
        process.stdout.close()


def test_credentials_and_sessions_last_between_runs_until_fresh(
    browser: Browser, tmp_path: Path
) -> None:
    port = free_port()
    context = browser.new_context()
    page = context.new_page()
    with demo(tmp_path, port) as (base, printed):
        assert field(printed, "Console:") == f"{base}/console"
        password = field(printed, "Admin sign-in:").partition(" / ")[2]
        token = field(printed, "API token:")
        assert (tmp_path / "demo-credentials.json").stat().st_mode & 0o777 == 0o600
        page.goto(base + "/console/login")
        page.get_by_label("Email").fill("admin@example.com")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Inbox")).to_be_visible()

    with demo(tmp_path, port) as (base, printed):
        assert field(printed, "Admin sign-in:").partition(" / ")[2] == password
        assert field(printed, "API token:") == token
        assert "kept from the last run" in field(printed, "Credentials:")
        page.goto(base + "/console")  # the session of the first run is still good
        expect(page.get_by_role("heading", name="Inbox")).to_be_visible()

    with demo(tmp_path, port, "--fresh") as (base, printed):
        assert field(printed, "Admin sign-in:").partition(" / ")[2] != password
        assert httpx.get(f"{base}/api/v1/tickets",
                         headers={"Authorization": f"Bearer {token}"}).status_code == 401
        page.goto(base + "/console")
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    context.close()


def test_root_customer_sign_in_phone_fit_and_severity_targets(
    browser: Browser, tmp_path: Path
) -> None:
    with demo(tmp_path, free_port()) as (base, printed):
        api = httpx.get(base + "/", headers={"Accept": "application/json"})
        assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"

        context = browser.new_context(viewport={"width": 390, "height": 844},
                                      is_mobile=True, has_touch=True)
        page = context.new_page()
        page.goto(base + "/")  # a person at the server's address lands on the demo
        assert page.url == base + "/demo"
        widget = page.locator("help-widget")
        launcher = widget.get_by_role("button", name="Help")
        expect(launcher).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        box = launcher.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
        assert box["y"] + box["height"] <= 844

        page.get_by_role("link", name="Sign in as a demo customer").click()
        widget.get_by_role("button", name="Help").click()
        widget.get_by_role("button", name="Access and Security").click()
        expect(widget.get_by_role("button", name="Grant access")).to_be_visible()

        widget.get_by_role("button", name="← Back").first.click()
        widget.get_by_role("button", name="Start a new request").click()
        widget.get_by_label("Critical").check()
        widget.get_by_label("Describe the problem").fill("Everything is down")
        widget.get_by_role("button", name="Send").click()
        expect(widget.get_by_role("log")).to_contain_text("received")
        token = field(printed, "API token:")
        ticket = httpx.get(f"{base}/api/v1/tickets/1",
                           headers={"Authorization": f"Bearer {token}"}).json()["ticket"]
        due = datetime.fromisoformat(ticket["first_response_due"])
        created = datetime.fromisoformat(ticket["created_at"])
        assert ticket["severity"] == "critical" and (due - created).total_seconds() == 3600

        widget.get_by_role("button", name="Close help").click()  # the panel fills a phone
        page.get_by_role("link", name="Sign out").click()
        widget.get_by_role("button", name="Help").click()
        expect(widget.get_by_role("button", name="Start a new request")).to_be_visible()
        expect(widget.get_by_role("button", name="Access and Security")).to_have_count(0)
        context.close()
