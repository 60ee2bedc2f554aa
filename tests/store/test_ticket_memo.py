"""Ticket records kept by the columns that identify a row's contents (rows.TicketMemo): an
unchanged ticket is not built again, a changed one is never stale, also when it changes
between the REST listing's two reads (the key columns, then the rows the memo lacks)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.store.helpers import say, shop
from widget_server.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


async def test_an_unchanged_ticket_is_the_same_record_and_a_changed_one_a_new_one(
        store: SQLiteStore) -> None:
    site = await shop(store)
    for n in range(3):
        await say(store, site, f"message {n}")
    first = await store.list_tickets(site.id, limit=10)
    again = await store.list_tickets(site.id, limit=10)
    assert [a is b for a, b in zip(first, again, strict=True)] == [True, True, True]

    changed = first[1]

    def rename(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE tickets SET subject = 'Renamed' WHERE id = ?", (changed.id,))

    await store._write(rename)
    later = await store.list_tickets(site.id, limit=10)
    assert [t.subject for t in later] == [first[0].subject, "Renamed", first[2].subject]
    assert later[0] is first[0] and later[2] is first[2]
    assert later[1] is not changed


async def test_a_change_by_another_process_counts_at_once(store: SQLiteStore, db_path: Path
                                                         ) -> None:
    site = await shop(store)
    await say(store, site, "hello")
    first = await store.list_tickets(site.id)
    with contextlib.closing(sqlite3.connect(db_path)) as other:  # not through the store
        other.execute("UPDATE tickets SET severity = 'urgent' WHERE id = ?", (first[0].id,))
        other.commit()
    assert [t.severity for t in await store.list_tickets(site.id)] == ["urgent"]


def after_the_first_read(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch,
                         change: Callable[[], None]) -> None:
    """Make ``change`` happen right after the store's next read, before the one after it."""
    read = store._fetchall
    calls = []

    async def reading(sql: str, params: tuple[Any, ...] = (), *, slow: bool = False) -> Any:
        found = await read(sql, params, slow=slow)
        calls.append(sql)
        if len(calls) == 1:
            change()
        return found

    monkeypatch.setattr(store, "_fetchall", reading)


def change_elsewhere(db_path: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Statements on a connection of their own (a plain one: no foreign keys), committed."""
    with contextlib.closing(sqlite3.connect(db_path)) as other:
        for sql, params in statements:
            other.execute(sql, params)
        other.commit()


async def test_a_ticket_changed_between_the_listings_two_reads_is_listed_as_it_is_now(
        store: SQLiteStore, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = await shop(store)
    for n in range(3):
        await say(store, site, f"message {n}")
    numbers = [t.number for t in await store.list_tickets(site.id)]
    # a version the memo has not seen, so the listing reads that ticket's row...
    change_elsewhere(db_path, ("UPDATE tickets SET severity = 'urgent' WHERE number = ?",
                               (numbers[1],)))
    # ...and the ticket changes again before it does
    after_the_first_read(store, monkeypatch, lambda: change_elsewhere(
        db_path, ("UPDATE tickets SET subject = 'Renamed' WHERE number = ?", (numbers[1],))))
    listed = await store.list_tickets(site.id)
    assert [t.number for t in listed] == numbers
    assert (listed[1].severity, listed[1].subject) == ("urgent", "Renamed")


async def test_a_ticket_deleted_between_the_listings_two_reads_leaves_a_whole_page(
        store: SQLiteStore, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = await shop(store)
    for n in range(4):
        await say(store, site, f"message {n}")
    before = await store.list_tickets(site.id)
    gone = before[1]
    change_elsewhere(db_path, ("UPDATE tickets SET subject = 'Changed'", ()))  # memo misses
    after_the_first_read(store, monkeypatch, lambda: change_elsewhere(
        db_path, ("DELETE FROM tickets WHERE id = ?", (gone.id,))))  # as retention would
    listed = await store.list_tickets(site.id, limit=3)
    # the page is read again whole: three tickets, the deleted one not among them
    assert [t.number for t in listed] == [t.number for t in before if t is not gone][:3]
    assert [t.subject for t in listed] == ["Changed"] * 3
