"""Text frames to a websocket, written straight to uvicorn's transport when that is safe.

Every visitor message costs the server two frames or more (the sender's ack, the agent
sockets' copies). Through ASGI each one crosses Starlette's two exception wrappers, uvicorn's
``send`` and websockets' frame object and serializer: more Python than the frame itself
needs. A server's text frame is a header of two to ten bytes and the UTF-8 payload, unmasked
(RFC 6455 section 5.2), and with per-message deflate off no extension touches it. So while
uvicorn's websockets-sansio connection is open, not paused by flow control and not in the
middle of a fragmented message, ``text_sender`` writes the frame itself; in every other case
(another server or protocol, a paused or closing connection) it sends through ASGI as
before, which waits, raises or refuses as ASGI says.

``KeepAsgiSend`` is the outermost middleware: it notes the server's own ``send`` in the
scope, since the endpoint only sees it wrapped by Starlette.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

SCOPE_KEY = "widget_server.asgi_send"
FIN_TEXT = 0x81  # FIN set, opcode 1 (text)

TextSender = Callable[[str], Awaitable[None]]


class KeepAsgiSend:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[SCOPE_KEY] = send
        await self.app(scope, receive, send)


def frame_header(length: int) -> bytes:
    if length < 126:
        return bytes((FIN_TEXT, length))
    if length < 65536:
        return struct.pack("!BBH", FIN_TEXT, 126, length)
    return struct.pack("!BBQ", FIN_TEXT, 127, length)


def text_sender(websocket: WebSocket) -> TextSender:
    """``send_text(text)`` for an accepted socket: the frame written directly when the
    connection is uvicorn's and open, else ``websocket.send`` through ASGI."""
    asgi_send = websocket._send  # past Starlette's state checks, as the endpoints do

    async def through_asgi(text: str) -> None:
        await asgi_send({"type": "websocket.send", "text": text})

    connection = _sansio_connection(websocket.scope.get(SCOPE_KEY))
    if connection is None:
        return through_asgi
    transport, conn, writable = connection.transport, connection.conn, connection.writable
    open_state = type(conn.state).OPEN

    async def send_text(text: str) -> None:
        if (writable.is_set() and conn.state is open_state and not connection.close_sent
                and not connection.disconnected and not conn.expect_continuation_frame):
            data = text.encode()
            transport.write(frame_header(len(data)) + data)
        else:  # paused, closing or closed: ASGI waits, raises or refuses as it should
            await through_asgi(text)

    return send_text


def _sansio_connection(send: object) -> Any:
    """uvicorn's websockets-sansio protocol object behind ``send``, when it has every part
    the direct write relies on; None otherwise (another server, protocol or version)."""
    connection = getattr(send, "__self__", None)
    if type(connection).__name__ != "WebSocketsSansIOProtocol":
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
