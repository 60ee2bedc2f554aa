"""The SQLite store on a real file: migrations, pragmas, the batching writer, the audit trail."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.store.helpers import plain
from widget_server.errors import NotFound
from widget_server.models import Agent, PostResult, Site, Visitor
from widget_server.store import sqlite_schema as schema
from widget_server.store import sqlite_writer
from widget_server.store.base import VisitorPost
from widget_server.store.sqlite import SQLiteStore
from widget_server.store.sqlite_schema import available_migrations
from widget_server.store.sqlite_writer import (
    GROUP,
    MAX_BATCH,
    SQLiteWriter,
    WriterClosed,
)

pytestmark = pytest.mark.anyio


def now() -> datetime:
    return datetime.now(UTC)


def visitor(site: Site) -> Visitor:
    return Visitor(id="v_" + uuid.uuid4().hex[:24], site_id=site.id, user_id=None,
                   name="Test Visitor", email=None, verified=False)


def new_request(site: Site, body: str = "Help", who: Visitor | None = None) -> VisitorPost:
    return VisitorPost(visitor=who or visitor(site), conversation_id=None,
                       client_msg_id=str(uuid.uuid4()), body=body, severity="normal",
                       subject=None)


@pytest.fixture
async def site(store: SQLiteStore) -> Site:
    created, was_new = await store.ensure_site("Shop", ["https://shop.test"])
    assert was_new
    return created


@pytest.fixture
async def agent(store: SQLiteStore) -> Agent:
    created, _ = await store.ensure_agent("agent@example.com", "Agent", "agent", None)
    return created


async def test_open_applies_every_migration_with_wal_and_foreign_keys(
    store: SQLiteStore, db_path: Path
) -> None:
    applied = [row[:2] for row in plain(db_path, "SELECT version, name FROM schema_migrations")]
    assert applied == [(version, name) for version, name, _ in available_migrations()]
    assert applied[0] == (1, "initial")
    assert plain(db_path, "PRAGMA journal_mode") == [("wal",)]  # WAL is a property of the file
    # foreign_keys is per connection: ask the store's own writer and reader connections
    writer_fk = await store._writer.run(lambda conn: conn.execute("PRAGMA foreign_keys")
                                        .fetchone()[0])
    assert writer_fk == 1
    assert (await store._fetchone("PRAGMA foreign_keys"))[0] == 1
    assert (await store._fetchone("PRAGMA journal_mode"))[0] == "wal"
    assert await store.ping() is True


async def test_foreign_keys_are_enforced_on_writes(store: SQLiteStore) -> None:
    def orphan(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO conversations (id, site_id, visitor_id, created_at, updated_at)"
                     " VALUES ('cv_orphan', 999, 'v_nobody', 'x', 'x')")

    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        await store._writer.run(orphan)


async def test_reopening_does_not_reapply_migrations(db_path: Path) -> None:
    first = SQLiteStore(str(db_path))
    await first.open()
    try:
        site, _ = await first.ensure_site("Shop", ["https://shop.test"])
    finally:
        await first.close()
    applied = plain(db_path, "SELECT version, name, applied_at FROM schema_migrations")

    again = SQLiteStore(str(db_path))
    await again.open()
    try:
        assert await again.get_site_by_key(site.key) == site
    finally:
        await again.close()
    assert plain(db_path, "SELECT version, name, applied_at FROM schema_migrations") == applied
    assert len(applied) == len(available_migrations())


async def test_ticket_events_are_append_only(
    store: SQLiteStore, site: Site, db_path: Path
) -> None:
    await store.post_visitor_message(new_request(site), now())
    before = plain(db_path, "SELECT id, type, data FROM ticket_events ORDER BY id")
    assert [row[1] for row in before] == ["created", "acknowledged"]

    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE ticket_events SET type = 'forged' WHERE id = ?", (before[0][0],))
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM ticket_events")
        conn.rollback()
    assert plain(db_path, "SELECT id, type, data FROM ticket_events ORDER BY id") == before


async def test_concurrent_writes_are_batched_and_numbered_without_gaps(
    store: SQLiteStore, site: Site
) -> None:
    start = dict(store.writer_stats)
    results = await asyncio.gather(*(
        store.post_visitor_message(new_request(site, f"request {n}"), now())
        for n in range(200)))
    batches = store.writer_stats["batches"] - start["batches"]
    jobs = store.writer_stats["jobs"] - start["jobs"]
    assert jobs == 200
    assert 1 <= batches < jobs
    numbers = sorted(r.ticket.number for r in results if r.ticket is not None)
    assert numbers == list(range(1, 201))
    assert len({r.message.conversation_id for r in results}) == 200
    listed = await store.list_tickets(site.id, limit=200)
    assert [t.number for t in listed] == list(range(200, 0, -1))


async def test_a_failing_job_fails_alone(store: SQLiteStore, site: Site, db_path: Path) -> None:
    stranger = visitor(site)
    bad = VisitorPost(visitor=stranger, conversation_id="cv_doesnotexist",
                      client_msg_id=str(uuid.uuid4()), body="Hello?", severity="normal",
                      subject=None)
    posts = [new_request(site, f"good {n}") for n in range(20)]
    posts.insert(10, bad)
    start = dict(store.writer_stats)
    outcomes = await asyncio.gather(
        *(store.post_visitor_message(post, now()) for post in posts), return_exceptions=True)
    assert store.writer_stats["jobs"] - start["jobs"] == 21
    assert store.writer_stats["batches"] - start["batches"] < 21

    failed = outcomes.pop(10)
    assert isinstance(failed, NotFound)
    assert failed.code == "conversation_not_found"
    assert all(isinstance(outcome, PostResult) for outcome in outcomes), outcomes
    good: list[PostResult] = [o for o in outcomes if isinstance(o, PostResult)]
    assert sorted(r.ticket.number for r in good if r.ticket) == list(range(1, 21))
    # the failed job's own writes (its visitor row) were rolled back, the others' kept
    assert plain(db_path, "SELECT COUNT(*) FROM visitors WHERE id = ?", (stranger.id,)) == [(0,)]
    assert plain(db_path, "SELECT COUNT(*) FROM messages WHERE body LIKE 'good %'") == [(20,)]


async def test_a_job_that_raises_after_writing_leaves_nothing_and_the_batch_commits(
    store: SQLiteStore, db_path: Path
) -> None:
    def setting(key: str, fail: bool) -> Callable[[sqlite3.Connection], str]:
        def job(conn: sqlite3.Connection) -> str:
            conn.execute("INSERT INTO server_settings (key, value) VALUES (?, 'x')", (key,))
            if fail:
                raise ValueError(f"{key} failed after writing")
            return key
        return job

    start = dict(store.writer_stats)
    jobs = [setting(f"bench.{n}", fail=n in (3, 7)) for n in range(10)]
    outcomes = await asyncio.gather(*(store._writer.run(job) for job in jobs),
                                    return_exceptions=True)
    assert store.writer_stats["batches"] - start["batches"] < 10  # they did share batches
    assert [str(o) if isinstance(o, ValueError) else o for o in outcomes] == [
        f"bench.{n} failed after writing" if n in (3, 7) else f"bench.{n}" for n in range(10)]
    stored = plain(db_path,
                   "SELECT key FROM server_settings WHERE key LIKE 'bench.%' ORDER BY key")
    assert stored == [(f"bench.{n}",) for n in range(10) if n not in (3, 7)]


async def test_secret_key_is_generated_once(db_path: Path) -> None:
    first = SQLiteStore(str(db_path))
    await first.open()
    try:
        key = await first.secret_key()
        assert await first.secret_key() == key
    finally:
        await first.close()
    assert len(key) >= 32

    again = SQLiteStore(str(db_path))
    await again.open()
    try:
        assert await again.secret_key() == key
    finally:
        await again.close()
    assert plain(db_path, "SELECT value FROM server_settings WHERE key = 'secret_key'") \
        == [(key,)]
    other = SQLiteStore(str(db_path.with_name("other.db")))
    await other.open()
    try:
        assert await other.secret_key() != key  # random, not a constant
    finally:
        await other.close()


async def test_messages_after_excludes_internal_notes(
    store: SQLiteStore, site: Site, agent: Agent
) -> None:
    result = await store.post_visitor_message(new_request(site, "Broken export"), now())
    assert result.ticket is not None
    conversation, number = result.message.conversation_id, result.ticket.number
    note = await store.post_agent_message(site.id, number, agent, "internal: VIP", True, now())
    reply = await store.post_agent_message(site.id, number, agent, "On it", False, now())
    assert note.messages[0].internal is True
    assert reply.messages[0].seq == 3

    visible = await store.messages_after(conversation, 0)
    assert [(m.seq, m.author.type) for m in visible] == [(1, "visitor"), (2, "system"),
                                                         (3, "agent")]
    assert all(not m.internal and "VIP" not in m.body for m in visible)
    assert [m.seq for m in await store.messages_after(conversation, 2)] == [3]
    assert await store.messages_after(conversation, 3) == []

    everything = await store.ticket_messages(result.ticket)
    assert [m.body for m in everything if m.internal] == ["internal: VIP"]
    assert len(everything) == 4


async def test_duplicate_client_msg_id_stores_once(store: SQLiteStore, site: Site) -> None:
    post = new_request(site, "Only once")
    first, second = await asyncio.gather(store.post_visitor_message(post, now()),
                                         store.post_visitor_message(post, now()))
    assert {first.duplicate, second.duplicate} == {False, True}
    assert first.message == second.message
    assert [t.number for t in await store.list_tickets(site.id)] == [1]


def _file_writer(path: Path) -> SQLiteWriter:
    return SQLiteWriter(lambda: sqlite3.connect(str(path), isolation_level=None,
                                                check_same_thread=False))


async def test_jobs_handed_over_in_one_loop_iteration_share_one_batch(db_path: Path) -> None:
    writer = _file_writer(db_path)
    await writer.start()
    try:
        assert await writer.run(lambda conn: "alone") == "alone"  # a quiet writer: at once
        assert (writer.batches, writer.jobs) == (1, 1)
        together = await asyncio.gather(*(writer.run(lambda conn, n=n: n) for n in range(10)))
        assert together == list(range(10))
        assert (writer.batches, writer.jobs) == (2, 11)
        many = await asyncio.gather(*(writer.run(lambda conn, n=n: n)
                                      for n in range(MAX_BATCH + 5)))
        assert many == list(range(MAX_BATCH + 5))
        assert writer.batches == 4  # a full batch, then the 5 left
    finally:
        await writer.close()


async def test_a_busy_writer_waits_briefly_for_a_group_and_a_full_group_goes_at_once(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_writer, "BUSY_WINDOW", 3600.0)  # every batch counts as busy
    monkeypatch.setattr(sqlite_writer, "LINGER", 3600.0)  # only a full group ends the wait
    writer = _file_writer(db_path)
    await writer.start()
    try:
        await writer.run(lambda conn: None)  # the first batch: nothing came before it
        first = asyncio.ensure_future(writer.run(lambda conn: 0))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert writer._linger is not None and not first.done()  # waiting for more
        rest = [writer.run(lambda conn, n=n: n) for n in range(1, GROUP)]
        assert await asyncio.wait_for(asyncio.gather(first, *rest), 10) == list(range(GROUP))
        assert (writer.batches, writer.jobs) == (2, 1 + GROUP)
    finally:
        await writer.close()


async def test_a_job_that_may_run_long_runs_off_the_loop_first_while_the_loop_serves(
        db_path: Path) -> None:
    writer = _file_writer(db_path)
    await writer.start()
    loop_thread, release = threading.get_ident(), threading.Event()

    def long_job(conn: sqlite3.Connection) -> int:
        release.wait(10)  # a retention batch, say
        return threading.get_ident()

    try:
        # handed over together: the long job goes first, so that a steady stream of small
        # writes cannot starve it
        short = asyncio.ensure_future(writer.run(lambda conn: threading.get_ident()))
        long = asyncio.ensure_future(writer.run(long_job, off_loop=True))
        for _ in range(500):  # until it is in the helper thread
            if writer._away is not None:
                break
            await asyncio.sleep(0.01)
        assert writer._away is not None and not long.done()  # and this test still runs
        assert not short.done()  # the connection is the helper's until the long job commits
        release.set()
        helper, on_loop = await asyncio.wait_for(asyncio.gather(long, short), 10)
        assert helper != loop_thread and on_loop == loop_thread
    finally:
        release.set()
        await writer.close()


async def test_the_upkeep_checkpoints_the_wal(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_writer, "UPKEEP_IDLE", 3600.0)  # only every 10 jobs
    monkeypatch.setattr(sqlite_writer, "CATCH_UP_FRAMES", 0)  # and every time caught up

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        return conn

    writer = SQLiteWriter(connect, upkeep_every=10)
    await writer.start()
    try:  # SQLite's own checkpoint would copy and fsync inside a commit
        assert await writer.run(
            lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 0
        await writer.run(lambda conn: conn.execute("CREATE TABLE blobs (data BLOB)"))
        for _ in range(200):  # about 3 pages each: 600 frames if nothing checkpointed
            await writer.run(
                lambda conn: conn.execute("INSERT INTO blobs VALUES (randomblob(8000))"))
        wal_bytes = Path(f"{db_path}-wal").stat().st_size
    finally:
        await writer.close()
    # checkpointed every 10 jobs, so the WAL started over and never held more than ~40 frames
    assert wal_bytes < 100 * (4096 + 24)


@pytest.mark.parametrize(("catch_up_frames", "wal_limit"), [
    (0, 3_000_000),  # caught up after every checkpoint
    # by default once the WAL holds CATCH_UP_FRAMES frames, plus what comes meanwhile
    (sqlite_writer.CATCH_UP_FRAMES, (sqlite_writer.CATCH_UP_FRAMES + 600) * (4096 + 24)),
])
async def test_the_wal_starts_over_while_writes_keep_coming_during_checkpoints(
        db_path: Path, monkeypatch: pytest.MonkeyPatch, catch_up_frames: int,
        wal_limit: int) -> None:
    checkpoint = SQLiteWriter._checkpoint_now

    def slow_checkpoint(self: SQLiteWriter) -> int | None:  # so that writes come meanwhile
        time.sleep(0.02)
        return checkpoint(self)

    monkeypatch.setattr(SQLiteWriter, "_checkpoint_now", slow_checkpoint)
    monkeypatch.setattr(sqlite_writer, "CATCH_UP_FRAMES", catch_up_frames)
    monkeypatch.setattr(sqlite_writer, "UPKEEP_IDLE", 3600.0)  # only every 10 jobs
    writer = SQLiteWriter(lambda: schema.connect(str(db_path)), upkeep_every=10)
    await writer.start()
    try:
        await writer.run(lambda conn: conn.execute("CREATE TABLE blobs (data BLOB)"))
        for _ in range(200):  # 1,000 jobs of about 3 pages: 12 MB if the WAL never restarted
            await asyncio.gather(*(writer.run(
                lambda conn: conn.execute("INSERT INTO blobs VALUES (randomblob(8000))"))
                for _ in range(5)))
        wal_bytes = Path(f"{db_path}-wal").stat().st_size
    finally:
        await writer.close()
    assert wal_bytes < wal_limit


async def test_a_locked_database_is_waited_for_off_the_event_loop(db_path: Path) -> None:
    writer = _file_writer(db_path)
    await writer.start()
    await writer.run(lambda conn: conn.execute("CREATE TABLE notes (body TEXT)"))
    other = sqlite3.connect(str(db_path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process, say the CLI, holds the write lock
    try:
        first = asyncio.ensure_future(writer.run(
            lambda conn: conn.execute("INSERT INTO notes VALUES ('first')").rowcount))
        for _ in range(500):  # until the batch found the lock and went to the helper thread
            if writer._away is not None:
                break
            await asyncio.sleep(0.01)
        assert writer._away is not None and not first.done()
        second = asyncio.ensure_future(writer.run(
            lambda conn: conn.execute("INSERT INTO notes VALUES ('second')").rowcount))
        await asyncio.sleep(0)  # the loop keeps serving; nothing is written meanwhile
        assert not first.done() and not second.done()
        other.execute("COMMIT")
        assert await asyncio.wait_for(asyncio.gather(first, second), 10) == [1, 1]
        # back on the loop, the writer's connection fails at once on a lock again
        assert await writer.run(
            lambda conn: conn.execute("PRAGMA busy_timeout").fetchone()[0]) == 0
    finally:
        other.close()
        await writer.close()
    assert plain(db_path, "SELECT body FROM notes ORDER BY rowid") == [("first",), ("second",)]


def _statement_watching_writer(path: Path, on_statement: Callable[[str], None], **options: Any
                               ) -> SQLiteWriter:
    """A writer whose connections call ``on_statement`` with each statement, in the thread
    that runs it, before SQLite runs it (a COMMIT: before it syncs)."""
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.set_trace_callback(on_statement)
        return conn
    return SQLiteWriter(connect, **options)


def _commit_watching_writer(path: Path, on_commit: Callable[[], None]) -> SQLiteWriter:
    return _statement_watching_writer(
        path, lambda statement: on_commit() if statement == "COMMIT" else None)


def _insert_note(conn: sqlite3.Connection, body: str) -> int:
    return int(conn.execute("INSERT INTO notes (body) VALUES (?)", (body,)).rowcount)


async def test_every_commit_runs_off_the_loop_while_the_loop_serves(db_path: Path) -> None:
    loop_thread, release = threading.get_ident(), threading.Event()
    committed_in: list[int] = []
    held = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_commit() -> None:
        committed_in.append(threading.get_ident())
        if threading.get_ident() != loop_thread and not release.is_set():
            loop.call_soon_threadsafe(held.set)
            release.wait(10)  # an fsync on a slow disk

    writer = _commit_watching_writer(db_path, on_commit)
    await writer.start()
    try:
        release.set()
        await writer.run(lambda conn: conn.execute(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        release.clear()
        lone = asyncio.ensure_future(writer.run(lambda conn: _insert_note(conn, "lone")))
        await asyncio.wait_for(held.wait(), 10)  # its commit is under way, and the loop serves
        assert loop_thread not in committed_in
        assert not lone.done()  # no ack before the commit
        assert plain(db_path, "SELECT count(*) FROM notes") == [(0,)]
        late = [asyncio.ensure_future(writer.run(lambda conn, n=n: _insert_note(conn, f"{n}")))
                for n in range(3)]
        for _ in range(5):  # the connection is the helper's till the commit is done
            await asyncio.sleep(0)
        assert not any(future.done() for future in late) and len(committed_in) == 2
        release.set()
        assert await asyncio.wait_for(asyncio.gather(lone, *late), 10) == [1] * 4
        # the jobs handed over during the commit went together: one more batch, one commit
        assert (writer.batches, len(committed_in)) == (3, 3)
        assert loop_thread not in committed_in
    finally:
        release.set()
        await writer.close()
    assert plain(db_path, "SELECT count(*) FROM notes") == [(4,)]


async def test_jobs_held_through_a_long_commit_run_before_its_acks_go_out(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_writer, "LINGER", 0.0)  # every commit is longer than a linger
    monkeypatch.setattr(sqlite_writer, "BUSY_WINDOW", 3600.0)
    loop_thread, release = threading.get_ident(), threading.Event()
    held = asyncio.Event()
    loop = asyncio.get_running_loop()
    order: list[str] = []

    def on_commit() -> None:
        if threading.get_ident() != loop_thread and not release.is_set():
            loop.call_soon_threadsafe(held.set)
            release.wait(10)

    writer = _commit_watching_writer(db_path, on_commit)
    await writer.start()

    async def first() -> None:
        await writer.run(lambda conn: _insert_note(conn, "first"))
        order.append("first acknowledged")

    def late_job(conn: sqlite3.Connection) -> int:
        order.append("late job runs")
        return _insert_note(conn, "late")

    try:
        release.set()
        await writer.run(lambda conn: conn.execute(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        release.clear()
        acknowledged = asyncio.ensure_future(first())
        await asyncio.wait_for(held.wait(), 10)
        late = asyncio.ensure_future(writer.run(late_job))
        await asyncio.sleep(0)
        release.set()
        await asyncio.wait_for(asyncio.gather(acknowledged, late), 10)
    finally:
        release.set()
        await writer.close()
    # the disk syncs the late batch while the first one's callers are answered
    assert order == ["late job runs", "first acknowledged"]


async def test_the_upkeep_runs_while_batches_held_through_long_commits_keep_coming(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_writer, "LINGER", 0.0)  # every commit is longer than a linger
    monkeypatch.setattr(sqlite_writer, "UPKEEP_IDLE", 3600.0)  # only every 20 jobs
    upkept_at: list[int] = []  # jobs committed when the upkeep ran
    writer: SQLiteWriter

    def upkeep(conn: sqlite3.Connection) -> bool:
        upkept_at.append(writer.jobs)
        return False

    writer = SQLiteWriter(lambda: schema.connect(str(db_path)), upkeep=upkeep,
                          upkeep_every=20)
    await writer.start()

    try:
        await writer.run(lambda conn: conn.execute(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        handed: list[asyncio.Future[int]] = []
        for n in range(2000):  # one job every loop iteration: some come during every commit
            handed.append(asyncio.ensure_future(writer.run(
                lambda conn, n=n: _insert_note(conn, f"{n}"))))
            await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(*handed), 30)
    finally:
        await writer.close()
    assert upkept_at and upkept_at[0] < 1000, upkept_at  # not only once they stopped


async def _upkeep_while_a_batch_waits(db_path: Path, upkeep: Callable[[sqlite3.Connection], Any]
                                     ) -> tuple[SQLiteWriter, int]:
    """Two jobs make the upkeep due while a third waits for the second's commit: the
    writer, and how many COMMITs ran."""
    loop_thread, release = threading.get_ident(), threading.Event()
    held = asyncio.Event()
    loop = asyncio.get_running_loop()
    commits: list[int] = []

    def on_statement(statement: str) -> None:
        if statement == "COMMIT":
            commits.append(threading.get_ident())
            if threading.get_ident() != loop_thread and not release.is_set():
                loop.call_soon_threadsafe(held.set)
                release.wait(10)  # an fsync on a slow disk

    writer = _statement_watching_writer(db_path, on_statement, upkeep=upkeep, upkeep_every=2)
    await writer.start()
    try:
        release.set()
        await writer.run(lambda conn: conn.execute(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        release.clear()
        first = asyncio.ensure_future(writer.run(lambda conn: _insert_note(conn, "first")))
        await asyncio.wait_for(held.wait(), 10)  # its commit is under way
        late = asyncio.ensure_future(writer.run(lambda conn: _insert_note(conn, "late")))
        for _ in range(5):
            await asyncio.sleep(0)
        release.set()
        assert await asyncio.wait_for(asyncio.gather(first, late), 10) == [1, 1]
    finally:
        release.set()
        await writer.close()
    return writer, len(commits)


async def test_a_busy_writers_upkeep_rides_in_the_next_batch_with_no_commit_of_its_own(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_writer, "UPKEEP_IDLE", 3600.0)  # only every 2 jobs

    def upkeep(conn: sqlite3.Connection) -> bool:
        _insert_note(conn, "upkeep")
        return False

    writer, commits = await _upkeep_while_a_batch_waits(db_path, upkeep)
    # on a slow disk a commit of its own would hold the waiting job for one more fsync
    assert (writer.batches, writer.jobs, commits) == (3, 3, 3)
    assert plain(db_path, "SELECT body FROM notes ORDER BY id") == [
        ("first",), ("late",), ("upkeep",)]


async def test_a_failing_upkeep_in_a_batch_fails_alone(
        db_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sqlite_writer, "UPKEEP_IDLE", 3600.0)

    def upkeep(conn: sqlite3.Connection) -> bool:
        _insert_note(conn, "upkeep")
        raise RuntimeError("upkeep broke")

    writer, commits = await _upkeep_while_a_batch_waits(db_path, upkeep)
    assert "sqlite writer upkeep failed" in caplog.text
    assert (writer.batches, writer.jobs, commits) == (3, 3, 3)
    assert plain(db_path, "SELECT body FROM notes ORDER BY id") == [("first",), ("late",)]


async def test_a_failing_commit_fails_its_whole_batch_and_the_writer_goes_on(
        db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    committed_in: list[int] = []
    writer = _commit_watching_writer(db_path, lambda: committed_in.append(threading.get_ident()))
    await writer.start()
    try:
        await writer.run(lambda conn: conn.execute(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        await writer.run(lambda conn: conn.execute(
            "CREATE TABLE replies (note INTEGER REFERENCES notes (id)"
            " DEFERRABLE INITIALLY DEFERRED)"))
        # every statement succeeds; the deferred foreign key fails the COMMIT itself
        jobs = [lambda conn, n=n: _insert_note(conn, f"{n}") for n in range(3)]
        jobs.append(lambda conn: conn.execute("INSERT INTO replies VALUES (999)").rowcount)
        outcomes = await asyncio.wait_for(asyncio.gather(*(writer.run(job) for job in jobs),
                                                         return_exceptions=True), 10)
        assert committed_in[-1] != threading.get_ident()  # the batch's commit: off the loop
        assert [type(o) for o in outcomes] == [sqlite3.IntegrityError] * 4, outcomes
        assert "sqlite writer batch failed in the helper thread" in caplog.text
        assert await writer.run(lambda conn: _insert_note(conn, "after")) == 1
    finally:
        await writer.close()
    assert plain(db_path, "SELECT body FROM notes") == [("after",)]
    assert plain(db_path, "SELECT count(*) FROM replies") == [(0,)]


async def test_the_upkeep_commits_and_the_wal_is_caught_up_off_the_loop(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_writer, "UPKEEP_IDLE", 3600.0)  # only every 5 jobs
    monkeypatch.setattr(sqlite_writer, "CATCH_UP_FRAMES", 0)  # and every time caught up
    loop_thread = threading.get_ident()
    syncing: list[tuple[str, bool]] = []  # statements that sync, and whether on the loop

    def on_statement(statement: str) -> None:
        if statement == "COMMIT" or statement.startswith("PRAGMA wal_checkpoint"):
            syncing.append((statement, threading.get_ident() == loop_thread))

    def upkeep(conn: sqlite3.Connection) -> bool:
        conn.execute("INSERT INTO notes (body) VALUES ('upkeep')")
        return False

    writer = _statement_watching_writer(db_path, on_statement, upkeep=upkeep, upkeep_every=5)
    await writer.start()
    try:
        await writer.run(lambda conn: conn.execute(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
        for n in range(4):
            await writer.run(lambda conn, n=n: _insert_note(conn, f"{n}"))
        # the upkeep's commit, the checkpointer's checkpoint, then the writer's catch-up
        for _ in range(500):
            if [s for s, _ in syncing].count("PRAGMA wal_checkpoint(PASSIVE)") == 2:
                break
            await asyncio.sleep(0.01)
        await writer.run(lambda conn: _insert_note(conn, "after"))
    finally:
        await writer.close()
    assert [s for s, _ in syncing].count("PRAGMA wal_checkpoint(PASSIVE)") == 2
    assert [s for s, _ in syncing].count("COMMIT") == 7  # 6 batches and the upkeep
    assert not [s for s, on_loop in syncing if on_loop], syncing
    assert plain(db_path, "SELECT count(*) FROM notes WHERE body = 'upkeep'") == [(1,)]


async def test_a_writer_that_cannot_connect_fails_to_start_and_closes_at_once() -> None:
    def refuse() -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    writer = SQLiteWriter(refuse)
    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        await writer.start()
    await asyncio.wait_for(writer.close(), 5)
    with pytest.raises(WriterClosed):
        await writer.run(lambda conn: None)


async def test_callers_are_refused_not_left_waiting_when_a_job_ends_the_writer(
    db_path: Path,
) -> None:
    writer = _file_writer(db_path)
    await writer.start()

    def die(conn: sqlite3.Connection) -> None:
        raise SystemExit("the writer ends")

    with pytest.raises(WriterClosed):
        await asyncio.wait_for(writer.run(die), 5)
    with pytest.raises(WriterClosed):
        await writer.run(lambda conn: None)
    await asyncio.wait_for(writer.close(), 5)
