"""The server log holds what an operator can act on: no errors for what clients ordinarily
do, and no secret or capability at any level, read from a real server's log file."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.frames import Close, Frame, Opcode

from tests.support import (
    Api,
    ServerProcess,
    Site,
    VisitorClient,
    create_site,
    identity_secret,
    run_cli,
    start_session,
    user_hash,
)

pytestmark = pytest.mark.anyio

HANDSHAKE = ("GET /ws/widget HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n")


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own that logs everything, down to debug."""
    process = ServerProcess(tmp_path / "widget.db", env={"WIDGET_LOG_LEVEL": "debug"})
    create_site(process.db, origin="https://shop.test")
    process.start()
    yield process
    process.stop()


def site_of(server: ServerProcess) -> Site:
    out = run_cli("site", "show", "--db", str(server.db)).stdout
    key = re.search(r"site_[A-Za-z0-9_-]+", out)
    assert key, out
    return Site(key=key.group(0), origin="https://shop.test", db=server.db)


def masked(opcode: Opcode, payload: bytes) -> bytes:
    return Frame(opcode, payload).serialize(mask=True, extensions=[])


def raw_socket(server: ServerProcess) -> socket.socket:
    """An opened /ws/widget connection, written to with exact bytes."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(HANDSHAKE.format(port=server.port, origin="https://shop.test").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server writes until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def assert_clean(server: ServerProcess) -> None:
    log = server.log_text()
    for bad in ("ERROR", "Traceback", "Exception", " 500", "unhandled error"):
        assert bad not in log, log


async def served_after(server: ServerProcess) -> None:
    """A request answered after the hang-ups: the log has everything about them by now
    (one worker, requests are handled in order of arrival on the loop)."""
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/healthz")).status_code == 200


@pytest.mark.parametrize("path,content_type", [
    ("/api/widget/v1/session", "application/json"),
    ("/api/widget/v1/messages", "application/json"),
    ("/api/widget/v1/events", "application/json"),
    ("/help/new", "application/x-www-form-urlencoded"),
    ("/console/login", "application/x-www-form-urlencoded"),
])
async def test_a_client_hanging_up_mid_body_is_not_an_error(
    logged: ServerProcess, path: str, content_type: str
) -> None:
    sock = socket.create_connection(("127.0.0.1", logged.port), timeout=10)
    sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://shop.test\r\n"
                  f"Content-Type: {content_type}\r\nContent-Length: 1000\r\n\r\n").encode()
                 + b'{"site": "')
    time.sleep(0.2)  # let the server start reading the body; the test waits on no result
    sock.close()
    # the server's read of the body ends when it sees the hang-up; a second request on a
    # fresh connection comes after it, so its log lines come after the hang-up's
    for _ in range(3):
        await served_after(logged)
    assert_clean(logged)


async def test_a_frame_and_a_close_in_one_write_are_not_an_error(logged: ServerProcess) -> None:
    site = site_of(logged)
    token = (await start_session(logged, site))["token"]
    sock = raw_socket(logged)
    sock.sendall(masked(Opcode.TEXT, json.dumps(
        {"type": "hello", "site": site.key, "token": token}).encode()))
    ready = b""
    while b'"ready"' not in ready:
        ready += sock.recv(65536)
    close = masked(Opcode.CLOSE, Close(1000, "").serialize())
    send = json.dumps({"type": "send", "conversation": None,
                       "client_msg_id": str(uuid.uuid4()), "body": "hi"}).encode()
    sock.sendall(masked(Opcode.TEXT, send) + close)  # the answer finds the socket closing
    read_until_closed(sock)
    sock.close()
    for frames in (masked(Opcode.TEXT, b'{"type": "ping"}'), masked(Opcode.TEXT, b"nope"),
                   masked(Opcode.BINARY, b"\x00"), masked(Opcode.TEXT, b"\xff\xfe")):
        sock = raw_socket(logged)  # before hello, and without a hello at all
        sock.sendall(frames + close)
        read_until_closed(sock)
        sock.close()
    await served_after(logged)
    assert_clean(logged)


async def test_a_binary_frame_on_the_console_socket_is_closed_not_logged(
    logged: ServerProcess,
) -> None:
    site = site_of(logged)
    email, password = f"a-{uuid.uuid4().hex[:6]}@example.com", "pw-binary-1-long"
    run_cli("agent", "add", "--db", str(logged.db), "--email", email, "--password", password,
            "--site", site.key)
    async with httpx.AsyncClient(base_url=logged.url) as client:
        form = (await client.get("/console/login")).text
        login = re.search(r'name="login_token" value="([^"]+)"', form)
        assert login
        await client.post("/console/login", data={
            "email": email, "password": password, "login_token": login.group(1)})
        cookie = client.cookies["widget_console"]
    async with websockets.connect(
            f"ws://127.0.0.1:{logged.port}/ws/console", origin=logged.url,  # type: ignore[arg-type]
            additional_headers={"Cookie": f"widget_console={cookie}"}) as agent:
        assert '"ready"' in str(await agent.recv())
        await agent.send(b"\x00\x01")
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await asyncio.wait_for(agent.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
    await served_after(logged)
    assert_clean(logged)


async def test_no_secret_reaches_the_log_at_any_level(logged: ServerProcess) -> None:
    """Follow links, visitor tokens, API tokens, passwords, session cookies, user hashes:
    every flow that carries one, then the whole log searched for each."""
    site = site_of(logged)
    secrets: list[str] = []
    async with httpx.AsyncClient(base_url=logged.url) as browser:
        form = (await browser.get("/help/new", params={"site": site.key})).text
        fields = {name: re.search(rf'name="{name}" value="([^"]*)"', form).group(1)  # type: ignore[union-attr]
                  for name in ("site", "form_token", "client_msg_id")}
        posted = await browser.post("/help/new", data={
            **fields, "name": "Ada", "email": "ada@example.com", "subject": "Export",
            "description": "It fails.", "severity": "normal"})
        link = posted.headers["location"]
        follow = link.rsplit("/", 1)[1]
        secrets.append(follow)
        assert (await browser.get(link)).status_code == 200
        await browser.post(link, data={"body": "more detail"})
        await browser.get(link + "?token=" + follow)  # a capability in a query, too
        await browser.get(f"/help/requests/{follow}/nothing")

    user_secret = identity_secret(site)
    given_hash = user_hash(user_secret, "user-7")
    secrets += [user_secret, given_hash]
    session = await start_session(logged, site, user={"id": "user-7", "hash": given_hash})
    token = session["token"]
    secrets.append(token)
    visitor = await VisitorClient.connect(logged, site, token)
    ack, _ = await visitor.open_request("please help")
    await visitor.close()
    async with httpx.AsyncClient(base_url=logged.url, headers={"Origin": site.origin}) as widget:
        await widget.get("/api/widget/v1/access-grants", params={"site": site.key},
                         headers={"Authorization": f"Bearer {token}"})
        await widget.get("/api/widget/v1/access-grants",
                         params={"site": site.key, "token": token})
        await widget.post("/api/widget/v1/messages", json={
            "site": site.key, "token": token, "client_msg_id": str(uuid.uuid4()),
            "body": "via http", "conversation": ack["conversation"]})

    api_token = site.api_token()
    secrets.append(api_token)
    api = Api(logged, api_token)
    await api.reply(ack["ticket"]["number"], "on it")
    await api.client.get("/api/v1/tickets", params={"access_token": api_token})
    await api.aclose()

    email, password = f"b-{uuid.uuid4().hex[:6]}@example.com", "pw-" + uuid.uuid4().hex
    secrets.append(password)
    run_cli("agent", "add", "--db", str(logged.db), "--email", email, "--password", password,
            "--site", site.key)
    async with httpx.AsyncClient(base_url=logged.url) as console:
        form = (await console.get("/console/login")).text
        login = re.search(r'name="login_token" value="([^"]+)"', form)
        assert login
        await console.post("/console/login", data={
            "email": email, "password": password + "x", "login_token": login.group(1)})
        form = (await console.get("/console/login")).text
        login = re.search(r'name="login_token" value="([^"]+)"', form)
        assert login
        await console.post("/console/login", data={
            "email": email, "password": password, "login_token": login.group(1)})
        cookie = console.cookies["widget_console"]
        secrets.append(cookie)
        await console.get("/console")
    async with websockets.connect(
            f"ws://127.0.0.1:{logged.port}/ws/console", origin=logged.url,  # type: ignore[arg-type]
            additional_headers={"Cookie": f"widget_console={cookie}"}) as agent:
        await agent.recv()

    await served_after(logged)
    log = logged.log_text()
    assert "/help/requests/[redacted]" in log  # the lines are there, without the secret
    for secret in secrets:
        assert secret not in log, f"a secret in the log: {secret[:8]}..."
        for part in (secret[:16], secret[-16:]):
            assert part not in log, f"part of a secret in the log: {secret[:8]}..."
