"""Satisfaction rating in Chromium: an agent solves the visitor's request in the console, the
widget asks "How did we do?" live, the visitor rates with the keyboard and comments, and the
console's ticket page and CSAT report show it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import HostPages, host_page
from tests.e2e.steps import open_request
from tests.e2e.test_widget_a11y import serious_widget_violations
from tests.support import ServerProcess, Site, run_cli


@pytest.fixture
def agent(browser: Browser, server: ServerProcess, widget_site: Site) -> Iterator[Page]:
    email, password = f"agent-{uuid.uuid4().hex[:8]}@example.com", "pw-" + uuid.uuid4().hex
    run_cli("agent", "add", "--db", str(server.db), "--email", email, "--password", password,
            "--name", "Robin Rated", "--site", widget_site.key)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    console = context.new_page()
    console.goto(f"{server.url}/console/login")
    console.get_by_label("Email").fill(email)
    console.get_by_label("Password").fill(password)
    console.get_by_role("button", name="Sign in").click()
    expect(console.get_by_role("heading", name="Inbox")).to_be_visible()
    yield console
    context.close()


def test_a_visitor_rates_a_solved_request_and_the_console_shows_it(
        page: Page, agent: Page, host_pages: HostPages, server: ServerProcess,
        widget_site: Site) -> None:
    page.goto(host_pages.add(f"/rate-{uuid.uuid4().hex[:8]}", host_page(server, widget_site)))
    subject = f"Rate me {uuid.uuid4().hex[:6]}"
    widget = open_request(page, subject)
    expect(widget.get_by_role("group", name="How did we do?")).to_have_count(0)

    heading = widget.get_by_role("heading", name=re.compile(r"^#\d+$")).inner_text()
    number = heading.lstrip("#")
    ticket_url = f"{server.url}/console/tickets/{widget_site.key}/{number}"
    agent.goto(ticket_url)
    agent.get_by_label("Assignee").select_option(label="Robin Rated (me)")
    agent.get_by_label("Status").select_option("solved")
    agent.get_by_role("button", name="Save triage").click()
    expect(agent.get_by_label("Status")).to_have_value("solved")

    scores = widget.get_by_role("group", name="How did we do?")  # live, without a reload
    expect(scores).to_be_visible()
    expect(scores.get_by_role("radio")).to_have_count(5)
    assert serious_widget_violations(page) == []
    scores.get_by_role("radio", name="1, Very bad").focus()  # a radio group: arrows move
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    expect(scores.get_by_role("radio", name="4, Good")).to_be_checked()
    widget.get_by_label("Anything to add? (optional)").fill("Quick and <b>kind</b>")
    widget.get_by_role("button", name="Send my rating").click()
    expect(widget.get_by_text("You rated this 4 out of 5 (Good). Thank you!")).to_be_visible()
    expect(widget.get_by_role("button", name="Change my rating")).to_be_visible()

    agent.goto(ticket_url)
    rating = agent.locator("#ticket-rating")
    expect(rating).to_contain_text("4 out of 5")
    expect(rating).to_contain_text("Quick and <b>kind</b>")  # text, never markup
    expect(agent.get_by_text("Rated 4 out of 5")).to_be_visible()  # the history

    agent.goto(f"{server.url}/console/reports/csat?site={widget_site.key}")
    expect(agent.get_by_role("heading", name="Satisfaction (CSAT)")).to_be_visible()
    row = agent.get_by_role("row").filter(has_text="Quick and <b>kind</b>")
    expect(row).to_contain_text("Robin Rated")
    expect(row.get_by_role("cell").nth(1)).to_have_text("4")
    groups = agent.locator("table.csat-groups")
    expect(groups).to_contain_text("Robin Rated")

    page.reload()  # the rating is part of the ticket the widget reads
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    widget.get_by_role("button", name=re.compile(subject)).click()
    expect(widget.get_by_text("You rated this 4 out of 5 (Good). Thank you!")).to_be_visible()
