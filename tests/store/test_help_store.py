"""The help centre in the store, on SQLite and PostgreSQL: upserts, search and ranking,
anonymous feedback, comments and the metrics, with a clock moved by hand."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from tests.pg import BACKENDS
from tests.store.helpers import plain, refused
from widget_server.articles import Feedback, make_source
from widget_server.clock import FakeClock
from widget_server.errors import NotFound
from widget_server.models import Agent, Site, Visitor
from widget_server.store.base import Store

pytestmark = [pytest.mark.anyio,
              pytest.mark.parametrize("backend", BACKENDS, indirect=True)]

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
IDENTIFYING = ("visitor", "ip", "address", "token", "agent", "browser", "user", "session",
               "email", "name", "device", "fingerprint", "cookie")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def site(store: Store) -> Site:
    created, _ = await store.ensure_site("Shop", ["https://shop.test"])
    return created


async def add(store: Store, site: Site, slug: str, title: str, body: str,
              category: str = "General", status: str = "published") -> int:
    article, _ = await store.upsert_article(site.id, make_source(title, slug, category, status,
                                                                 body))
    return article.id


def verified(site: Site, name: str = "Grace") -> Visitor:
    return Visitor(id="v_u" + name.lower(), site_id=site.id, user_id=name.lower(), name=name,
                   email=None, verified=True)


def test_the_feedback_table_has_no_column_that_could_identify_a_visitor(db: str,
                                                                         backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the same columns on PostgreSQL: test_store_backends compares them")
    conn = sqlite3.connect(db)
    with contextlib.closing(conn):
        from widget_server.store.sqlite_schema import migrate
        migrate(conn)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(article_feedback)")}
        foreign = {row[2] for row in conn.execute("PRAGMA foreign_key_list(article_feedback)")}
    assert columns == {"id", "article_id", "helpful", "reason", "comment", "created_at"}
    assert not [c for c in columns for word in IDENTIFYING if word in c.lower()]
    assert foreign == {"articles"}


async def test_upsert_by_slug_creates_updates_and_never_duplicates(
    store: Store, site: Site, db: str, clock: FakeClock
) -> None:
    source = make_source("Export data", "export", "Data", "published", "Use the button.")
    first, outcome = await store.upsert_article(site.id, source)
    assert outcome == "created" and first.body_html == "<p>Use the button.</p>\n"
    clock.advance(timedelta(minutes=5))
    again, outcome = await store.upsert_article(site.id, source)
    assert outcome == "unchanged" and again.updated_at == first.updated_at
    changed = make_source("Export data", "export", "Data", "published", "Use the menu.")
    updated, outcome = await store.upsert_article(site.id, changed)
    assert outcome == "updated" and updated.id == first.id
    assert updated.updated_at == START + timedelta(minutes=5)
    assert updated.created_at == first.created_at
    assert plain(db, "SELECT COUNT(*) FROM articles") == [(1,)]
    assert await store.search_articles(site.id, "menu") != []
    assert await store.search_articles(site.id, "button") == []  # the index followed


async def test_the_same_slug_on_two_sites_is_two_articles(store: Store, site: Site
                                                          ) -> None:
    other, _ = await store.ensure_site("Other", ["https://other.test"])
    await add(store, site, "faq", "Shop FAQ", "shop answers")
    await add(store, other, "faq", "Other FAQ", "other answers")
    assert [a.title for a in await store.list_articles(site.id)] == ["Shop FAQ"]
    assert [h.title for h in await store.search_articles(other.id, "answers")] == ["Other FAQ"]
    assert await store.get_article_by_slug(other.id, "faq") is not None


async def test_a_title_match_beats_a_body_match(store: Store, site: Site) -> None:
    body_heavy = await add(store, site, "billing", "Invoices and billing",
                           "If you forgot your password, the billing owner can reset the "
                           "password. Password rules apply to every password.")
    titled = await add(store, site, "reset", "Reset your password",
                       "Click the link in the email we send you.")
    await add(store, site, "other", "Notifications", "Choose your emails.")
    hits = await store.search_articles(site.id, "password")
    assert [hit.id for hit in hits] == [titled, body_heavy]


async def test_prefixes_match_and_snippets_mark_the_words(store: Store, site: Site
                                                          ) -> None:
    await add(store, site, "reset", "Account help", "To change your password, open Settings.")
    hits = await store.search_articles(site.id, "pass")
    assert [hit.slug for hit in hits] == ["reset"]
    assert "\x02password\x03" in hits[0].snippet
    assert [h.slug for h in await store.search_articles(site.id, "PASSW sett")] == ["reset"]


async def test_accents_do_not_matter(store: Store, site: Site) -> None:
    await add(store, site, "cv", "CV", "Upload your résumé here.")
    assert [h.slug for h in await store.search_articles(site.id, "resume")] == ["cv"]


async def test_every_word_first_then_any_word(store: Store, site: Site) -> None:
    await add(store, site, "export", "Export to CSV", "Exports run nightly.")
    await add(store, site, "csv-excel", "CSV in Excel", "Open a CSV file in Excel.")
    assert [h.slug for h in await store.search_articles(site.id, "csv excel")] == ["csv-excel"]
    found = {h.slug for h in await store.search_articles(site.id, "how do I open my csv file")}
    assert found == {"export", "csv-excel"}  # no article has every word: any word counts


@pytest.mark.parametrize("text", [
    '"', '""', "'", "*", "AND", "OR NOT", "NEAR(a b)", "title:x", "-x", "^x", "a + b",
    "(", ")", "{title body}: x", "\\", "%", "\x00", "ÿ" * 300, "x" * 5000, "   ",
])
async def test_user_text_never_becomes_fts_syntax(store: Store, site: Site,
                                                  text: str) -> None:
    await add(store, site, "a", "Title", "Body text")
    await store.search_articles(site.id, text)  # no error, whatever it finds


async def test_drafts_are_neither_listed_nor_found(store: Store, site: Site) -> None:
    await add(store, site, "draft", "Secret plans", "unreleased feature", status="draft")
    assert await store.list_articles(site.id) == []
    assert len(await store.list_articles(site.id, published_only=False)) == 1
    assert await store.search_articles(site.id, "secret") == []


async def test_articles_are_listed_by_category_then_title(store: Store, site: Site
                                                          ) -> None:
    await add(store, site, "b", "b second", "x", category="Billing")
    await add(store, site, "a", "A first", "x", category="Billing")
    await add(store, site, "c", "Start", "x", category="account")
    listed = await store.list_articles(site.id)
    assert [(a.category, a.title) for a in listed] == [
        ("account", "Start"), ("Billing", "A first"), ("Billing", "b second")]
    assert [a.slug for a in await store.list_articles(site.id, category="Billing")] == ["a", "b"]


async def test_feedback_is_stored_without_anything_about_who(
    store: Store, site: Site, db: str
) -> None:
    article = await add(store, site, "a", "A", "x")
    await store.record_feedback(article, Feedback(True))
    await store.record_feedback(article, Feedback(False, "not_understood", "too long"))
    rows = plain(db, "SELECT * FROM article_feedback ORDER BY id")
    assert [row[1:5] for row in rows] == [(article, 1, None, None),
                                         (article, 0, "not_understood", "too long")]
    with pytest.raises(NotFound):
        await store.record_feedback(article + 100, Feedback(True))
    with pytest.raises(refused()):  # the schema refuses other reasons too
        plain(db, "INSERT INTO article_feedback (article_id, helpful, reason, created_at)"
              " VALUES (?, 0, 'spam', 'x')", (article,))


async def test_comments_are_added_hidden_shown_and_deleted(
    store: Store, site: Site, db: str
) -> None:
    article = await add(store, site, "a", "A", "x")
    agent: Agent = (await store.ensure_agent("agent@example.com", "Ada", "agent", None))[0]
    by_visitor = await store.add_visitor_comment(article, verified(site), "Worked for me")
    by_agent = await store.add_agent_comment(article, agent, "Glad to hear it")
    assert (by_visitor.author_type, by_visitor.display_name) == ("visitor", "Grace")
    assert (by_agent.author_type, by_agent.display_name) == ("agent", "Ada")
    assert plain(db, "SELECT verified FROM visitors WHERE id = 'v_ugrace'") == [(1,)]
    assert [c.body for c in await store.list_comments(article)] == [
        "Worked for me", "Glad to hear it"]
    hidden = await store.hide_comment(by_visitor.id)
    assert hidden.hidden
    assert [c.id for c in await store.list_comments(article)] == [by_agent.id]
    assert len(await store.list_comments(article, include_hidden=True)) == 2
    await store.hide_comment(by_visitor.id, hidden=False)
    await store.delete_comment(by_agent.id)
    assert [c.id for c in await store.list_comments(article)] == [by_visitor.id]
    with pytest.raises(NotFound):
        await store.delete_comment(by_agent.id)
    with pytest.raises(NotFound):
        await store.hide_comment(by_agent.id)


async def test_article_metrics_count_views_votes_and_reasons(
    store: Store, site: Site, clock: FakeClock
) -> None:
    read = await add(store, site, "read", "Read a lot", "x")
    quiet = await add(store, site, "quiet", "Quiet", "x")
    await store.record_article_view(site.id, read)  # before the window: not counted
    clock.advance(timedelta(days=10))
    since = clock.now()
    for _ in range(3):
        await store.record_article_view(site.id, read)
    await store.record_feedback(read, Feedback(True))
    for reason in ("other", "other", "not_addressed"):
        await store.record_feedback(read, Feedback(False, reason))
    metrics = await store.help_metrics(site.id, since)
    first, second = metrics.articles
    assert (first.id, first.views, first.helpful, first.not_helpful) == (read, 3, 1, 3)
    assert first.helpful_share == 0.25
    assert first.reasons == {"not_addressed": 1, "not_understood": 0, "feature_missing": 0,
                             "other": 2}
    assert (second.id, second.views, second.helpful_share) == (quiet, 0, None)
    assert metrics.views == 3


async def test_searches_without_results_are_counted_with_their_queries(
    store: Store, site: Site
) -> None:
    for query, results in (("refund", 0), ("Refund ", 0), ("invoice", 2), ("gdpr", 0)):
        await store.record_search(site.id, query, results)
    metrics = await store.help_metrics(site.id, START - timedelta(days=1))
    assert (metrics.searches, metrics.searches_without_results) == (4, 3)
    assert metrics.top_queries_without_results == [("refund", 2), ("gdpr", 1)]


async def test_deflection_counts_help_not_followed_by_a_request_within_30_minutes(
    store: Store, site: Site, clock: FakeClock, db: str
) -> None:
    article = await add(store, site, "a", "A", "x")
    await store.record_search(site.id, "export", 1, browser="browser-aaaaaaaaaaaa")
    await store.record_article_view(site.id, article, browser="browser-aaaaaaaaaaaa")
    await store.record_article_view(site.id, article, browser="browser-bbbbbbbbbbbb")
    await store.record_search(site.id, "late", 0, browser="browser-cccccccccccc")
    await store.record_article_view(site.id, article)  # a page view without a browser id
    clock.advance(timedelta(minutes=29))
    assert await store.record_help_request(site.id, "browser-aaaaaaaaaaaa") == 2
    clock.advance(timedelta(minutes=2))  # 31 minutes after the first events
    assert await store.record_help_request(site.id, "browser-cccccccccccc") == 0  # too late
    await store.record_search(site.id, "fresh", 1, browser="browser-dddddddddddd")
    metrics = await store.help_metrics(site.id, START)
    assert (metrics.tracked_events, metrics.deflected_events) == (4, 2)  # b and c deflected
    assert metrics.deflection_rate == 0.5
    assert metrics.pending_events == 1  # d's 30 minutes are not over
    assert metrics.views == 3 and metrics.searches == 3
    # browser ids are kept only for their 30 minutes
    assert plain(db, "SELECT DISTINCT browser FROM article_events WHERE browser IS NOT NULL"
                 ) == [("browser-dddddddddddd",)]
    other, _ = await store.ensure_site("Other", ["https://other.test"])
    assert (await store.help_metrics(other.id, START)).deflection_rate is None


async def test_a_request_only_marks_its_own_site(store: Store, site: Site) -> None:
    other, _ = await store.ensure_site("Other", ["https://other.test"])
    await store.record_search(site.id, "x", 0, browser="browser-aaaaaaaaaaaa")
    assert await store.record_help_request(other.id, "browser-aaaaaaaaaaaa") == 0
