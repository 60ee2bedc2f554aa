"""What every backend guarantees, on SQLite and PostgreSQL alike: migrations, numbering,
seq, resends, the append-only audit tables, search; and on PostgreSQL, the same across
several stores (several processes or nodes) writing to one database at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.pg import BACKENDS
from tests.store.helpers import plain, say, shop
from widget_server.articles import make_source
from widget_server.models import Site, Visitor
from widget_server.store.base import Store, VisitorPost
from widget_server.store.pg import PgStore
from widget_server.store.pg_schema import available_migrations as pg_migrations
from widget_server.store.sqlite import SQLiteStore
from widget_server.store.sqlite_schema import available_migrations as sqlite_migrations

pytestmark = [pytest.mark.anyio,
              pytest.mark.parametrize("backend", BACKENDS, indirect=True)]


def visitor(site: Site) -> Visitor:
    return Visitor(id="v_" + uuid.uuid4().hex[:24], site_id=site.id, user_id=None,
                   name="Visitor", email=None, verified=False)


def post(site: Site, who: Visitor | None = None, conversation_id: str | None = None,
         body: str = "Help", client_msg_id: str | None = None) -> VisitorPost:
    return VisitorPost(visitor=who or visitor(site), conversation_id=conversation_id,
                       client_msg_id=client_msg_id or str(uuid.uuid4()), body=body,
                       severity="normal", subject=None)


async def test_every_migration_is_applied_and_both_folders_line_up(store: Store, db: str
                                                                   ) -> None:
    applied = [tuple(row) for row in plain(db, "SELECT version, name FROM schema_migrations"
                                               " ORDER BY version")]
    assert applied == [(version, name) for version, name, _ in sqlite_migrations()]
    assert [entry[:2] for entry in pg_migrations()] == [
        entry[:2] for entry in sqlite_migrations()]


async def test_both_schemas_have_the_same_tables_and_columns(store: Store, db: str,
                                                             tmp_path: Path) -> None:
    if not db.startswith("postgresql://"):
        pytest.skip("compares PostgreSQL's schema with SQLite's")
    sqlite_store = SQLiteStore(str(tmp_path / "twin.db"))
    await sqlite_store.open()
    await sqlite_store.close()
    on_sqlite = {}
    for (table,) in plain(tmp_path / "twin.db", "SELECT name FROM sqlite_master WHERE"
                          " type = 'table' AND name NOT LIKE '%fts%' AND name NOT LIKE 'sqlite%'"):
        on_sqlite[table] = {row[1] for row in plain(tmp_path / "twin.db",
                                                     f"PRAGMA table_info({table})")}
    on_pg: dict[str, set[str]] = {}
    for table, column in plain(db, "SELECT table_name, column_name FROM"
                                   " information_schema.columns WHERE table_schema = 'public'"):
        on_pg.setdefault(table, set()).add(column)
    assert on_pg == on_sqlite


@pytest.mark.parametrize("table", ["ticket_events", "access_grant_events", "privacy_audit"])
async def test_audit_tables_refuse_update_and_delete(store: Store, db: str, table: str) -> None:
    site = await shop(store)
    await store.post_visitor_message(post(site), datetime.now(UTC))
    await store.set_retention(site.id, 30, "cli", None)
    grant_row = plain(db, "SELECT COUNT(*) FROM access_grant_events")
    if table == "access_grant_events" and grant_row[0][0] == 0:
        plain(db, "INSERT INTO access_grants (id, site_id, user_id, visitor_id, scope, hours,"
                  " created_at, expires_at) VALUES ('g1', ?, 'u1', 'v1', 'read', 1, 'a', 'b')",
              (site.id,))
        plain(db, "INSERT INTO access_grant_events (grant_id, site_id, user_id, type,"
                  " actor_type, created_at) VALUES ('g1', ?, 'u1', 'granted', 'visitor', 'a')",
              (site.id,))
    assert plain(db, f"SELECT COUNT(*) FROM {table}")[0][0] > 0
    for statement in (f"UPDATE {table} SET created_at = 'x'", f"DELETE FROM {table}"):
        with pytest.raises(Exception, match="append-only"):
            plain(db, statement)
    assert plain(db, f"SELECT COUNT(*) FROM {table}")[0][0] > 0


async def test_concurrent_new_requests_get_every_number_once(store: Store) -> None:
    site = await shop(store)
    results = await asyncio.gather(*(store.post_visitor_message(post(site), datetime.now(UTC))
                                     for _ in range(40)))
    assert sorted(r.ticket.number for r in results if r.ticket) == list(range(1, 41))


async def test_concurrent_messages_in_one_conversation_get_every_seq_once(store: Store
                                                                         ) -> None:
    site = await shop(store)
    who = visitor(site)
    opened = await store.post_visitor_message(post(site, who), datetime.now(UTC))
    cid = opened.message.conversation_id
    results = await asyncio.gather(*(store.post_visitor_message(
        post(site, who, cid, f"message {n}"), datetime.now(UTC)) for n in range(30)))
    # the new request stored seq 1 (the message) and 2 (the acknowledgement)
    assert sorted(r.message.seq for r in results) == list(range(3, 33))
    stored = await store.messages_after(cid, 0)
    assert [m.seq for m in stored] == list(range(1, 33))


async def test_a_resend_stores_once_even_when_sent_at_once(store: Store) -> None:
    site = await shop(store)
    who = visitor(site)
    opened = await store.post_visitor_message(post(site, who), datetime.now(UTC))
    cid = opened.message.conversation_id
    same = post(site, who, cid, "only once", client_msg_id="resent-1")
    results = await asyncio.gather(*(store.post_visitor_message(same, datetime.now(UTC))
                                     for _ in range(10)))
    assert sum(not r.duplicate for r in results) == 1
    assert len({r.message.id for r in results}) == 1
    bodies = [m.body for m in await store.messages_after(cid, 0)]
    assert bodies.count("only once") == 1


async def test_search_finds_prefixes_of_every_word_and_never_reads_syntax(store: Store
                                                                         ) -> None:
    site = await shop(store)
    said = await say(store, site, "The export button does nothing")
    await say(store, site, "Completely unrelated")
    hits = await store.search([site.id], "expor butt")
    assert [hit.ticket.id for hit in hits] == [said.ticket.id if said.ticket else None]
    assert "\x02" in hits[0].snippet and "\x03" in hits[0].snippet
    # each would match the acknowledgement's "and" if it became OR syntax
    for hostile in ["zq' | 'and", 'zq" OR "and', "zq:* | and:*", "!zq | and", "zq OR and",
                    "NEAR(zq and)", "zq\\' | and", "'", '"', "(", "*"]:
        assert await store.search([site.id], hostile) == [], hostile


async def test_article_search_ranks_the_title_first(store: Store) -> None:
    site = await shop(store)
    for slug, title, body in (("one", "Billing basics", "Invoices and refunds explained."),
                              ("two", "Getting started", "Billing is covered elsewhere.")):
        await store.upsert_article(site.id, make_source(title, slug, "Help", "published", body))
    hits = await store.search_articles(site.id, "billin")
    assert [hit.slug for hit in hits] == ["one", "two"]
    assert await store.search_articles(site.id, "' OR 1=1 --") == []
    either = await store.search_articles(site.id, "refunds nowhere")  # any word, second try
    assert [hit.slug for hit in either] == ["one"]


async def test_several_stores_on_one_database_number_without_gap(
        store: Store, db: str, backend: str) -> None:
    """Several processes (here: stores with pools of their own) open new requests on one
    site at once: 200 requests get #1 to #200."""
    if backend != "postgresql":
        pytest.skip("one SQLite file has one writing process at a time")
    site = await shop(store)
    others = [PgStore(db) for _ in range(3)]
    for other in others:
        await other.open()
    try:
        stores = [store, *others]
        results = await asyncio.gather(*(
            stores[n % len(stores)].post_visitor_message(post(site), datetime.now(UTC))
            for n in range(200)))
    finally:
        for other in others:
            await other.close()
    numbers = sorted(r.ticket.number for r in results if r.ticket)
    assert numbers == list(range(1, 201))
    assert plain(db, "SELECT ticket_counter FROM sites WHERE id = ?", (site.id,)) == [(200,)]
    assert plain(db, "SELECT COUNT(*), COUNT(DISTINCT number) FROM tickets") == [(200, 200)]
