"""Nothing acknowledged is ever lost, not even when the server is killed with SIGKILL; on
SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.pg import BACKENDS
from tests.store.helpers import plain
from tests.support import ServerProcess, VisitorClient, create_site, start_session
from widget_server.store.sqlite_schema import BUSY_TIMEOUT_MS

pytestmark = [pytest.mark.anyio,
              pytest.mark.parametrize("backend", BACKENDS, indirect=True)]

VISITORS = 8
MESSAGES = 25


def stored_client_msg_ids(db: Path | str) -> Counter[str]:
    found = plain(db, "SELECT client_msg_id FROM messages WHERE author_type = 'visitor'")
    return Counter(row[0] for row in found)


class WriteLock:
    """What another process writing to the database holds: SQLite's write lock, or on
    PostgreSQL an exclusive lock on the messages table."""

    def __init__(self, db: Path | str) -> None:
        self.db = db
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None

    async def __aenter__(self) -> WriteLock:
        if isinstance(self.db, str) and self.db.startswith("postgresql://"):
            import asyncpg

            self._pg = await asyncpg.connect(self.db)
            await self._pg.execute("BEGIN")
            await self._pg.execute("LOCK TABLE messages IN EXCLUSIVE MODE")
        else:
            self._sqlite = sqlite3.connect(self.db, isolation_level=None)
            self._sqlite.execute("BEGIN IMMEDIATE")  # what a CLI command writing does
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pg is not None:
            await self._pg.execute("COMMIT")
            await self._pg.close()
        if self._sqlite is not None:
            self._sqlite.execute("COMMIT")
            self._sqlite.close()


async def test_every_acknowledged_message_survives_sigkill_exactly_once(
    fresh_server: ServerProcess,
) -> None:
    site = create_site(fresh_server.db)
    fresh_server.start()
    sessions = [await start_session(fresh_server, site) for _ in range(VISITORS)]
    visitors = [await VisitorClient.connect(fresh_server, site, token=s["token"])
                for s in sessions]
    conversations = []
    for visitor in visitors:
        ack, _ = await visitor.open_request("Opening message")
        conversations.append(ack["conversation"])

    planned = {i: [f"v{i}-m{n}" for n in range(MESSAGES)] for i in range(VISITORS)}
    acked: set[str] = set()
    enough = asyncio.Event()

    async def pump(i: int) -> None:
        visitor = visitors[i]
        for client_msg_id in planned[i]:  # pipelined: sends do not wait for acks
            await visitor.send(f"body of {client_msg_id}", conversation=conversations[i],
                               client_msg_id=client_msg_id)
        try:
            while True:
                frame = await visitor.recv_type("ack")
                acked.add(frame["client_msg_id"])
                if len(acked) >= VISITORS * MESSAGES // 2:
                    enough.set()
        except Exception:  # the server died under us; that is the point
            return

    pumps = [asyncio.create_task(pump(i)) for i in range(VISITORS)]
    await asyncio.wait_for(enough.wait(), 30)
    fresh_server.kill()  # while more writes are in flight
    await asyncio.gather(*pumps)
    acked_at_kill = set(acked)
    assert acked_at_kill

    stored = stored_client_msg_ids(fresh_server.db)
    missing = acked_at_kill - set(stored)
    assert not missing, f"acknowledged but lost: {sorted(missing)[:5]}"
    assert all(count == 1 for count in stored.values())

    # after a restart the widget resends everything it has no ack for: nothing doubles
    fresh_server.start()
    for i, session in enumerate(sessions):
        visitor = await VisitorClient.connect(fresh_server, site, token=session["token"])
        for client_msg_id in planned[i]:
            await visitor.send(f"body of {client_msg_id}", conversation=conversations[i],
                               client_msg_id=client_msg_id)
            ack = await visitor.recv_type("ack")
            assert ack["client_msg_id"] == client_msg_id
        await visitor.close()
    stored = stored_client_msg_ids(fresh_server.db)
    every = {cid for ids in planned.values() for cid in ids}
    assert every <= set(stored)
    assert all(count == 1 for count in stored.values())


async def test_seq_stays_gap_free_across_a_kill(fresh_server: ServerProcess) -> None:
    site = create_site(fresh_server.db)
    fresh_server.start()
    session = await start_session(fresh_server, site)
    visitor = await VisitorClient.connect(fresh_server, site, token=session["token"])
    ack, _ = await visitor.open_request("before the crash")
    fresh_server.kill()
    fresh_server.start()
    again = await VisitorClient.connect(fresh_server, site, token=session["token"],
                                        resume={ack["conversation"]: 0})
    assert [(await again.recv_type("message"))["seq"] for _ in range(2)] == [1, 2]
    await again.send("after the crash", conversation=ack["conversation"])
    assert (await again.recv_type("ack"))["seq"] == 3
    await again.close()


async def test_a_write_lock_held_by_another_process_holds_the_write_not_the_server(
    fresh_server: ServerProcess,
) -> None:
    site = create_site(fresh_server.db)
    fresh_server.start()
    visitor = await VisitorClient.connect(fresh_server, site)
    ack, _ = await visitor.open_request("before the lock")
    bystander = await VisitorClient.connect(fresh_server, site)
    async with WriteLock(fresh_server.db):
        client_msg_id = await visitor.send("sent while another process writes",
                                           conversation=ack["conversation"])
        # the write waits for the lock off the event loop: other sockets and HTTP go on. A
        # loop that waited itself would answer only once SQLite gave up, after busy_timeout.
        answered = bystander.frames_until_pong()
        assert await asyncio.wait_for(answered, BUSY_TIMEOUT_MS / 1000 / 2) == []
        assert (await start_session(fresh_server, site))["token"]
        assert stored_client_msg_ids(fresh_server.db)[client_msg_id] == 0
    late = await visitor.recv_type("ack")
    assert late["client_msg_id"] == client_msg_id and late["seq"] == 3
    assert stored_client_msg_ids(fresh_server.db)[client_msg_id] == 1
    await visitor.close()
    await bystander.close()
