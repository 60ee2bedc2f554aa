"""widget_server.web.ws_send: text frames written straight to uvicorn's transport.

These run a real uvicorn server (in a thread of this process, so that the endpoint can tell
the test what it saw) and a real websockets client.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import threading
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.frames import Frame, Opcode

from tests.support import free_port
from widget_server.web.ws_send import TextSender, frame_header, text_sender, texts_sender


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_the_header_is_the_one_websockets_writes(length: int) -> None:
    payload = b"x" * length
    assert frame_header(length) + payload == Frame(Opcode.TEXT, payload).serialize(mask=False)


class Endpoint:
    """A websocket endpoint whose sends through ASGI are counted; ``body`` runs on it."""

    def __init__(self, body: Callable[[WebSocket, TextSender], Awaitable[None]]) -> None:
        self.body = body
        self.asgi_sends = 0
        self.failure: BaseException | None = None
        self.finished = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counting(message: Message) -> None:
            if message["type"] == "websocket.send":
                self.asgi_sends += 1
            await send(message)

        websocket = WebSocket(scope, receive, counting)
        await websocket.accept()
        try:
            await self.body(websocket, text_sender(websocket))
        except BaseException as exc:  # handed to the test thread
            self.failure = exc
        finally:
            self.finished.set()


@contextlib.contextmanager
def serving(endpoint: Endpoint) -> Iterator[str]:
    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, ws="websockets-sansio",
        ws_per_message_deflate=False, lifespan="off", log_level="warning",
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize("together", [False, True], ids=["one by one", "together"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "WIDGET_WS_FAST_SEND=0"])
def test_frames_are_written_directly_in_order_under_uvicorn(fast: bool, together: bool) -> None:
    sizes = [0, 10, 125, 126, 4000, 65535, 65536, 200_000]
    texts = [f"{n:03d}" + "é" * (size // 2) for n, size in enumerate(sizes)]

    async def body(websocket: WebSocket, send_text: TextSender) -> None:
        if together:  # one write for all of them (the console feed's batches)
            await texts_sender(websocket, fast)(texts)
            return
        for text in texts:
            await text_sender(websocket, fast)(text)

    endpoint = Endpoint(body)
    with serving(endpoint) as url:
        async def read() -> list[str]:
            async with websockets.connect(url, max_size=None, compression=None) as client:
                return [str(await client.recv()) for _ in sizes]

        received = asyncio.run(read())
    assert endpoint.finished.wait(10) and endpoint.failure is None
    assert received == texts
    # fast: every frame written directly, the shortcut is in use; off: none of them
    assert endpoint.asgi_sends == (0 if fast else len(texts))


@pytest.mark.parametrize("together", [False, True], ids=["one by one", "in fives"])
def test_a_paused_connection_sends_through_asgi_and_loses_nothing(together: bool) -> None:
    """A client that does not read fills the socket buffers; uvicorn pauses the connection
    (flow control) and the sends wait in ASGI until it drains, in order."""
    frames, chunk = 2000, "y" * 20_000
    paused = threading.Event()

    async def body(websocket: WebSocket, send_text: TextSender) -> None:
        writable = websocket._receive.__self__.writable  # type: ignore[attr-defined]  # uvicorn's protocol
        send_texts = texts_sender(websocket)
        for n in range(0, frames, 5):
            batch = [f"{k:05d}{chunk}" for k in range(n, n + 5)]
            if together:
                if not writable.is_set():
                    paused.set()
                await send_texts(batch)
                continue
            for text in batch:
                if not writable.is_set():
                    paused.set()
                await send_text(text)

    endpoint = Endpoint(body)
    with serving(endpoint) as url:
        async def read() -> list[str]:
            async with websockets.connect(url, max_size=None, compression=None,
                                          max_queue=1) as ws:
                await asyncio.to_thread(paused.wait, 30)
                return [str(await ws.recv())[:5] for _ in range(frames)]

        received = asyncio.run(read())
    assert paused.is_set(), "the server never paused writing: the test proved nothing"
    assert endpoint.finished.wait(10) and endpoint.failure is None
    assert received == [f"{n:05d}" for n in range(frames)]
    assert endpoint.asgi_sends > 0  # the frames sent while paused went through ASGI


@pytest.mark.parametrize("abrupt", [False, True], ids=["close-frame", "dropped"])
def test_a_send_after_the_client_left_raises_websocket_disconnect(abrupt: bool) -> None:
    """As Starlette's own send reports it: the endpoints end quietly on WebSocketDisconnect,
    where uvicorn's ClientDisconnected (an OSError) read as a failure and logged an error."""
    async def body(websocket: WebSocket, send_text: TextSender) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()
        await send_text("too late")

    endpoint = Endpoint(body)
    with serving(endpoint) as url:
        async def leave() -> None:
            async with websockets.connect(url, compression=None) as ws:
                await ws.send("bye")
                if abrupt:  # no close frame: the server learns it from the lost connection
                    ws.transport.abort()

        asyncio.run(leave())
        assert endpoint.finished.wait(10)
    assert isinstance(endpoint.failure, WebSocketDisconnect)
    assert endpoint.failure.code == 1006
    assert endpoint.asgi_sends == 1
