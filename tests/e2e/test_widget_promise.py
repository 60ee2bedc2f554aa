"""The widget's SLA promise in words, evaluated by the real views module in Chromium, in the
visitor's own locale and time zone."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.support import ServerProcess

NOW = "Date.parse('2026-11-24T12:00:00Z')"  # a Tuesday


@pytest.fixture
def prague(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB", timezone_id="Europe/Prague")
    yield context.new_page()
    context.close()


def call(page: Page, server: ServerProcess, function: str, argument: str) -> str:
    version = re.search(r'version: "([0-9a-f]+)"', httpx.get(server.url + "/widget.js").text)
    assert version
    result: str = page.evaluate(
        f"async () => (await import('{server.url}/widget/{version.group(1)}/views.js'))"
        f".{function}({argument}, {NOW})")
    return result


def test_promise_wording(prague: Page, server: ServerProcess) -> None:
    page = prague
    page.goto(server.url + "/healthz")  # any page of the server's origin
    due = "'2026-11-24T21:00:00.000Z'"
    assert call(page, server, "promise", f"{{status: 'new', response_due: {due}}}") == \
        "We'll reply by 22:00"
    assert call(page, server, "promise", "{status: 'new', response_due: '2026-11-25T21:00:00Z'}"
                ) == "We'll reply by Wed 22:00"
    assert call(page, server, "promise", f"{{status: 'open', response_due: {due}, "
                "response_kind: 'next_response'}") == "We'll get back to you by 22:00"
    assert call(page, server, "promise", f"{{status: 'open', response_due: {due}, "
                "breached: true}") == "We're late, and still on it."
    assert call(page, server, "promise", "{status: 'open', response_due: '2026-11-24T11:00:00Z'}"
                ) == "We're late, and still on it."
    assert call(page, server, "promise", "{status: 'pending', response_due: null, "
                "sla_paused: true}") == ""
    assert call(page, server, "promise", f"{{status: 'solved', response_due: {due}}}") == ""


def test_one_time_format_relative_while_recent(prague: Page, server: ServerProcess) -> None:
    page = prague
    page.goto(server.url + "/healthz")
    assert call(page, server, "when", "'2026-11-24T11:58:00Z'") == "2 min ago"
    assert call(page, server, "when", "'2026-11-24T08:05:00Z'") == "9:05"
    assert call(page, server, "when", "'2026-11-22T08:05:00Z'") == "Sun 09:05"
    assert call(page, server, "when", "'2026-10-01T08:05:00Z'") == "1 Oct, 10:05"
    # the server's acknowledgement in UTC, read in the visitor's zone
    ack = ("{created_at: '2026-11-24T12:00:00Z', body: 'Request #1 received. We filed it "
           "with normal severity and will send a first response by Wed 25 Nov 09:00 UTC.'}")
    assert call(page, server, "local", ack).endswith("first response by Wed 10:00.")
