"""The visitor's experience in Chromium: drafts, Markdown replies, local times, the compact
ticket heading, focus on open, follow-ups of closed tickets, search kept across an article,
agents' initials."""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Browser, Page, Route, expect

from tests.e2e.conftest import HostPages, host_page
from tests.e2e.steps import open_request
from tests.e2e.test_widget_articles import import_articles
from tests.support import ServerProcess, Site, run_cli


def goto(page: Page, host_pages: HostPages, server: ServerProcess, site: Site) -> None:
    page.goto(host_pages.add(f"/ux-{uuid.uuid4().hex[:8]}", host_page(server, site)))
    expect(page.locator("help-widget").get_by_role("button", name="Help")).to_be_visible()


def draft_keys(page: Page) -> list[str]:
    keys: list[str] = page.evaluate(
        "() => Object.keys(localStorage).filter((key) => key.includes(':draft:'))")
    return keys


def agent(server: ServerProcess, site: Site, method: str, path: str,
          body: dict[str, object]) -> dict[str, object]:
    response = httpx.request(method, f"{server.url}/api/v1/tickets/{path}", json=body,
                             headers={"Authorization": f"Bearer {site.api_token()}"})
    assert response.status_code in (200, 201), response.text
    found: dict[str, object] = response.json()
    return found


