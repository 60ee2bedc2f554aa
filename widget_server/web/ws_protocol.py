"""uvicorn's websockets-sansio protocol, reading the common client frame itself.

Nearly every frame a widget sends is one whole text frame: FIN set, masked (RFC 6455 5.3),
a short payload, arriving in one read. websockets' parser is a chain of generators that
reads it byte range by byte range (about 5 us a frame here, as much as the rest of its
way to the endpoint). ``WidgetWebSocketProtocol.data_received`` takes a read made only of
such frames itself: it unmasks each with websockets' own ``apply_mask``, decodes it as
UTF-8 and queues the ASGI event exactly as uvicorn does. Anything else, a control frame
(ping, close), a binary, fragmented, unmasked or oversized frame, a frame split across
reads, invalid UTF-8, a read while websockets' parser holds part of a frame, or a
connection that is not open, goes to uvicorn and websockets whole, untouched, so every
error is answered as before (1002, 1007, 1009). The handshake, the sends, pings and the
close are uvicorn's.

``widget-server serve`` (and the bench's relay) give this class to uvicorn as ``ws``.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import apply_mask  # type: ignore[attr-defined]  # the C one if built
from websockets.protocol import State
from websockets.streams import StreamReader

FIN_TEXT = 0x81  # FIN set, no reserved bits, opcode 1 (text)
MASKED = 0x80
_BETWEEN_FRAMES = StreamReader.at_eof.__code__


def whole_text_frames(data: bytes, limit: int | None) -> list[str] | None:
    """The texts of ``data`` when it is nothing but whole, masked, final text frames of at
    most ``limit`` bytes each, in valid UTF-8; None otherwise (nothing is consumed)."""
    texts: list[str] = []
    at, end = 0, len(data)
    while at < end:
        if end - at < 6 or data[at] != FIN_TEXT or not data[at + 1] & MASKED:
            return None
        length = data[at + 1] & 0x7F
        at += 2
        if length == 126:
            if end - at < 2:
                return None
            length = int.from_bytes(data[at:at + 2], "big")
            at += 2
        elif length == 127:  # 64-bit lengths: far above any frame limit of ours
            return None
        if (limit is not None and length > limit) or end - at < 4 + length:
            return None
        payload = apply_mask(data[at + 4:at + 4 + length], data[at:at + 4])
        at += 4 + length
        try:
            texts.append(payload.decode())
        except UnicodeDecodeError:  # websockets and uvicorn close with 1007
            return None
    return texts


def _between_frames(parser: object) -> bool:
    """Whether websockets' parser (a generator) waits for the first byte of a frame: it then
    waits in ``StreamReader.at_eof``, with nothing buffered. Its bytes may all be consumed
    while it waits inside a frame (for the rest of the payload), so the buffer cannot tell."""
    waiting = parser
    while (inner := getattr(waiting, "gi_yieldfrom", None)) is not None:
        waiting = inner  # parse() waits in Frame.parse or at_eof, through a chain of them
    return getattr(waiting, "gi_code", None) is _BETWEEN_FRAMES


class WidgetWebSocketProtocol(WebSocketsSansIOProtocol):
    def data_received(self, data: bytes) -> None:
        try:
            texts = self._whole_texts(data)
        except AttributeError:  # a websockets or uvicorn without a part read there (before
            texts = None        # websockets 16, ``current_size``): the stock path, always
        if texts is None:
            super().data_received(data)
            return
        for text in texts:  # as uvicorn's send_receive_event_to_app
            self.queue.put_nowait({"type": "websocket.receive", "text": text})
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def _whole_texts(self, data: bytes) -> list[str] | None:
        conn = self.conn
        if (not self.handshake_complete or self.close_sent or conn.state is not State.OPEN
                or conn.current_size is not None or not _between_frames(conn.parser)
                or conn.extensions or conn.debug):
            return None  # websockets' parser is mid-frame or mid-message, or must see all
        limits = [size for size in (conn.max_message_size, conn.max_fragment_size)
                  if size is not None]
        return whole_text_frames(data, min(limits) if limits else None)
