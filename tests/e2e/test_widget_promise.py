"""The widget's SLA promise in words, evaluated by the real views module in Chromium."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page

from tests.support import ServerProcess

NOW = "Date.parse('2026-11-24T12:00:00Z')"


def promise(page: Page, server: ServerProcess, ticket: str) -> str:
    version = re.search(r'version: "([0-9a-f]+)"', httpx.get(server.url + "/widget.js").text)
    assert version
    result: str = page.evaluate(
        f"async () => (await import('{server.url}/widget/{version.group(1)}/views.js'))"
        f".promise({ticket}, {NOW})")
    return result


def test_promise_wording(page: Page, server: ServerProcess) -> None:
    page.goto(server.url + "/healthz")  # any page of the server's origin
    due = "'2026-11-24T21:00:00.000Z'"
    assert promise(page, server, f"{{status: 'new', response_due: {due}}}") == \
        "We'll reply by Tue 21:00 UTC"
    assert promise(page, server, f"{{status: 'open', response_due: {due}, "
                   "response_kind: 'next_response'}") == "We'll get back to you by Tue 21:00 UTC"
    assert promise(page, server, f"{{status: 'open', response_due: {due}, breached: true}}") == \
        "We're late, and still on it."
    assert promise(page, server, "{status: 'open', response_due: '2026-11-24T11:00:00Z'}") == \
        "We're late, and still on it."
    assert promise(page, server, "{status: 'pending', response_due: null, sla_paused: true}") == ""
    assert promise(page, server, f"{{status: 'solved', response_due: {due}}}") == ""
