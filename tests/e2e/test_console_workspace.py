"""The agent's working view in a real browser: queue, ticket and visitor side by side, live;
keyboard shortcuts; "Dana is replying"; availability; the inbox's order and previews; the
reports' width. Visitors write through the real widget on a cross-origin host page."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.e2e.conftest import HostPages, host_page
from tests.support import ServerProcess, Site, run_cli

SignIn = Callable[..., Page]


@pytest.fixture
def sign_in(browser: Browser, server: ServerProcess, widget_site: Site
            ) -> Iterator[SignIn]:
    """Sign a new agent of the widget's site in, in a browser context of its own."""
    contexts: list[BrowserContext] = []

    def open_console(name: str = "Alex Agent", width: int = 1280, height: int = 800) -> Page:
        email = f"agent-{uuid.uuid4().hex[:8]}@example.com"
        password = "pw-" + uuid.uuid4().hex
        run_cli("agent", "add", "--db", str(server.db), "--email", email, "--password",
                password, "--name", name, "--site", widget_site.key)
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        console = context.new_page()
        console.goto(f"{server.url}/console/login")
        console.get_by_label("Email").fill(email)
        console.get_by_label("Password").fill(password)
        console.get_by_role("button", name="Sign in").click()
        expect(console.get_by_role("heading", name="Inbox")).to_be_visible()
        live(console)
        return console

    yield open_console
    for context in contexts:
        context.close()


def live(console: Page) -> None:
    expect(console.locator("body")).to_have_attribute("data-live", "connected")


def request_from(page: Page, host_pages: HostPages, server: ServerProcess, site: Site,
                 text: str, severity: str | None = None) -> Locator:
    page.goto(host_pages.add(f"/w-{uuid.uuid4().hex[:8]}", host_page(server, site)))
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    widget.get_by_role("button", name="Start a new request").click()
    if severity:
        widget.get_by_label(severity).check()
    widget.get_by_label("Describe the problem").fill(text)
    widget.get_by_role("button", name="Send").click()
    expect(widget.get_by_role("log")).to_contain_text("received")
    return widget


def ticket_url(server: ServerProcess, site: Site, number: int) -> str:
    return f"{server.url}/console/tickets/{site.key}/{number}"


def box(locator: Locator) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None
    return found


def test_queue_ticket_and_visitor_side_by_side_live_and_stacked_on_a_phone(
    page: Page, sign_in: SignIn, host_pages: HostPages, server: ServerProcess,
    widget_site: Site
) -> None:
    request_from(page, host_pages, server, widget_site, "Export is empty")
    agent = sign_in()
    agent.goto(ticket_url(server, widget_site, 1))
    live(agent)
    queue = agent.get_by_role("navigation", name="Queue")
    ticket = agent.locator(".ticket-main")
    visitor = agent.get_by_role("complementary", name="Visitor and ticket details")
    expect(queue.get_by_role("link", name="#1")).to_have_attribute("aria-current", "page")
    left, middle, right = box(queue), box(ticket), box(visitor)
    assert left["x"] + left["width"] <= middle["x"] < middle["x"] + middle["width"] <= right["x"]
    assert abs(left["y"] - middle["y"]) < 40 and abs(middle["y"] - right["y"]) < 40
    expect(visitor.get_by_role("heading", name="Visitor")).to_be_visible()

    other = request_from(page, host_pages, server, widget_site, "Second request arrives")
    expect(other.get_by_role("log")).to_contain_text("received")
    expect(queue.get_by_role("link", name="#2")).to_be_visible()  # live, no reload
    expect(queue.locator(".queue-item")).to_have_count(2)
    expect(queue.get_by_role("link", name="#1")).to_have_attribute("aria-current", "page")

    agent.set_viewport_size({"width": 390, "height": 844})
    top, below, last = box(ticket), box(visitor), box(queue)
    assert top["y"] + top["height"] <= below["y"] + 1  # stacked: ticket, details, queue
    assert below["y"] + below["height"] <= last["y"] + 1
    assert agent.evaluate("document.documentElement.scrollWidth") <= 390


def test_keyboard_shortcuts_move_reply_note_solve_and_help_but_not_while_typing(
    page: Page, sign_in: SignIn, host_pages: HostPages, server: ServerProcess,
    widget_site: Site
) -> None:
    for text in ("First", "Second", "Third"):
        request_from(page, host_pages, server, widget_site, text)
    agent = sign_in()
    expect(agent.locator("tr[data-nav-item]")).to_have_count(3)
    links = [row.locator("a").first for row in agent.locator("tr[data-nav-item]").all()]
    agent.keyboard.press("j")
    expect(links[0]).to_be_focused()
    agent.keyboard.press("j")
    expect(links[1]).to_be_focused()
    agent.keyboard.press("k")
    expect(links[0]).to_be_focused()
    agent.keyboard.press("?")
    dialog = agent.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Solve the ticket")
    agent.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    agent.get_by_label("Status", exact=True).focus()  # a field: letters are its own
    agent.keyboard.press("j")
    expect(agent.get_by_label("Status", exact=True)).to_be_focused()

    links[0].focus()
    agent.keyboard.press("Enter")
    expect(agent.get_by_role("heading", level=1)).to_be_visible()
    live(agent)
    agent.keyboard.press("r")
    reply = agent.get_by_label("Your reply")
    expect(reply).to_be_focused()
    agent.keyboard.type("just typing r n e j k ?")
    expect(reply).to_have_value("just typing r n e j k ?")  # no shortcut fired
    expect(dialog).to_be_hidden()
    agent.keyboard.press("Escape")
    expect(reply).not_to_be_focused()
    agent.keyboard.press("n")
    expect(agent.get_by_label("Note for agents (the visitor never sees it)")).to_be_focused()
    agent.keyboard.press("Escape")
    agent.keyboard.press("e")
    expect(agent.locator("#ticket-status")).to_have_text("Solved")


