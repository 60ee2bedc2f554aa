"""Ticket records kept by the row they came from (rows.TicketMemo): an unchanged ticket is
not built again, a changed one is never stale."""

from __future__ import annotations

import sqlite3

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
