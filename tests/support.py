"""Test support: a real server subprocess, CLI helpers and a real websocket visitor client."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

RECV_TIMEOUT = 10.0  # generous: the whole suite may run beside other load


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "widget_server", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"widget-server {' '.join(args)} failed:\n{result.stderr}")
    return result


@dataclass
class Site:
    key: str
    origin: str
    db: Path

    def api_token(self, name: str = "tests") -> str:
        return run_cli("token", "create", "--db", str(self.db), "--name", name,
                       "--site", self.key).stdout.strip()


def identity_secret(site: Site) -> str:
    with sqlite3.connect(f"file:{site.db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT identity_secret FROM sites WHERE key = ?",
                           (site.key,)).fetchone()
    conn.close()
    return str(row[0])


def user_hash(secret: str, user_id: str) -> str:
    """What a host backend signs a user id with (docs/identity.md)."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def create_site(db: Path, origin: str | None = None, name: str | None = None) -> Site:
    origin = origin or f"https://shop-{uuid.uuid4().hex[:8]}.test"
    name = name or f"Site {uuid.uuid4().hex[:8]}"
    out = run_cli("init", "--db", str(db), "--site-name", name, "--origin", origin).stdout
    key = next(line.split(": ", 1)[1] for line in out.splitlines()
               if line.startswith("site key: "))
    return Site(key=key, origin=origin, db=db)


class ServerProcess:
    """`widget-server serve` on a free loopback port, as a real subprocess."""

    def __init__(self, db: Path, env: dict[str, str] | None = None) -> None:
        self.db = db
        self.port = free_port()
        # tests change sites from other processes and expect it at once: no site cache
        # (tests/web/test_site_cache.py runs it on)
        # nor a limit of new requests per address: every test's visitors come from 127.0.0.1
        # (tests/web/test_bounded_input.py sets one)
        self.env = {**os.environ, "WIDGET_LOG_LEVEL": "warning",
                    "WIDGET_SITE_CACHE_SECONDS": "0", "WIDGET_REQUESTS_PER_IP_HOUR": "0",
                    **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = db.with_suffix(".log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/widget"

    def start(self, timeout: float = 20.0) -> ServerProcess:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "widget_server", "serve", "--db", str(self.db),
                 "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=self.env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)  # polling for the port to open; the condition is health
        raise RuntimeError("server did not become healthy in time")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing; what is committed must survive."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


class TimeShift:
    """Moves a running server's clock forward through WIDGET_CLOCK_OFFSET_FILE."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds = 0.0
        path.write_text("0")

    @property
    def env(self) -> dict[str, str]:
        return {"WIDGET_CLOCK_OFFSET_FILE": str(self.path)}

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
        self.path.write_text(repr(self.seconds))


async def start_session(server: ServerProcess, site: Site, token: str | None = None,
                        user: dict[str, Any] | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post("/api/widget/v1/session",
                                     json={"site": site.key, "token": token, "user": user},
                                     headers={"Origin": site.origin})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


class VisitorClient:
    """One browser tab of a visitor: a real websocket speaking protocol v1."""

    def __init__(self, server: ServerProcess, site: Site, token: str) -> None:
        self.server, self.site, self.token = server, site, token
        self.ws: ClientConnection | None = None
        self.ready: dict[str, Any] = {}

    @classmethod
    async def connect(cls, server: ServerProcess, site: Site, token: str | None = None,
                      resume: dict[str, int] | None = None) -> VisitorClient:
        if token is None:
            token = (await start_session(server, site))["token"]
        client = cls(server, site, token)
        await client.open(resume)
        return client

    async def open(self, resume: dict[str, int] | None = None) -> dict[str, Any]:
        self.ws = await websockets.connect(self.server.ws_url, origin=self.site.origin)  # type: ignore[arg-type]
        await self.send_frame({"type": "hello", "site": self.site.key, "token": self.token,
                               "resume": resume or {}})
        self.ready = await self.recv()
        assert self.ready["type"] == "ready", self.ready
        return self.ready

    async def send_frame(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(frame))

    async def send(self, body: str, conversation: str | None = None,
                   client_msg_id: str | None = None, **extra: Any) -> str:
        client_msg_id = client_msg_id or str(uuid.uuid4())
        await self.send_frame({"type": "send", "conversation": conversation,
                               "client_msg_id": client_msg_id, "body": body, **extra})
        return client_msg_id

    async def recv(self, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
        assert self.ws is not None
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return frame

    async def recv_type(self, *types: str, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
        """The next frame of one of ``types``, skipping frames of other types."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            frame = await self.recv(max(remaining, 0.001))
            if frame["type"] in types:
                return frame

    async def frames_until_pong(self) -> list[dict[str, Any]]:
        """Every frame that arrives before the answer to a ping sent now."""
        await self.send_frame({"type": "ping"})
        frames = []
        while (frame := await self.recv())["type"] != "pong":
            frames.append(frame)
        return frames

    async def open_request(self, body: str = "Export to CSV fails", **extra: Any
                           ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Send a new request; return its ack and the system acknowledgement message."""
        client_msg_id = await self.send(body, **extra)
        ack = await self.recv()
        assert ack["type"] == "ack" and ack["client_msg_id"] == client_msg_id, ack
        receipt = await self.recv_type("message")
        return ack, receipt

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


class Api:
    """The REST API with a bearer token."""

    def __init__(self, server: ServerProcess, token: str) -> None:
        self.client = httpx.AsyncClient(base_url=server.url,
                                        headers={"Authorization": f"Bearer {token}"})

    async def reply(self, number: int, body: str, internal: bool = False) -> dict[str, Any]:
        response = await self.client.post(f"/api/v1/tickets/{number}/messages",
                                          json={"body": body, "internal": internal})
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    async def aclose(self) -> None:
        await self.client.aclose()


async def console_client(server: ServerProcess, site: Site, role: str = "admin"
                         ) -> httpx.AsyncClient:
    """An httpx client signed in to the console as a new agent of ``site``."""
    email = f"agent-{uuid.uuid4().hex[:8]}@example.com"
    run_cli("agent", "add", "--db", str(server.db), "--email", email, "--password",
            "pw-console-1", "--role", role, "--site", site.key)
    client = httpx.AsyncClient(base_url=server.url)
    form = (await client.get("/console/login")).text
    token = re.search(r'name="login_token" value="([^"]+)"', form)
    assert token, "the sign-in form carries a login token"
    response = await client.post("/console/login", data={
        "email": email, "password": "pw-console-1", "login_token": token.group(1)})
    assert response.status_code == 303, response.text
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'data-csrf="([^"]+)"', html)
    assert found, "console pages carry the CSRF token on <body>"
    return found.group(1)
