"""The "leave a message" form view: configured, or when websockets cannot connect at all."""

from __future__ import annotations

import re
import sqlite3
import uuid

from playwright.sync_api import Page, WebSocketRoute, expect

from tests.e2e.conftest import HostPages, host_page
from tests.support import ServerProcess, Site


def stored_visitor(site: Site) -> tuple[str, str, str]:
    with sqlite3.connect(f"file:{site.db}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT v.name, v.email, t.channel FROM tickets t"
            " JOIN conversations c ON c.id = t.conversation_id"
            " JOIN visitors v ON v.id = c.visitor_id JOIN sites s ON s.id = t.site_id"
            " WHERE s.key = ?", (site.key,)).fetchone()
    return row[0], row[1], row[2]


def leave_message(page: Page) -> None:
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Start a new request").click()
    widget.get_by_label("Your name").fill("Grace")
    widget.get_by_label("Your email").fill("grace@example.com")
    widget.get_by_label("Describe the problem").fill("Please call me back")
    widget.get_by_role("button", name="Send").click()
    expect(widget.get_by_role("log")).to_contain_text("Request #1 received")


def test_form_mode_asks_for_contact_details(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    html = host_page(server, widget_site, mode="form")
    page.goto(host_pages.add(f"/form-{uuid.uuid4().hex[:8]}", html))
    page.locator("help-widget").get_by_role("button", name="Help").click()
    leave_message(page)
    assert stored_visitor(widget_site) == ("Grace", "grace@example.com", "widget")


def test_blocked_websockets_fall_back_to_http(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    def refuse(ws: WebSocketRoute) -> None:
        ws.close(code=1011)

    page.route_web_socket(re.compile(r".*/ws/widget"), refuse)
    page.goto(host_pages.add(f"/blocked-{uuid.uuid4().hex[:8]}", host_page(server, widget_site)))
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    expect(widget.get_by_role("status")).to_contain_text("Offline", timeout=20000)
    leave_message(page)
    log = widget.get_by_role("log")
    expect(log.get_by_text("Sent", exact=True)).to_have_count(1)
    assert stored_visitor(widget_site)[:2] == ("Grace", "grace@example.com")
