"""Text frames to a websocket, written straight to uvicorn's transport when that is safe.

Every visitor message costs the server two frames or more (the sender's ack, the agent
sockets' copies). Through ASGI each one crosses Starlette's two exception wrappers, uvicorn's
``send`` and websockets' frame object and serializer: more Python than the frame itself
needs. A server's text frame is a header of two to ten bytes and the UTF-8 payload, unmasked
(RFC 6455 section 5.2), and with per-message deflate off no extension touches it. So while
uvicorn's websockets-sansio connection is open, not paused by flow control and not in the
middle of a fragmented message, ``text_sender`` writes the frame itself, and
``texts_sender`` a batch of frames in one write (one system call for the console feed's
dozens of frames per writer batch); in every other case (another server or protocol, a
paused or closing connection) each frame goes through ASGI's send, which waits, raises
or refuses as ASGI says.

uvicorn's connection is found through the socket's ``receive``, which Starlette passes on
unwrapped (its ``send`` reaches the endpoint wrapped twice). This reads uvicorn's and
websockets' connection objects, which are not their public API: pyproject.toml caps both at
the releases this was tested with, CI runs the websocket tests against their newest releases,
and ``WIDGET_WS_FAST_SEND=0`` (``fast=False`` here) sends every frame through ASGI.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.types import Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

FIN_TEXT = 0x81  # FIN set, opcode 1 (text)

TextSender = Callable[[str], Awaitable[None]]
TextsSender = Callable[[Sequence[str]], Awaitable[None]]


def frame_header(length: int) -> bytes:
    if length < 126:
        return bytes((FIN_TEXT, length))
    if length < 65536:
        return struct.pack("!BBH", FIN_TEXT, 126, length)
    return struct.pack("!BBQ", FIN_TEXT, 127, length)


def text_sender(websocket: WebSocket, fast: bool = True) -> TextSender:
    """``send_text(text)`` for an accepted socket: the frame written directly when ``fast``
    and the connection is uvicorn's and open, else ``websocket.send`` through ASGI."""
    return _sender(websocket, fast).send_text


def texts_sender(websocket: WebSocket, fast: bool = True) -> TextsSender:
    """``send_texts(texts)``: the frames in order, written directly in one ``write`` (one
    system call for a whole batch of the console feed), else one by one through ASGI."""
    return _sender(websocket, fast).send_texts


def _sender(websocket: WebSocket, fast: bool) -> _AsgiSender:
    asgi_send = websocket._send  # past Starlette's state checks, as the endpoints do
    connection = _sansio_connection(websocket._receive) if fast else None
    if connection is None:
        return _AsgiSender(asgi_send)
    return _DirectSender(connection, asgi_send)


class _AsgiSender:
    __slots__ = ("_asgi_send",)  # one per open socket: slots, not closures (memory)

    def __init__(self, asgi_send: Send) -> None:
        self._asgi_send = asgi_send

    async def send_text(self, text: str) -> None:
        try:
            await self._asgi_send({"type": "websocket.send", "text": text})
        except OSError:  # the client hung up (a frame and its close in one write): as
            raise WebSocketDisconnect(1006) from None  # Starlette's own send reports it

    async def send_texts(self, texts: Sequence[str]) -> None:
        for text in texts:
            await self.send_text(text)


class _DirectSender(_AsgiSender):
    __slots__ = ("_conn", "_connection", "_open", "_transport", "_writable")

    def __init__(self, connection: Any, asgi_send: Send) -> None:
        super().__init__(asgi_send)
        self._connection, self._conn = connection, connection.conn
        self._transport, self._writable = connection.transport, connection.writable
        self._open = type(self._conn.state).OPEN

    def _direct(self) -> bool:
        connection, conn = self._connection, self._conn
        return (self._writable.is_set() and conn.state is self._open
                and not connection.close_sent and not connection.disconnected
                and not conn.expect_continuation_frame)

    async def send_text(self, text: str) -> None:
        if self._direct():
            data = text.encode()
            self._transport.write(frame_header(len(data)) + data)
        else:  # paused, closing or closed: ASGI waits, raises or refuses as it should
            await super().send_text(text)

    async def send_texts(self, texts: Sequence[str]) -> None:
        if not self._direct():  # each frame checks again: the connection may resume
            await super().send_texts(texts)
            return
        parts: list[bytes] = []
        for text in texts:
            data = text.encode()
            parts += (frame_header(len(data)), data)
        self._transport.write(b"".join(parts))


def _sansio_connection(receive: object) -> Any:
    """uvicorn's websockets-sansio protocol object behind ``receive``, when it has every part
    the direct write relies on; None otherwise (another server, protocol or version)."""
    connection = getattr(receive, "__self__", None)
    if not isinstance(connection, WebSocketsSansIOProtocol):
        return None
    conn = getattr(connection, "conn", None)
    needed = (getattr(connection, name, None) for name in
              ("transport", "writable", "close_sent", "disconnected"))
    if conn is None or any(part is None for part in needed):
        return None
    if getattr(conn, "extensions", None) or getattr(getattr(conn, "side", None), "name",
                                                    None) != "SERVER":
        return None  # an extension (deflate) sees every frame; a client masks its frames
    if not hasattr(conn, "expect_continuation_frame") or not hasattr(conn, "state"):
        return None
    return connection
