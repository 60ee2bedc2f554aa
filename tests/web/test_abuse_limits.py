"""Abuse limits against real servers: 429 + Retry-After, rate_limited frames, 1008 / 1001 closes.

Three servers: one with the default limits (many visitors behind one address keep working),
one behind a trusted proxy with tight limits (each test takes its own X-Forwarded-For address,
so its buckets are its own), and one without trusted proxies and a 1 s idle timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.support import (
    Api,
    ServerProcess,
    Site,
    VisitorClient,
    console_client,
    create_site,
    start_session,
)

pytestmark = pytest.mark.anyio

BEHIND_PROXY = {
    "WIDGET_TRUSTED_PROXIES": "127.0.0.1",
    "WIDGET_SESSIONS_PER_IP_HOUR": "3",
    "WIDGET_REQUESTS_PER_VISITOR_HOUR": "2",
    "WIDGET_MESSAGES_PER_VISITOR_MINUTE": "4",
    "WIDGET_HELP_FORM_POSTS_PER_IP_HOUR": "2",
    "WIDGET_WS_CONNECTS_PER_IP_MINUTE": "4",
    "WIDGET_WS_OPEN_PER_IP": "2",
    "WIDGET_WS_FRAMES_PER_MINUTE": "20",
    "WIDGET_LOGIN_FREE_FAILURES": "1",
    "WIDGET_LOGIN_MAX_LOCKOUT": "90",
}
DIRECT = {"WIDGET_WS_IDLE_TIMEOUT": "1", "WIDGET_WS_PING_INTERVAL": "2",
          "WIDGET_HELP_FORM_POSTS_PER_IP_HOUR": "2"}
_addresses = (f"203.0.113.{n}" for n in itertools.count(1))


def _server(tmp_path_factory: pytest.TempPathFactory, name: str,
            env: dict[str, str]) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp(name) / "widget.db", env=env).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def defaults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _server(tmp_path_factory, "defaults", {})


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _server(tmp_path_factory, "proxied", BEHIND_PROXY)


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from _server(tmp_path_factory, "direct", DIRECT)


def address() -> str:
    """A client address of the test's own, as the trusted proxy reports it."""
    return next(_addresses)


