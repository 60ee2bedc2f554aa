"""The PostgreSQL backend's reading of portable SQL (store/pg_sql.py) and its search text
(store/pg_search.py): pure functions, no database."""

from __future__ import annotations

from widget_server.store.pg_search import snippet, tsquery
from widget_server.store.pg_sql import returns_rows, rowcount, translate


def test_placeholders_are_numbered_outside_literals_identifiers_and_comments() -> None:
    sql = ("SELECT ?, '?', \"odd?name\" FROM t -- a comment? yes\n"
           "WHERE a = ? AND b LIKE 'it''s ?%' ESCAPE '\\' AND c IN (?, ?)")
    assert translate(sql) == (
        "SELECT $1, '?', \"odd?name\" FROM t -- a comment? yes\n"
        "WHERE a = $2 AND b LIKE 'it''s ?%' ESCAPE '\\' AND c IN ($3, $4)")
    assert translate("SELECT 1") == "SELECT 1"


def test_which_statements_answer_rows_and_how_many_a_command_changed() -> None:
    assert returns_rows("SELECT 1") and returns_rows("  with x as (select 1) select * from x")
    assert returns_rows("UPDATE t SET a = 1 RETURNING a")
    assert not returns_rows("UPDATE t SET returning_col = 1")
    assert not returns_rows("INSERT INTO t VALUES (?)")
    assert (rowcount("UPDATE 3"), rowcount("INSERT 0 1"), rowcount("BEGIN")) == (3, 1, -1)


def test_search_words_become_quoted_prefixes_and_never_syntax() -> None:
    assert tsquery(["export", "button"]) == "'export':* & 'button':*"
    assert tsquery(["a", "b"], every=False) == "'a':* | 'b':*"
    assert tsquery(["it's"]) == "'it''s':*"
    assert tsquery(["back\\slash"]) == "'back\\\\slash':*"


def test_snippets_mark_prefix_matches_and_keep_the_text_as_written() -> None:
    assert snippet("The <b>export</b> button", ["expo"], 12) == "The <b>\x02export\x03</b> button"
    assert snippet("Upload your résumé", ["resume"], 12) == "Upload your \x02résumé\x03"
    words = " ".join(f"w{n}" for n in range(30)) + " needle and more"
    assert snippet(words, ["needle"], 4) == "…w29 \x02needle\x03 and more"  # a full window
    assert snippet("no match here at all", ["zzz"], 2) == "no match…"
