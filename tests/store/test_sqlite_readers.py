"""The readers' two lanes (``sqlite_readers.py``): reads go to the one quick reader first; one
that outlasts the budget is interrupted and finished in the slow lane, so no read holds the
quick lane for long; reads known to be long go to the slow lane directly."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.store.helpers import shop
from widget_server.store import sqlite_readers
from widget_server.store.sqlite import SQLiteStore
from widget_server.store.sqlite_readers import Reader, Readers

pytestmark = pytest.mark.anyio

# Counts to N in SQLite's own loop: a read that is as long as we like, and one that never
# ends unless it is interrupted.
COUNT_TO = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)" \
    " SELECT count(*) FROM c"
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


async def test_a_short_read_is_answered_by_the_quick_reader(store: SQLiteStore) -> None:
    before = dict(store._readers.stats)
    await store.set_setting("greeting", "hello")
    assert await store.get_setting("greeting") == "hello"
    assert store._readers.stats["quick"] == before["quick"] + 1
    assert store._readers.stats["slow"] == before["slow"]


async def test_a_read_that_outlasts_the_budget_is_finished_in_the_slow_lane(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sqlite_readers, "QUICK_BUDGET", 0.01)
    before = dict(store._readers.stats)
    # millions of steps: far longer than 10 ms, so the quick reader gives it up
    row = await store._fetchone(COUNT_TO, (3_000_000,))
    assert row[0] == 3_000_000  # the whole answer, from the slow lane
    assert store._readers.stats["moved"] == before["moved"] + 1
    assert store._readers.stats["slow"] == before["slow"] + 1
    # the operator hears of it, with the statement (its parameters are not in it)
    moved = [r for r in caplog.records if r.name == "widget_server.store.sqlite_readers"]
    assert len(moved) == 1 and moved[0].levelname == "WARNING"
    assert "outlasted 10 ms" in moved[0].getMessage()
    assert "WITH RECURSIVE c(x)" in moved[0].getMessage()
    # and the quick reader, interrupted, answers the next read
    assert (await store._fetchone("SELECT 41 + 1"))[0] == 42
    assert store._readers.stats["quick"] == before["quick"] + 1


async def test_a_long_read_in_the_slow_lane_holds_no_quick_read_and_ends_when_abandoned(
    db_path: Path,
) -> None:
    started = threading.Event()

    def connect() -> sqlite3.Connection:  # a reader that can say when a read has begun
        conn = sqlite3.connect(db_path)
        conn.create_function("began", 0, lambda: started.set())
        return conn

    readers = Readers(connect)
    await readers.open()
    try:
        endless = asyncio.create_task(readers.fetchall(f"SELECT began(), ({ENDLESS})",
                                                       slow=True))
        assert await asyncio.to_thread(started.wait, 5)  # counting, in a slow reader
        assert await asyncio.wait_for(readers.fetchall("SELECT 42"), 5) == [(42,)]
        assert not endless.done()  # still counting: the quick read did not wait for it
        endless.cancel()
        with pytest.raises(asyncio.CancelledError):
            await endless
        # the abandoned read was interrupted: both slow readers answer again (a reader still
        # counting would hold the second read forever)
        answers = await asyncio.wait_for(asyncio.gather(
            *(readers.fetchall("SELECT ?", (n,), slow=True) for n in range(4))), 5)
        assert [rows[0][0] for rows in answers] == [0, 1, 2, 3]
    finally:
        await readers.close()


async def test_a_read_abandoned_while_it_waits_is_not_run(db_path: Path) -> None:
    ran = []

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(db_path)
        conn.create_function("ran", 1, lambda n: ran.append(n))
        return conn

    reader = Reader(connect, "test-reader")
    await reader.open()
    try:
        gate = threading.Event()
        held = reader.call(lambda conn: gate.wait(5))  # the thread is busy with this
        waiting = asyncio.ensure_future(reader.fetchall("SELECT ran(1)", ()))
        await asyncio.sleep(0)
        waiting.cancel()  # gone before its turn came
        gate.set()
        assert await held is True
        assert await reader.fetchall("SELECT ran(2)", ()) == [(None,)]
        assert ran == [2]
    finally:
        await reader.close()


async def test_known_long_reads_skip_the_quick_lane(store: SQLiteStore) -> None:
    site = await shop(store)
    before = dict(store._readers.stats)
    await store.report_rows([site.id], datetime.now(UTC) - timedelta(days=30))
    assert store._readers.stats["slow"] == before["slow"] + 3
    assert store._readers.stats["quick"] == before["quick"]


async def test_an_interrupt_that_comes_after_the_read_spoils_nothing(store: SQLiteStore) -> None:
    quick = store._readers._quick._all[0]
    assert (await store._fetchone("SELECT 1"))[0] == 1
    quick.interrupt()  # as a budget's timer would, had it fired just as the read ended
    assert (await store._fetchone("SELECT 2"))[0] == 2
    assert store._readers.stats["moved"] == 0


async def test_a_bad_query_fails_once_and_is_not_tried_again(store: SQLiteStore) -> None:
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await store._fetchall("SELECT * FROM no_such_table")
    assert store._readers.stats["moved"] == 0
    assert store._readers.stats["slow"] == 0


async def test_the_readers_cannot_write(store: SQLiteStore) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await store._fetchall("DELETE FROM server_settings")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await store._fetchall("DELETE FROM server_settings", slow=True)


async def test_a_reader_whose_connect_failed_connects_again_at_the_next_read(
    db_path: Path,
) -> None:
    attempts = []

    def connect() -> sqlite3.Connection:
        attempts.append(1)
        if len(attempts) == 1:
            raise sqlite3.OperationalError("unable to open database file")
        return sqlite3.connect(db_path)

    reader = Reader(connect, "test-reader")
    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        await reader.open()
    try:
        assert await reader.fetchall("SELECT 7", ()) == [(7,)]
        assert len(attempts) == 2
    finally:
        await reader.close()


async def test_a_read_after_the_store_closed_fails_at_once(db_path: Path) -> None:
    store = SQLiteStore(str(db_path))
    await store.open()
    await store.close()
    with pytest.raises(sqlite_readers.ReaderClosed):
        await asyncio.wait_for(store._fetchall("SELECT 1"), 5)
