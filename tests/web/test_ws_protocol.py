"""widget_server.web.ws_protocol: the client's whole text frames read without websockets'
parser, and everything else left to it.

Each case feeds the same bytes, cut into the same reads, to uvicorn's own websockets-sansio
protocol and to ours (real protocol objects on a transport that records what they write),
and requires the same ASGI events, the same bytes written back (pongs, close frames) and
the same closing of the connection.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from widget_server.web.ws_protocol import WidgetWebSocketProtocol, whole_text_frames

MAX_SIZE = 1024
HANDSHAKE = (b"GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def client_frame(opcode: int, payload: bytes, mask: bytes | None = b"\x01\x02\x03\x04",
                 fin: bool = True) -> bytes:
    """A frame as a client sends it (RFC 6455 5.2), masked unless ``mask`` is None."""
    head = bytes([(0x80 if fin else 0) | opcode])
    length, flag = len(payload), 0x80 if mask is not None else 0
    if length < 126:
        head += bytes([flag | length])
    elif length < 65536:
        head += bytes([flag | 126]) + length.to_bytes(2, "big")
    else:
        head += bytes([flag | 127]) + length.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Recorder(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False
        self.paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5555), "sockname": ("127.0.0.1", 8000)}.get(
            name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


async def run_protocol(kind: type[WebSocketsSansIOProtocol], reads: Sequence[bytes]
                       ) -> tuple[list[Any], bytes, bool, bool]:
    """The exceptions raised and ASGI events queued, the bytes written after the handshake,
    whether the connection was closed and whether reading is paused (uvicorn pauses it
    until the app takes the events), for ``reads`` fed to a fresh accepted connection."""
    done = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await done.wait()

    config = Config(app, ws=kind, ws_max_size=MAX_SIZE, ws_per_message_deflate=False,
                    ws_ping_interval=None, lifespan="off", log_level="critical",
                    date_header=False)
    config.load()
    connection = kind(config, ServerState(), app_state={})
    transport = Recorder()
    connection.connection_made(transport)
    connection.data_received(HANDSHAKE)
    while not connection.handshake_complete:
        await asyncio.sleep(0)
    handshake = len(transport.written)
    raised = []  # the loop would log it and close the connection; uvicorn raises on some
    for data in reads:  # invalid input (bad UTF-8 then a close in one read), so must we
        try:
            connection.data_received(data)
        except Exception as exc:
            raised.append(type(exc).__name__)
    events: list[Any] = raised
    while not connection.queue.empty():
        events.append(connection.queue.get_nowait())
    seen = events, b"".join(transport.written[handshake:]), transport.closed, transport.paused
    done.set()  # the app returns; uvicorn closes the transport
    for task in list(connection.tasks):
        await task
    return seen


def both(reads: Sequence[bytes]) -> tuple[Any, Any]:
    stock = asyncio.run(run_protocol(WebSocketsSansIOProtocol, reads))
    ours = asyncio.run(run_protocol(WidgetWebSocketProtocol, reads))
    return stock, ours


TEXT, BINARY, CONT, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9
texts = st.text(max_size=200)
masks = st.binary(min_size=4, max_size=4)
frames = st.one_of(
    st.tuples(st.just("text"), texts, masks).map(
        lambda t: client_frame(TEXT, t[1].encode(), t[2])),
    st.tuples(st.just("long text"), st.integers(126, MAX_SIZE + 10), masks).map(
        lambda t: client_frame(TEXT, ("é" * t[1]).encode()[:t[1]].decode(errors="ignore")
                               .encode(), t[2])),
    st.tuples(st.just("binary"), st.binary(max_size=50), masks).map(
        lambda t: client_frame(BINARY, t[1], t[2])),
    st.tuples(st.just("ping"), st.binary(max_size=20), masks).map(
        lambda t: client_frame(PING, t[1], t[2])),
    st.tuples(st.just("fragments"), texts, texts, masks).map(
        lambda t: client_frame(TEXT, t[1].encode(), t[3], fin=False)
        + client_frame(CONT, t[2].encode(), t[3])),
    st.tuples(st.just("first fragment"), texts, masks).map(
        lambda t: client_frame(TEXT, t[1].encode(), t[2], fin=False)),
    st.tuples(st.just("unmasked"), texts).map(lambda t: client_frame(TEXT, t[1].encode(), None)),
    st.tuples(st.just("bad utf-8"), masks).map(lambda t: client_frame(TEXT, b"ok \xff\xfe", t[1])),
    st.tuples(st.just("close"), masks).map(
        lambda t: client_frame(CLOSE, (1000).to_bytes(2, "big"), t[1])),
)


@settings(max_examples=int(os.environ.get("WIDGET_FRAME_EXAMPLES", "300")), deadline=None)
@given(stream=st.lists(st.lists(frames, min_size=1, max_size=3), max_size=6),
       cuts=st.lists(st.integers(0, 4000), max_size=4))
def test_any_frames_in_any_reads_give_what_uvicorn_gives(stream: list[list[bytes]],
                                                         cuts: list[int]) -> None:
    """Reads of whole frames (one inner list each), some of them cut again anywhere."""
    reads = []
    for frames_of_read in stream:
        data = b"".join(frames_of_read)
        bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
        reads += [data[a:b] for a, b in itertools.pairwise(bounds)]
    stock, ours = both(reads)
    assert ours == stock


def test_a_frame_cut_across_reads_is_finished_by_websockets() -> None:
    """The rest of a binary frame that looks like a whole text frame is still its payload."""
    inner = client_frame(TEXT, b"not a frame")
    outer = client_frame(BINARY, inner, b"\x00\x00\x00\x00")
    cut = len(outer) - len(inner)
    stock, ours = both([outer[:cut], outer[cut:]])
    assert ours == stock
    assert ours[0] == [{"type": "websocket.receive", "bytes": inner}]


def test_a_text_frame_inside_a_fragmented_message_fails_as_in_uvicorn() -> None:
    reads = [client_frame(TEXT, b"first part", fin=False), client_frame(TEXT, b"not a part")]
    stock, ours = both(reads)
    assert ours == stock
    assert ours[2] is True  # closed: a protocol error (1002), not a message


@pytest.mark.parametrize("reads", [
    [client_frame(TEXT, b'{"type":"ping"}') + client_frame(TEXT, "é".encode() * 100)],
    [client_frame(TEXT, b"x" * 300)],
    [client_frame(TEXT, b"")],
])
def test_whole_text_frames_skip_websockets_parser(reads: list[bytes],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fed: list[bytes] = []
    real = WebSocketsSansIOProtocol.data_received

    def counting(self: WebSocketsSansIOProtocol, data: bytes) -> None:
        fed.append(data)
        real(self, data)

    monkeypatch.setattr(WebSocketsSansIOProtocol, "data_received", counting)
    events, written, closed, paused = asyncio.run(run_protocol(WidgetWebSocketProtocol, reads))
    assert fed == [HANDSHAKE]  # only the handshake went to uvicorn and websockets
    expected = whole_text_frames(b"".join(reads), MAX_SIZE)
    assert expected is not None
    assert events == [{"type": "websocket.receive", "text": text} for text in expected]
    assert (written, closed, paused) == (b"", False, True)


@pytest.mark.parametrize(("data", "why"), [
    (client_frame(TEXT, b"x" * (MAX_SIZE + 1)), "over the frame limit"),
    (client_frame(TEXT, b"\xc3"), "invalid UTF-8"),
    (client_frame(TEXT, b"abc", None), "unmasked"),
    (client_frame(TEXT, b"abc", fin=False), "a fragment"),
    (client_frame(BINARY, b"abc"), "binary"),
    (client_frame(TEXT, b"abc")[:-1], "cut short"),
    (client_frame(TEXT, b"abc") + client_frame(PING, b""), "followed by a ping"),
])
def test_other_frames_are_left_to_websockets(data: bytes, why: str) -> None:
    assert whole_text_frames(data, MAX_SIZE) is None, why
