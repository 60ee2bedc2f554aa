"""Every input is bounded before it is read: bodies, connections, integers, frames and text.

One server of this module's own, behind a trusted proxy (so each test has client addresses
of its own), with a one-second HTTP timeout and three new requests per address an hour.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.raw_http import connect, head, read_all, status_and_json, stream_chunked
from tests.support import (
    ServerProcess,
    Site,
    VisitorClient,
    console_client,
    create_site,
    csrf_of,
    run_cli,
    start_session,
)
from tests.web.test_abuse_limits import post_help_form
from widget_server.abuse import TYPING_SECONDS

pytestmark = pytest.mark.anyio

ENV = {"WIDGET_TRUSTED_PROXIES": "127.0.0.1", "WIDGET_HTTP_TIMEOUT": "1",
       "WIDGET_REQUESTS_PER_IP_HOUR": "3", "WIDGET_HELP_FORM_POSTS_PER_IP_HOUR": "100"}
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("bounded") / "widget.db", env=ENV).start()
    yield process
    process.stop()


@pytest.fixture
def place(bounded: ServerProcess) -> Site:
    return create_site(bounded.db)


def peak_rss_kib(server: ServerProcess) -> int:
    """The most memory the server process has ever held (a body read whole and then freed
    leaves RSS where it was, but not this high-water mark)."""
    assert server.process is not None
    text = Path(f"/proc/{server.process.pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", text)
    assert found
    return int(found.group(1))


# -- bodies


@pytest.mark.parametrize("path", ["/api/widget/v1/session", "/api/v1/tickets/1/messages",
                                  "/console/login", "/help/new", "/console/admin/sites"])
def test_a_huge_content_length_is_refused_before_the_body_is_sent(
        bounded: ServerProcess, path: str) -> None:
    with connect(bounded.port) as sock:
        sock.sendall(head("POST", path, {"Content-Length": str(150 * 1024 * 1024),
                                         "Content-Type": "application/json"}))
        status, body = status_and_json(read_all(sock))  # no byte of the body was sent
    assert status == 413
    if path != "/help/new":  # the Help Form answers with its own page
        assert body["error"]["code"] == "payload_too_large"


def test_a_chunked_body_past_the_cap_is_cut_and_the_server_does_not_grow(
        bounded: ServerProcess, place: Site) -> None:
    before = peak_rss_kib(bounded)
    with connect(bounded.port) as sock:
        sock.sendall(head("POST", "/api/widget/v1/session", {
            "Transfer-Encoding": "chunked", "Content-Type": "application/json",
            "Origin": place.origin}))
        answer, _ = stream_chunked(sock, 150 * 1024 * 1024)
    grown = peak_rss_kib(bounded) - before
    assert grown < 30 * 1024, f"the server grew by {grown} KiB for one refused body"
    if answer:  # the server may hang up on the rest before the client reads its answer
        status, body = status_and_json(answer)
        assert status == 413 and body["error"]["code"] == "payload_too_large"


def test_a_chunked_upload_past_the_request_cap_is_refused(bounded: ServerProcess) -> None:
    # a file part of a multipart form (which Starlette would spool to disk whole): 5 MiB to
    # a console form, past WIDGET_MAX_REQUEST_BYTES
    part = (b'--b0undary\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n")
    with connect(bounded.port) as sock:
        sock.sendall(head("POST", "/console/login", {
            "Transfer-Encoding": "chunked",
            "Content-Type": "multipart/form-data; boundary=b0undary"}))
        answer, _ = stream_chunked(sock, 5 * 1024 * 1024, prefix=part)
        status, body = status_and_json(answer)
    assert status == 413 and body["error"]["code"] == "payload_too_large"


def test_a_stalled_body_ends_the_request_with_408(bounded: ServerProcess) -> None:
    with connect(bounded.port) as sock:
        sock.sendall(head("POST", "/api/widget/v1/session", {
            "Content-Length": "100", "Content-Type": "application/json"}) + b'{"site": ')
        status, body = status_and_json(read_all(sock))
    assert status == 408 and body["error"]["code"] == "request_timeout"


async def test_json_nested_as_deep_as_the_parser_allows_is_a_400(
        bounded: ServerProcess, place: Site) -> None:
    async with httpx.AsyncClient(base_url=bounded.url,
                                 headers={"Origin": place.origin}) as client:
        for depth in (500, 900, 990, 999, 5000):
            nested = "[" * depth + "]" * depth
            for body in (nested, f'{{"site": "{place.key}", "user": {nested}}}'):
                answer = await client.post("/api/widget/v1/session", content=body,
                                           headers={"Content-Type": "application/json"})
                assert answer.status_code in (400, 422), (depth, answer.text[:200])


# -- half-open connections


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"])
def test_a_connection_that_never_completes_its_headers_is_closed(
        bounded: ServerProcess, sent: bytes) -> None:
    with connect(bounded.port) as sock:
        sock.sendall(sent)
        assert read_all(sock) == b""  # closed by the server, not by SOCKET_WAIT running out


def test_a_kept_alive_connection_gets_the_deadline_again_for_its_next_request(
        bounded: ServerProcess) -> None:
    with connect(bounded.port) as sock:
        sock.sendall(head("GET", "/healthz", {}))
        first = b""
        while not first.endswith(b'{"status":"ok"}'):
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # and never the rest
        assert read_all(sock) == b""


async def test_websockets_still_live_past_the_http_deadline(
        bounded: ServerProcess, place: Site) -> None:
    visitor = await VisitorClient.connect(bounded, place)
    started = time.monotonic()
    while time.monotonic() - started < 2.5:  # past the 1 s header deadline of the upgrade
        await visitor.frames_until_pong()
        await asyncio.sleep(0.25)  # a pace for the pings, not a wait for a condition
    assert visitor.ws is not None and visitor.ws.close_code is None
    await visitor.close()


# -- integers


async def test_unicode_digits_and_underscores_are_not_numbers(
        bounded: ServerProcess, place: Site) -> None:
    async with httpx.AsyncClient(base_url=bounded.url,
                                 headers={"Origin": place.origin}) as client:
        for limit in ("²", "٣", "1_0", "+5", " 5", "5 ", "9" * 5000):
            found = await client.get("/api/widget/v1/articles",
                                     params={"site": place.key, "limit": limit})
            assert found.status_code == 422, (limit, found.text[:200])
            assert found.json()["error"]["code"] == "invalid_limit"
        assert (await client.get("/api/widget/v1/articles",
                                 params={"site": place.key, "limit": "5"})).status_code == 200
        api = {"Authorization": f"Bearer {place.api_token()}"}
        for value in ("²", "1_0", "٣"):
            listed = await client.get("/api/v1/tickets", params={"limit": value}, headers=api)
            assert listed.status_code == 422, (value, listed.text[:200])
        for path in ("/api/v1/tickets/" + "9" * 5000, "/api/v1/tickets/" + str(2**64),
                     f"/api/widget/v1/articles/{'9' * 5000}?site={place.key}"):
            missing = await client.get(path, headers=api)
            assert missing.status_code == 404, (path[:40], missing.text[:200])


async def test_console_fields_read_only_ascii_digits(bounded: ServerProcess,
                                                      place: Site) -> None:
    console = await console_client(bounded, place)
    try:
        for days in ("²", "1_0", "9" * 5000):
            page = await console.get("/console/reports",
                                     params={"site": place.key, "days": days})
            assert page.status_code < 500, (days, page.text[:200])
            metrics = await console.get("/console/help/metrics.json",
                                        params={"site": place.key, "days": days})
            assert metrics.status_code == 422, (days, metrics.text[:200])
        inbox = await console.get("/console", params={"tier": "²"})
        assert inbox.status_code == 200
        page = await console.get(f"/console/tickets/{place.key}/" + "9" * 5000)
        assert page.status_code == 404
    finally:
        await console.aclose()


async def test_websocket_integers_past_64_bits_get_an_error_frame(
        bounded: ServerProcess, place: Site) -> None:
    visitor = await VisitorClient.connect(bounded, place)
    ack, _ = await visitor.open_request("numbers")
    for seq in (2**63, 2**64, 10**30):
        await visitor.send_frame({"type": "read", "conversation": ack["conversation"],
                                  "seq": seq})
        error = await visitor.recv_type("error")
        assert error["code"] == "invalid_frame", error
    await visitor.close()
    token = (await start_session(bounded, place))["token"]
    async with websockets.connect(bounded.ws_url, origin=place.origin) as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"type": "hello", "site": place.key, "token": token,
                                  "resume": {ack["conversation"]: 2**63}}))
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and error["code"] == "invalid_frame"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


# -- /ws/console


async def console_socket(server: ServerProcess, site: Site) -> Any:
    email = f"bounds-{uuid.uuid4().hex[:6]}@example.com"
    run_cli("agent", "add", "--db", str(server.db), "--email", email, "--password",
            "pw-bounds-1-long", "--site", site.key)
    async with httpx.AsyncClient(base_url=server.url) as client:
        form = (await client.get("/console/login")).text
        token = re.search(r'name="login_token" value="([^"]+)"', form)
        assert token
        await client.post("/console/login", data={
            "email": email, "password": "pw-bounds-1-long", "login_token": token.group(1)})
        cookie = str(client.cookies["widget_console"])
    agent = await websockets.connect(  # type: ignore[arg-type]
        server.url.replace("http", "ws") + "/ws/console", origin=server.url,
        additional_headers={"Cookie": f"widget_console={cookie}"}, max_size=None)
    assert json.loads(await agent.recv())["type"] == "ready"
    return agent


async def test_console_socket_answers_deep_json_and_huge_numbers_with_error_frames(
        bounded: ServerProcess, place: Site) -> None:
    agent = await console_socket(bounded, place)
    for frame in ("[" * 8000 + "]" * 8000, '{"type": "typing", "x": ' + "[" * 8000,
                  json.dumps({"type": "typing", "site": place.key, "ticket": 2**64}),
                  json.dumps({"type": "typing", "site": place.key, "ticket": 10**400}),
                  json.dumps({"type": "typing", "site": place.key, "ticket": True})):
        await agent.send(frame)
        error = json.loads(await agent.recv())
        assert error["type"] == "error", error
    await agent.send('{"type": "ping"}')
    assert json.loads(await agent.recv()) == {"type": "pong"}
    await agent.close()


async def test_console_socket_closes_on_a_binary_frame_with_1003(
        bounded: ServerProcess, place: Site) -> None:
    agent = await console_socket(bounded, place)
    await agent.send(b"\x00\xff binary")
    with pytest.raises(ConnectionClosed) as closed:
        await agent.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


# -- fan-out from visitors to agents


async def test_a_typing_flood_neither_disconnects_agents_nor_reaches_them_in_full(
        bounded: ServerProcess, place: Site) -> None:
    agent = await console_socket(bounded, place)
    visitor = await VisitorClient.connect(bounded, place)
    ack, _ = await visitor.open_request("I type a lot")
    # hundreds of typing frames in one write on each of a few sockets of the same visitor
    sockets = [visitor] + [await VisitorClient.connect(bounded, place, token=visitor.token)
                           for _ in range(3)]
    typing = json.dumps({"type": "typing", "conversation": ack["conversation"]})
    started = time.monotonic()
    for each in sockets:
        assert each.ws is not None
        await asyncio.gather(*(each.ws.send(typing) for _ in range(500)))
    for each in sockets:
        await each.frames_until_pong()  # every typing frame has been handled
    # at most one typing event per TYPING_SECONDS goes through, however long the flood took
    allowed = 1 + int((time.monotonic() - started) / TYPING_SECONDS)
    await visitor.send("a real message", ack["conversation"])
    frames = []
    while (frame := json.loads(await asyncio.wait_for(agent.recv(), 10)))["type"] != "message" \
            or frame["message"]["body"] != "a real message":
        frames.append(frame)
    assert 1 <= sum(f["type"] == "typing" for f in frames) <= allowed, (len(frames), allowed)
    for each in sockets:
        await each.close()
    await agent.close()


# -- new requests per address


async def test_new_requests_per_address_across_fresh_visitors(
        bounded: ServerProcess, place: Site) -> None:
    ip = next(_addresses)
    forwarded = {"X-Forwarded-For": ip, "Origin": place.origin}
    async with httpx.AsyncClient(base_url=bounded.url, headers=forwarded) as client:
        async def fresh_visitor_ticket() -> httpx.Response:
            session = await client.post("/api/widget/v1/session", json={"site": place.key})
            return await client.post("/api/widget/v1/messages", json={
                "site": place.key, "token": session.json()["token"], "conversation": None,
                "client_msg_id": str(uuid.uuid4()), "body": "fresh visitor, new ticket"})

        answers = [await fresh_visitor_ticket() for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[3].json()["error"]["code"] == "rate_limited"
        assert int(answers[3].headers["Retry-After"]) > 0
        # the websocket way in from that address is limited too
        token = (await client.post("/api/widget/v1/session",
                                   json={"site": place.key})).json()["token"]
    async with websockets.connect(bounded.ws_url, origin=place.origin,  # type: ignore[arg-type]
                                  additional_headers={"X-Forwarded-For": ip}) as ws:
        await ws.send(json.dumps({"type": "hello", "site": place.key, "token": token}))
        assert json.loads(await ws.recv())["type"] == "ready"
        await ws.send(json.dumps({"type": "send", "conversation": None, "client_msg_id": "w1",
                                  "body": "one more"}))
        refused = json.loads(await ws.recv())
        assert refused["type"] == "error" and refused["code"] == "rate_limited"
    # and the Help Form, whose every page is a fresh visitor
    form = await post_help_form(bounded, place, ip, "A request by the form")
    assert form.status_code == 429 and "A request by the form" in form.text
    # and another address is not
    async with httpx.AsyncClient(base_url=bounded.url, headers={
            "X-Forwarded-For": next(_addresses), "Origin": place.origin}) as other:
        session = await other.post("/api/widget/v1/session", json={"site": place.key})
        sent = await other.post("/api/widget/v1/messages", json={
            "site": place.key, "token": session.json()["token"], "conversation": None,
            "client_msg_id": str(uuid.uuid4()), "body": "another network"})
        assert sent.status_code == 200


# -- control characters


CONTROLS = "\u0000\u0001\u0007\u001b\u007f\u0085\u0080\u009f"


async def test_control_characters_never_reach_the_store_or_the_console(
        bounded: ServerProcess, place: Site) -> None:
    ip = next(_addresses)
    session = await start_session(bounded, place, user={
        "name": f"Ann\u0000{CONTROLS}\nLee", "email": "ann\u0085@example.com"})
    assert session["visitor"]["name"] == "Ann Lee"
    assert session["visitor"]["email"] == "ann@example.com"
    async with httpx.AsyncClient(base_url=bounded.url, headers={
            "X-Forwarded-For": ip, "Origin": place.origin}) as client:
        sent = await client.post("/api/widget/v1/messages", json={
            "site": place.key, "token": session["token"], "conversation": None,
            "client_msg_id": "c1", "subject": f"Sub{CONTROLS}ject\nline",
            "body": f"line one{CONTROLS}\r\nline\ttwo"})
        assert sent.status_code == 200, sent.text
        ack = sent.json()["ack"]
    assert ack["ticket"]["subject"] == "Subject line"
    visitor = await VisitorClient.connect(bounded, place, token=session["token"])
    await visitor.send(f"by socket{CONTROLS}", ack["conversation"])
    assert (await visitor.recv_type("ack"))["type"] == "ack"
    await visitor.close()
    number = ack["ticket"]["number"]
    async with httpx.AsyncClient(base_url=bounded.url, headers={
            "Authorization": f"Bearer {place.api_token()}"}) as api:
        reply = await api.post(f"/api/v1/tickets/{number}/messages",
                               json={"body": f"agent{CONTROLS} reply"})
        assert reply.status_code == 201
        stored = (await api.get(f"/api/v1/tickets/{number}")).json()
    bodies = [m["body"] for m in stored["messages"]]
    assert "line one\nline\ttwo" in bodies and "by socket" in bodies
    assert "agent reply" in bodies
    console = await console_client(bounded, place)
    try:
        page = await console.get(f"/console/tickets/{place.key}/{number}")
        csrf = csrf_of(page.text)
        await console.post(f"/console/tickets/{place.key}/{number}/reply",
                           data={"csrf": csrf, "body": f"form{CONTROLS} reply"})
        page = await console.get(f"/console/tickets/{place.key}/{number}")
        inbox = await console.get("/console")
    finally:
        await console.aclose()
    for html in (page.text, inbox.text):
        assert "Ann Lee" in html or html is inbox.text
        for control in CONTROLS:
            assert control not in html, repr(control)
            assert f"&#{ord(control)};" not in html and f"&#x{ord(control):x};" not in html
    assert "form reply" in page.text
