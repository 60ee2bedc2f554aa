"""Help-centre votes in a real browser: a "No" counts from its click, even when the reader
leaves at the reason step; agents read the reasons as labels and the comments left with
"No" on the article's console page."""

from __future__ import annotations

import uuid

from playwright.sync_api import BrowserContext, Page, expect

from tests.support import ROOT, ServerProcess, Site, run_cli


def console_of(context: BrowserContext, server: ServerProcess, site: Site) -> Page:
    email, password = f"agent-{uuid.uuid4().hex[:8]}@example.com", "pw-" + uuid.uuid4().hex
    run_cli("agent", "add", "--db", str(server.db), "--email", email, "--password", password,
            "--name", "Alex Agent", "--site", site.key)
    console = context.new_page()
    console.goto(f"{server.url}/console/login")
    console.get_by_label("Email").fill(email)
    console.get_by_label("Password").fill(password)
    console.get_by_role("button", name="Sign in").click()
    expect(console.get_by_role("heading", name="Inbox")).to_be_visible()
    return console


def test_no_votes_count_at_the_click_and_agents_read_labels_and_comments(
    page: Page, context: BrowserContext, server: ServerProcess, site: Site
) -> None:
    run_cli("articles", "import", "--db", str(server.db), "--site", site.key,
            str(ROOT / "widget_server" / "sample_articles"))
    article = f"{server.url}/help/articles/billing?site={site.key}"

    page.goto(article)  # a reader says No and leaves at the reason step
    page.get_by_role("button", name="No").click()
    expect(page.get_by_role("heading", name="What went wrong?")).to_be_visible()
    page.goto(article)  # a second reader says No and explains
    page.get_by_role("button", name="No").click()
    page.get_by_label("I couldn't understand the article").check()
    page.get_by_label("Anything else?").fill("Which plan has <b>invoices</b>?")
    page.get_by_role("button", name="Send feedback").click()
    expect(page.get_by_role("heading", name="Thank you for your feedback")).to_be_visible()

    agent = console_of(context, server, site)
    agent.goto(f"{server.url}/console/help?site={site.key}")
    row = agent.locator("#articles tr", has_text="Billing")
    expect(row.locator("td.helpful")).to_contain_text("0 of 2")  # both No votes count
    reasons = row.locator("ul.reasons")
    expect(reasons).to_contain_text("Hard to understand: 1")
    expect(reasons).to_contain_text("No reason given: 1")
    assert "not_understood" not in row.inner_text()  # labels, never raw keys

    row.get_by_role("link").first.click()
    votes = agent.get_by_role("region", name="Why readers said “No”")
    expect(votes.locator("li.vote")).to_have_count(1)
    expect(votes).to_contain_text("Hard to understand")
    expect(votes).to_contain_text("Which plan has <b>invoices</b>?")  # shown as text
