"""The help centre, the app in process: public pages, the widget API, anonymous feedback,
comments by signed-in visitors, metric events, the importer and the demo's sample articles."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcess
from tests.support import Site, create_site, free_port, run_cli, start_session
from widget_server.article_import import import_articles, read_folder
from widget_server.articles import REASONS

pytestmark = pytest.mark.anyio

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
DASH = " \u2013 "  # between a page's title and the site's name
XSS_TITLE = '<script>alert("t")</script> & friends'
XSS_BODY = """Intro <script>alert(1)</script>

<img src=x onerror=alert(2)>

[click me](javascript:alert(3)) and ![px](data:image/png;base64,AAAA)

<svg onload=alert(4)></svg>

[safe](https://example.com/docs)
"""


def article_file(folder: Path, slug: str, title: str, body: str, category: str = "General",
                 status: str = "published") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{slug}.md"
    path.write_text(f"---\ntitle: {title}\nslug: {slug}\ncategory: {category}\n"
                    f"status: {status}\n---\n{body}", "utf-8")
    return path


def import_folder(site: Site, folder: Path) -> str:
    return run_cli("articles", "import", "--db", str(site.db), "--site", site.key,
                   str(folder)).stdout


async def import_in_process(inprocess: InProcess, site: Site, folder: Path) -> None:
    """What `widget-server articles import` does, through the app's store."""
    found = await inprocess.store.get_site_by_key(site.key)
    assert found is not None
    await import_articles(inprocess.store, found.id, read_folder(folder))


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        return conn.execute(sql, params).fetchall()


def article_id(site: Site, slug: str) -> int:
    rows = query(site.db, "SELECT a.id FROM articles a JOIN sites s ON s.id = a.site_id"
                 " WHERE s.key = ? AND a.slug = ?", (site.key, slug))
    return int(rows[0][0])


@pytest.fixture
async def site(inprocess: InProcess) -> Site:
    return await inprocess.create_site()


@pytest.fixture
async def corpus(inprocess: InProcess, site: Site, tmp_path: Path) -> Site:
    folder = tmp_path / "articles"
    article_file(folder, "reset-password", "Reset your password",
                 "Click **Forgot your password?** on the sign-in page.", "Account")
    article_file(folder, "billing", "Billing and invoices",
                 "Owners see invoices. A password is needed to open billing.", "Billing")
    article_file(folder, "xss", XSS_TITLE, XSS_BODY, "Account")
    article_file(folder, "secret", "Unreleased secret", "Not yet.", "Account", "draft")
    await import_in_process(inprocess, site, folder)
    return site


@pytest.fixture
async def browser(inprocess: InProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with inprocess.client() as client:
        yield client


@pytest.fixture
async def widget(inprocess: InProcess, corpus: Site) -> AsyncIterator[httpx.AsyncClient]:
    """The widget's fetches: cross-origin from the host page."""
    async with inprocess.client(headers={"Origin": corpus.origin}) as client:
        yield client


def assert_page(response: httpx.Response, status: int = 200) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in response.text.lower()
    assert "style=" not in response.text.lower()
    return response.text


def title_of(page: str) -> str:
    found = re.search(r"<title>(.*?)</title>", page, re.S)
    assert found
    return found.group(1)


async def verified_token(inprocess: InProcess, site: Site, name: str = "Grace") -> str:
    secret = query(site.db, "SELECT identity_secret FROM sites WHERE key = ?", (site.key,))[0][0]
    user_id = f"user-{uuid.uuid4().hex[:8]}"
    digest = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    session = await start_session(inprocess, site, user={"id": user_id, "name": name,
                                                         "hash": digest})
    assert session["visitor"]["verified"] is True
    token: str = session["token"]
    return token


# -- public pages
async def test_home_lists_categories_with_their_articles_and_a_search_box(
    browser: httpx.AsyncClient, corpus: Site
) -> None:
    page = assert_page(await browser.get("/help", params={"site": corpus.key}))
    assert title_of(page).startswith(f"Help centre{DASH}")
    assert '<form class="search" role="search" method="get" action="/help/search">' in page
    assert '<label for="q">Search the help centre</label>' in page
    assert page.index(">Account</h2>") < page.index(">Billing</h2>")
    assert f'href="/help/articles/reset-password?site={corpus.key}">Reset your password</a>' \
        in page
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt; &amp; friends" in page
    assert "Unreleased secret" not in page
    assert f'href="/help/new?site={corpus.key}"' in page


async def test_search_page_ranks_titles_first_and_escapes_snippets(
    browser: httpx.AsyncClient, corpus: Site
) -> None:
    page = assert_page(await browser.get("/help/search",
                                         params={"site": corpus.key, "q": "pass"}))
    assert title_of(page).startswith("Search results for “pass”")
    assert page.index("Reset your password</a>") < page.index("Billing and invoices</a>")
    assert "<mark>password</mark>" in page
    tricky = assert_page(await browser.get("/help/search", params={
        "site": corpus.key, "q": '<script>alert(1)</script> "intro'}))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in title_of(tricky)
    assert "<mark>Intro</mark> &lt;<mark>script</mark>&gt;<mark>alert</mark>(" in tricky
    empty = assert_page(await browser.get("/help/search", params={"site": corpus.key,
                                                                  "q": "zebra"}))
    assert "No articles match your search." in empty
    assert f"/help/new?site={corpus.key}&amp;subject=zebra" in empty


async def test_article_page_shows_sanitised_html_feedback_comments_and_a_request_link(
    browser: httpx.AsyncClient, corpus: Site
) -> None:
    page = assert_page(await browser.get("/help/articles/xss", params={"site": corpus.key}))
    assert title_of(page).startswith(
        f"&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt; &amp; friends{DASH}Site ")
    body = page[page.index('<div class="article-body">'):page.index("</article>")]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;img src=x onerror=alert(2)&gt;" in body  # shown as text
    assert '<img alt="px">' in body  # the data: URL is gone
    assert "<svg" not in body and 'href="javascript' not in body and "data:" not in body
    assert '<a href="https://example.com/docs" rel="noopener noreferrer nofollow">safe</a>' \
        in body
    assert "<legend" in page and "Was this article helpful?" in page
    assert 'name="helpful" value="yes">Yes</button>' in page
    assert 'name="helpful" value="no">No</button>' in page
    assert "Your feedback is anonymous" in page
    assert "Sign in to comment" in page and "No comments yet." in page
    assert (f'href="/help/new?site={corpus.key}&amp;subject=%3Cscript%3Ealert%28%22t%22%29'
            "%3C/script%3E%20%26%20friends\">Submit a request</a>") in page


async def test_submit_a_request_prefills_the_form_with_the_article(
    browser: httpx.AsyncClient, corpus: Site
) -> None:
    page = (await browser.get("/help/articles/reset-password", params={"site": corpus.key})).text
    link = re.search(r'href="(/help/new\?[^"]+)">Submit a request', page)
    assert link
    form = assert_page(await browser.get(link.group(1).replace("&amp;", "&")))
    assert 'id="subject" name="subject" value="Reset your password"' in form


async def test_missing_draft_and_foreign_articles_are_404_pages(
    browser: httpx.AsyncClient, corpus: Site, inprocess: InProcess
) -> None:
    other = await inprocess.create_site()
    for slug, key in (("nope", corpus.key), ("secret", corpus.key), ("reset-password", other.key),
                      ("Bad_Slug", corpus.key)):
        response = await browser.get(f"/help/articles/{slug}", params={"site": key})
        assert "Article not found" in assert_page(response, 404), slug
    # a slug with a control character never reaches the page (web/url_check.py)
    refused = await browser.get("/help/articles/Bad_Slug%00", params={"site": corpus.key})
    assert refused.status_code == 400


async def test_feedback_form_yes_then_no_with_the_four_exact_reasons(
    browser: httpx.AsyncClient, corpus: Site
) -> None:
    action = "/help/articles/billing/feedback"
    yes = await browser.post(action, data={"site": corpus.key, "helpful": "yes"})
    assert yes.status_code == 303
    thanks = assert_page(await browser.get(yes.headers["location"]))
    assert "Thank you for your feedback" in title_of(thanks)

    step = assert_page(await browser.post(action, data={"site": corpus.key, "helpful": "no"}))
    assert "What went wrong?" in title_of(step)
    labels = re.findall(r'<label for="reason-([a-z_]+)">([^<]+)</label>', step)
    assert [(key, text.replace("&#39;", "'")) for key, text in labels] == list(REASONS.items())
    assert 'type="radio"' in step and 'maxlength="1000"' in step and "anonymous" in step
    # the No counts from its click; the reason step fills the same row in
    assert query(corpus.db, "SELECT helpful, reason FROM article_feedback WHERE article_id = ?",
                 (article_id(corpus, "billing"),)) == [(1, None), (0, None)]
    vote = re.search(r'name="vote" value="([^"]+)"', step)
    assert vote, "the reason step carries the vote it completes"

    missing = await browser.post(action, data={"site": corpus.key, "helpful": "no",
                                               "step": "reasons", "comment": "hm"})
    assert "Choose the reason that fits best" in assert_page(missing, 422)
    assert ">hm</textarea>" in missing.text
    too_long = await browser.post(action, data={"site": corpus.key, "helpful": "no",
                                                "step": "reasons", "reason": "other",
                                                "comment": "x" * 1001})
    assert "at most 1000 characters" in assert_page(too_long, 422)
    for _ in range(2):  # sent twice: still one vote, with its first reason
        done = await browser.post(action, data={"site": corpus.key, "helpful": "no",
                                                "step": "reasons", "reason": "not_understood",
                                                "comment": "Which owner?",
                                                "vote": vote.group(1)})
        assert done.status_code == 303
    assert query(corpus.db, "SELECT helpful, reason, comment FROM article_feedback"
                 " WHERE article_id = ? ORDER BY id", (article_id(corpus, "billing"),)) == [
        (1, None, None), (0, "not_understood", "Which owner?")]
    forged = await browser.post(action, data={"site": corpus.key, "helpful": "no",
                                              "step": "reasons", "reason": "other",
                                              "vote": vote.group(1) + "x"})
    assert forged.status_code == 303  # a bad token is a vote of its own, not an edit
    assert len(query(corpus.db, "SELECT id FROM article_feedback WHERE article_id = ?",
                     (article_id(corpus, "billing"),))) == 3
    bad = await browser.post(action, data={"site": corpus.key, "helpful": "maybe"})
    assert_page(bad, 422)


async def test_pages_choose_among_several_sites_like_the_help_form(
    browser: httpx.AsyncClient, corpus: Site, inprocess: InProcess
) -> None:
    await inprocess.create_site()  # a second site, as the shared server had many
    page = assert_page(await browser.get("/help/articles/billing"))  # the app has several sites
    assert f'href="/help/articles/billing?site={corpus.key}"' in page


# -- the widget API
async def test_widget_search_answers_best_first_with_plain_snippets(
    widget: httpx.AsyncClient, corpus: Site, inprocess: InProcess
) -> None:
    response = await widget.get("/api/widget/v1/articles", params={"site": corpus.key,
                                                                  "q": "pass"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == corpus.origin
    found = response.json()["articles"]
    assert [a["slug"] for a in found] == ["reset-password", "billing"]
    first = found[0]
    assert set(first) == {"id", "slug", "title", "category", "snippet", "snippet_parts", "url"}
    assert first["id"] == article_id(corpus, "reset-password")
    assert first["url"] == f"{inprocess.url}/help/articles/reset-password?site={corpus.key}"
    assert "\x02" not in first["snippet"] and "password" in first["snippet"]
    assert {"text": "password", "match": True} in first["snippet_parts"]
    listing = (await widget.get("/api/widget/v1/articles", params={"site": corpus.key})).json()
    assert len(listing["articles"]) == 3  # no query: every published article
    limited = await widget.get("/api/widget/v1/articles", params={"site": corpus.key, "q": "a",
                                                                 "limit": "0"})
    assert limited.status_code == 422


async def test_widget_api_checks_the_origin_and_the_site(
    inprocess: InProcess, corpus: Site
) -> None:
    async with inprocess.client() as client:
        stranger = await client.get("/api/widget/v1/articles", params={"site": corpus.key},
                                    headers={"Origin": "https://evil.test"})
        assert stranger.status_code == 403
        assert stranger.json()["error"]["code"] == "origin_not_allowed"
        unknown = await client.get("/api/widget/v1/articles", params={"site": "site_nope"},
                                   headers={"Origin": corpus.origin})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_site"
        pre = await client.options("/api/widget/v1/articles/1/feedback",
                                   headers={"Origin": corpus.origin,
                                            "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == corpus.origin


async def test_widget_article_has_sanitised_html_and_its_comments(
    widget: httpx.AsyncClient, corpus: Site, inprocess: InProcess
) -> None:
    xss = article_id(corpus, "xss")
    response = await widget.get(f"/api/widget/v1/articles/{xss}", params={"site": corpus.key})
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"id", "slug", "title", "category", "html", "url", "updated_at",
                         "comments", "feedback_reasons"}
    assert data["title"] == XSS_TITLE  # plain text: the widget sets it with textContent
    html = data["html"]
    assert "<script" not in html and "<svg" not in html and 'src="' not in html
    assert "javascript:" not in html.replace("[click me](javascript:alert(3))", "")
    assert data["comments"] == []
    assert data["feedback_reasons"] == [{"key": k, "label": v} for k, v in REASONS.items()]
    for path in (f"/api/widget/v1/articles/{article_id(corpus, 'secret')}",
                 "/api/widget/v1/articles/999999999",
                 "/api/widget/v1/articles/99999999999999999999"):
        missing = await widget.get(path, params={"site": corpus.key})
        assert missing.status_code == 404, path
    other = await inprocess.create_site()
    foreign = await widget.get(f"/api/widget/v1/articles/{xss}", params={"site": other.key},
                               headers={"Origin": other.origin})
    assert foreign.status_code == 404


@pytest.mark.parametrize("reason", list(REASONS))
async def test_the_four_reasons_are_accepted(widget: httpx.AsyncClient, corpus: Site,
                                             reason: str) -> None:
    target = article_id(corpus, "billing")
    response = await widget.post(f"/api/widget/v1/articles/{target}/feedback",
                                 json={"helpful": False, "reason": reason, "comment": "hm"})
    assert response.status_code == 201, response.text
    assert response.headers["access-control-allow-origin"] == corpus.origin
    assert query(corpus.db, "SELECT reason FROM article_feedback WHERE article_id = ?",
                 (target,)) == [(reason,)]


async def test_feedback_other_than_the_two_shapes_is_422(
    widget: httpx.AsyncClient, corpus: Site
) -> None:
    target = article_id(corpus, "billing")
    url = f"/api/widget/v1/articles/{target}/feedback"
    assert (await widget.post(url, json={"helpful": True})).status_code == 201
    for body in ({}, {"helpful": "yes"}, {"helpful": True, "reason": "other"},
                 {"helpful": False}, {"helpful": False, "reason": "bad"},
                 {"helpful": False, "reason": "other", "comment": "x" * 1001},
                 {"helpful": False, "reason": "other", "comment": 7},
                 {"helpful": True, "visitor_id": "v_1"}):
        response = await widget.post(url, json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "invalid_feedback"
    assert query(corpus.db, "SELECT COUNT(*) FROM article_feedback WHERE article_id = ?",
                 (target,)) == [(1,)]


async def test_feedback_is_rate_limited_per_address_with_retry_after(
    inprocess: InProcess
) -> None:
    site = await inprocess.create_site()  # buckets are per address and site: a site of its own
    folder = Path(str(site.db) + f"-{site.key}")
    article_file(folder, "one", "One", "x")
    await import_in_process(inprocess, site, folder)
    url = f"/api/widget/v1/articles/{article_id(site, 'one')}/feedback"
    async with inprocess.client(headers={"Origin": site.origin}) as client:
        statuses = [(await client.post(url, json={"helpful": True})).status_code
                    for _ in range(30)]
        assert statuses == [201] * 30
        limited = await client.post(url, json={"helpful": True})
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 20
    assert limited.headers["access-control-expose-headers"] == "Retry-After"
    assert query(site.db, "SELECT COUNT(*) FROM article_feedback WHERE article_id = ?",
                 (article_id(site, "one"),)) == [(30,)]


async def test_an_anonymous_visitors_comment_is_refused_a_verified_ones_is_shown(
    widget: httpx.AsyncClient, corpus: Site, inprocess: InProcess, browser: httpx.AsyncClient
) -> None:
    target = article_id(corpus, "reset-password")
    url = f"/api/widget/v1/articles/{target}/comments"
    anonymous = (await start_session(inprocess, corpus))["token"]
    named = (await start_session(inprocess, corpus, user={"name": "Mallory"}))["token"]
    for token in (anonymous, named):
        refused = await widget.post(url, json={"site": corpus.key, "token": token,
                                               "body": "first!"})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "comment_requires_sign_in"
    no_token = await widget.post(url, json={"site": corpus.key, "body": "x"})
    assert no_token.status_code == 401

    token = await verified_token(inprocess, corpus, name="Grace <b>")
    posted = await widget.post(url, json={"site": corpus.key, "token": token,
                                          "body": "It worked <script>x</script>"})
    assert posted.status_code == 201, posted.text
    comment = posted.json()["comment"]
    assert comment["author"] == {"type": "visitor", "name": "Grace <b>"}
    assert comment["body"] == "It worked <script>x</script>"
    shown = (await widget.get(f"/api/widget/v1/articles/{target}",
                              params={"site": corpus.key})).json()["comments"]
    assert [c["id"] for c in shown] == [comment["id"]]
    page = assert_page(await browser.get("/help/articles/reset-password",
                                         params={"site": corpus.key}))
    assert "It worked &lt;script&gt;x&lt;/script&gt;" in page and "Grace &lt;b&gt;" in page

    query(corpus.db, "UPDATE article_comments SET hidden = 1 WHERE id = ?", (comment["id"],))
    hidden = (await widget.get(f"/api/widget/v1/articles/{target}",
                               params={"site": corpus.key})).json()["comments"]
    assert hidden == []
    for body in ({"site": corpus.key, "token": token, "body": ""},
                 {"site": corpus.key, "token": token, "body": "x" * 2001},
                 {"site": corpus.key, "token": token, "body": "x", "name": "y"}):
        assert (await widget.post(url, json=body)).status_code == 422


async def test_events_feed_views_searches_and_deflection(
    widget: httpx.AsyncClient, corpus: Site
) -> None:
    browser_id = "b_" + uuid.uuid4().hex
    target = article_id(corpus, "billing")
    for event in ({"type": "search", "query": "zebra stripes"}, {"type": "search", "query": "pass"},
                  {"type": "view", "article": target}, {"type": "request"}):
        response = await widget.post("/api/widget/v1/events",
                                     json={"site": corpus.key, "browser": browser_id, **event})
        assert response.status_code == 204, response.text
    rows = query(corpus.db, "SELECT type, article_id, query, results, tracked, followed"
                 " FROM article_events WHERE browser = ? ORDER BY id", (browser_id,))
    assert rows == [("search", None, "zebra stripes", 0, 1, 1), ("search", None, "pass", 2, 1, 1),
                    ("view", target, None, None, 1, 1)]
    for bad in ({"type": "click"}, {"type": "view", "article": "1"},
                {"type": "search", "query": ""}, {"type": "request", "visitor": "v_1"},
                {"type": "request", "browser": "short"}):
        response = await widget.post("/api/widget/v1/events",
                                     json={"site": corpus.key, "browser": browser_id, **bad})
        assert response.status_code == 422, bad
    foreign = await widget.post("/api/widget/v1/events", json={
        "site": corpus.key, "browser": browser_id, "type": "view",
        "article": article_id(corpus, "secret")})
    assert foreign.status_code == 404


async def test_public_pages_record_views_and_searches_without_a_browser(
    browser: httpx.AsyncClient, corpus: Site
) -> None:
    await browser.get("/help/articles/billing", params={"site": corpus.key})
    await browser.get("/help/search", params={"site": corpus.key, "q": "no such words"})
    rows = query(corpus.db, "SELECT e.type, e.results, e.browser, e.tracked FROM article_events e"
                 " JOIN sites s ON s.id = e.site_id WHERE s.key = ? ORDER BY e.id", (corpus.key,))
    assert rows == [("view", None, None, 0), ("search", 0, None, 0)]


async def test_metrics_json_for_signed_in_agents_of_the_site(
    inprocess: InProcess, corpus: Site, widget: httpx.AsyncClient
) -> None:
    target = article_id(corpus, "billing")
    await widget.post(f"/api/widget/v1/articles/{target}/feedback", json={"helpful": True})
    await widget.post("/api/widget/v1/events", json={
        "site": corpus.key, "browser": "b_" + uuid.uuid4().hex, "type": "search",
        "query": "zebra"})
    email, password = f"agent-{uuid.uuid4().hex[:8]}@example.com", "pw-" + uuid.uuid4().hex
    await inprocess.add_agent(email, password, "agent", (corpus.key,))
    async with inprocess.client() as console:
        anonymous = await console.get("/console/help/metrics.json", params={"site": corpus.key})
        assert anonymous.status_code == 303
        form = (await console.get("/console/login")).text
        login_token = re.search(r'name="login_token" value="([^"]+)"', form)
        assert login_token
        signed_in = await console.post("/console/login", data={
            "email": email, "password": password, "login_token": login_token.group(1)})
        assert signed_in.status_code == 303
        response = await console.get("/console/help/metrics.json",
                                     params={"site": corpus.key, "days": "7"})
        assert response.status_code == 200, response.text
        other = await inprocess.create_site()
        assert (await console.get("/console/help/metrics.json",
                                  params={"site": other.key})).status_code == 403
        assert (await console.get("/console/help/metrics.json",
                                  params={"site": corpus.key, "days": "0"})).status_code == 422
    data = response.json()
    assert data["site"] == corpus.key and data["days"] == 7
    assert (data["searches"], data["searches_without_results"]) == (1, 1)
    assert data["top_queries_without_results"] == [{"query": "zebra", "count": 1}]
    assert data["deflection"] == {"rate": None, "tracked": 0, "deflected": 0, "pending": 1,
                                  "window_minutes": 30}
    billing = next(a for a in data["articles"] if a["slug"] == "billing")
    assert billing == {"id": target, "slug": "billing", "title": "Billing and invoices",
                       "status": "published", "views": 0, "helpful": 1, "not_helpful": 0,
                       "helpful_share": 1.0, "comments": 0,
                       "reasons": {**{key: 0 for key in REASONS}, "none": 0}}


# -- importing
async def test_reimporting_a_folder_updates_and_never_duplicates(
    inprocess: InProcess, site: Site, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    article_file(folder, "export", "Export data", "Use the **Export** button.")
    article_file(folder, "start", "Getting started", "Welcome.")
    assert "2 created, 0 updated, 0 unchanged" in import_folder(site, folder)
    assert "0 created, 0 updated, 2 unchanged" in import_folder(site, folder)

    def count() -> int:
        return int(query(site.db, "SELECT COUNT(*) FROM articles a JOIN sites s"
                         " ON s.id = a.site_id WHERE s.key = ?", (site.key,))[0][0])

    assert count() == 2
    article_file(folder, "export", "Export data", "Use the **Download** menu.")
    assert "0 created, 1 updated, 1 unchanged" in import_folder(site, folder)
    assert count() == 2
    async with inprocess.client(headers={"Origin": site.origin}) as client:
        shown = (await client.get(f"/api/widget/v1/articles/{article_id(site, 'export')}",
                                  params={"site": site.key})).json()
        assert shown["html"] == "<p>Use the <strong>Download</strong> menu.</p>\n"
        found = (await client.get("/api/widget/v1/articles",
                                  params={"site": site.key, "q": "download"})).json()
        assert [a["slug"] for a in found["articles"]] == ["export"]


def test_a_broken_folder_imports_nothing_and_says_why(tmp_path: Path) -> None:
    site = create_site(tmp_path / "widget.db")  # the command line alone: no server
    folder = tmp_path / "broken"
    article_file(folder, "good", "Good", "x")
    (folder / "bad.md").write_text("---\ntitle: Bad\nslug: Not OK\n---\n", "utf-8")
    result = run_cli("articles", "import", "--db", str(site.db), "--site", site.key,
                     str(folder), check=False)
    assert result.returncode == 1
    assert "bad.md" in result.stderr and "slug" in result.stderr
    assert query(site.db, "SELECT COUNT(*) FROM articles a JOIN sites s ON s.id = a.site_id"
                 " WHERE s.key = ?", (site.key,)) == [(0,)]
    missing = run_cli("articles", "import", "--db", str(site.db), "--site", site.key,
                      str(tmp_path / "nowhere"), check=False)
    assert missing.returncode == 1 and "is not a folder" in missing.stderr


@pytest.mark.slow
def test_the_demo_imports_its_sample_articles(tmp_path: Path) -> None:
    db, port = tmp_path / "demo.db", free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "widget_server", "demo", "--db", str(db), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                home = httpx.get(f"http://127.0.0.1:{port}/help", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the demo never answered"
                time.sleep(0.05)  # polling for the port to open
        assert home.status_code == 200
        rows = query(db, "SELECT slug, category, title, status, length(body_md) FROM articles")
        assert len(rows) >= 8
        slugs = {row[0] for row in rows}
        assert {"getting-started", "exporting-data", "reset-password", "billing",
                "notifications", "sign-in-troubleshooting", "api-tokens", "severities"} <= slugs
        assert all(row[3] == "published" and row[4] > 800 for row in rows)
        assert "Reset your password" in home.text
        found = httpx.get(f"http://127.0.0.1:{port}/help/search", params={"q": "invoice"})
        assert "Billing, invoices and changing your plan" in found.text
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
