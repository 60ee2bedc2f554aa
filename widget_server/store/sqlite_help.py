"""Write jobs of the help centre: articles, anonymous feedback, comments and metric events.

Each job runs as one whole transaction inside the single writer (see sqlite_writer.py).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from widget_server.articles import DEFLECTION_WINDOW, Article, ArticleSource, Comment, Feedback
from widget_server.clock import isoformat, parse_iso
from widget_server.errors import Conflict, NotFound
from widget_server.models import Agent, Visitor
from widget_server.store.connection import Connection
from widget_server.store.sqlite_writes import _upsert_visitor

QUERY_MAX = 200


def article(row: sqlite3.Row) -> Article:
    return Article(id=row["id"], site_id=row["site_id"], slug=row["slug"],
                   category=row["category"], title=row["title"], body_md=row["body_md"],
                   body_html=row["body_html"], status=row["status"],
                   created_at=parse_iso(row["created_at"]),
                   updated_at=parse_iso(row["updated_at"]))


def comment(row: sqlite3.Row) -> Comment:
    return Comment(id=row["id"], article_id=row["article_id"], author_type=row["author_type"],
                   author_name=row["author_name"], body=row["body"], hidden=bool(row["hidden"]),
                   created_at=parse_iso(row["created_at"]))


def upsert_article(conn: Connection, site_id: int, source: ArticleSource,
                   body_html: str, body_text: str, now: datetime) -> tuple[Article, str]:
    """Create the article of (site, slug) or update it; "created", "updated" or "unchanged"."""
    found = conn.execute("SELECT * FROM articles WHERE site_id = ? AND slug = ?",
                         (site_id, source.slug)).fetchone()
    fields = (source.category, source.title, source.body_md, body_html, body_text,
              source.status)
    if found is None:
        row = conn.execute(
            "INSERT INTO articles (site_id, slug, category, title, body_md, body_html, body_text,"
            " status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            (site_id, source.slug, *fields, isoformat(now), isoformat(now))).fetchone()
        return article(row), "created"
    current = (found["category"], found["title"], found["body_md"], found["body_html"],
               found["body_text"], found["status"])
    if current == fields:
        return article(found), "unchanged"
    row = conn.execute(
        "UPDATE articles SET category = ?, title = ?, body_md = ?, body_html = ?, body_text = ?,"
        " status = ?, updated_at = ? WHERE id = ? RETURNING *",
        (*fields, isoformat(now), found["id"])).fetchone()
    return article(row), "updated"


def rename_article(conn: Connection, article_id: int, slug: str, now: datetime
                   ) -> Article:
    """Give an article another slug; the slug must be free within its site."""
    found = conn.execute("SELECT * FROM articles WHERE id = ?", (article_id,)).fetchone()
    if found is None:
        raise NotFound("no such article", code="article_not_found")
    if found["slug"] == slug:
        return article(found)
    if conn.execute("SELECT 1 FROM articles WHERE site_id = ? AND slug = ?",
                    (found["site_id"], slug)).fetchone() is not None:
        raise Conflict(f"another article of this site already has the slug {slug!r}",
                       code="slug_taken")
    row = conn.execute("UPDATE articles SET slug = ?, updated_at = ? WHERE id = ? RETURNING *",
                       (slug, isoformat(now), article_id)).fetchone()
    return article(row)


def record_feedback(conn: Connection, article_id: int, feedback: Feedback,
                    now: datetime) -> None:
    _require_article(conn, article_id)
    conn.execute(
        "INSERT INTO article_feedback (article_id, helpful, reason, comment, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (article_id, int(feedback.helpful), feedback.reason, feedback.comment, isoformat(now)))


def add_visitor_comment(conn: Connection, article_id: int, visitor: Visitor, body: str,
                        now: datetime) -> Comment:
    _require_article(conn, article_id)
    _upsert_visitor(conn, visitor, now)
    row = conn.execute(
        "INSERT INTO article_comments (article_id, author_type, author_visitor_id, author_name,"
        " body, created_at) VALUES (?, 'visitor', ?, ?, ?, ?) RETURNING *",
        (article_id, visitor.id, visitor.name, body, isoformat(now))).fetchone()
    return comment(row)


def add_agent_comment(conn: Connection, article_id: int, agent: Agent, body: str,
                      now: datetime) -> Comment:
    _require_article(conn, article_id)
    row = conn.execute(
        "INSERT INTO article_comments (article_id, author_type, author_agent_id, author_name,"
        " body, created_at) VALUES (?, 'agent', ?, ?, ?, ?) RETURNING *",
        (article_id, agent.id, agent.name, body, isoformat(now))).fetchone()
    return comment(row)


def set_comment_hidden(conn: Connection, comment_id: int, hidden: bool) -> Comment:
    row = conn.execute("UPDATE article_comments SET hidden = ? WHERE id = ? RETURNING *",
                       (int(hidden), comment_id)).fetchone()
    if row is None:
        raise NotFound("no such comment", code="comment_not_found")
    return comment(row)


def delete_comment(conn: Connection, comment_id: int) -> None:
    if conn.execute("DELETE FROM article_comments WHERE id = ?", (comment_id,)).rowcount == 0:
        raise NotFound("no such comment", code="comment_not_found")


def record_event(conn: Connection, site_id: int, kind: str, article_id: int | None,
                 query: str | None, results: int | None, browser: str | None,
                 now: datetime) -> None:
    _forget_browsers(conn, now)
    conn.execute(
        "INSERT INTO article_events (site_id, type, article_id, query, results, browser, tracked,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (site_id, kind, article_id, query[:QUERY_MAX] if query is not None else None, results,
         browser, int(browser is not None), isoformat(now)))


def record_request(conn: Connection, site_id: int, browser: str, now: datetime) -> int:
    """A new request from this browser: its searches and views of the last 30 minutes were not
    deflected. Nothing about the request itself is stored. Returns how many events it marked."""
    _forget_browsers(conn, now)
    return conn.execute(
        "UPDATE article_events SET followed = 1 WHERE browser = ? AND site_id = ?"
        " AND created_at >= ? AND followed = 0",
        (browser, site_id, isoformat(now - DEFLECTION_WINDOW))).rowcount


def _forget_browsers(conn: Connection, now: datetime) -> None:
    """Browser ids are needed for 30 minutes only; older ones are dropped."""
    conn.execute("UPDATE article_events SET browser = NULL"
                 " WHERE browser IS NOT NULL AND created_at < ?",
                 (isoformat(now - DEFLECTION_WINDOW),))


def _require_article(conn: Connection, article_id: int) -> None:
    if conn.execute("SELECT 1 FROM articles WHERE id = ?", (article_id,)).fetchone() is None:
        raise NotFound("no such article", code="article_not_found")
