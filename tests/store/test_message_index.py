"""Message bodies indexed for search in bulk (store/sqlite_message_index.py, migration 0008)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.store.helpers import plain, say, shop
from widget_server.store import sqlite_message_index as message_index
from widget_server.store import sqlite_schema as schema
from widget_server.store import sqlite_writer
from widget_server.store.sqlite import SQLiteStore
from widget_server.store.sqlite_writer import SQLiteWriter

pytestmark = pytest.mark.anyio


@pytest.fixture
async def lazy_store(db_path: Path, monkeypatch: pytest.MonkeyPatch
                     ) -> AsyncIterator[SQLiteStore]:
    """A store whose writer never finds itself idle long enough to index on its own."""
    monkeypatch.setattr(sqlite_writer, "UPKEEP_IDLE", 3600.0)
    opened = SQLiteStore(str(db_path))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def indexed(db_path: Path, word: str) -> list[int]:
    return [row[0] for row in plain(
        db_path, "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid",
        (word,))]


def watermark(db_path: Path) -> int:
    return int(plain(db_path, "SELECT indexed_upto FROM message_index_state")[0][0])



def wal_connection(path: Path | str) -> sqlite3.Connection:
    """A writer's connection as the store makes it in this respect: in WAL mode, where the
    checkpointer's connection never blocks the writer's commit."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    return conn

async def test_a_search_indexes_what_is_pending_first(lazy_store: SQLiteStore,
                                                      db_path: Path) -> None:
    site = await shop(lazy_store)
    posted = await say(lazy_store, site, "the zebra export fails")
    assert indexed(db_path, "zebra") == []  # stored and acknowledged, not indexed yet
    assert watermark(db_path) < posted.message.id
    hits = await lazy_store.search([site.id], "zebra")
    assert [hit.ticket.id for hit in hits] == [posted.ticket.id if posted.ticket else None]
    assert indexed(db_path, "zebra") == [posted.message.id]
    assert watermark(db_path) == posted.message.id


async def test_an_idle_writer_indexes_pending_messages_on_its_own(store: SQLiteStore,
                                                                   db_path: Path) -> None:
    posted = await say(store, await shop(store), "quokka sighting")
    for _ in range(200):  # the writer indexes once no job has come for UPKEEP_IDLE
        if indexed(db_path, "quokka"):
            break
        await asyncio.sleep(0.025)
    assert indexed(db_path, "quokka") == [posted.message.id]


async def test_a_busy_writer_runs_its_upkeep_after_every_so_many_jobs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sqlite_writer, "UPKEEP_IDLE", 3600.0)
    upkeeps: list[int] = []
    writer = SQLiteWriter(
        lambda: wal_connection(tmp_path / "w.db"),
        upkeep=lambda conn: upkeeps.append(1), upkeep_every=3)
    await writer.start()
    try:
        for _ in range(3):
            await writer.run(lambda conn: conn.execute("SELECT 1"))
        await writer.run(lambda conn: conn.execute("SELECT 1"))  # after the upkeep
        assert upkeeps == [1]
        for _ in range(3):  # the 4th, 5th and 6th jobs make the next one due ...
            await writer.run(lambda conn: conn.execute("SELECT 1"))
        assert upkeeps == [1, 1]  # ... and it runs before the 7th job is taken
    finally:
        await writer.close()


async def test_a_failing_upkeep_is_logged_and_the_writes_go_on(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sqlite_writer, "UPKEEP_IDLE", 3600.0)

    def broken(conn: sqlite3.Connection) -> None:
        raise RuntimeError("upkeep broke")

    writer = SQLiteWriter(lambda: wal_connection(tmp_path / "w.db"),
                          upkeep=broken, upkeep_every=1)
    await writer.start()
    try:
        for n in range(3):
            assert await writer.run(lambda conn, n=n: n) == n
    finally:
        await writer.close()
    assert "sqlite writer upkeep failed" in caplog.text


