"""Full-text search on PostgreSQL: GIN indexes on ``to_tsvector('widget_search', ...)``
(migrations 0002 and 0004: the simple configuration without accents), ``ts_rank`` for the
order, prefix matching with ``:*``, and snippets built here as SQLite builds them. Mixed into
``PgStore``; ``sqlite_search`` is its SQLite twin, and both answer in the same shapes. Each
word becomes a quoted tsquery lexeme, so what a user types never becomes query syntax."""

from __future__ import annotations

import re
import unicodedata

from widget_server.store.console_queries import StoreMixin, marks

_SUBJECT = "to_tsvector('widget_search'::regconfig, t.subject)"
_BODY = "to_tsvector('widget_search'::regconfig, m.body)"
_ARTICLE = ("(setweight(to_tsvector('widget_search'::regconfig, a.title), 'A')"
            " || setweight(to_tsvector('widget_search'::regconfig, a.body_text), 'D'))")
_WORD = re.compile(r"\w+", re.UNICODE)


def tsquery(words: list[str], *, every: bool = True) -> str:
    """Every word (or any word) as a quoted prefix lexeme: ``'it''s':* & 'x':*``."""
    quoted = ("'" + word.replace("\\", "\\\\").replace("'", "''") + "':*" for word in words)
    return (" & " if every else " | ").join(quoted)


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def snippet(text: str, words: list[str], size: int) -> str:
    """At most ``size`` words of ``text`` from its first match on, each word that starts
    with one of ``words`` between \\x02 and \\x03, and '…' where text was left out: what
    SQLite's snippet() gives, built here because ts_headline drops markup-like text."""
    prefixes = [_fold(word) for word in words]
    tokens = list(_WORD.finditer(text))
    if not tokens:
        return text
    hits = {index for index, token in enumerate(tokens)
            if any(_fold(token.group()).startswith(prefix) for prefix in prefixes)}
    first = min(hits, default=0)
    begin = max(0, min(first, len(tokens) - size))
    end = min(len(tokens), begin + size)
    parts = ["…" if begin > 0 else text[:tokens[0].start()]]
    for index in range(begin, end):
        token = tokens[index]
        if index > begin:
            parts.append(text[tokens[index - 1].end():token.start()])
        parts.append(f"\x02{token.group()}\x03" if index in hits else token.group())
    parts.append("…" if end < len(tokens) else text[tokens[-1].end():])
    return "".join(parts)


class PgSearch(StoreMixin):

    async def _ticket_matches(self, site_ids: list[int], words: list[str]
                              ) -> list[tuple[int, float, str]]:
        query = tsquery(words)
        sites = marks(site_ids)
        matches = await self._fetchall(
            f"SELECT t.id, -ts_rank({_SUBJECT}, q), t.subject"
            " FROM tickets t, to_tsquery('widget_search', ?) q"
            f" WHERE {_SUBJECT} @@ q AND t.site_id IN ({sites}) ORDER BY 2 LIMIT 500",
            (query, *site_ids), slow=True)
        matches += await self._fetchall(
            f"SELECT t.id, -ts_rank({_BODY}, q), m.body"
            " FROM messages m JOIN tickets t ON t.conversation_id = m.conversation_id,"
            " to_tsquery('widget_search', ?) q"
            f" WHERE {_BODY} @@ q AND t.site_id IN ({sites}) ORDER BY 2 LIMIT 500",
            (query, *site_ids), slow=True)
        return [(row[0], float(row[1]), snippet(row[2], words, 12)) for row in matches]

    async def _article_matches(self, site_id: int, words: list[str], every: bool,
                               limit: int) -> list[tuple[int, str, str, str, str]]:
        found = await self._fetchall(
            "SELECT a.id, a.slug, a.title, a.category, a.body_text"
            " FROM articles a, to_tsquery('widget_search', ?) q"
            f" WHERE {_ARTICLE} @@ q AND a.site_id = ? AND a.status = 'published'"
            f" ORDER BY ts_rank({_ARTICLE}, q) DESC, a.id LIMIT ?",
            (tsquery(words, every=every), site_id, limit))
        return [(row[0], row[1], row[2], row[3], snippet(row[4], words, 16)) for row in found]
