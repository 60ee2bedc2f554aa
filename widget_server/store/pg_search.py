"""Full-text search on PostgreSQL: GIN indexes on ``to_tsvector('widget_search', ...)``
(migrations 0002 and 0004: the simple configuration without accents), ``ts_rank`` for the
order, ``ts_headline`` for the snippets and prefix matching with ``:*``. Mixed into
``PgStore``; ``sqlite_search`` is its SQLite twin, and both answer in the same shapes. Each
word becomes a quoted tsquery lexeme, so what a user types never becomes query syntax."""

from __future__ import annotations

from widget_server.store.console_queries import StoreMixin, marks

# the snippets' marks around a match, as SQLite's snippet() with char(2) and char(3)
_HEADLINE = ("'StartSel=' || chr(2) || ', StopSel=' || chr(3)"
             " || ', MaxWords={words}, MinWords={least}, ShortWord=1, FragmentDelimiter=…'")
_TICKET_HEADLINE = _HEADLINE.format(words=12, least=4)
_ARTICLE_HEADLINE = _HEADLINE.format(words=16, least=6)
_SUBJECT = "to_tsvector('widget_search'::regconfig, t.subject)"
_BODY = "to_tsvector('widget_search'::regconfig, m.body)"
_ARTICLE = ("(setweight(to_tsvector('widget_search'::regconfig, a.title), 'A')"
            " || setweight(to_tsvector('widget_search'::regconfig, a.body_text), 'D'))")


def tsquery(words: list[str], *, every: bool = True) -> str:
    """Every word (or any word) as a quoted prefix lexeme: ``'it''s':* & 'x':*``."""
    quoted = ("'" + word.replace("\\", "\\\\").replace("'", "''") + "':*" for word in words)
    return (" & " if every else " | ").join(quoted)


class PgSearch(StoreMixin):

    async def _ticket_matches(self, site_ids: list[int], words: list[str]
                              ) -> list[tuple[int, float, str]]:
        query = tsquery(words)
        sites = marks(site_ids)
        matches = await self._fetchall(
            f"SELECT t.id, -ts_rank({_SUBJECT}, q),"
            f" ts_headline('widget_search', t.subject, q, {_TICKET_HEADLINE})"
            " FROM tickets t, to_tsquery('widget_search', ?) q"
            f" WHERE {_SUBJECT} @@ q AND t.site_id IN ({sites}) ORDER BY 2 LIMIT 500",
            (query, *site_ids), slow=True)
        matches += await self._fetchall(
            f"SELECT t.id, -ts_rank({_BODY}, q),"
            f" ts_headline('widget_search', m.body, q, {_TICKET_HEADLINE})"
            " FROM messages m JOIN tickets t ON t.conversation_id = m.conversation_id,"
            " to_tsquery('widget_search', ?) q"
            f" WHERE {_BODY} @@ q AND t.site_id IN ({sites}) ORDER BY 2 LIMIT 500",
            (query, *site_ids), slow=True)
        return [(row[0], float(row[1]), row[2]) for row in matches]

    async def _article_matches(self, site_id: int, words: list[str], every: bool,
                               limit: int) -> list[tuple[int, str, str, str, str]]:
        found = await self._fetchall(
            "SELECT a.id, a.slug, a.title, a.category,"
            f" ts_headline('widget_search', a.body_text, q, {_ARTICLE_HEADLINE})"
            " FROM articles a, to_tsquery('widget_search', ?) q"
            f" WHERE {_ARTICLE} @@ q AND a.site_id = ? AND a.status = 'published'"
            f" ORDER BY ts_rank({_ARTICLE}, q) DESC, a.id LIMIT ?",
            (tsquery(words, every=every), site_id, limit))
        return [(row[0], row[1], row[2], row[3], row[4]) for row in found]
