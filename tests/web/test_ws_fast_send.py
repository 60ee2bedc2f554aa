"""WIDGET_WS_FAST_SEND: the whole server with web/ws_send.py's direct writes on and off.

The server's app runs under a real uvicorn in a thread of this process, wrapped in an ASGI
layer that counts the frames sent through ASGI, so the test sees which way they went; the
visitor and the agent's console are real websocket clients, the database a real SQLite file.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
import websockets
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.support import Api, ServerProcess, VisitorClient, create_site, run_cli
from tests.web.test_console_live import signed_in_cookie
from widget_server.app import create_app
from widget_server.config import Settings


class CountingSends:
    """The app, with the websocket frames that go through ASGI counted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.sends = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counting(message: Message) -> None:
            if message["type"] == "websocket.send":
                self.sends += 1
            await send(message)

        await self.app(scope, receive, counting)


@contextlib.contextmanager
def serving(app: ASGIApp, port: int) -> Iterator[None]:
    config = uvicorn.Config(  # as widget_server.cli._serve configures it
        app, host="127.0.0.1", port=port, ws="websockets-sansio", ws_per_message_deflate=False,
        lifespan="on", log_level="warning",
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)  # polling for uvicorn's own started flag: the condition
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize("fast", ["1", "0"], ids=["on", "off"])
def test_chat_and_console_work_with_fast_send_on_and_off(tmp_path: Path, fast: str) -> None:
    db = tmp_path / "widget.db"
    site = create_site(db)
    run_cli("agent", "add", "--db", str(db), "--email", "fast@example.com",
            "--password", "pw-fast-1-long", "--site", site.key)
    token = site.api_token()
    settings = Settings.from_env({"WIDGET_DB": str(db), "WIDGET_WS_FAST_SEND": fast,
                                  "WIDGET_SITE_CACHE_SECONDS": "0", "WIDGET_SCHEDULER": "off",
                                  "WIDGET_LOG_LEVEL": "warning"})
    app = CountingSends(create_app(settings))
    address = ServerProcess(db)  # not started: the clients' addresses for the thread's port

    async def chat() -> int:
        """At least as many frames as the clients read, all sent by the server."""
        cookie = await signed_in_cookie(address, "fast@example.com", "pw-fast-1-long")
        agent = await websockets.connect(
            f"ws://127.0.0.1:{address.port}/ws/console", origin=address.url,  # type: ignore[arg-type]
            additional_headers={"Cookie": f"widget_console={cookie}"})
        visitor = await VisitorClient.connect(address, site)  # one frame read: ready
        api = Api(address, token)
        try:
            assert json.loads(await agent.recv())["type"] == "ready"
            await visitor.open_request("Fast or not")  # two frames: the ack and the receipt
            read = 4
            while (frame := json.loads(await agent.recv()))["type"] != "message" or \
                    frame["message"]["body"] != "Fast or not":
                read += 1
            await api.reply(1, "Hello")
            assert (await visitor.recv_type("message"))["body"] == "Hello"
            return read + 2
        finally:
            await api.aclose()
            await agent.close()
            await visitor.close()

    with serving(app, address.port):
        received = asyncio.run(chat())
    if fast == "0":
        assert app.sends >= received  # every frame went through ASGI
    else:
        assert app.sends < received  # the acks and live frames were written directly
