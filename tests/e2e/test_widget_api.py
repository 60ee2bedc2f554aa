"""The JS API of docs/embedding.md: queued calls, events, identify and logout."""

from __future__ import annotations

import uuid

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import HostPages, host_page
from tests.e2e.steps import open_request
from tests.support import ServerProcess, Site, identity_secret, user_hash

RECORD_EVENTS = """
window.__events = [];
for (const name of ["ready", "open", "close", "message", "unread", "ticket", "error"]) {
  HelpWidget("on", name, (detail) => window.__events.push("on:" + name));
  window.addEventListener("helpwidget:" + name, () => window.__events.push("dom:" + name));
}
"""


def events(page: Page) -> list[str]:
    found: list[str] = page.evaluate("window.__events")
    return found


def test_calls_queued_before_load_run_and_events_fire_both_ways(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    name = uuid.uuid4().hex[:8]
    host_pages.add(f"/{name}.js", RECORD_EVENTS + 'HelpWidget("open");')
    html = host_page(server, widget_site, body=f'<script src="/{name}.js"></script>')
    page.goto(host_pages.add(f"/api-{name}", html))
    widget = page.locator("help-widget")
    expect(widget.get_by_role("dialog")).to_be_visible()  # the queued "open" ran
    page.wait_for_function("window.__events.includes('dom:open')")
    assert "on:open" in events(page)

    widget.get_by_role("button", name="Start a new request").click()
    widget.get_by_label("Describe the problem").fill("Event check")
    widget.get_by_role("button", name="Send").click()
    page.wait_for_function("window.__events.includes('on:ticket')")
    assert "dom:ready" in events(page) and "on:ready" in events(page)

    page.evaluate("HelpWidget('close')")
    page.wait_for_function("window.__events.includes('on:close')")
    token = widget_site.api_token()
    httpx.post(f"{server.url}/api/v1/tickets/1/messages",
               headers={"Authorization": f"Bearer {token}"}, json={"body": "A reply"})
    page.wait_for_function("window.__events.includes('on:message')")
    page.wait_for_function("window.__events.includes('dom:unread')")
    badge = widget.locator(".badge")
    expect(badge).to_have_text("1")
    expect(widget.get_by_role("button", name="Help, 1 unread")).to_be_visible()

    page.evaluate("HelpWidget('hide')")
    expect(widget.get_by_role("button", name="Help, 1 unread")).to_be_hidden()
    page.evaluate("HelpWidget('show')")
    page.evaluate("HelpWidget('toggle')")
    expect(widget.get_by_role("dialog")).to_be_visible()


def test_identified_visitor_finds_history_on_another_device_and_logout_clears(
    browser: Browser, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    user_id = f"user-{uuid.uuid4().hex[:6]}"
    digest = user_hash(identity_secret(widget_site), user_id)
    name = uuid.uuid4().hex[:8]
    host_pages.add(f"/id-{name}.js", f'HelpWidget("identify", {{id: "{user_id}", '
                   f'name: "Ana", email: "ana@example.com", hash: "{digest}"}});')
    url = host_pages.add(f"/identified-{name}", host_page(
        server, widget_site, body=f'<script src="/id-{name}.js"></script>'))

    laptop = browser.new_context()
    page = laptop.new_page()
    page.goto(url)
    open_request(page, "Invoice is wrong")

    phone = browser.new_context()
    other = phone.new_page()
    other.goto(url)
    other_widget = other.locator("help-widget")
    other_widget.get_by_role("button", name="Help").click()
    expect(other_widget.locator("ul.tickets")).to_contain_text("Invoice is wrong")

    before = other.evaluate("Object.entries(localStorage)")
    assert any(key.endswith(":user") for key, _ in before)
    other.evaluate("HelpWidget('logout')")
    expect(other_widget.locator("ul.tickets")).to_contain_text("No requests yet")
    after = dict(other.evaluate("Object.entries(localStorage)"))
    assert not any(key.endswith((":user", ":outbox")) or ":messages:" in key for key in after)
    assert all(value == "[]" for key, value in after.items() if key.endswith(":tickets"))
    assert "Invoice is wrong" not in str(after)
    laptop.close()
    phone.close()
