"""The app in the test's own process: ``create_app`` on a SQLite file of the test's own, its
lifespan run, HTTP through httpx's ASGI transport and a clock the test moves by hand.

For tests of HTTP behaviour that need no separate process: no server to start, no port, no
subprocess per site, agent or token, and time moved instead of waited for. What needs the real
thing stays on ``ServerProcess`` (tests/support.py): websocket protocol tests, durability
(kill -9), the CLI and the browser. ``InProcess`` offers what ``ServerProcess`` does (``db``,
``url``, ``client()``, ``ws_connect()``, ``add_agent()``), so the helpers of tests/support.py
(``Api``, ``VisitorClient``, ``start_session``, ``console_client``) take either.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from tests.support import RECV_TIMEOUT, Site, store_agent, store_api_token, store_site
from widget_server.app import create_app
from widget_server.config import Settings
from widget_server.runtime import Runtime
from widget_server.store import Store

CLIENT = ("127.0.0.1", 50000)  # the peer address the app sees, as for a loopback server


class MovableClock:
    """The system clock plus an offset the test moves forward: instants keep their order
    (tickets opened one after another sort as they do on a server), and a test skips hours
    without waiting for them."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta | float) -> None:
        self.offset += delta if isinstance(delta, timedelta) else timedelta(seconds=delta)


class InProcessClosed(Exception):
    """The app closed the in-process websocket."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"websocket closed: {code} {reason}".strip())
        self.code, self.reason = code, reason


class InProcessWebSocket:
    """A websocket client that speaks ASGI to the app directly: for tests whose subject is
    HTTP but who open requests through the widget first. Frames are not encoded, so limits
    kept by uvicorn (frame size, pings) are not here; test those on ``ServerProcess``."""

    def __init__(self, app: Starlette, path: str, origin: str | None) -> None:
        headers = [(b"host", b"testserver")]
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        self.scope: dict[str, Any] = {
            "type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "scheme": "ws", "server": ("testserver", 80), "client": CLIENT,
            "root_path": "", "path": path, "raw_path": path.encode(), "query_string": b"",
            "headers": headers, "subprotocols": []}
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._closed: InProcessClosed | None = None
        self._task = asyncio.create_task(app(self.scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        return await self._to_app.get()

    async def _send(self, message: dict[str, Any]) -> None:
        await self._from_app.put(message)

    async def _next(self, timeout: float) -> dict[str, Any]:
        if self._closed is not None:
            raise self._closed
        getter = asyncio.ensure_future(self._from_app.get())
        done, _ = await asyncio.wait({getter, self._task}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if getter not in done:
            getter.cancel()
            if self._task in done:
                self._task.result()  # the app's exception, if it raised one
                self._closed = InProcessClosed(1006, "the app returned")
                raise self._closed
            raise TimeoutError("no message from the app in time")
        message: dict[str, Any] = getter.result()
        if message["type"] == "websocket.close":
            self._closed = InProcessClosed(message.get("code", 1000), message.get("reason", ""))
            self._to_app.put_nowait({"type": "websocket.disconnect",
                                     "code": self._closed.code})
            raise self._closed
        return message

    async def accept(self) -> None:
        await self._to_app.put({"type": "websocket.connect"})
        message = await self._next(RECV_TIMEOUT)
        assert message["type"] == "websocket.accept", message

    async def send(self, text: str) -> None:
        await self._to_app.put({"type": "websocket.receive", "text": text})

    async def recv(self) -> str:
        message = await self._next(RECV_TIMEOUT)
        assert message["type"] == "websocket.send", message
        return str(message.get("text") or message.get("bytes", b"").decode())

    async def close(self, code: int = 1000) -> None:
        if self._closed is None:
            self._closed = InProcessClosed(code)
            await self._to_app.put({"type": "websocket.disconnect", "code": code})
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, RECV_TIMEOUT)


class InProcess:
    """One app, its own database file and clock; see ``in_process``."""

    url = "http://testserver"

    def __init__(self, app: Starlette, asgi: Any, db: Path | str, clock: MovableClock) -> None:
        self.app, self._asgi, self.db, self.clock = app, asgi, db, clock

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    @property
    def store(self) -> Store:
        return self.runtime.store

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An httpx client of the app (close it, or use it with ``async with``)."""
        transport = httpx.ASGITransport(app=self._asgi, client=CLIENT)
        return httpx.AsyncClient(transport=transport, base_url=self.url, **kwargs)

    async def ws_connect(self, origin: str | None, path: str = "/ws/widget"
                         ) -> InProcessWebSocket:
        socket = InProcessWebSocket(self._asgi, path, origin)
        await socket.accept()
        return socket

    async def create_site(self, origin: str | None = None, name: str | None = None) -> Site:
        """A site, as `widget-server init --site-name NAME --origin ORIGIN` makes it."""
        return await store_site(self.store, self.db, origin, name)

    async def api_token(self, site: Site, name: str = "tests") -> str:
        """As `widget-server token create --site KEY --name NAME` makes it."""
        return await store_api_token(self.store, site, name)

    async def add_agent(self, email: str, password: str, role: str = "agent",
                        sites: tuple[str, ...] = (), tier: int | None = None) -> int:
        """As `widget-server agent add --email E --password P --role R --site KEY...`."""
        return await store_agent(self.store, email, password, role, sites, tier)


@contextlib.asynccontextmanager
async def in_process(db: Path | str, env: Mapping[str, str] | None = None
                     ) -> AsyncIterator[InProcess]:
    """``create_app`` on ``db`` with its lifespan running. ``env`` holds WIDGET_* settings as
    a server's environment would. As on ``ServerProcess`` the site cache is off, because tests
    change sites and expect it at once; commits skip the fsync of synchronous=full (which
    survives power loss, not what these tests are about): a new app a test starts sooner."""
    defaults = {"WIDGET_SITE_CACHE_SECONDS": "0", "WIDGET_SQLITE_SYNCHRONOUS": "normal"}
    settings = Settings.from_env({**defaults, **(env or {})}, db=str(db))
    clock = MovableClock()
    app = create_app(settings, clock)
    # generous timeouts: the whole suite may run beside other load
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        yield InProcess(app, manager.app, db, clock)

