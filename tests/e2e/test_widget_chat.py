"""The visitor's path in a real browser: launcher, new request, live replies, reload."""

from __future__ import annotations

import uuid

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.conftest import HostPages, host_page
from tests.support import ServerProcess, Site


def open_page(page: Page, host_pages: HostPages, server: ServerProcess, site: Site) -> None:
    url = host_pages.add(f"/p-{uuid.uuid4().hex[:8]}", host_page(server, site))
    page.goto(url)
    widget = page.locator("help-widget")
    expect(widget.get_by_role("button", name="Help")).to_be_visible()


def start_request(page: Page, text: str) -> None:
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Start a new request").click()
    widget.get_by_label("Describe the problem").fill(text)
    widget.get_by_role("button", name="Send").click()


def test_request_is_acknowledged_and_an_agent_reply_arrives_live(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    open_page(page, host_pages, server, widget_site)
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    expect(widget.get_by_role("dialog")).to_be_visible()
    start_request(page, "The CSV export is empty")
    log = widget.get_by_role("log")
    expect(log).to_contain_text("The CSV export is empty")
    expect(log).to_contain_text("Request #1 received")
    expect(widget.get_by_role("heading", name="#1", exact=True)).to_be_visible()
    expect(widget.get_by_text("We'll reply by")).to_be_visible()

    token = widget_site.api_token()
    reply = httpx.post(f"{server.url}/api/v1/tickets/1/messages",
                       headers={"Authorization": f"Bearer {token}"},
                       json={"body": "We are on it, which browser?"})
    assert reply.status_code == 201
    expect(log).to_contain_text("We are on it, which browser?")
    expect(widget.get_by_text("In progress")).to_be_visible()


def test_reload_keeps_history_and_two_requests_are_two_tickets(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    open_page(page, host_pages, server, widget_site)
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    start_request(page, "First problem")
    expect(widget.get_by_role("log")).to_contain_text("Request #1 received")
    widget.get_by_role("button", name="← All requests").click()
    start_request(page, "Second problem")
    expect(widget.get_by_role("log")).to_contain_text("Request #2 received")

    page.reload()
    widget.get_by_role("button", name="Help").click()
    tickets = widget.locator("ul.tickets > li")
    expect(tickets).to_have_count(2)
    expect(tickets.nth(0)).to_contain_text("#2")
    expect(tickets.nth(1)).to_contain_text("#1")
    tickets.nth(1).get_by_role("button").click()
    log = widget.get_by_role("log")
    expect(log).to_contain_text("First problem")
    expect(log).to_contain_text("Request #1 received")
    expect(log.locator(".message")).to_have_count(2)