def test_an_agent_sees_who_else_is_replying_and_never_themselves(
    page: Page, sign_in: SignIn, host_pages: HostPages, server: ServerProcess,
    widget_site: Site
) -> None:
    request_from(page, host_pages, server, widget_site, "Two agents, one ticket")
    dana, alex = sign_in("Dana Agent"), sign_in("Alex Agent")
    for console in (dana, alex):
        console.goto(ticket_url(server, widget_site, 1))
        live(console)
    dana.get_by_label("Your reply").press_sequentially("Looking into it")
    expect(alex.locator("#collision")).to_have_text("Dana Agent is replying")
    expect(dana.locator("#collision")).to_have_text("")  # not told about themselves
    dana.get_by_label("Your reply").press("Control+Enter")
    expect(alex.locator("#thread")).to_contain_text("Looking into it")
    expect(alex.locator("#collision")).to_have_text("")  # the reply went out


def test_availability_is_set_by_the_agent_stored_and_shown_live_to_others(
    sign_in: SignIn, server: ServerProcess
) -> None:
    dana, alex = sign_in("Dana Agent"), sign_in("Alex Agent")
    dana_row = alex.locator("#team li", has_text="Dana Agent")
    expect(dana_row).to_contain_text("Online")
    dana.get_by_label("Your availability").select_option("away")
    expect(dana_row).to_contain_text("Away")  # live on the other agent's inbox
    expect(dana_row).to_have_attribute("data-presence", "away")
    alex.reload()
    expect(alex.locator("#team li", has_text="Dana Agent")).to_contain_text("Away")  # stored
    dana.reload()
    expect(dana.get_by_label("Your availability")).to_have_value("away")


def test_inbox_previews_the_last_human_message_and_puts_critical_first_on_a_tie(
    page: Page, sign_in: SignIn, host_pages: HostPages, server: ServerProcess,
    widget_site: Site, tmp_path: Path
) -> None:
    # coverage only later today and tomorrow (UTC): both requests are due when it opens
    opens = (datetime.now(UTC) + timedelta(hours=6)).strftime("%H:00")
    closes = (datetime.now(UTC) + timedelta(hours=7)).strftime("%H:00")
    closes = "23:59" if closes == "00:00" else closes
    days = "\n".join(f'{day} = ["{opens}-{closes}"]'
                     for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[calendar]\ntimezone = "UTC"\n{days}\n' + "".join(
        f'[[severity]]\nkey = "{key}"\nlabel = "{key.title()}"\ndescription = "{key}"\n'
        f'first_response = "1h"\n' for key in ("critical", "high", "normal", "low")))
    run_cli("policy", "import", "--db", str(server.db), "--site", widget_site.key,
            str(policy))
    request_from(page, host_pages, server, widget_site, "High first by number", "High")
    request_from(page, host_pages, server, widget_site, "Critical second", "Critical")
    agent = sign_in()
    rows = agent.locator("tr[data-nav-item]")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Critical second")  # same due time: graver first
    expect(rows.nth(1)).to_contain_text("High first by number")
    preview = rows.nth(0).locator("td.preview")
    expect(preview).to_have_text("Visitor: Critical second")  # not the acknowledgement
    assert "received" not in preview.inner_text()


def test_reports_fit_a_1280_px_screen_without_sideways_scrolling(
    sign_in: SignIn, server: ServerProcess, widget_site: Site
) -> None:
    agent = sign_in()
    for days in (30, 366):
        agent.goto(f"{server.url}/console/reports?site={widget_site.key}&days={days}")
        expect(agent.get_by_role("heading", name="SLA reports")).to_be_visible()
        width = agent.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, f"{days} days: the page is {width} px wide"
        chart = box(agent.locator("figure.chart svg").first)
        assert chart["x"] + chart["width"] <= 1280


def test_agents_replies_show_the_safe_markdown_subset_and_html_stays_text(
    page: Page, sign_in: SignIn, host_pages: HostPages, server: ServerProcess,
    widget_site: Site
) -> None:
    request_from(page, host_pages, server, widget_site, "Where is the **export**?")
    agent = sign_in()
    agent.goto(ticket_url(server, widget_site, 1))
    live(agent)
    agent.get_by_label("Your reply").fill(
        "Use **Reports > Download**, then *CSV*.\n\n- one `--all`\n- two\n\n"
        "See https://example.com/docs. <img src=x onerror=alert(1)> [bad](javascript:alert(2))")
    agent.get_by_label("Your reply").press("Control+Enter")
    reply = agent.locator("#thread .message.agent .body").last
    expect(reply.locator("strong")).to_have_text("Reports > Download")
    expect(reply.locator("em")).to_have_text("CSV")
    expect(reply.locator("li")).to_have_count(2)
    expect(reply.locator("code")).to_have_text("--all")
    link = reply.get_by_role("link", name="https://example.com/docs")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(reply.locator("img")).to_have_count(0)
    expect(reply).to_contain_text("<img src=x onerror=alert(1)>")  # literal text
    expect(reply.locator("a")).to_have_count(1)  # javascript: is never a link
    visitor = agent.locator("#thread .message.visitor .body").first
    expect(visitor).to_have_text("Where is the **export**?")  # visitors' text stays plain

    # a reply that arrives live is rendered as it comes
    other = sign_in("Dana Agent")
    other.goto(ticket_url(server, widget_site, 1))
    live(other)
    agent.get_by_label("Your reply").fill("Live **bold**")
    agent.get_by_label("Your reply").press("Control+Enter")
    expect(other.locator("#thread .message.agent strong").last).to_have_text("bold")
