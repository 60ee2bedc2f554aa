"""Full-text search on SQLite: the FTS5 tables of tickets, messages (indexed in bulk,
``sqlite_message_index``) and articles. Mixed into ``SQLiteStore``; ``pg_search`` is its
PostgreSQL twin. Each word is quoted, so what a user types never becomes FTS syntax."""

from __future__ import annotations

from widget_server.store import sqlite_message_index as message_index
from widget_server.store.console_queries import StoreMixin, marks


def fts_query(words: list[str], *, every: bool = True) -> str:
    """Every word (or, with ``every`` false, any word) as a quoted prefix."""
    return (" " if every else " OR ").join(f'"{word}"*' for word in words)


class SQLiteSearch(StoreMixin):

    async def _ticket_matches(self, site_ids: list[int], words: list[str]
                              ) -> list[tuple[int, float, str]]:
        query = fts_query(words)
        indexed_upto, last_message = await self._fetchone(message_index.PENDING_SQL)
        if last_message > indexed_upto:  # messages are indexed in bulk: catch up first
            await self._write(message_index.index_pending, off_loop=True)
        sites = marks(site_ids)
        # snippet() cannot run under GROUP BY: rank the matching rows, then pick per ticket
        matches = await self._fetchall(
            "SELECT t.id, f.rank, snippet(tickets_fts, 0, char(2), char(3), '…', 12)"
            " FROM tickets_fts f JOIN tickets t ON t.id = f.rowid"
            f" WHERE tickets_fts MATCH ? AND t.site_id IN ({sites}) ORDER BY f.rank LIMIT 500",
            (query, *site_ids), slow=True)
        matches += await self._fetchall(
            "SELECT t.id, f.rank, snippet(messages_fts, 0, char(2), char(3), '…', 12)"
            " FROM messages_fts f JOIN messages m ON m.id = f.rowid"
            " JOIN tickets t ON t.conversation_id = m.conversation_id"
            f" WHERE messages_fts MATCH ? AND t.site_id IN ({sites}) ORDER BY f.rank LIMIT 500",
            (query, *site_ids), slow=True)
        return [(row[0], row[1], row[2]) for row in matches]

    async def _article_matches(self, site_id: int, words: list[str], every: bool,
                               limit: int) -> list[tuple[int, str, str, str, str]]:
        found = await self._fetchall(
            "SELECT a.id, a.slug, a.title, a.category,"
            " snippet(articles_fts, 1, char(2), char(3), '…', 16)"
            " FROM articles_fts f JOIN articles a ON a.id = f.rowid"
            " WHERE articles_fts MATCH ? AND a.site_id = ? AND a.status = 'published'"
            " ORDER BY bm25(articles_fts, 10.0, 1.0), a.id LIMIT ?",
            (fts_query(words, every=every), site_id, limit))
        return [(row[0], row[1], row[2], row[3], row[4]) for row in found]
