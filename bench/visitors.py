"""Visitors the way the widget connects and sends, and the two ways of loading a server.

A ``Visitor`` does the session POST with the site's Origin, opens the widget socket, says
hello, opens a request and sends messages, matching each ack by ``client_msg_id``.
``closed_loop`` sends each message after the previous ack; ``open_loop`` offers a fixed
rate whatever the server's speed. ``Tally`` collects what happened; times are
``time.perf_counter()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from bench.server_process import Server, Site

# --------------------------------------------------------------------------- visitors


class Visitor:
    """One widget tab: a session token, a websocket, and a reader task matching acks."""

    def __init__(self, index: int, server: Server, site: Site) -> None:
        self.index, self.server, self.site = index, server, site
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.pending: dict[str, asyncio.Future[tuple[float, dict[str, Any]]]] = {}
        self.conversation: str | None = None
        self.frames: dict[str, int] = {}
        self.errors: list[dict[str, Any]] = []
        self.closed: str | None = None
        self.received: dict[str, float] | None = None  # set: note message frames by body

    async def connect(self, http: httpx.AsyncClient, timeout: float) -> None:
        response = await http.post("/api/widget/v1/session",
                                   json={"site": self.site.key, "token": None, "user": None},
                                   headers={"Origin": self.site.origin})
        if response.status_code != 200:
            raise RuntimeError(f"session: {response.status_code} {response.text}")
        token = response.json()["token"]
        self.ws = await websockets.connect(
            self.server.ws_url, origin=self.site.origin,  # type: ignore[arg-type]
            open_timeout=timeout, max_queue=None, compression=None,
        )
        await self.ws.send(json.dumps({"type": "hello", "site": self.site.key,
                                       "token": token, "resume": {}}))
        ready = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        if ready.get("type") != "ready":
            raise RuntimeError(f"expected ready, got {ready}")
        self.reader = asyncio.create_task(self._read(), name=f"reader-{self.index}")

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                frame = json.loads(raw)
                kind = frame.get("type", "?")
                self.frames[kind] = self.frames.get(kind, 0) + 1
                if kind == "ack":
                    future = self.pending.pop(frame.get("client_msg_id"), None)
                    if future is not None and not future.done():
                        future.set_result((now, frame))
                elif kind == "message" and self.received is not None:
                    self.received.setdefault(str(frame.get("body")), now)
                elif kind == "error":
                    self.errors.append(frame)
                    future = self.pending.pop(frame.get("ref"), None)
                    if future is not None and not future.done():
                        future.set_exception(RuntimeError(f"error frame: {frame}"))
        except websockets.ConnectionClosed as exc:
            self.closed = f"{exc.rcvd.code if exc.rcvd else '?'} {exc}"
        finally:
            if self.closed is None and self.ws.close_code is not None:
                self.closed = f"{self.ws.close_code} {self.ws.close_reason}"
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"socket closed: {self.closed}"))
            self.pending.clear()

    async def send(self, body: str, conversation: str | None
                   ) -> tuple[float, asyncio.Future[tuple[float, dict[str, Any]]]]:
        """Send one message; return the send time and a future of (ack time, ack frame)."""
        assert self.ws is not None
        client_msg_id = str(uuid.uuid4())
        future: asyncio.Future[tuple[float, dict[str, Any]]] = (
            asyncio.get_running_loop().create_future())
        if self.reader is None or self.reader.done():
            future.set_exception(ConnectionError(f"socket closed: {self.closed}"))
            return time.perf_counter(), future
        self.pending[client_msg_id] = future
        frame = json.dumps({"type": "send", "conversation": conversation,
                            "client_msg_id": client_msg_id, "body": body})
        sent = time.perf_counter()
        await self.ws.send(frame)
        return sent, future

    async def open_request(self, timeout: float) -> float:
        sent, future = await self.send(f"Visitor {self.index}: export to CSV fails", None)
        acked, ack = await asyncio.wait_for(future, timeout)
        self.conversation = ack["conversation"]
        return acked - sent

    async def close(self) -> None:
        await close_socket(self.ws, self.reader)


async def close_socket(ws: ClientConnection | None, reader: asyncio.Task[Any] | None) -> None:
    """Close a client websocket (within 5 s) and end the task that read it."""
    if ws is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 5)
    if reader is not None:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)   # seconds, send -> ack
    sent_times: list[float] = field(default_factory=list)  # perf_counter at each send, same order
    lag: list[float] = field(default_factory=list)         # open loop: schedule -> send
    sent: int = 0
    acked: int = 0
    timeouts: int = 0
    errors: int = 0
    failures: list[str] = field(default_factory=list)
    first_send: float | None = None
    last_ack: float | None = None

    def record(self, sent: float, outcome: tuple[float, dict[str, Any]]) -> None:
        acked, _ = outcome
        self.acked += 1
        self.latencies.append(acked - sent)
        self.sent_times.append(sent)
        self.last_ack = acked if self.last_ack is None else max(self.last_ack, acked)

    def fail(self, exc: BaseException) -> None:
        if isinstance(exc, TimeoutError):
            self.timeouts += 1
        else:
            self.errors += 1
            if len(self.failures) < 20:
                self.failures.append(repr(exc))


async def closed_loop(visitors: list[Visitor], messages: int, ack_timeout: float,
                      tally: Tally) -> None:
    async def one(visitor: Visitor) -> None:
        for number in range(messages):
            sent, future = await visitor.send(f"message {number} from visitor {visitor.index}",
                                              visitor.conversation)
            tally.sent += 1
            try:
                tally.record(sent, await asyncio.wait_for(future, ack_timeout))
            except (TimeoutError, ConnectionError, RuntimeError) as exc:
                tally.fail(exc)
                if isinstance(exc, ConnectionError):
                    return

    tally.first_send = time.perf_counter()
    await asyncio.gather(*(one(visitor) for visitor in visitors))


async def open_loop(visitors: Sequence[Visitor], rate: float, duration: float,
                    ack_timeout: float, tally: Tally, *, start: float | None = None,
                    total: int | None = None) -> None:
    """Offer ``rate`` msg/s in total: visitor i sends at start + (k * N + i) / rate.

    ``total`` is N when these visitors are a part of a larger fleet (bench/fleet.py), whose
    processes share ``start``."""
    count = total or len(visitors)
    start = time.perf_counter() + 0.2 if start is None else start
    tally.first_send = start
    waits: list[asyncio.Task[None]] = []

    async def wait_ack(sent: float, future: asyncio.Future[tuple[float, dict[str, Any]]]
                       ) -> None:
        try:
            tally.record(sent, await asyncio.wait_for(future, ack_timeout))
        except (TimeoutError, ConnectionError, RuntimeError) as exc:
            tally.fail(exc)

    async def one(visitor: Visitor) -> None:
        number = 0
        while True:
            offset = (number * count + visitor.index) / rate
            if offset >= duration:
                return
            due = start + offset
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent, future = await visitor.send(f"message {number} from visitor {visitor.index}",
                                              visitor.conversation)
            tally.sent += 1
            tally.lag.append(max(0.0, sent - due))
            waits.append(asyncio.create_task(wait_ack(sent, future)))
            number += 1

    await asyncio.gather(*(one(visitor) for visitor in visitors))
    await asyncio.gather(*waits)


# --------------------------------------------------------------------------- reporting


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)