def forwarded(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


async def session(server: ServerProcess, site: Site, ip: str, token: str | None = None
                  ) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as client:
        return await client.post("/api/widget/v1/session",
                                 json={"site": site.key, "token": token, "user": None},
                                 headers={"Origin": site.origin, **forwarded(ip)})


class ProxiedVisitor(VisitorClient):
    """A visitor's tab whose requests reach us through the trusted proxy from ``ip``."""

    ip = ""

    async def open(self, resume: dict[str, int] | None = None) -> dict[str, Any]:
        self.ws = await websockets.connect(self.server.ws_url, origin=self.site.origin,  # type: ignore[arg-type]
                                           additional_headers=forwarded(self.ip))
        await self.send_frame({"type": "hello", "site": self.site.key, "token": self.token,
                               "resume": resume or {}})
        self.ready = await self.recv()
        assert self.ready["type"] == "ready", self.ready
        return self.ready


async def proxied_visitor(server: ServerProcess, site: Site, ip: str) -> ProxiedVisitor:
    response = await session(server, site, ip)
    assert response.status_code == 200, response.text
    visitor = ProxiedVisitor(server, site, response.json()["token"])
    visitor.ip = ip
    await visitor.open()
    return visitor


async def answer_to(visitor: VisitorClient, client_msg_id: str) -> dict[str, Any]:
    """The ack or the error frame that answers one send (receipts and echoes skipped)."""
    while True:
        frame = await visitor.recv_type("ack", "error")
        if frame.get("client_msg_id") == client_msg_id or frame.get("ref") == client_msg_id:
            return frame


async def open_when_free(server: ServerProcess, site: Site, token: str, ip: str
                         ) -> websockets.ClientConnection:
    """A ready socket; retried while the address has too many open (the server frees a
    place only once it has seen a close, and such a refusal spends nothing)."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        ws = await websockets.connect(server.ws_url, origin=site.origin,  # type: ignore[arg-type]
                                      additional_headers=forwarded(ip))
        await ws.send(json.dumps({"type": "hello", "site": site.key, "token": token}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if answer["type"] == "ready":
            return ws
        await ws.close()
        assert "connections open" in answer.get("message", ""), answer
        assert asyncio.get_running_loop().time() < deadline, answer


async def refused_socket(server: ServerProcess, site: Site, ip: str) -> tuple[dict[str, Any],
                                                                                int, str]:
    """Connect and expect to be turned away: the error frame, close code and reason."""
    ws = await websockets.connect(server.ws_url, origin=site.origin,  # type: ignore[arg-type]
                                  additional_headers=forwarded(ip))
    frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
    await asyncio.wait_for(ws.wait_closed(), 10)
    assert ws.close_code is not None
    return frame, ws.close_code, ws.close_reason or ""


def assert_limited_frame(frame: dict[str, Any], most: int) -> int:
    assert frame["type"] == "error" and frame["code"] == "rate_limited", frame
    assert isinstance(frame["retry_after"], int) and 1 <= frame["retry_after"] <= most, frame
    return int(frame["retry_after"])


def assert_limited_json(response: httpx.Response, site: Site, most: int) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= most
    # the widget runs on the host's page: it must be able to read the answer and the header
    assert response.headers["access-control-allow-origin"] == site.origin
    assert response.headers["access-control-expose-headers"] == "Retry-After"
    return seconds


# -- many visitors behind one address, default limits ---------------------------------------

async def test_fifty_visitors_behind_one_address_get_through_and_a_flooder_is_limited(
    defaults: ServerProcess
) -> None:
    site = create_site(defaults.db)
    visitors = await asyncio.gather(*(VisitorClient.connect(defaults, site) for _ in range(50)))
    assert len({v.token for v in visitors}) == 50  # 50 sessions, 50 sockets from 127.0.0.1
    acks = [ack for ack, _ in await asyncio.gather(*(v.open_request() for v in visitors))]
    assert sorted(ack["ticket"]["number"] for ack in acks) == list(range(1, 51))
    sent = [await v.send("more detail", ack["conversation"])
            for v, ack in zip(visitors, acks, strict=True)]
    follow_ups = await asyncio.gather(*(answer_to(v, client_msg_id)
                                        for v, client_msg_id in zip(visitors, sent, strict=True)))
    assert {frame["type"] for frame in follow_ups} == {"ack"}

    flooder, conversation = visitors[0], acks[0]["conversation"]
    sent = [await flooder.send(f"flood {n}", conversation) for n in range(40)]
    answers = [await answer_to(flooder, client_msg_id) for client_msg_id in sent]
    limited = [frame for frame in answers if frame["type"] == "error"]
    # 30 a minute, two spent already; the bucket refills by one every 2 s meanwhile
    assert 20 <= len(answers) - len(limited) <= 32
    for frame in limited:
        assert_limited_frame(frame, 60)
    assert await flooder.frames_until_pong() == []  # limited, not disconnected

    neighbour = visitors[1]  # same address, own budget
    reply = await answer_to(neighbour, await neighbour.send("still fine", acks[1]["conversation"]))
    assert reply["type"] == "ack"
    await asyncio.gather(*(v.close() for v in visitors))


# -- per address: sessions, the Help Form, sockets; and the trusted proxy -------------------

async def test_sessions_per_address_get_429_with_retry_after_and_cors(
    proxied: ServerProcess
) -> None:
    site = create_site(proxied.db)
    office, other = address(), address()
    for _ in range(3):
        assert (await session(proxied, site, office)).status_code == 200
    assert_limited_json(await session(proxied, site, office), site, 3600 // 3)
    # the trusted proxy says this is someone else: a bucket of its own
    assert (await session(proxied, site, other)).status_code == 200


async def test_returning_visitors_do_not_use_up_their_offices_session_budget(
    proxied: ServerProcess
) -> None:
    site = create_site(proxied.db)
    office, home = address(), address()
    token = (await session(proxied, site, home)).json()["token"]  # a visitor from before
    for _ in range(3):
        assert (await session(proxied, site, office)).status_code == 200
    assert (await session(proxied, site, office)).status_code == 429  # no more new visitors
    for _ in range(3):  # the returning visitor at the office: their own bucket
        answer = await session(proxied, site, office, token)
        assert answer.status_code == 200
        token = answer.json()["token"]
    assert_limited_json(await session(proxied, site, office, token), site, 3600 // 3)


def _hidden(page: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    assert found, name
    return found.group(1)


async def post_help_form(server: ServerProcess, site: Site, ip: str,
                         description: str = "The CSV export does nothing.") -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, headers=forwarded(ip)) as browser:
        page = (await browser.get("/help/new", params={"site": site.key})).text
        return await browser.post("/help/new", data={
            **{name: _hidden(page, name) for name in ("site", "form_token", "client_msg_id")},
            "name": "Ada", "email": "ada@example.com", "subject": "Export",
            "description": description, "severity": "normal"})


async def test_help_form_posts_per_address_get_a_429_page_that_keeps_the_text(
    proxied: ServerProcess
) -> None:
    site = create_site(proxied.db)
    ip = address()
    for _ in range(2):
        assert (await post_help_form(proxied, site, ip)).status_code == 303
    limited = await post_help_form(proxied, site, ip, "Third request, kept for later")
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 3600 // 2
    assert limited.headers["content-security-policy"].startswith("default-src 'none'")
    assert limited.headers["x-content-type-options"] == "nosniff"
    assert limited.headers["referrer-policy"] == "no-referrer"
    assert "Third request, kept for later" in limited.text
    assert "send it again in" in limited.text
    assert (await post_help_form(proxied, site, address())).status_code == 303


async def test_new_websocket_connections_per_address_per_minute(proxied: ServerProcess) -> None:
    site = create_site(proxied.db)
    ip = address()
    token = (await session(proxied, site, ip)).json()["token"]
    for _ in range(4):  # one at a time, as WIDGET_WS_OPEN_PER_IP is 2
        await (await open_when_free(proxied, site, token, ip)).close()
    frame, code, reason = await refused_socket(proxied, site, ip)
    seconds = assert_limited_frame(frame, 60 // 4)
    assert "too many new connections" in frame["message"]
    assert (code, reason) == (1008, f"rate_limited retry_after={seconds}")


async def test_websockets_open_at_once_per_address(proxied: ServerProcess) -> None:
    site = create_site(proxied.db)
    ip = address()
    first, second = [await proxied_visitor(proxied, site, ip) for _ in range(2)]
    frame, code, reason = await refused_socket(proxied, site, ip)
    assert_limited_frame(frame, 60)
    assert "too many connections open" in frame["message"]
    assert code == 1008 and reason.startswith("rate_limited retry_after=")
    await first.close()
    await (await open_when_free(proxied, site, second.token, ip)).close()  # a place is free
    await second.close()


# -- per visitor: new requests and messages, on the socket and over HTTP --------------------

async def test_new_requests_per_visitor_per_hour(proxied: ServerProcess) -> None:
    site = create_site(proxied.db)
    ip = address()
    visitor = await proxied_visitor(proxied, site, ip)
    first, _ = await visitor.open_request("one")
    await visitor.open_request("two")
    third = await visitor.send("three")
    refused = await answer_to(visitor, third)
    assert refused["ref"] == third
    assert assert_limited_frame(refused, 3600 // 2) > 60  # the hourly budget, not the minute's
    follow_up = await answer_to(visitor, await visitor.send("a reply", first["conversation"]))
    assert follow_up["type"] == "ack"  # answering an existing request is still fine
    await visitor.close()

    other = (await session(proxied, site, ip)).json()["token"]  # the HTTP fallback
    async with httpx.AsyncClient(base_url=proxied.url,
                                 headers={"Origin": site.origin, **forwarded(ip)}) as client:
        async def new_request() -> httpx.Response:
            return await client.post("/api/widget/v1/messages", json={
                "site": site.key, "token": other, "conversation": None,
                "client_msg_id": str(uuid.uuid4()), "body": "over HTTP"})

        assert [(await new_request()).status_code for _ in range(2)] == [200, 200]
        assert assert_limited_json(await new_request(), site, 3600 // 2) > 60


async def test_messages_per_visitor_per_minute(proxied: ServerProcess) -> None:
    site = create_site(proxied.db)
    visitor = await proxied_visitor(proxied, site, address())
    ack, _ = await visitor.open_request("first")
    conversation = ack["conversation"]
    for n in range(3):
        assert (await answer_to(visitor, await visitor.send(f"m{n}", conversation)))["type"] \
            == "ack"
    refused = await answer_to(visitor, await visitor.send("one too many", conversation))
    assert_limited_frame(refused, 60 // 4)
    assert await visitor.frames_until_pong() == []  # still connected, nothing else sent
    async with httpx.AsyncClient(base_url=proxied.url) as client:
        response = await client.post("/api/widget/v1/messages", json={
            "site": site.key, "token": visitor.token, "conversation": conversation,
            "client_msg_id": str(uuid.uuid4()), "body": "over HTTP"},
            headers={"Origin": site.origin, **forwarded(visitor.ip)})
    assert_limited_json(response, site, 60 // 4)
    await visitor.close()


async def test_a_frame_flood_closes_the_socket_with_1008(proxied: ServerProcess) -> None:
    site = create_site(proxied.db)
    visitor = await proxied_visitor(proxied, site, address())
    assert visitor.ws is not None
    for _ in range(30):
        await visitor.send_frame({"type": "ping"})
    pongs = 0
    while (frame := await visitor.recv())["type"] == "pong":
        pongs += 1
    assert pongs == 20
    seconds = assert_limited_frame(frame, 60)
    await asyncio.wait_for(visitor.ws.wait_closed(), 10)
    assert visitor.ws.close_code == 1008
    assert visitor.ws.close_reason == f"rate_limited retry_after={seconds}"


async def test_login_attempts_follow_the_configured_thresholds(proxied: ServerProcess) -> None:
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(base_url=proxied.url, headers=forwarded(address())) as browser:
        async def attempt() -> httpx.Response:
            form = (await browser.get("/console/login")).text
            token = re.search(r'name="login_token" value="([^"]+)"', form)
            assert token
            return await browser.post("/console/login", data={
                "email": email, "password": "wrong", "login_token": token.group(1)})

        assert (await attempt()).status_code == 401  # WIDGET_LOGIN_FREE_FAILURES=1
        # then each failure doubles the wait (1 s, 2 s, ...): a quick retry lands inside one
        statuses = []
        while (response := await attempt()).status_code == 401:
            statuses.append(401)
            assert len(statuses) < 6, "never throttled"
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert "up to 90 seconds" in response.text  # WIDGET_LOGIN_MAX_LOCKOUT=90
    assert "content-security-policy" in response.headers


# -- without trusted proxies: X-Forwarded-For is ignored; idle timeout and heartbeat ---------

async def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(
    direct: ServerProcess
) -> None:
    site = create_site(direct.db)
    for _ in range(2):
        assert (await post_help_form(direct, site, "198.51.100.1")).status_code == 303
    # a new made-up address each time would be a fresh bucket if the header were believed
    assert (await post_help_form(direct, site, "198.51.100.2")).status_code == 429


async def test_a_silent_widget_socket_is_closed_with_1001_and_the_visitor_resumes(
    direct: ServerProcess
) -> None:
    site = create_site(direct.db)
    api = Api(direct, site.api_token())
    data = await start_session(direct, site)
    assert data["site"]["limits"]["idle_timeout"] == 1.0  # the widget pings well before
    visitor = await VisitorClient.connect(direct, site, token=data["token"])
    ack, receipt = await visitor.open_request()
    assert visitor.ws is not None
    await asyncio.wait_for(visitor.ws.wait_closed(), 10)
    assert (visitor.ws.close_code, visitor.ws.close_reason) == (1001, "idle_timeout")

    await api.reply(ack["ticket"]["number"], "answered while you were away")
    again = await VisitorClient.connect(direct, site, token=visitor.token,
                                        resume={ack["conversation"]: receipt["seq"]})
    missed = await again.recv_type("message")
    assert missed["body"] == "answered while you were away"
    assert missed["seq"] == receipt["seq"] + 1
    await again.close()
    await api.aclose()


async def test_pings_keep_a_socket_open_past_the_idle_timeout(direct: ServerProcess) -> None:
    site = create_site(direct.db)
    visitor = await VisitorClient.connect(direct, site)
    assert visitor.ws is not None
    for _ in range(8):  # a heartbeat every 0.4 s for 3.2 s, three idle timeouts
        assert await visitor.frames_until_pong() == []
        await asyncio.sleep(0.4)  # the heartbeat's pace, not a wait for a condition
    await asyncio.wait_for(visitor.ws.wait_closed(), 10)  # then silence
    assert visitor.ws.close_code == 1001


async def test_a_silent_console_socket_is_closed_with_1001(direct: ServerProcess) -> None:
    site = create_site(direct.db)
    client = await console_client(direct, site)
    cookie = client.cookies["widget_console"]
    await client.aclose()
    ws = await websockets.connect(f"ws://127.0.0.1:{direct.port}/ws/console",
                                  origin=direct.url,  # type: ignore[arg-type]
                                  additional_headers={"Cookie": f"widget_console={cookie}"})
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ready"
    await asyncio.wait_for(ws.wait_closed(), 10)
    assert (ws.close_code, ws.close_reason) == (1001, "idle_timeout")


def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One unmasked server frame: (opcode, payload)."""
    head = _read_exactly(sock, 2)
    length = head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(_read_exactly(sock, 2), "big")
    return head[0] & 0x0F, _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _dead_peer(port: int, origin: str) -> list[tuple[int, bytes]]:
    """A client that upgrades and then never answers anything, not even protocol pings."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall((f"GET /ws/widget HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            response += sock.recv(1024)
        assert response.startswith(b"HTTP/1.1 101"), response
        frames = []
        while True:
            try:
                frames.append(_read_frame(sock))
            except ConnectionError:
                return frames


async def test_a_peer_that_never_answers_protocol_pings_is_dropped(
    direct: ServerProcess
) -> None:
    site = create_site(direct.db)
    started = asyncio.get_running_loop().time()
    frames = await asyncio.to_thread(_dead_peer, direct.port, site.origin)
    assert frames[0][0] == 0x9  # a ping
    assert frames[-1][0] == 0x8 and int.from_bytes(frames[-1][1][:2], "big") == 1011
    # dropped by the keepalive (2 s + 2 s), before the 10 s hello timeout
    assert asyncio.get_running_loop().time() - started < 9.5
