"""The agent console in a real browser, next to a visitor's widget on a host page.

One browser context is the visitor (the widget embedded cross-origin on a host page), another
is the agent signed in to /console. Everything live happens without reloading either page.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Locator, Page, expect

from tests.e2e.conftest import HostPages, host_page
from tests.support import ServerProcess, Site, run_cli

AXE = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text("utf-8")
XSS = [
    "<script>alert('xss')</script>",
    '<img src=x onerror="alert(1)">',
    "javascript:alert(document.cookie)",
    '<svg onload="alert(2)"><circle r="5"/></svg>',
    "{{7*7}} ${7*7}",
]


@pytest.fixture
def agent(browser: Browser, server: ServerProcess, widget_site: Site) -> Iterator[Page]:
    """A signed-in agent of the widget's site, on the inbox."""
    email, password = f"agent-{uuid.uuid4().hex[:8]}@example.com", "pw-" + uuid.uuid4().hex
    run_cli("agent", "add", "--db", str(server.db), "--email", email, "--password", password,
            "--name", "Alex Agent", "--site", widget_site.key)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    console = context.new_page()
    console.goto(f"{server.url}/console/login")
    console.get_by_label("Email").fill(email)
    console.get_by_label("Password").fill(password)
    console.get_by_role("button", name="Sign in").click()
    expect(console.get_by_role("heading", name="Inbox")).to_be_visible()
    live(console)
    yield console
    context.close()


def live(console: Page) -> None:
    """Wait until the console page's socket is connected."""
    expect(console.locator("body")).to_have_attribute("data-live", "connected")


def open_widget(page: Page, host_pages: HostPages, server: ServerProcess, site: Site,
                head: str = "") -> Locator:
    url = host_pages.add(f"/c-{uuid.uuid4().hex[:8]}", host_page(server, site, head=head))
    page.goto(url)
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    expect(widget.get_by_role("dialog")).to_be_visible()
    return widget


def start_request(widget: Locator, text: str) -> None:
    widget.get_by_role("button", name="Start a new request").click()
    widget.get_by_label("Describe the problem").fill(text)
    widget.get_by_role("button", name="Send").click()
    expect(widget.get_by_role("log")).to_contain_text("received")


def write(widget: Locator, text: str) -> None:
    widget.get_by_label("Your message").fill(text)
    widget.get_by_label("Your message").press("Enter")


def ticket_url(server: ServerProcess, site: Site, number: int) -> str:
    return f"{server.url}/console/tickets/{site.key}/{number}"


def serious_violations(page: Page) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE)  # evaluated by the test driver; the console never ships axe
    result: list[dict[str, Any]] = page.evaluate("""async () => {
        const found = await axe.run(document, {resultTypes: ["violations"]});
        return found.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => JSON.stringify(n.target))}));
    }""")
    return [v for v in result if v["impact"] in {"serious", "critical"}]


