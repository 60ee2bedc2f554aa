"""Reads by key on the event loop's own connection (``SQLiteStore._read_now``): an API token,
a console session and a visitor's conversations, without a trip to a reader thread, and on
a reader thread when SQLite answers busy."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.store.helpers import shop
from widget_server.api_tokens import hash_api_token
from widget_server.models import Visitor
from widget_server.store import core_queries
from widget_server.store.base import VisitorPost
from widget_server.store.sqlite import SQLiteStore
from widget_server.store.sqlite_readers import Lane, Reader

pytestmark = pytest.mark.anyio

# Another process that is recovering the database's WAL index, say after a crash: it holds
# SQLite's WAL write and recovery locks (fcntl locks on bytes 120 and 122 of the -shm file,
# sqlite/src/wal.c) and the two copies of the index header it is rewriting differ. Every
# connection that begins a read meanwhile gets SQLITE_BUSY_RECOVERY: at once with
# busy_timeout 0, as the loop's own connection has, after waiting with a busy timeout.
RECOVERING = """
import fcntl, mmap, os, sys
fd = os.open(sys.argv[1] + "-shm", os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 120)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 122)
index = mmap.mmap(fd, 96)
header = index[48:96]
index[48:52] = bytes(byte ^ 0xFF for byte in header[:4])
print("recovering", flush=True)
sys.stdin.readline()
index[48:96] = header
fcntl.lockf(fd, fcntl.LOCK_UN, 1, 122)
fcntl.lockf(fd, fcntl.LOCK_UN, 1, 120)
print("recovered", flush=True)
"""


def take_every_reader(store: SQLiteStore) -> list[tuple[Lane, Reader]]:
    """Hold every reader of both lanes, so a read that needs one waits until they are back."""
    taken = []
    for lane in (store._readers._quick, store._readers._slow):
        while not lane._free.empty():
            taken.append((lane, lane._free.get_nowait()))
    assert taken
    return taken


def give_back(store: SQLiteStore, readers: list[tuple[Lane, Reader]]) -> None:
    for lane, reader in readers:
        lane._free.put_nowait(reader)


async def open_requests(store: SQLiteStore, count: int) -> tuple[Visitor, list[str]]:
    site = await shop(store)
    who = Visitor(id="v_" + uuid.uuid4().hex[:24], site_id=site.id, user_id=None,
                  name="Visitor", email=None, verified=False)
    opened = []
    for n in range(count):
        result = await store.post_visitor_message(VisitorPost(
            visitor=who, conversation_id=None, client_msg_id=str(uuid.uuid4()),
            body=f"request {n}", severity="normal", subject=None), datetime.now(UTC))
        opened.append(result.message.conversation_id)
    return who, opened


async def test_a_token_is_found_on_the_loop_and_its_revocation_elsewhere_counts_at_once(
    store: SQLiteStore, db_path: Path
) -> None:
    site = await shop(store)
    agent, _ = await store.ensure_agent("agent@example.com", "Agent", "agent", None)
    await store.update_agent(agent.id, site_ids=[site.id])  # a token acts for a site's agent
    token = await store.create_api_token("ci", hash_api_token("secret"), site.id, agent.id)
    readers = take_every_reader(store)
    try:  # no reader is free: this could only be answered on the loop
        found = await asyncio.wait_for(store.find_api_agent(hash_api_token("secret")), 5)
        assert found is not None and found[0] == site.id and found[1].id == agent.id
        other = sqlite3.connect(db_path, isolation_level=None)  # say, the CLI revoking it
        try:
            other.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ?",
                          (datetime.now(UTC).isoformat(), token.id))
        finally:
            other.close()
        assert await asyncio.wait_for(store.find_api_agent(hash_api_token("secret")), 5) is None
    finally:
        give_back(store, readers)


async def test_a_console_session_is_found_on_the_loop_and_its_revocation_elsewhere_counts(
    store: SQLiteStore, db_path: Path
) -> None:
    agent, _ = await store.ensure_agent("agent@example.com", "Agent", "agent", None)
    session_id = await store.create_agent_session(agent.id, "csrf", timedelta(hours=1))
    readers = take_every_reader(store)
    try:
        found = await asyncio.wait_for(store.agent_session(session_id), 5)
        assert found is not None and found.agent.id == agent.id
        other = sqlite3.connect(db_path, isolation_level=None)  # say, an admin disabling the agent
        try:
            other.execute("UPDATE agents SET active = 0 WHERE id = ?", (agent.id,))
        finally:
            other.close()
        assert await asyncio.wait_for(store.agent_session(session_id), 5) is None
    finally:
        give_back(store, readers)


async def test_a_visitor_with_a_few_conversations_is_read_on_the_loop(
    store: SQLiteStore,
) -> None:
    who, opened = await open_requests(store, 3)
    readers = take_every_reader(store)
    try:
        found = await asyncio.wait_for(store.visitor_conversations(who.id), 5)
    finally:
        give_back(store, readers)
    assert sorted(c.id for c in found) == sorted(opened)
    assert all(c.ticket is not None and c.ticket.conversation_id == c.id for c in found)


async def test_a_visitor_with_a_long_history_is_read_on_a_reader_thread(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_queries, "QUICK_CONVERSATIONS", 2)
    who, opened = await open_requests(store, 3)
    readers = take_every_reader(store)
    reading = asyncio.ensure_future(store.visitor_conversations(who.id))
    try:
        for _ in range(20):  # the loop goes on; the read waits for a reader
            await asyncio.sleep(0)
        assert not reading.done()
    finally:
        give_back(store, readers)
    found = await asyncio.wait_for(reading, 5)
    assert sorted(c.id for c in found) == sorted(opened)  # every one, not the first two
    assert all(c.ticket is not None and c.ticket.conversation_id == c.id for c in found)


@pytest.mark.skipif(sys.platform == "win32", reason="SQLite's unix locks are what is held")
async def test_a_read_the_loop_finds_busy_is_made_on_a_reader_thread_that_waits(
    store: SQLiteStore, db_path: Path
) -> None:
    site = await shop(store)
    agent, _ = await store.ensure_agent("agent@example.com", "Agent", "agent", None)
    await store.update_agent(agent.id, site_ids=[site.id])  # a token acts for a site's agent
    await store.create_api_token("ci", hash_api_token("secret"), site.id, agent.id)
    who, opened = await open_requests(store, 2)
    with subprocess.Popen([sys.executable, "-c", RECOVERING, str(db_path)], text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as recovering:
        assert recovering.stdin is not None and recovering.stdout is not None
        try:
            assert recovering.stdout.readline() == "recovering\n"
            assert store._read_now("SELECT id FROM sites") is None  # busy, and not waited for
            token = asyncio.ensure_future(store.find_api_agent(hash_api_token("secret")))
            conversations = asyncio.ensure_future(store.visitor_conversations(who.id))
            for _ in range(20):  # the loop goes on; both reads wait on reader threads
                await asyncio.sleep(0)
            assert not token.done() and not conversations.done()
        finally:
            recovering.stdin.write("\n")
            recovering.stdin.flush()
            assert recovering.stdout.readline() == "recovered\n"
    assert recovering.returncode == 0
    found = await asyncio.wait_for(token, 10)
    assert found is not None and found[0] == site.id and found[1].id == agent.id
    read = await asyncio.wait_for(conversations, 10)
    assert sorted(c.id for c in read) == sorted(opened)
    again = store._read_now("SELECT id FROM sites")  # the loop's own connection reads again
    assert again is not None and [tuple(row) for row in again] == [(site.id,)]
