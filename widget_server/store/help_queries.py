"""Reads and writes of the help centre, mixed into the SQLite store like ConsoleQueries.

The mixin needs ``_fetchall``, ``_fetchone`` and ``_write`` from its host class; the write jobs
live in ``sqlite_help.py``. Metric definitions are in docs/help_centre.md.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import TypeVar

from widget_server.articles import (
    DEFLECTION_WINDOW,
    REASONS,
    Article,
    ArticleHit,
    ArticleMetrics,
    ArticleSource,
    Comment,
    Feedback,
    SiteMetrics,
)
from widget_server.clock import isoformat
from widget_server.models import Agent, Visitor
from widget_server.store import sqlite_help as jobs
from widget_server.store.console_queries import StoreMixin, search_words

T = TypeVar("T")
SEARCH_MAX = 50
TOP_QUERIES = 10
_WORD = re.compile(r"\w+", re.UNICODE)


def article_queries(text: str) -> list[tuple[list[str], bool]]:
    """Searches to try in turn, as (words, every): every word (as a prefix), then any word
    of two letters or more."""
    every = search_words(text)
    if not every:
        return []
    words = [word for word in every if len(word) > 1]
    return [(every, True)] if len(words) < 2 else [(every, True), (words, False)]


class HelpQueries(StoreMixin):

    # -- articles
    async def upsert_article(self, site_id: int, source: ArticleSource
                             ) -> tuple[Article, str]:
        """Create or update the article of (site, slug): "created", "updated" or "unchanged"."""
        body_html, body_text = await asyncio.to_thread(
            lambda: (source.body_html, source.body_text))
        return await self._write(jobs.upsert_article, site_id, source, body_html, body_text,
                                 self._clock.now())

    async def rename_article(self, article_id: int, slug: str) -> Article:
        """A new slug for an article; 409 ``slug_taken`` when the site already uses it."""
        return await self._write(jobs.rename_article, article_id, slug, self._clock.now())

    async def get_article(self, article_id: int) -> Article | None:
        row = await self._fetchone("SELECT * FROM articles WHERE id = ?", (article_id,))
        return jobs.article(row) if row else None

    async def get_article_by_slug(self, site_id: int, slug: str) -> Article | None:
        row = await self._fetchone("SELECT * FROM articles WHERE site_id = ? AND slug = ?",
                                   (site_id, slug))
        return jobs.article(row) if row else None

    async def list_articles(self, site_id: int, *, published_only: bool = True,
                            category: str | None = None) -> list[Article]:
        """By category, then title."""
        where: list[str] = ["site_id = ?"]
        params: list[object] = [site_id]
        if published_only:
            where.append("status = 'published'")
        if category is not None:
            where.append("category = ?")
            params.append(category)
        found = await self._fetchall(
            f"SELECT * FROM articles WHERE {' AND '.join(where)}"
            " ORDER BY lower(category), lower(title), id", tuple(params))
        return [jobs.article(row) for row in found]

    async def search_articles(self, site_id: int, text: str, limit: int = 10
                              ) -> list[ArticleHit]:
        """Published articles matching ``text``, best first (bm25, the title weighing 10x)."""
        limit = max(1, min(limit, SEARCH_MAX))
        for words, every in article_queries(text):
            found = await self._article_matches(site_id, words, every, limit)
            if found:
                return [ArticleHit(*row) for row in found]
        return []

    # -- feedback and comments
    async def record_feedback(self, article_id: int, feedback: Feedback) -> None:
        """Stored with nothing that could identify who gave it."""
        await self._write(jobs.record_feedback, article_id, feedback, self._clock.now())

    async def add_visitor_comment(self, article_id: int, visitor: Visitor, body: str
                                  ) -> Comment:
        return await self._write(jobs.add_visitor_comment, article_id, visitor, body,
                                 self._clock.now())

    async def add_agent_comment(self, article_id: int, agent: Agent, body: str) -> Comment:
        return await self._write(jobs.add_agent_comment, article_id, agent, body,
                                 self._clock.now())

    async def list_comments(self, article_id: int, *, include_hidden: bool = False
                            ) -> list[Comment]:
        hidden = "" if include_hidden else " AND hidden = 0"
        found = await self._fetchall(
            f"SELECT * FROM article_comments WHERE article_id = ?{hidden} ORDER BY id",
            (article_id,))
        return [jobs.comment(row) for row in found]

    async def hide_comment(self, comment_id: int, hidden: bool = True) -> Comment:
        return await self._write(jobs.set_comment_hidden, comment_id, hidden)

    async def delete_comment(self, comment_id: int) -> None:
        await self._write(jobs.delete_comment, comment_id)

    # -- events and metrics
    async def record_article_view(self, site_id: int, article_id: int,
                                  browser: str | None = None) -> None:
        await self._write(jobs.record_event, site_id, "view", article_id, None, None, browser,
                          self._clock.now())

    async def record_search(self, site_id: int, query: str, results: int,
                            browser: str | None = None) -> None:
        await self._write(jobs.record_event, site_id, "search", None, query, results, browser,
                          self._clock.now())

    async def record_help_request(self, site_id: int, browser: str) -> int:
        return await self._write(jobs.record_request, site_id, browser, self._clock.now())

    async def help_metrics(self, site_id: int, since: datetime) -> SiteMetrics:
        now = self._clock.now()
        start, end = isoformat(since), isoformat(now)
        window = (site_id, start, end)
        events = " FROM article_events WHERE site_id = ? AND created_at >= ? AND created_at <= ?"
        totals = await self._fetchone(
            "SELECT COUNT(CASE WHEN type = 'view' THEN 1 END),"
            " COUNT(CASE WHEN type = 'search' THEN 1 END),"
            f" COUNT(CASE WHEN type = 'search' AND results = 0 THEN 1 END){events}", window,
            slow=True)
        empty = await self._fetchall(
            f"SELECT lower(trim(query)) AS q, COUNT(*) AS n{events} AND type = 'search'"
            " AND results = 0 GROUP BY q ORDER BY n DESC, q LIMIT ?", (*window, TOP_QUERIES),
            slow=True)
        closed = isoformat(max(since, now - DEFLECTION_WINDOW))  # windows that are over
        deflection = await self._fetchone(
            "SELECT COUNT(*), COUNT(CASE WHEN followed = 0 THEN 1 END) FROM article_events"
            " WHERE site_id = ? AND tracked = 1 AND created_at >= ? AND created_at < ?",
            (site_id, start, closed), slow=True)
        pending = await self._fetchone(
            "SELECT COUNT(*) FROM article_events WHERE site_id = ? AND tracked = 1"
            " AND created_at >= ? AND created_at <= ?", (site_id, closed, end), slow=True)
        return SiteMetrics(
            since=since, until=now, views=int(totals[0]), searches=int(totals[1]),
            searches_without_results=int(totals[2]),
            top_queries_without_results=[(row[0], int(row[1])) for row in empty],
            tracked_events=int(deflection[0]), deflected_events=int(deflection[1]),
            pending_events=int(pending[0]),
            articles=await self._article_metrics(site_id, start, end))

    async def _article_metrics(self, site_id: int, start: str, end: str
                               ) -> list[ArticleMetrics]:
        def span(alias: str) -> str:
            return f"{alias}.created_at >= ? AND {alias}.created_at <= ?"

        found = await self._fetchall(
            "SELECT a.id, a.slug, a.title, a.status,"
            " (SELECT COUNT(*) FROM article_events e WHERE e.article_id = a.id"
            f"  AND e.type = 'view' AND {span('e')}),"
            f" (SELECT COUNT(*) FROM article_feedback f WHERE f.article_id = a.id"
            f"  AND {span('f')} AND f.helpful = 1),"
            f" (SELECT COUNT(*) FROM article_feedback f WHERE f.article_id = a.id"
            f"  AND {span('f')} AND f.helpful = 0),"
            f" (SELECT COUNT(*) FROM article_comments c WHERE c.article_id = a.id"
            f"  AND {span('c')})"
            " FROM articles a WHERE a.site_id = ?",
            (start, end, start, end, start, end, start, end, site_id), slow=True)
        reasons: dict[int, dict[str, int]] = {}
        for row in await self._fetchall(
                "SELECT f.article_id, f.reason, COUNT(*) FROM article_feedback f"
                " JOIN articles a ON a.id = f.article_id WHERE a.site_id = ? AND f.helpful = 0"
                f" AND {span('f')} GROUP BY f.article_id, f.reason", (site_id, start, end),
                slow=True):
            reasons.setdefault(row[0], {})[row[1]] = int(row[2])
        metrics = [
            ArticleMetrics(id=row[0], slug=row[1], title=row[2], status=row[3], views=row[4],
                           helpful=row[5], not_helpful=row[6], comments=row[7],
                           reasons={key: reasons.get(row[0], {}).get(key, 0) for key in REASONS})
            for row in found
        ]
        return sorted(metrics, key=lambda m: (-m.views, m.title.lower(), m.id))