async def test_deletes_keep_the_index_exact_and_a_reused_id_gets_indexed(
        lazy_store: SQLiteStore, db_path: Path) -> None:
    site = await shop(lazy_store)
    alpha = await say(lazy_store, site, "alpha words")
    bravo = await say(lazy_store, site, "bravo words")
    await lazy_store.search([site.id], "words")  # indexes alpha and bravo
    charlie = await say(lazy_store, site, "charlie words")  # pending

    def forget(conn: sqlite3.Connection, conversation_id: str) -> None:
        conn.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))

    await lazy_store._write(forget, charlie.message.conversation_id)  # never indexed
    await lazy_store._write(forget, bravo.message.conversation_id)  # indexed: the newest left
    assert indexed(db_path, "bravo") == []
    assert watermark(db_path) == alpha.message.id  # bravo's ids may be handed out again
    delta = await say(lazy_store, site, "delta words")
    assert delta.message.id <= bravo.message.id  # SQLite did reuse a rowid
    hits = await lazy_store.search([site.id], "delta")
    assert [hit.ticket.id for hit in hits] == [delta.ticket.id if delta.ticket else None]
    assert indexed(db_path, "words") == [alpha.message.id, delta.message.id]
    assert indexed(db_path, "charlie") == []
    plain(db_path, "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")


