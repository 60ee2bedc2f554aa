"""Help articles in the widget: search, suggestions, the article view, feedback, comments."""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path

from playwright.sync_api import Page, Route, expect

from tests.e2e.conftest import HostPages, host_page
from tests.support import ServerProcess, Site, identity_secret, run_cli, user_hash

ARTICLES = {
    "reset-password.md": """---
title: Reset your password
slug: reset-password
category: Account
---
Use **Forgot your password?** on the sign-in page. [Help page](/help) and
[evil](javascript:alert(1)).

<script>alert("raw html")</script>
<img src=x onerror="alert(2)">
""",
    "export.md": """---
title: Export your data
slug: export
category: Data
---
Exports run nightly. The password for exports is your account password.
""",
}


def import_articles(site: Site, folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    for name, text in ARTICLES.items():
        (folder / name).write_text(text)
    run_cli("articles", "import", "--db", str(site.db), "--site", site.key, str(folder))


def feedback_rows(site: Site) -> list[tuple[int, str | None]]:
    with sqlite3.connect(f"file:{site.db}?mode=ro", uri=True) as conn:
        return conn.execute(
            "SELECT f.helpful, f.reason FROM article_feedback f JOIN articles a"
            " ON a.id = f.article_id JOIN sites s ON s.id = a.site_id WHERE s.key = ?",
            (site.key,)).fetchall()


def test_search_article_view_is_inert_and_feedback_counts_once(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site, tmp_path: Path
) -> None:
    import_articles(widget_site, tmp_path / "articles")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(host_pages.add(f"/kb-{uuid.uuid4().hex[:8]}", host_page(server, widget_site)))
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    widget.get_by_label("Search help articles").fill("pass")  # a prefix of "password"
    results = widget.locator("form.search li button")
    expect(results.first).to_contain_text("Reset your password")  # the title match ranks first
    expect(results).to_have_count(2)
    results.first.click()
    article = widget.locator(".article-body")
    expect(article.get_by_role("heading", name="Reset your password")).to_be_visible()
    expect(article).to_contain_text("Forgot your password?")
    assert article.locator("script, img, [onerror]").count() == 0
    evil = article.get_by_role("link", name="evil")
    assert evil.count() == 0 or not (evil.get_attribute("href") or "").startswith("javascript")
    help_link = article.get_by_role("link", name="Help page")
    assert help_link.get_attribute("href") == f"{server.url}/help"
    assert dialogs == []

    article.get_by_role("button", name="No").click()
    article.get_by_label("I couldn't understand the article").check()
    article.get_by_role("button", name="Send feedback").click()
    expect(article.get_by_role("status")).to_have_text("Thank you for your feedback.")
    assert feedback_rows(widget_site) == [(0, "not_understood")]

    page.reload()  # one vote per browser: the flag survives a reload
    widget.get_by_role("button", name="Help").click()
    widget.get_by_label("Search help articles").fill("reset")
    widget.locator("form.search li button").first.click()
    expect(widget.locator(".article-body").get_by_role("status")).to_have_text(
        "Thank you for your feedback.")
    expect(widget.locator(".article-body").get_by_text("Sign in to the product to comment")
           ).to_be_visible()


def test_suggestions_while_writing_and_verified_comments(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site, tmp_path: Path
) -> None:
    import_articles(widget_site, tmp_path / "kb")
    digest = user_hash(identity_secret(widget_site), "u-42")
    name = uuid.uuid4().hex[:8]
    host_pages.add(f"/id-{name}.js",
                   f'HelpWidget("identify", {{id: "u-42", name: "Uma", hash: "{digest}"}});')
    page.goto(host_pages.add(f"/write-{name}", host_page(
        server, widget_site, body=f'<script src="/id-{name}.js"></script>')))
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    widget.get_by_role("button", name="Start a new request").click()
    widget.get_by_label("Describe the problem").fill("My nightly export is empty")
    suggested = widget.locator("ul.suggestions li button")
    expect(suggested.first).to_contain_text("Export your data")
    assert suggested.count() <= 3
    suggested.first.click()
    article = widget.locator(".article-body")
    article.get_by_label("Add a comment").fill("This fixed it for me <b>thanks</b>")
    article.get_by_role("button", name="Comment").click()
    expect(article.locator(".comments")).to_contain_text("This fixed it for me <b>thanks</b>")


def test_suggestions_for_text_written_before_the_suggestions_code_arrived(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site, tmp_path: Path
) -> None:
    import_articles(widget_site, tmp_path / "kb")
    compose_js = re.compile(r".*/compose\.js(\?.*)?$")
    held: list[Route] = []  # compose.js waits here until the text is written
    page.route(compose_js, lambda route: held.append(route))
    page.goto(host_pages.add(f"/early-{uuid.uuid4().hex[:8]}", host_page(server, widget_site)))
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    with page.expect_request(compose_js):
        widget.get_by_role("button", name="Start a new request").click()
    widget.get_by_label("Describe the problem").fill("My nightly export is empty")
    assert len(held) == 1, "compose.js is requested once, when the new request opens"
    held[0].continue_()
    expect(widget.locator("ul.suggestions li button").first).to_contain_text("Export your data")
