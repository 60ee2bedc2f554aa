"""Keyboard-only use and axe-core scans of the launcher, the home view and a conversation."""

from __future__ import annotations

import uuid
from importlib import resources
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.conftest import HostPages, host_page
from tests.support import ServerProcess, Site

AXE = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text("utf-8")


def serious_widget_violations(page: Page) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE)  # evaluated by the test driver: axe never ships with the widget
    result = page.evaluate("""async () => {
        const found = await axe.run(document, {resultTypes: ["violations"]});
        return found.violations.map((v) => ({id: v.id, impact: v.impact,
            nodes: v.nodes.map((n) => JSON.stringify(n.target))}));
    }""")
    return [
        violation for violation in result
        if violation["impact"] in {"serious", "critical"}
        and any("help-widget" in node for node in violation["nodes"])
    ]


def active_in_widget(page: Page) -> str:
    found: str = page.evaluate("""() => {
        const root = document.querySelector("help-widget").shadowRoot;
        const el = root.activeElement;
        return el ? (el.getAttribute("aria-label") || el.textContent || el.tagName).trim() : "";
    }""")
    return found


def test_keyboard_only_flow(page: Page, host_pages: HostPages, server: ServerProcess,
                            widget_site: Site) -> None:
    html = host_page(server, widget_site, body='<a href="#top">Host link</a>')
    page.goto(host_pages.add(f"/kb-{uuid.uuid4().hex[:8]}", html))
    widget = page.locator("help-widget")
    expect(widget.get_by_role("button", name="Help")).to_be_visible()
    page.keyboard.press("Tab")  # the host's link
    page.keyboard.press("Tab")  # our launcher comes next in tab order
    assert active_in_widget(page) == "Help"
    page.keyboard.press("Enter")
    expect(widget.get_by_role("dialog")).to_be_visible()
    # the panel's heading, not the search box (no keyboard popping up on phones)
    expect(widget.get_by_role("heading", level=2)).to_be_focused()
    page.keyboard.press("Tab")
    assert active_in_widget(page) == "Close help"
    page.keyboard.press("Tab")
    expect(widget.get_by_label("Search help articles")).to_be_focused()
    page.keyboard.press("Tab")
    assert active_in_widget(page) == "Start a new request"
    page.keyboard.press("Enter")
    expect(widget.get_by_label("Describe the problem")).to_be_focused()
    page.keyboard.type("Typed with the keyboard only")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    page.keyboard.press("Enter")  # Enter sends, Shift+Enter was a new line
    log = widget.get_by_role("log")
    expect(log).to_contain_text("received")
    expect(log.locator(".message.visitor .text")).to_have_text(
        "Typed with the keyboard only\nsecond line")
    expect(widget.get_by_label("Your message")).to_be_focused()
    page.keyboard.press("Escape")
    expect(widget.get_by_role("dialog")).to_be_hidden()
    assert active_in_widget(page).startswith("Help")
    assert widget.get_by_role("button", name="Help").get_attribute("aria-expanded") == "false"


def test_axe_finds_no_serious_violations(page: Page, host_pages: HostPages,
                                         server: ServerProcess, widget_site: Site) -> None:
    page.goto(host_pages.add(f"/axe-{uuid.uuid4().hex[:8]}", host_page(server, widget_site)))
    widget = page.locator("help-widget")
    expect(widget.get_by_role("button", name="Help")).to_be_visible()
    assert serious_widget_violations(page) == []  # the launcher

    widget.get_by_role("button", name="Help").click()
    expect(widget.get_by_role("button", name="Start a new request")).to_be_visible()
    assert serious_widget_violations(page) == []  # the home view

    widget.get_by_role("button", name="Start a new request").click()
    assert serious_widget_violations(page) == []  # the new-request form
    widget.get_by_label("Describe the problem").fill("Accessibility check")
    widget.get_by_role("button", name="Send").click()
    expect(widget.get_by_role("log")).to_contain_text("received")
    assert serious_widget_violations(page) == []  # a conversation


def test_new_messages_are_announced_and_small_screens_get_the_full_screen(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    page.set_viewport_size({"width": 390, "height": 760})
    page.goto(host_pages.add(f"/m-{uuid.uuid4().hex[:8]}", host_page(server, widget_site)))
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    box: Any = widget.get_by_role("dialog").bounding_box()
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 760)
    widget.get_by_role("button", name="Start a new request").click()
    widget.get_by_label("Describe the problem").fill("Announce replies please")
    widget.get_by_role("button", name="Send").click()
    expect(widget.get_by_role("log")).to_contain_text("received")
    import httpx

    token = widget_site.api_token()
    httpx.post(f"{server.url}/api/v1/tickets/1/messages",
               headers={"Authorization": f"Bearer {token}"}, json={"body": "Hello from support"})
    expect(widget.locator("[aria-live=polite]")).to_contain_text("Hello from support")
