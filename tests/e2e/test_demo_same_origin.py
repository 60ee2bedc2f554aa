"""The demo at /demo: the widget served from the page's own origin works fully, under the
demo's strict CSP, with no 403 (browsers send no Origin on same-origin GETs)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Response, expect

from tests.e2e.test_widget_isolation import WATCH_VIOLATIONS, collect_console_errors
from tests.support import free_port


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`widget-server demo` as a person runs it: its URL and database."""
    folder = tmp_path_factory.mktemp("demo")
    port, db = free_port(), folder / "demo.db"
    log = (folder / "demo.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "widget_server", "demo", "--port", str(port), "--db", str(db)],
        stdout=log, stderr=subprocess.STDOUT, cwd=folder,
        env={**os.environ, "WIDGET_LOG_LEVEL": "warning"})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            assert process.poll() is None, (folder / "demo.log").read_text()
            assert time.monotonic() < deadline, "the demo did not become healthy"
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)  # polling for the port; the condition is health
        yield base, db
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def identify_script(db: Path, user_id: str) -> str:
    """What a host page would run to sign its user in: queued before the loader comes."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        (secret,) = conn.execute("SELECT identity_secret FROM sites WHERE name = 'Demo'"
                                 ).fetchone()
    conn.close()
    digest = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    user = json.dumps({"id": user_id, "name": "Dee", "hash": digest})
    return ("window.HelpWidget = function () { (HelpWidget.q = HelpWidget.q || [])"
            f".push(arguments); }}; HelpWidget('identify', {user});")


def test_help_search_suggestions_and_access_work_on_the_demo(
    browser: Browser, demo: tuple[str, Path]
) -> None:
    base, db = demo
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    refused: list[str] = []

    def watch(response: Response) -> None:
        if response.status in (401, 403):
            refused.append(f"{response.status} {response.url}")

    page.on("response", watch)
    page.add_init_script(WATCH_VIOLATIONS)
    page.add_init_script(identify_script(db, "demo-user-1"))
    errors = collect_console_errors(page)
    page.goto(base + "/demo")
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()

    widget.get_by_label("Search help articles").fill("password")
    results = widget.locator("form.search li button")
    expect(results.first).to_contain_text("password")

    widget.get_by_role("button", name="Start a new request").click()
    widget.get_by_label("Describe the problem").fill("How do I export my data?")
    expect(widget.locator("ul.suggestions li button").first).to_be_visible()
    widget.get_by_role("button", name="Send").click()
    expect(widget.get_by_role("log")).to_contain_text("received")

    widget.get_by_role("button", name="← All requests").click()
    widget.get_by_role("button", name="Access and Security").click()
    expect(widget.get_by_role("heading", name="Access and Security")).to_be_visible()
    expect(widget.get_by_text("Loading…")).to_have_count(0)
    expect(widget.get_by_role("button", name="Grant access")).to_be_visible()

    assert refused == []
    assert page.evaluate("window.__violations") == []
    assert errors == []
    context.close()
