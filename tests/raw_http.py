"""HTTP/1.1 by hand on a plain socket, for what an HTTP client library will not send: huge
declared lengths, endless chunked bodies, half-written requests.

A plain blocking socket, not asyncio streams: when the server answers early and then resets
the connection under a body still arriving, the kernel still hands out the answer it queued
before the reset, whereas an asyncio transport whose write fails drops what it had not yet
read."""

from __future__ import annotations

import json
import select
import socket
from typing import Any

SOCKET_WAIT = 15.0  # how long a raw socket waits for the server: a bound, not a timing


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=SOCKET_WAIT)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or resets it)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_and_json(data: bytes) -> tuple[int, Any]:
    header, _, body = data.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    return status, json.loads(body) if body else None


def stream_chunked(sock: socket.socket, total: int, chunk: int = 64 * 1024,
                   prefix: bytes = b"") -> tuple[bytes, int]:
    """Send ``prefix``, then up to ``total`` bytes of body, as chunks, stopping as soon as
    the server answers or hangs up; what it answered and how many body bytes went out."""
    if prefix:
        sock.sendall(b"%x\r\n" % len(prefix) + prefix + b"\r\n")
    piece = b"%x\r\n" % chunk + b"x" * chunk + b"\r\n"
    sent = 0
    pending = memoryview(b"")
    sock.setblocking(False)
    try:
        while sent < total or pending:
            readable, writable, _ = select.select([sock], [sock], [], SOCKET_WAIT)
            if readable or not writable:
                break
            if not pending:
                pending, sent = memoryview(piece), sent + chunk
            try:
                pending = pending[sock.send(pending):]
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        else:
            sock.sendall(b"0\r\n\r\n")
    finally:
        sock.setblocking(True)
        sock.settimeout(SOCKET_WAIT)
    return read_all(sock), sent