def test_drafts_survive_closing_and_reloads_until_sent(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    goto(page, host_pages, server, widget_site)
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    expect(widget.get_by_role("button", name="Start a new request")).to_be_visible()
    page.wait_for_function("() => Object.keys(localStorage).some((k) => k.endsWith(':token'))")
    widget.get_by_role("button", name="Start a new request").click()
    widget.get_by_label("Describe the problem").press_sequentially("Half a sentence")
    page.keyboard.press("Escape")  # closing the panel
    widget.get_by_role("button", name="Help").click()  # the same view, built again
    expect(widget.get_by_label("Describe the problem")).to_have_value("Half a sentence")

    page.reload()
    widget.get_by_role("button", name="Help").click()
    widget.get_by_role("button", name="Start a new request").click()
    describe = widget.get_by_label("Describe the problem")
    expect(describe).to_have_value("Half a sentence")
    [key] = draft_keys(page)
    assert key.startswith(f"helpwidget:{widget_site.key}:draft:") and key.endswith(":new")
    describe.press_sequentially(", finished")
    widget.get_by_role("button", name="Send").click()
    expect(widget.get_by_role("log")).to_contain_text("Request #1 received")
    page.wait_for_function("() => !Object.keys(localStorage).some((k) => k.includes(':draft:'))")

    widget.get_by_label("Your message").press_sequentially("A reply I am still writing")
    page.reload()
    widget.get_by_role("button", name="Help").click()
    widget.locator("ul.tickets button").first.click()
    expect(widget.get_by_label("Your message")).to_have_value("A reply I am still writing")
    widget.get_by_role("button", name="Send").click()
    expect(widget.locator(".message.visitor .text").last).to_have_text(
        "A reply I am still writing")
    expect(widget.get_by_label("Your message")).to_have_value("")
    page.wait_for_function("() => !Object.keys(localStorage).some((k) => k.includes(':draft:'))")

    # another visitor on the same browser never sees a draft of the first
    widget.get_by_label("Your message").press_sequentially("Private words")
    assert len(draft_keys(page)) == 1
    page.evaluate("() => HelpWidget('logout')")
    assert draft_keys(page) == []


HOSTILE = """**Bold words** and *slanted* and `inline <b>code</b>`
second line of the paragraph

- first item
- second [a link](https://example.com/docs?a=1&b=2)

1. one
2. two

[script](javascript:alert(1)) [data](data:text/html,<script>alert(2)</script>) \
<img src=x onerror=alert(3)> <script>alert(4)</script> see https://example.org/path.
**[bold link](javascript:alert(5))** [caps](HTTPS://EXAMPLE.COM/Caps) [quote](https://e.test/a"onclick="alert(6))

```
<b>not bold</b> **not bold**
```"""


def test_agent_replies_render_a_safe_markdown_subset_with_the_agents_initials(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    goto(page, host_pages, server, widget_site)
    widget = open_request(page, "Markdown please")
    agent(server, widget_site, "POST", "1/messages", {"body": HOSTILE})
    reply = widget.locator(".message.agent").last
    text = reply.locator(".text")
    expect(text.locator("strong").first).to_have_text("Bold words")
    expect(text.locator("strong").last).to_have_text("[bold link](javascript:alert(5))")
    expect(text.locator("em")).to_have_text("slanted")
    expect(text.locator("p code")).to_have_text("inline <b>code</b>")
    expect(text.locator("p").first.locator("br")).to_have_count(1)
    expect(text.locator("ul > li")).to_have_count(2)
    expect(text.locator("ol > li")).to_have_count(2)
    expect(text.locator("pre code")).to_have_text("<b>not bold</b> **not bold**")
    links = text.locator("a")
    expect(links).to_have_count(4)
    for link, href in zip(links.all(), ["https://example.com/docs?a=1&b=2",
                                        "https://example.org/path", "https://example.com/Caps",
                                        'https://e.test/a%22onclick=%22alert(6'], strict=True):
        assert link.get_attribute("href") == href
        assert link.get_attribute("target") == "_blank"
        assert link.get_attribute("rel") == "noopener noreferrer"
    expect(text).to_contain_text("[script](javascript:alert(1))")
    expect(text).to_contain_text("<img src=x onerror=alert(3)> <script>alert(4)</script>")
    assert reply.locator("script, img, b, [onerror], [onclick]").count() == 0
    assert dialogs == []

    name = reply.locator(".who").inner_text().strip()
    avatar = reply.locator(".avatar")
    initials = "".join(word[0] for word in avatar.evaluate(
        "(node) => node.parentNode.lastChild.textContent").split()).upper()[:2]
    expect(avatar).to_have_text(initials)
    assert avatar.get_attribute("aria-hidden") == "true" and name.endswith(
        avatar.evaluate("(node) => node.parentNode.lastChild.textContent"))
    # the visitor's own text is never Markdown
    expect(widget.locator(".message.visitor .text")).to_have_text("Markdown please")


def test_times_and_the_promise_in_the_visitors_locale_and_zone(
    browser: Browser, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    context = browser.new_context(locale="en-US", timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        goto(page, host_pages, server, widget_site)
        widget = open_request(page, "When will you answer?")
        expect(widget.locator(".message.visitor time")).to_have_text("this minute")
        ticket = agent(server, widget_site, "GET", "1", {})["ticket"]
        assert isinstance(ticket, dict)
        due = datetime.fromisoformat(ticket["first_response_due"]).astimezone(
            ZoneInfo("Asia/Tokyo"))
        clock = due.strftime("%I:%M %p").lstrip("0")  # en-US: 12-hour with AM/PM
        head = widget.locator(".ticket-head")
        expect(head).to_contain_text("We'll reply by")
        expect(head).to_contain_text(clock)
        assert "UTC" not in widget.locator(".panel").inner_text()
    finally:
        context.close()


def test_compact_heading_and_focus_on_the_panel_not_the_search_box(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    goto(page, host_pages, server, widget_site)
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    search = widget.get_by_label("Search help articles")
    expect(widget.get_by_role("heading", level=2)).to_be_focused()
    expect(search).not_to_be_focused()
    page.keyboard.press("Tab")  # the close button
    page.keyboard.press("Tab")
    expect(search).to_be_focused()

    widget.get_by_role("button", name="Start a new request").click()
    widget.get_by_label("Describe the problem").fill("The first message is long enough to wrap")
    widget.get_by_role("button", name="Send").click()
    expect(widget.get_by_role("log")).to_contain_text("Request #1 received")
    head = widget.locator(".ticket-head")
    expect(head.get_by_role("heading")).to_have_text("#1")
    expect(head).to_contain_text("Received · normal severity · We'll reply by")
    expect(head).not_to_contain_text("The first message")


def test_the_severity_choice_appears_when_the_session_answers_after_the_view_opened(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    session = re.compile(r".*/api/widget/v1/session$")
    held: list[Route] = []  # the session's answer waits here until the new request is open
    page.route(session, lambda route: held.append(route))
    with page.expect_request(session):
        page.goto(host_pages.add(f"/late-{uuid.uuid4().hex[:8]}", host_page(server, widget_site)))
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    widget.get_by_role("button", name="Start a new request").click()
    expect(widget.get_by_label("Describe the problem")).to_be_visible()
    expect(widget.get_by_label("High")).to_have_count(0)  # no site's severities yet
    widget.get_by_label("Describe the problem").fill("Asked before the session answered")
    assert len(held) == 1
    held[0].continue_()
    widget.get_by_label("High").check()
    expect(widget.get_by_label("Describe the problem")).to_have_value(
        "Asked before the session answered")  # the view was filled in, not built again
    widget.get_by_role("button", name="Send").click()
    expect(widget.get_by_role("log")).to_contain_text("Request #1 received")
    expect(widget.locator(".ticket-head")).to_contain_text("high severity")


def test_a_closed_ticket_offers_a_follow_up_linked_to_it(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    goto(page, host_pages, server, widget_site)
    widget = open_request(page, "The import broke")
    agent(server, widget_site, "PATCH", "1", {"status": "closed"})
    expect(widget.get_by_text("This request is closed.")).to_be_visible()
    expect(widget.get_by_label("Your message")).to_be_hidden()
    widget.get_by_role("button", name="Start a follow-up").click()
    expect(widget.get_by_role("heading", name="Follow-up to #1")).to_be_visible()
    widget.get_by_label("Describe the problem").fill("It broke again")
    widget.get_by_role("button", name="Send").click()
    expect(widget.get_by_role("log")).to_contain_text("Request #2 received")
    expect(widget.get_by_label("Your message")).to_be_visible()

    with sqlite3.connect(f"file:{widget_site.db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT t.number, e.type, e.data FROM ticket_events e JOIN tickets t"
            " ON t.id = e.ticket_id JOIN sites s ON s.id = t.site_id WHERE s.key = ?"
            " AND e.type IN ('follow_up_of', 'followed_up_by') ORDER BY t.number",
            (widget_site.key,)).fetchall()
        (linked,) = conn.execute(
            "SELECT o.number FROM tickets t JOIN tickets o ON o.id = t.follow_up_of_id"
            " JOIN sites s ON s.id = t.site_id WHERE s.key = ? AND t.number = 2",
            (widget_site.key,)).fetchone()
    conn.close()
    assert linked == 1
    assert [(n, kind, json.loads(data)) for n, kind, data in rows] == [
        (1, "followed_up_by", {"number": 2, "via": "widget"}),
        (2, "follow_up_of", {"number": 1, "via": "widget"})]


def test_back_from_an_article_restores_the_search_and_its_results(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site, tmp_path: Path
) -> None:
    import_articles(widget_site, tmp_path / "articles")
    goto(page, host_pages, server, widget_site)
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    widget.get_by_label("Search help articles").fill("pass")
    results = widget.locator("form.search li button")
    expect(results).to_have_count(2)
    results.first.click()
    expect(widget.locator(".article-body h3")).to_have_text("Reset your password")
    widget.get_by_role("button", name="← Back").click()
    expect(widget.get_by_label("Search help articles")).to_have_value("pass")
    expect(results).to_have_count(2)
    expect(results.first).to_contain_text("Reset your password")


def test_outside_coverage_hours_the_widget_says_when_support_is_back_and_how_fast(
    browser: Browser, host_pages: HostPages, server: ServerProcess, widget_site: Site,
    tmp_path: Path
) -> None:
    today = datetime.now(ZoneInfo("UTC"))
    back = today + timedelta(days=2)
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[back.weekday()]
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[calendar]\ntimezone = "UTC"\n{day} = ["09:00-17:00"]\n'
                      '[[severity]]\nkey = "normal"\nlabel = "Normal"\nfirst_response = "4h"\n')
    run_cli("policy", "import", "--db", str(widget_site.db), "--site", widget_site.key,
            str(policy))
    # one request answered by an agent before the visitor comes: the speed has data
    session = httpx.post(f"{server.url}/api/widget/v1/session", json={"site": widget_site.key},
                         headers={"Origin": widget_site.origin}).json()
    sent = httpx.post(f"{server.url}/api/widget/v1/messages", headers={
        "Origin": widget_site.origin}, json={"site": widget_site.key, "token": session["token"],
                                             "conversation": None, "client_msg_id": "c-1",
                                             "body": "Are you there?"})
    assert sent.status_code == 200, sent.text
    agent(server, widget_site, "POST", "1/messages", {"body": "Yes"})

    context = browser.new_context(locale="en-GB", timezone_id="UTC")
    try:
        page = context.new_page()
        goto(page, host_pages, server, widget_site)
        widget = page.locator("help-widget")
        widget.get_by_role("button", name="Help").click()
        widget.get_by_role("button", name="Start a new request").click()
        weekday = back.strftime("%a")
        note = widget.locator("form.view > p.hint").first
        expect(note).to_contain_text(f"We're back {weekday} 09:00; we'll reply by {weekday} 13:00.")
        expect(note).to_contain_text("Support usually replies within 5 minutes.")
    finally:
        context.close()
