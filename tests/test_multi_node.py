"""Two `widget-server serve` processes on different ports sharing one fresh PostgreSQL
database: live delivery across the nodes both ways, gap-free ticket numbers under
concurrent requests on both, a node killed during a burst without a message lost or doubled
for the visitors who move to the other, the scheduler's lease taken over by the survivor,
two mail senders sending each mail once, and Redis for events and shared limits. Skipped
without PostgreSQL (failed with WIDGET_REQUIRE_SERVICES=1)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.mail_sink import MailSink
from tests.pg import PgServer
from tests.services import redis_url
from tests.support import Api, ServerProcess, Site, VisitorClient, create_site, start_session
from tests.test_mail import mail_env, submit_form
from tests.web.test_console_live import signed_in_cookie
from widget_server.config import Settings
from widget_server.store import open_store

pytestmark = pytest.mark.anyio
WAIT = 20.0


class Node(ServerProcess):
    """A server on the shared PostgreSQL database; its log is ``NAME.log`` in the folder."""

    def __init__(self, url: str, folder: Path, name: str, env: dict[str, str] | None = None
                 ) -> None:
        super().__init__(url, env=env, log=folder / f"{name}.log")


@pytest.fixture
def pg(pg_server: PgServer) -> str:
    return pg_server.fresh()


@pytest.fixture
def nodes(pg: str, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    a, b = Node(pg, tmp_path, "a"), Node(pg, tmp_path, "b")
    a.start()
    b.start()
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def site(pg: str, nodes: tuple[Node, Node]) -> Site:
    return create_site(pg)


async def console(node: Node, cookie: str) -> ClientConnection:
    socket = await websockets.connect(f"ws://127.0.0.1:{node.port}/ws/console",
                                      origin=node.url,  # type: ignore[arg-type]
                                      additional_headers={"Cookie": f"widget_console={cookie}"})
    assert json.loads(await socket.recv())["type"] == "ready"
    return socket


async def frame_where(socket: ClientConnection, test: Callable[[dict[str, Any]], bool]
                      ) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        while True:
            frame: dict[str, Any] = json.loads(await socket.recv())
            if test(frame):
                return frame


def message_with(body: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame["type"] == "message" and frame["message"]["body"] == body


async def test_a_reply_through_either_node_reaches_the_visitor_on_the_other(
        nodes: tuple[Node, Node], site: Site) -> None:
    a, b = nodes
    token = site.api_token()
    for here, there in ((a, b), (b, a)):
        visitor = await VisitorClient.connect(here, site)
        ack, _ = await visitor.open_request(f"Hello on {here.port}")
        api = Api(there, token)
        await api.reply(ack["ticket"]["number"], f"Answer through {there.port}")
        await api.aclose()
        reply = await visitor.recv_type("message")
        assert reply["body"] == f"Answer through {there.port}"
        assert reply["seq"] == 3 and reply["conversation"] == ack["conversation"]
        later = await visitor.frames_until_pong()  # the ticket's new status may follow
        assert [f for f in later if f["type"] == "message"] == []  # once, not twice
        await visitor.close()


@pytest.fixture
def redis_nodes(pg: str, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    env = {"WIDGET_REDIS_URL": redis_url(), "WIDGET_MESSAGES_PER_VISITOR_MINUTE": "4"}
    a, b = Node(pg, tmp_path, "a", env), Node(pg, tmp_path, "b", env)
    a.start()
    b.start()
    yield a, b
    a.stop()
    b.stop()


async def test_with_redis_events_cross_over_it_and_both_nodes_share_the_limits(
        redis_nodes: tuple[Node, Node], pg: str) -> None:
    a, b = redis_nodes
    site = create_site(pg)
    token = (await start_session(a, site))["token"]
    visitor = await VisitorClient.connect(a, site, token)
    ack, _ = await visitor.open_request("Hello over Redis")
    api = Api(b, site.api_token())
    await api.reply(ack["ticket"]["number"], "Answer through B")
    await api.aclose()
    assert (await visitor.recv_type("message"))["body"] == "Answer through B"
    await visitor.send("second", conversation=ack["conversation"])
    assert (await visitor.recv_type("ack"))["seq"] == 4
    other = await VisitorClient.connect(b, site, token)  # the same visitor on the other node
    await other.send("third", conversation=ack["conversation"])
    assert (await other.recv_type("ack"))["seq"] == 5
    await other.send("fourth", conversation=ack["conversation"])
    assert (await other.recv_type("ack"))["seq"] == 6
    await other.send("fifth", conversation=ack["conversation"])  # 4 a minute, both nodes
    refused = await other.recv_type("error")
    assert refused["code"] == "rate_limited" and refused["retry_after"] >= 1
    await visitor.close()
    await other.close()


async def test_the_consoles_of_both_nodes_see_what_happens_on_either(
        nodes: tuple[Node, Node], site: Site) -> None:
    a, b = nodes
    email = f"agent-{uuid.uuid4().hex[:6]}@example.com"
    await a.add_agent(email, "pw-nodes-1-long", "admin")
    cookie = await signed_in_cookie(a, email, "pw-nodes-1-long")  # sessions are shared
    consoles = [await console(a, cookie), await console(b, cookie)]
    token = site.api_token()
    for here, there in ((a, b), (b, a)):
        visitor = await VisitorClient.connect(here, site)
        ack, _ = await visitor.open_request(f"Hello on {here.port}")
        for socket in consoles:  # the new request reaches the consoles of both nodes
            await frame_where(socket, message_with(f"Hello on {here.port}"))
        api = Api(there, token)
        await api.reply(ack["ticket"]["number"], f"Answer through {there.port}")
        await api.aclose()
        for socket in consoles:
            await frame_where(socket, message_with(f"Answer through {there.port}"))
        await visitor.close()
    for socket in consoles:
        await socket.close()


async def test_concurrent_new_requests_on_both_nodes_are_numbered_1_to_200(
        nodes: tuple[Node, Node], site: Site) -> None:
    async def request(n: int) -> int:
        node = nodes[n % 2]
        token = (await start_session(node, site))["token"]
        async with node.client(timeout=60) as client:
            response = await client.post("/api/widget/v1/messages", json={
                "site": site.key, "token": token, "conversation": None,
                "client_msg_id": str(uuid.uuid4()), "body": f"Request {n}"},
                headers={"Origin": site.origin})
        assert response.status_code == 200, response.text
        return int(response.json()["ack"]["ticket"]["number"])

    numbers = await asyncio.gather(*[request(n) for n in range(200)])
    assert sorted(numbers) == list(range(1, 201))


class Tab:
    """A visitor's widget tab that keeps its outbox and its highest seq across nodes."""

    def __init__(self, site: Site, token: str) -> None:
        self.site, self.token = site, token
        self.client: VisitorClient | None = None
        self.conversation = ""
        self.seqs: set[int] = set()  # every seq this tab holds, from acks and messages
        self.delivered: list[int] = []  # seqs of message frames, in arrival order
        self.replies: list[str] = []
        self.acked: dict[str, int] = {}

    async def connect(self, node: Node) -> None:
        resume = {self.conversation: max(self.seqs)} if self.conversation else {}
        self.client = await VisitorClient.connect(node, self.site, self.token, resume)

    def take(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "ack":
            self.acked[frame["client_msg_id"]] = frame["seq"]
            self.seqs.add(frame["seq"])
        elif frame["type"] == "message":
            assert frame["seq"] not in self.seqs, f"seq {frame['seq']} delivered twice"
            self.seqs.add(frame["seq"])
            self.delivered.append(frame["seq"])
            if frame["author"]["type"] == "agent":
                self.replies.append(frame["body"])

    async def send(self, body: str, client_msg_id: str) -> None:
        assert self.client is not None
        await self.client.send(body, conversation=self.conversation or None,
                               client_msg_id=client_msg_id)
        async with asyncio.timeout(WAIT):
            while client_msg_id not in self.acked:
                frame = await self.client.recv(timeout=WAIT)
                self.take(frame)
                if frame["type"] == "ack" and not self.conversation:
                    self.conversation = frame["conversation"]

    async def settle(self, node: Node, replies: int) -> None:
        """Take every frame due, reconnecting to ``node`` if the socket was on the dead one
        (a tab that had sent its whole burst before the kill)."""
        async with asyncio.timeout(WAIT):
            while True:
                assert self.client is not None
                try:
                    while len(self.replies) < replies:
                        self.take(await self.client.recv(timeout=WAIT))
                    for frame in await self.client.frames_until_pong():
                        self.take(frame)
                    return
                except (ConnectionClosed, OSError):
                    await self.connect(node)


@pytest.mark.slow
async def test_a_node_killed_during_a_burst_loses_and_doubles_nothing(
        nodes: tuple[Node, Node], site: Site, pg: str) -> None:
    a, b = nodes
    visitors, burst, replies = 8, 20, 4
    tabs = [Tab(site, (await start_session(a, site))["token"]) for _ in range(visitors)]
    for n, tab in enumerate(tabs):
        await tab.connect(a)
        await tab.send(f"Request {n}", str(uuid.uuid4()))
    numbers = {tab.conversation: await ticket_number(pg, tab.conversation) for tab in tabs}
    acks, moved = 0, 0
    half = asyncio.Event()

    async def run(tab: Tab, n: int) -> None:
        nonlocal acks, moved
        outbox = [(f"burst {n}.{k}", str(uuid.uuid4())) for k in range(burst)]
        k = 0
        while k < len(outbox):
            try:
                await tab.send(*outbox[k])  # the same client_msg_id again after a move
            except (ConnectionClosed, OSError):
                await tab.connect(b)  # the widget reconnects; the balancer picks B
                moved += 1
                continue
            k += 1
            acks += 1
            if acks == visitors * burst // 2:
                half.set()

    async def agent() -> None:
        api = Api(b, site.api_token())
        for r in range(replies):
            for tab in tabs:
                await api.reply(numbers[tab.conversation], f"reply {r}")
        await api.aclose()

    senders = [asyncio.create_task(run(tab, n)) for n, tab in enumerate(tabs)]
    replier = asyncio.create_task(agent())
    async with asyncio.timeout(60):
        await half.wait()
    await asyncio.to_thread(a.kill)  # SIGKILL mid-burst
    await asyncio.gather(*senders, replier)
    assert moved > 0, "no visitor was mid-burst when the node died"
    for tab in tabs:
        await tab.settle(b, replies)
        assert tab.client is not None
        assert sorted(tab.seqs) == list(range(1, max(tab.seqs) + 1)), "a gap"
        assert tab.replies == [f"reply {r}" for r in range(replies)]
        await tab.client.close()
    stored = await bodies_by_conversation(pg)
    for n, tab in enumerate(tabs):
        visitor_bodies = [body for kind, body in stored[tab.conversation] if kind == "visitor"]
        assert visitor_bodies == [f"Request {n}"] + [f"burst {n}.{k}" for k in range(burst)]
        assert len(stored[tab.conversation]) == max(tab.seqs)


async def ticket_number(pg: str, conversation: str) -> int:
    store = open_store(Settings(db=pg))
    await store.open()
    try:
        found = await store.get_conversation(conversation)
        assert found is not None and found.ticket is not None
        return found.ticket.number
    finally:
        await store.close()


async def bodies_by_conversation(pg: str) -> dict[str, list[tuple[str, str]]]:
    conn = await asyncpg.connect(pg)
    try:
        rows = await conn.fetch("SELECT conversation_id, author_type, body FROM messages"
                                " WHERE internal = 0 ORDER BY conversation_id, seq")
    finally:
        await conn.close()
    found: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        found.setdefault(row["conversation_id"], []).append((row["author_type"], row["body"]))
    return found


async def lease_holder(pg: str) -> str | None:
    conn = await asyncpg.connect(pg)
    try:
        holder = await conn.fetchval(
            "SELECT holder FROM scheduler_leases WHERE name = 'sla' AND expires_at > $1",
            _now())
        return str(holder) if holder else None
    finally:
        await conn.close()


def _now() -> str:
    from widget_server.clock import SystemClock, isoformat

    return isoformat(SystemClock().now())


def holder_pid(holder: str | None) -> int | None:
    return int(holder.split("-")[-2]) if holder else None


@pytest.fixture
def leased_nodes(pg: str, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    env = {"WIDGET_SCHEDULER_LEASE": "2"}
    a, b = Node(pg, tmp_path, "a", env), Node(pg, tmp_path, "b", env)
    a.start()
    b.start()
    yield a, b
    a.stop()
    b.stop()


@pytest.mark.slow
async def test_the_scheduler_of_the_survivor_takes_the_lease_of_a_killed_node(
        leased_nodes: tuple[Node, Node], pg: str) -> None:
    pids = {node.process.pid: node for node in leased_nodes if node.process is not None}
    async with asyncio.timeout(WAIT):
        while holder_pid(await lease_holder(pg)) not in pids:
            await asyncio.sleep(0.1)  # polls the lease row: the condition
    holder = pids[holder_pid(await lease_holder(pg)) or 0]
    survivor = next(node for node in leased_nodes if node is not holder)
    await asyncio.to_thread(holder.kill)
    async with asyncio.timeout(WAIT):
        while holder_pid(await lease_holder(pg)) != survivor.process.pid:  # type: ignore[union-attr]
            await asyncio.sleep(0.1)




async def outbox_states(pg: str) -> list[str]:
    conn = await asyncpg.connect(pg)
    try:
        return [row["state"] for row in await conn.fetch("SELECT state FROM mail_outbox")]
    finally:
        await conn.close()


async def test_two_mail_senders_send_each_mail_once(pg: str, tmp_path: Path,
                                                     sink: MailSink) -> None:
    a, b = Node(pg, tmp_path, "a", mail_env(sink)), Node(pg, tmp_path, "b", mail_env(sink))
    a.start()
    b.start()
    try:
        site = create_site(pg)
        addresses = [f"ada{n}@example.com" for n in range(12)]
        for n, address in enumerate(addresses):  # Help Form requests, on both nodes
            await asyncio.to_thread(submit_form, (a, b)[n % 2], site, address)
        async with asyncio.timeout(WAIT):
            while sorted(await outbox_states(pg)) != ["sent"] * len(addresses):
                await asyncio.sleep(0.1)  # polls the outbox: the condition
        ids = [str(mail["Message-ID"]) for mail in sink.received]
        assert len(ids) == len(addresses) == len(set(ids))
        assert sorted(str(mail["To"]) for mail in sink.received) == sorted(addresses)
    finally:
        a.stop()
        b.stop()
