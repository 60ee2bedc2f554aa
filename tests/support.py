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
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from widget_server.api_tokens import integration_token
from widget_server.config import Settings
from widget_server.origins import parse_origin
from widget_server.passwords import hash_password
from widget_server.store import Store, open_store

if TYPE_CHECKING:
    from tests.inprocess import InProcess, InProcessWebSocket

T = TypeVar("T")
RECV_TIMEOUT = 10.0  # generous: the whole suite may run beside other load
ROOT = Path(__file__).resolve().parents[1]
WIDGET_SERVER = [sys.executable, "-m", "widget_server"]


def launcher_env(launcher: list[str]) -> dict[str, str]:
    """The environment a launcher needs: tests.clocked imports from the repository's root."""
    if launcher == WIDGET_SERVER:
        return {}
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


def without_request_id(response: httpx.Response) -> str:
    """The body without its request id: random hex may hold any run of digits."""
    return response.text.replace(response.headers.get("x-request-id", "\0"), "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = True,
            launcher: list[str] = WIDGET_SERVER) -> subprocess.CompletedProcess[str]:
    """``widget-server ARGS``; ``launcher`` may be a TimeShift's (tests/clocked.py)."""
    result = subprocess.run(
        [*launcher, *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, **launcher_env(launcher), **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"widget-server {' '.join(args)} failed:\n{result.stderr}")
    return result


@dataclass
class Site:
    key: str
    origin: str
    db: Path | str  # a SQLite file or a postgresql:// URL

    def api_token(self, name: str = "tests") -> str:
        return with_store(self.db, lambda store: store_api_token(store, self, name))


def identity_secret(site: Site) -> str:
    async def read(store: Store) -> str:
        found = await store.get_site_by_key(site.key)
        assert found is not None, site
        return found.identity_secret

    return with_store(site.db, read)


def user_hash(secret: str, user_id: str) -> str:
    """What a host backend signs a user id with (docs/identity.md)."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def create_site(db: Path | str, origin: str | None = None, name: str | None = None) -> Site:
    """A site, as `widget-server init --site-name NAME --origin ORIGIN` makes it."""
    return with_store(db, lambda store: store_site(store, db, origin, name))


def with_store(db: Path | str, work: Callable[[Store], Awaitable[T]]) -> T:
    """``work`` done on the database as a `widget-server` command does it (the store opened,
    used and closed by another connection than the server's), without starting another
    Python for it: on a thread with a loop of its own, so sync tests and coroutines alike
    can call it. tests/test_cli.py runs the commands themselves."""
    async def run() -> T:
        store = open_store(Settings(db=str(db)))
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


async def store_site(store: Store, db: Path | str, origin: str | None = None,
                     name: str | None = None) -> Site:
    """What `widget-server init --site-name NAME --origin ORIGIN` does."""
    origin = origin or f"https://shop-{uuid.uuid4().hex[:8]}.test"
    site, _ = await store.ensure_site(name or f"Site {uuid.uuid4().hex[:8]}",
                                      [parse_origin(origin)])
    return Site(key=site.key, origin=origin, db=db)


async def store_api_token(store: Store, site: Site, name: str = "tests") -> str:
    """What `widget-server token create --site KEY --name NAME` does."""
    found = await store.get_site_by_key(site.key)
    assert found is not None, site
    return await integration_token(store, found, name)


async def store_agent(store: Store, email: str, password: str, role: str = "agent",
                      sites: tuple[str, ...] = (), tier: int | None = None) -> int:
    """What `widget-server agent add --email E --password P --role R --site KEY...` does."""
    site_ids = []
    for key in sites:
        found = await store.get_site_by_key(key)
        assert found is not None, key
        site_ids.append(found.id)
    agent, created = await store.ensure_agent(email, email.split("@")[0], role,
                                              hash_password(password))
    await store.update_agent(agent.id, role=role, tier=tier,
                             site_ids=site_ids if sites or created else None, active=True)
    if not created:
        await store.set_agent_password(email, hash_password(password))
    return agent.id


class ServerProcess:
    """`widget-server serve` on a free loopback port, as a real subprocess; ``launcher`` may
    be a TimeShift's, for a server whose clock the test moves (tests/clocked.py)."""

    def __init__(self, db: Path | str, env: dict[str, str] | None = None,
                 launcher: list[str] = WIDGET_SERVER, log: Path | None = None) -> None:
        """``db``: a SQLite file, or a postgresql:// URL (then ``log`` names the log file)."""
        self.db = db
        self.port = free_port()
        self.launcher = launcher
        # tests change sites from other processes and expect it at once: no site cache
        # (tests/web/test_site_cache.py runs it on)
        # nor a limit of new requests per address: every test's visitors come from 127.0.0.1
        # (tests/web/test_bounded_input.py sets one)
        self.env = {**os.environ, "WIDGET_LOG_LEVEL": "warning",
                    "WIDGET_SITE_CACHE_SECONDS": "0", "WIDGET_REQUESTS_PER_IP_HOUR": "0",
                    **launcher_env(launcher), **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = log or Path(db).with_suffix(".log")
        if "://" in str(db):  # attachment files beside the log, not in the working folder
            self.env.setdefault("WIDGET_DATA_DIR", str(self.log.with_suffix(".data")))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/widget"

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An httpx client of the server (close it, or use it with ``async with``)."""
        return httpx.AsyncClient(base_url=self.url, **kwargs)

    async def ws_connect(self, origin: str | None, path: str = "/ws/widget"
                         ) -> ClientConnection:
        url = f"ws://127.0.0.1:{self.port}{path}"
        return await websockets.connect(url, origin=origin)  # type: ignore[arg-type]

    async def add_agent(self, email: str, password: str, role: str = "agent",
                        sites: tuple[str, ...] = (), tier: int | None = None) -> int:
        """As `widget-server agent add` does it, from another connection."""
        return await asyncio.to_thread(with_store, self.db, lambda store: store_agent(
            store, email, password, role, sites, tier))

    def start(self, timeout: float = 20.0) -> ServerProcess:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.launcher, "serve", "--db", str(self.db), "--port", str(self.port)],
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


if TYPE_CHECKING:
    Server = ServerProcess | InProcess  # what the helpers below take


async def start_session(server: Server, site: Site, token: str | None = None,
                        user: dict[str, Any] | None = None) -> dict[str, Any]:
    async with server.client() as client:
        response = await client.post("/api/widget/v1/session",
                                     json={"site": site.key, "token": token, "user": user},
                                     headers={"Origin": site.origin})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


class VisitorClient:
    """One browser tab of a visitor: a real websocket speaking protocol v1."""

    def __init__(self, server: Server, site: Site, token: str) -> None:
        self.server, self.site, self.token = server, site, token
        self.ws: ClientConnection | InProcessWebSocket | None = None
        self.ready: dict[str, Any] = {}

    @classmethod
    async def connect(cls, server: Server, site: Site, token: str | None = None,
                      resume: dict[str, int] | None = None) -> VisitorClient:
        if token is None:
            token = (await start_session(server, site))["token"]
        client = cls(server, site, token)
        await client.open(resume)
        return client

    async def open(self, resume: dict[str, int] | None = None) -> dict[str, Any]:
        self.ws = await self.server.ws_connect(self.site.origin)
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

    def __init__(self, server: Server, token: str) -> None:
        self.client = server.client(headers={"Authorization": f"Bearer {token}"})

    async def reply(self, number: int, body: str, internal: bool = False) -> dict[str, Any]:
        response = await self.client.post(f"/api/v1/tickets/{number}/messages",
                                          json={"body": body, "internal": internal})
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    async def aclose(self) -> None:
        await self.client.aclose()


async def console_client(server: Server, site: Site, role: str = "admin"
                         ) -> httpx.AsyncClient:
    """An httpx client signed in to the console as a new agent of ``site``."""
    email = f"agent-{uuid.uuid4().hex[:8]}@example.com"
    await server.add_agent(email, "pw-console-1-long", role, (site.key,))
    client = server.client()
    form = (await client.get("/console/login")).text
    token = re.search(r'name="login_token" value="([^"]+)"', form)
    assert token, "the sign-in form carries a login token"
    response = await client.post("/console/login", data={
        "email": email, "password": "pw-console-1-long", "login_token": token.group(1)})
    assert response.status_code == 303, response.text
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'data-csrf="([^"]+)"', html)
    assert found, "console pages carry the CSRF token on <body>"
    return found.group(1)


def service_missing(name: str, reason: str) -> NoReturn:
    """A service a test needs (PostgreSQL, Redis, an S3 server) is not there: skip with
    the reason shown, or fail when WIDGET_REQUIRE_SERVICES=1 (CI that provides them)."""
    if os.environ.get("WIDGET_REQUIRE_SERVICES") == "1":
        pytest.fail(f"WIDGET_REQUIRE_SERVICES=1 but {name} is not available: {reason}")
    pytest.skip(f"{name} is not available ({reason}); set WIDGET_REQUIRE_SERVICES=1 to fail")
