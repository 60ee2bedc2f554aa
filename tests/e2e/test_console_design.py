"""axe-core finds no violations at all, of any impact, on the console's and the help
centre's pages and states, in the light and the dark colour scheme (prefers-color-scheme),
and the strict CSP holds: no inline style or script is needed for the design."""

from __future__ import annotations

import uuid
from importlib import resources
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import HostPages, host_page
from tests.support import ROOT, ServerProcess, Site, run_cli

AXE = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text("utf-8")


def violations(page: Page) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE)  # evaluated by the test driver; no page ever ships axe
    found: list[dict[str, Any]] = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => JSON.stringify(n.target))}));
    }""")
    return found


def check(page: Page, where: str) -> None:
    found = violations(page)
    assert found == [], f"{where}: {found}"


def sign_in(page: Page, server: ServerProcess, site: Site, name: str) -> None:
    email, password = f"agent-{uuid.uuid4().hex[:8]}@example.com", "pw-" + uuid.uuid4().hex
    run_cli("agent", "add", "--db", str(server.db), "--email", email, "--password", password,
            "--name", name, "--site", site.key)
    page.goto(f"{server.url}/console/login")
    check(page, "sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_axe_violations_on_console_and_help_centre_pages(
    scheme: str, browser: Browser, page: Page, host_pages: HostPages,
    server: ServerProcess, widget_site: Site
) -> None:
    site = widget_site
    run_cli("articles", "import", "--db", str(server.db), "--site", site.key,
            str(ROOT / "widget_server" / "sample_articles"))
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    other = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    try:
        agent, colleague = context.new_page(), other.new_page()
        agent.goto(f"{server.url}/console/login")
        assert agent.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") == (
            scheme == "dark")
        sign_in(agent, server, site, "Alex Agent")
        sign_in(colleague, server, site, "Dana Agent")
        check(agent, "empty inbox")
        expect(agent.locator(".empty-state")).to_be_visible()

        page.goto(host_pages.add(f"/d-{uuid.uuid4().hex[:8]}", host_page(server, site)))
        widget = page.locator("help-widget")
        widget.get_by_role("button", name="Help").click()
        widget.get_by_role("button", name="Start a new request").click()
        widget.get_by_label("Describe the problem").fill("Design check")
        widget.get_by_role("button", name="Send").click()
        expect(widget.get_by_role("log")).to_contain_text("received")
        expect(agent.get_by_role("link", name="#1", exact=True)).to_be_visible()
        agent.keyboard.press("j")  # a chosen row
        check(agent, "inbox with an unread, chosen row")

        ticket = f"{server.url}/console/tickets/{site.key}/1"
        agent.goto(ticket)
        agent.get_by_label("Note for agents (the visitor never sees it)").fill("A note")
        agent.get_by_role("button", name="Add internal note").click()
        expect(agent.locator("#thread article.internal")).to_be_visible()
        expect(agent.locator("body")).to_have_attribute("data-live", "connected")
        colleague.goto(ticket)
        expect(colleague.locator("body")).to_have_attribute("data-live", "connected")
        colleague.get_by_label("Your reply").press_sequentially("On it")
        expect(agent.locator("#collision")).to_have_text("Dana Agent is replying")
        check(agent, "ticket view with a collision warning")
        agent.keyboard.press("?")
        expect(agent.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
        check(agent, "shortcuts help")
        agent.keyboard.press("Escape")
        agent.set_viewport_size({"width": 390, "height": 844})
        check(agent, "ticket view on a phone")
        agent.set_viewport_size({"width": 1280, "height": 800})

        for path in ("/console/queue", f"/console/reports?site={site.key}",
                     f"/console/help?site={site.key}", "/console/search?q=design"):
            agent.goto(server.url + path)
            check(agent, path)
        agent.get_by_role("link", name="Help centre", exact=True).click()
        agent.locator("#articles a").first.click()
        expect(agent.get_by_role("heading", name="Why readers said “No”")).to_be_visible()
        check(agent, "article page with its votes")

        reader = context.new_page()
        for path in (f"/help?site={site.key}", f"/help/search?site={site.key}&q=zzzz",
                     f"/help/articles/billing?site={site.key}", f"/help/new?site={site.key}"):
            reader.goto(server.url + path)
            check(reader, path)
        reader.goto(f"{server.url}/help/articles/billing?site={site.key}")
        reader.get_by_role("button", name="No").click()
        check(reader, "the reason step")
        reader.get_by_role("button", name="Send feedback").click()  # no reason: an error
        expect(reader.get_by_role("alert")).to_be_visible()
        check(reader, "the reason step with an error")
    finally:
        context.close()
        other.close()