async def test_the_migration_counts_the_messages_already_indexed(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a database from before bulk indexing the old trigger had indexed every message."""
    monkeypatch.setattr(sqlite_writer, "UPKEEP_IDLE", 3600.0)
    every = schema.available_migrations()
    monkeypatch.setattr(schema, "available_migrations",
                        lambda: [m for m in every if m[0] < 8])
    # the rows as code of that time wrote them, in plain SQL: today's jobs need today's schema
    conn = schema.connect(str(db_path))
    try:
        schema.migrate(conn)
        stamp = "2026-01-05T10:00:00.000Z"
        with conn:
            site_id = conn.execute(
                "INSERT INTO sites (key, name, allowed_origins, identity_secret, ticket_counter,"
                " created_at) VALUES ('site_legacy', 'Legacy', '[]', 's', 1, ?) RETURNING id",
                (stamp,)).fetchone()[0]
            conn.execute("INSERT INTO visitors (id, site_id, created_at) VALUES"
                         " ('v_legacy', ?, ?)", (site_id, stamp))
            conn.execute("INSERT INTO conversations (id, site_id, visitor_id, last_seq,"
                         " created_at, updated_at) VALUES ('c_legacy', ?, 'v_legacy', 1, ?, ?)",
                         (site_id, stamp, stamp))
            legacy_id = conn.execute(
                "INSERT INTO messages (conversation_id, seq, author_type, author_visitor_id,"
                " body, client_msg_id, created_at) VALUES ('c_legacy', 1, 'visitor',"
                " 'v_legacy', 'legacy words', 'm1', ?) RETURNING id", (stamp,)).fetchone()[0]
            conn.execute("INSERT INTO tickets (site_id, number, conversation_id, subject,"
                         " severity, status, channel, first_response_due, created_at,"
                         " updated_at) VALUES (?, 1, 'c_legacy', 'Old times', 'normal', 'new',"
                         " 'widget', ?, ?, ?)", (site_id, stamp, stamp, stamp))
    finally:
        conn.close()
    assert indexed(db_path, "legacy") == [legacy_id]  # by the trigger of 0002

    monkeypatch.setattr(schema, "available_migrations", lambda: every)
    new = SQLiteStore(str(db_path))
    await new.open()
    try:
        assert watermark(db_path) == plain(db_path, "SELECT MAX(id) FROM messages")[0][0]
        site = await new.get_site(site_id)
        assert site is not None
        later = await say(new, site, "legacy again")
        hits = await new.search([site.id], "legacy")
        assert {hit.ticket.number for hit in hits} == {1, later.ticket and later.ticket.number}
        assert indexed(db_path, "legacy") == [legacy_id, later.message.id]
    finally:
        await new.close()


async def test_an_upkeep_indexes_a_backlog_a_bounded_step_at_a_time(
        lazy_store: SQLiteStore, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = await shop(lazy_store)
    posted = [await say(lazy_store, site, f"walrus number {n}") for n in range(5)]
    monkeypatch.setattr(message_index, "UPKEEP_MESSAGES", 2)
    conn = schema.connect(str(db_path))
    try:  # the upkeep runs on the event loop: never a whole backlog at once
        start = watermark(db_path)
        assert message_index.index_some(conn) is True
        assert watermark(db_path) == start + 2
        while message_index.index_some(conn):
            pass
    finally:
        conn.close()
    assert indexed(db_path, "walrus") == [p.message.id for p in posted]


async def test_an_upkeep_with_more_to_do_runs_again_without_new_jobs(
        tmp_path: Path) -> None:
    calls: list[int] = []

    def upkeep(conn: sqlite3.Connection) -> bool:
        calls.append(1)
        return len(calls) < 4  # more remains after the first three

    writer = SQLiteWriter(lambda: wal_connection(tmp_path / "w.db"),
                          upkeep=upkeep, upkeep_every=1)
    await writer.start()
    try:
        await writer.run(lambda conn: None)
        for _ in range(400):  # idle from now on: each next step comes after UPKEEP_IDLE
            if len(calls) >= 4:
                break
            await asyncio.sleep(0.01)
        # time passes on purpose: the check is that nothing more happens, not a wait for it
        await asyncio.sleep(3 * sqlite_writer.UPKEEP_IDLE)
        assert len(calls) == 4  # and no fifth once it said it was done
    finally:
        await writer.close()


async def test_the_upkeep_runs_on_the_loop_and_waits_out_another_writer_quietly(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = str(tmp_path / "w.db")
    threads: list[int] = []
    writer = SQLiteWriter(lambda: wal_connection(path),
                          upkeep=lambda conn: threads.append(threading.get_ident()),
                          upkeep_every=1)
    await writer.start()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await writer.run(lambda conn: conn.execute("CREATE TABLE notes (body TEXT)"))
        for _ in range(200):
            if threads:
                break
            await asyncio.sleep(0.01)
        assert threads == [threading.get_ident()]  # on the event loop's thread
        await writer.run(lambda conn: None)
        other.execute("BEGIN IMMEDIATE")  # before the upkeep due now gets its turn
        # time passes on purpose: the upkeep's turns come and find the lock taken
        await asyncio.sleep(3 * sqlite_writer.UPKEEP_IDLE)
        assert len(threads) == 1  # the lock was taken: not run, and not an error
        other.execute("COMMIT")
        for _ in range(200):
            if len(threads) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(threads) == 2  # tried again once the lock was free
    finally:
        other.close()
        await writer.close()
    assert "upkeep failed" not in caplog.text


async def test_the_writes_go_on_while_a_checkpoint_runs(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()
    checkpoint = SQLiteWriter._checkpoint_now

    def slow_checkpoint(self: SQLiteWriter) -> None:  # a large WAL on a slow disk
        started.set()
        release.wait(10)
        checkpoint(self)

    monkeypatch.setattr(SQLiteWriter, "_checkpoint_now", slow_checkpoint)
    writer = SQLiteWriter(lambda: schema.connect(str(db_path)), upkeep_every=2)
    await writer.start()
    try:
        await writer.run(lambda conn: conn.execute("CREATE TABLE notes (body TEXT)"))
        await writer.run(lambda conn: conn.execute("INSERT INTO notes VALUES ('a')"))
        for _ in range(200):
            if started.is_set():
                break
            await asyncio.sleep(0.01)
        assert started.is_set()
        for n in range(10):  # committed while the checkpoint is still running
            await asyncio.wait_for(writer.run(
                lambda conn, n=n: conn.execute("INSERT INTO notes VALUES (?)", (str(n),))), 5)
        assert not release.is_set()
    finally:
        release.set()
        await writer.close()
    assert plain(db_path, "SELECT COUNT(*) FROM notes")[0][0] == 11
