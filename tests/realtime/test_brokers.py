"""The brokers between nodes: two hubs on connections of their own, one SQLite store as the
shared database. A reply published on one hub reaches a visitor stream on the other, read
from the database; a dropped broker connection reconnects and the stream catches up."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis

from tests.pg import BACKENDS
from tests.services import postgres_url, redis_url
from widget_server.clock import SystemClock
from widget_server.messaging import Messaging
from widget_server.models import Agent, Site, Visitor
from widget_server.realtime import relay
from widget_server.realtime.events import (
    SCHEDULER_CHANNEL,
    Event,
    MessagesAdded,
    Typing,
    agents_channel,
    visitor_channel,
)
from widget_server.realtime.hub import Hub
from widget_server.realtime.pg_broker import PgBroker
from widget_server.realtime.redis_broker import RedisBroker
from widget_server.realtime.visitor_stream import VisitorStream
from widget_server.scheduler import SlaScheduler
from widget_server.store.base import Store, VisitorPost

# the database the wake-ups are read back from: SQLite and PostgreSQL (tests/pg.py)
pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("backend", BACKENDS, indirect=True)]
WAIT = 10.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_broker(kind: str, store: Store) -> relay.RelayBroker:
    if kind == "postgresql":
        return PgBroker(postgres_url(), store)
    return RedisBroker(redis_url(), store)


@pytest.fixture(params=["postgresql", "redis"])
async def hubs(request: pytest.FixtureRequest, store: Store
               ) -> AsyncIterator[tuple[Hub, Hub]]:
    first, second = make_broker(request.param, store), make_broker(request.param, store)
    await first.start()
    await second.start()
    try:
        yield Hub(first), Hub(second)
    finally:
        await first.stop()
        await second.stop()


class Recorder:
    def __init__(self) -> None:
        self.events: asyncio.Queue[Event] = asyncio.Queue()

    def notify(self, event: Event) -> None:
        self.events.put_nowait(event)

    async def next(self) -> Event:
        async with asyncio.timeout(WAIT):
            return await self.events.get()


class Frames:
    """What a visitor stream sends, as parsed frames."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    async def send(self, text: str) -> None:
        self.frames.append(json.loads(text))
        self.changed.set()

    async def until(self, test: Callable[[list[dict[str, Any]]], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not test(self.frames):
                self.changed.clear()
                await self.changed.wait()

    def bodies(self) -> list[str]:
        return bodies_of(self.frames)


def bodies_of(frames: list[dict[str, Any]]) -> list[str]:
    return [f["body"] for f in frames if f["type"] == "message"]


async def open_request(store: Store) -> tuple[Site, Visitor, Agent, str, int]:
    site, _ = await store.ensure_site("Nodes", ["https://nodes.test"])
    agent, _ = await store.ensure_agent(f"{uuid.uuid4().hex[:8]}@example.com", "Ada", "admin",
                                        None)
    visitor = Visitor(id="v_" + uuid.uuid4().hex[:24], site_id=site.id, user_id=None,
                      name="Visitor", email=None, verified=False)
    opened = await store.post_visitor_message(VisitorPost(
        visitor=visitor, conversation_id=None, client_msg_id=str(uuid.uuid4()), body="Help",
        severity="normal", subject=None), datetime.now(UTC))
    assert opened.ticket is not None
    return site, visitor, agent, opened.message.conversation_id, opened.ticket.number


async def visitor_stream(hub: Hub, store: Store, visitor: Visitor) -> tuple[
        VisitorStream, Frames]:
    frames = Frames()
    stream = VisitorStream(store, frames.send, lambda: None)
    hub.subscribe(visitor_channel(visitor.id), stream)
    await stream.replay(await store.visitor_conversations(visitor.id), {})
    stream.start()
    return stream, frames


async def test_a_reply_through_one_hub_reaches_a_visitor_on_the_other(
        hubs: tuple[Hub, Hub], store: Store) -> None:
    a, b = hubs
    site, visitor, agent, conversation, number = await open_request(store)
    stream, frames = await visitor_stream(b, store, visitor)
    console = Recorder()
    b.subscribe(agents_channel(site.id), console)
    messaging = Messaging(store, a, SystemClock(), 5000)
    await messaging.agent_reply(site.id, number, agent, "Hello from node A", internal=False)
    await frames.until(lambda f: "Hello from node A" in bodies_of(f))
    seen = await console.next()
    assert [m.body for m in getattr(seen, "messages", [])] == ["Hello from node A"]
    # an internal note reaches the agents on the other node, never the visitor
    await messaging.agent_reply(site.id, number, agent, "a note", internal=True)
    note = await console.next()
    assert [(m.body, m.internal) for m in getattr(note, "messages", [])] == [("a note", True)]
    # typing crosses too, carried in the wake-up itself
    messaging.agent_typing((await store.get_ticket(site.id, number))[0], visitor.id, agent)
    await frames.until(lambda f: any(m["type"] == "typing" for m in f))
    assert frames.bodies() == ["Hello from node A"]
    await stream.stop()
    assert conversation in stream.last_sent


async def test_own_events_are_delivered_once_on_the_publishing_node(
        hubs: tuple[Hub, Hub], store: Store) -> None:
    a, b = hubs
    site, visitor, _agent, conversation, _number = await open_request(store)
    here, there = Recorder(), Recorder()
    a.subscribe(agents_channel(site.id), here)
    b.subscribe(agents_channel(site.id), there)
    a.publish(agents_channel(site.id), Typing(conversation, visitor_author(visitor)))
    assert isinstance(await here.next(), Typing)
    assert isinstance(await there.next(), Typing)
    # a second event proves the first was not delivered twice on its own node
    b.publish(agents_channel(site.id), Typing(conversation, visitor_author(visitor)))
    assert isinstance(await here.next(), Typing)
    assert here.events.empty()


def visitor_author(visitor: Visitor) -> Any:
    from widget_server.models import Author

    return Author("visitor", visitor.name, visitor.id)


async def kill_listener(broker: relay.RelayBroker) -> None:
    """End the broker's listening connection from the server side."""
    if isinstance(broker, PgBroker):
        admin = await asyncpg.connect(postgres_url())
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", broker.backend_pid)
        finally:
            await admin.close()
        return
    assert isinstance(broker, RedisBroker)
    client = redis.Redis.from_url(redis_url())
    try:
        listed = await client.client_list()
        ids = [c["id"] for c in listed if c.get("name") == broker.client_name
               and c.get("cmd") in {"subscribe", "ping"}]
        assert ids, listed
        for client_id in ids:
            await client.execute_command("CLIENT", "KILL", "ID", client_id)
    finally:
        await client.aclose()


async def test_a_dropped_connection_reconnects_and_the_stream_catches_up(
        hubs: tuple[Hub, Hub], store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = hubs
    broker = b.broker
    assert isinstance(broker, relay.RelayBroker)
    # a long first backoff: what node A sends right after the drop is surely lost to B
    monkeypatch.setattr(relay, "FIRST_BACKOFF", 1.0)
    site, visitor, agent, _conversation, number = await open_request(store)
    _stream, frames = await visitor_stream(b, store, visitor)
    messaging = Messaging(store, a, SystemClock(), 5000)
    await messaging.agent_reply(site.id, number, agent, "before the drop", internal=False)
    await frames.until(lambda f: "before the drop" in bodies_of(f))
    await kill_listener(broker)
    async with asyncio.timeout(WAIT):
        while broker.connected.is_set():
            await asyncio.sleep(0.01)  # polls a condition: B noticed the drop
    for n in range(3):
        await messaging.agent_reply(site.id, number, agent, f"while down {n}", internal=False)
    await frames.until(lambda f: "while down 2" in bodies_of(f))
    assert broker.connections == 2
    assert frames.bodies() == ["before the drop", "while down 0", "while down 1", "while down 2"]
    seqs = [f["seq"] for f in frames.frames if f["type"] == "message"]
    assert seqs == sorted(set(seqs))



async def inject(broker: relay.RelayBroker, text: str) -> None:
    """A wake-up from outside (anyone who may NOTIFY on the database or publish on Redis)."""
    if isinstance(broker, PgBroker):
        conn = await asyncpg.connect(postgres_url())
        try:
            await conn.execute("SELECT pg_notify('widget_events', $1)", text)
        finally:
            await conn.close()
        return
    client = redis.Redis.from_url(redis_url())
    try:
        await client.publish("widget-server:events", text)
    finally:
        await client.aclose()


async def test_a_forged_wake_up_never_delivers_another_visitors_conversation(
        hubs: tuple[Hub, Hub], store: Store) -> None:
    a, b = hubs
    _site, visitor, _agent, _conversation, _number = await open_request(store)
    _site, _other, _agent, foreign, _number = await open_request(store)
    _stream, frames = await visitor_stream(b, store, visitor)
    forged = {"n": "elsewhere", "c": visitor_channel(visitor.id), "k": "m", "v": foreign,
              "r": [1, 2], "i": []}
    assert isinstance(b.broker, relay.RelayBroker)
    await inject(b.broker, json.dumps(forged))
    # a genuine wake-up after the forged one: once it is delivered, the forged one was read
    a.publish(visitor_channel(visitor.id), Typing(foreign, visitor_author(visitor)))
    await frames.until(lambda f: any(m["type"] == "typing" for m in f))
    assert [f for f in frames.frames if f["type"] in {"message", "ticket"}] == []


async def test_a_change_on_one_node_pokes_the_scheduler_of_the_other(
        hubs: tuple[Hub, Hub], store: Store) -> None:
    a, b = hubs
    holder, elsewhere = SlaScheduler(store, a, SystemClock()), SlaScheduler(store, b, SystemClock())
    a.subscribe(SCHEDULER_CHANNEL, holder)  # what start() does, without the sweeping loop
    elsewhere.changed()  # a ticket changed on node B
    async with asyncio.timeout(WAIT):
        await holder._poked.wait()


async def test_a_burst_from_one_node_reaches_the_other_in_order_and_once(
        hubs: tuple[Hub, Hub], store: Store) -> None:
    """Wake-ups of different conversations are read at once and those of one conversation in
    order, adjacent ones with one read: every message arrives once, in seq order."""
    a, b = hubs
    site, visitor, _agent, first, _number = await open_request(store)
    console = Recorder()
    b.subscribe(agents_channel(site.id), console)
    conversations = [first]
    for _ in range(3):
        opened = await store.post_visitor_message(VisitorPost(
            visitor=visitor, conversation_id=None, client_msg_id=str(uuid.uuid4()),
            body="Another", severity="normal", subject=None), datetime.now(UTC))
        conversations.append(opened.message.conversation_id)
    sent: dict[str, list[int]] = {conversation: [] for conversation in conversations}
    for round_ in range(6):
        for conversation in conversations:
            stored = await store.post_visitor_message(VisitorPost(
                visitor=visitor, conversation_id=conversation, client_msg_id=str(uuid.uuid4()),
                body=f"burst {round_}", severity="normal", subject=None), datetime.now(UTC))
            assert stored.ticket is not None
            sent[conversation].append(stored.message.seq)
            a.publish(agents_channel(site.id), MessagesAdded(conversation, [stored.message],
                                                             stored.ticket))
    received: dict[str, list[int]] = {conversation: [] for conversation in conversations}
    while sum(map(len, received.values())) < sum(map(len, sent.values())):
        event = await console.next()
        assert isinstance(event, MessagesAdded)
        received[event.conversation_id] += [m.seq for m in event.messages]
    assert received == sent
    assert console.events.empty()