def test_round_trip_live_both_ways_and_notes_stay_internal(
    page: Page, agent: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    expect(agent).to_have_title("Inbox · widget-server")
    widget = open_widget(page, host_pages, server, widget_site)
    start_request(widget, "The CSV export is empty")

    link = agent.get_by_role("link", name="#1", exact=True)
    expect(link).to_be_visible()  # the inbox updated itself
    expect(agent).to_have_title("(1) Inbox · widget-server")
    expect(agent.locator("tr.unread")).to_have_count(1)
    link.click()
    expect(agent.get_by_role("heading", level=1)).to_contain_text("The CSV export is empty")
    live(agent)

    thread = agent.locator("#thread")
    widget.get_by_label("Your message").press_sequentially("It happens in Firefox only")
    expect(agent.locator("#typing")).to_have_text("Visitor is typing…")
    widget.get_by_label("Your message").press("Enter")
    expect(thread).to_contain_text("It happens in Firefox only")  # live, no reload
    expect(agent.locator("#typing")).to_have_text("")

    agent.get_by_label("Note for agents (the visitor never sees it)").fill("Secret: VIP account")
    agent.get_by_role("button", name="Add internal note").click()
    note = thread.locator("article.internal")
    expect(note).to_contain_text("Secret: VIP account")
    expect(note).to_contain_text("Internal note")
    live(agent)  # the note was a form post: the page, and its socket, are new

    agent.get_by_label("Your reply").fill("Please try Chrome meanwhile")
    expect(widget.locator("p.typing")).to_have_text("Alex Agent is typing…")
    agent.get_by_label("Your reply").press("Control+Enter")
    log = widget.get_by_role("log")
    expect(log).to_contain_text("Please try Chrome meanwhile")  # live in the widget
    expect(thread).to_contain_text("Please try Chrome meanwhile")
    assert "Secret" not in log.inner_text()

    page.reload()  # the replay after a reload has no note either
    widget.get_by_role("button", name="Help").click()
    widget.locator("ul.tickets > li").first.get_by_role("button").click()
    expect(widget.get_by_role("log")).to_contain_text("Please try Chrome meanwhile")
    assert "Secret" not in widget.get_by_role("log").inner_text()


def test_reply_with_the_keyboard_only_and_a_saved_reply_shortcut(
    page: Page, agent: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    agent.goto(f"{server.url}/console/saved-replies")
    agent.get_by_label("Shortcut", exact=True).fill("thanks")
    agent.get_by_label("Title").fill("Thanks")
    agent.get_by_label("Text").fill("Thanks for your patience!")
    agent.get_by_role("button", name="Add saved reply").click()
    expect(agent.locator("table.replies")).to_contain_text("/thanks")

    widget = open_widget(page, host_pages, server, widget_site)
    start_request(widget, "Keyboard please")
    agent.goto(ticket_url(server, widget_site, 1))
    for _ in range(80):  # Tab through the page until the reply box has the focus
        agent.keyboard.press("Tab")
        if agent.evaluate("document.activeElement && document.activeElement.id") == "reply-body":
            break
    expect(agent.get_by_label("Your reply")).to_be_focused()
    agent.keyboard.type("/thanks")
    agent.keyboard.press("Tab")
    expect(agent.get_by_label("Your reply")).to_have_value("Thanks for your patience!")
    expect(agent.get_by_label("Your reply")).to_be_focused()
    agent.keyboard.type(" We fixed it.")
    agent.keyboard.press("Control+Enter")
    expect(widget.get_by_role("log")).to_contain_text("Thanks for your patience! We fixed it.")
    expect(agent.locator("#thread")).to_contain_text("Thanks for your patience! We fixed it.")


def test_split_gives_the_visitor_two_tickets(
    page: Page, agent: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    widget = open_widget(page, host_pages, server, widget_site)
    start_request(widget, "Export fails")
    write(widget, "Also the PDF preview is blank")
    expect(widget.get_by_role("log")).to_contain_text("Also the PDF preview is blank")

    agent.goto(ticket_url(server, widget_site, 1))
    message = agent.locator("#thread article", has_text="Also the PDF preview is blank")
    message.get_by_label("Select for split").check()
    agent.get_by_role("button", name="Split into a new ticket").click()
    expect(agent).to_have_url(re.compile(r"/console/tickets/[^/]+/2$"))
    expect(agent.get_by_role("heading", level=1)).to_contain_text("#2")
    expect(agent.locator("#thread")).to_contain_text("Also the PDF preview is blank")
    expect(agent.get_by_role("link", name="#1", exact=True).first).to_be_visible()

    widget.get_by_role("button", name="← All requests").click()
    tickets = widget.locator("ul.tickets > li")
    expect(tickets).to_have_count(2)
    expect(widget.locator("ul.tickets")).to_contain_text("#2")
    expect(widget.locator("ul.tickets")).to_contain_text("#1")


def test_xss_corpus_is_shown_literally_and_never_runs(
    page: Page, agent: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    agent.on("dialog", record)
    name = '<img src=x onerror="alert(3)">{{7*7}}'
    identify = f"<script>HelpWidget('identify', {json.dumps({'id': 'u-xss', 'name': name})})"
    widget = open_widget(page, host_pages, server, widget_site, head=identify + "</script>")
    start_request(widget, XSS[3] + " subject")
    for payload in XSS:
        write(widget, payload)
        expect(widget.get_by_role("log")).to_contain_text(payload)

    expect(agent.get_by_role("link", name="#1", exact=True)).to_be_visible()
    expect(agent.locator("#inbox-results")).to_contain_text(XSS[3] + " subject")
    expect(agent.locator("#inbox-results")).to_contain_text(name)
    agent.get_by_role("link", name="#1", exact=True).click()
    live(agent)
    thread = agent.locator("#thread")
    for payload in XSS:
        expect(thread).to_contain_text(payload)
    expect(agent.get_by_role("heading", level=1)).to_contain_text(XSS[3] + " subject")
    write(widget, XSS[1] + " live")  # arrives through the socket and textContent
    expect(thread).to_contain_text(XSS[1] + " live")
    agent.get_by_label("Your reply").fill(XSS[0] + " from the agent")
    agent.get_by_role("button", name="Send reply").click()
    expect(widget.get_by_role("log")).to_contain_text(XSS[0] + " from the agent")

    for where in (agent.locator("main"), page.locator("help-widget")):
        expect(where.locator("img")).to_have_count(0)
        expect(where.locator("svg circle")).to_have_count(0)
    assert "49" not in agent.locator("#thread").inner_text()
    assert dialogs == []


def test_axe_finds_no_serious_violations_in_inbox_and_ticket_view(
    page: Page, agent: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    widget = open_widget(page, host_pages, server, widget_site)
    start_request(widget, "Accessibility check")
    write(widget, "A second message")
    expect(agent.get_by_role("link", name="#1", exact=True)).to_be_visible()
    assert serious_violations(agent) == []  # the inbox, with an unread row

    agent.goto(ticket_url(server, widget_site, 1))
    agent.get_by_label("Note for agents (the visitor never sees it)").fill("A note")
    agent.get_by_role("button", name="Add internal note").click()
    expect(agent.locator("#thread article.internal")).to_be_visible()
    assert serious_violations(agent) == []  # the ticket view

    agent.goto(f"{server.url}/console/saved-replies")
    assert serious_violations(agent) == []
    agent.goto(f"{server.url}/console/search")
    assert serious_violations(agent) == []
    agent.goto(f"{server.url}/console/email-alerts")
    expect(agent.get_by_label("The visitor replied on a ticket assigned to me")).to_be_checked()
    assert serious_violations(agent) == []
