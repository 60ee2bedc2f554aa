"""What the brokers between nodes share: the local fast path, the outbox of wake-ups, the
reading of received wake-ups from the database, and the catch-up after a lost connection.

A subclass supplies the transport: ``_send`` (a batch of wake-up texts) and ``_connection``
(connect, listen, hand each received text to ``_received``, return when the connection is
lost). After every connection but the first, every receiver catches up from the database,
since wake-ups sent meanwhile were lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Coroutine, Iterator
from typing import Any

from widget_server.realtime import wire
from widget_server.realtime.broker import Receiver
from widget_server.realtime.events import Event
from widget_server.store import Store

log = logging.getLogger(__name__)

OUTBOX_LIMIT = 20_000  # wake-ups waiting for a lost connection; past it, one "catch up" instead
BATCH = 500
READERS = 3  # wake-ups read at once: more would take the pool's connections from the writes
TOGETHER = 200  # wake-ups of new messages read in one pair of statements
FIRST_BACKOFF = 0.1
LAST_BACKOFF = 5.0


class RelayBroker:
    name = "relay"

    def __init__(self, store: Store) -> None:
        self.store = store
        self.node = secrets.token_hex(8)
        self._own = wire.encode_prefix(self.node)  # our own wake-ups come back: dropped unread
        self._receivers: list[Receiver] = []
        self._outbox: deque[str] = deque()
        self._overflowed = False
        self._outbox_ready = asyncio.Event()
        self._inbox: deque[str] = deque()
        self._inbox_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.connected = asyncio.Event()
        self.connections = 0  # how many times a connection was made (tests, logs)

    # -- the Broker interface
    def listen(self, receiver: Receiver) -> None:
        self._receivers.append(receiver)

    def publish(self, channel: str, event: Event) -> None:
        for receiver in self._receivers:  # this node's subscribers: at once, the event itself
            receiver.dispatch(channel, event)
        text = wire.encode(self.node, channel, event)
        if text is None:
            return
        if len(self._outbox) >= OUTBOX_LIMIT:
            self._outbox.clear()
            self._overflowed = True
        self._outbox.append(text)
        self._outbox_ready.set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._connect_forever()),
                       loop.create_task(self._resolve_forever())]
        await self.connected.wait()

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._close()

    # -- for the transports
    async def _connection(self) -> None:
        """Connect and listen; set ``self.connected`` once listening; return (or raise) when
        the connection is lost."""
        raise NotImplementedError

    async def _send(self, texts: list[str]) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        pass

    def _received(self, text: str) -> None:
        if text.startswith(self._own):
            return
        self._inbox.append(text)
        self._inbox_ready.set()

    async def _send_outbox(self) -> None:
        """Send what waits, oldest first; what fails stays for the next connection."""
        while True:
            if self._overflowed:
                self._overflowed = False
                self._outbox.appendleft(wire.everything(self.node))
            if not self._outbox:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
                continue
            batch = [self._outbox[i] for i in range(min(BATCH, len(self._outbox)))]
            await self._send(batch)
            for _ in batch:
                self._outbox.popleft()

    # -- internals
    async def _connect_forever(self) -> None:
        backoff = FIRST_BACKOFF
        while True:
            try:
                await self._connection()
                backoff = FIRST_BACKOFF
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("%s broker connection lost (%s); reconnecting in %.1f s",
                            self.name, error, backoff)
            self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, LAST_BACKOFF)

    def _listening(self) -> None:
        """Called by the transport once it listens: after a reconnect, catch up."""
        self.connections += 1
        self.connected.set()
        if self.connections > 1:
            log.info("%s broker reconnected: every subscriber catches up", self.name)
            self._resync()

    def _resync(self) -> None:
        for receiver in self._receivers:
            receiver.resync()

    async def _resolve_forever(self) -> None:
        """Read what the waiting wake-ups stand for, those of one conversation in order
        (adjacent ones folded into one read): in rounds of one wake-up per conversation, whose
        new messages are read together and whose others READERS at a time (a busy node's
        consoles would otherwise wait for every other node's messages one read at a time)."""
        while True:
            if not self._inbox:
                self._inbox_ready.clear()
                await self._inbox_ready.wait()
                continue
            waiting = [self._inbox.popleft() for _ in range(min(BATCH, len(self._inbox)))]
            by_conversation: dict[object, list[dict[str, Any]]] = {}
            for text in waiting:
                body = self._wanted(text)
                if body is not None:
                    in_order = by_conversation.setdefault(body.get("v"), [])
                    if not in_order or not wire.merge(in_order[-1], body):
                        in_order.append(body)
            lists = list(by_conversation.values())
            for depth in range(max((len(bodies) for bodies in lists), default=0)):
                await self._resolve_round([bodies[depth] for bodies in lists
                                           if len(bodies) > depth])

    async def _resolve_round(self, bodies: list[dict[str, Any]]) -> None:
        plain = [body for body in bodies if wire.batchable(body)]
        others = iter([body for body in bodies if not wire.batchable(body)])
        await asyncio.gather(self._resolve_together(plain),
                             *(self._resolve_each(others) for _ in range(READERS)))

    async def _resolve_together(self, bodies: list[dict[str, Any]]) -> None:
        for first in range(0, len(bodies), TOGETHER):
            chunk = bodies[first:first + TOGETHER]
            await self._deliver(chunk, wire.resolve_messages(self.store, chunk))

    async def _resolve_each(self, bodies: Iterator[dict[str, Any]]) -> None:
        async def one(body: dict[str, Any]) -> list[Event | None]:
            return [await wire.resolve(self.store, body)]

        for body in bodies:  # READERS of these share the iterator: that many reads at once
            await self._deliver([body], one(body))

    async def _deliver(self, bodies: list[dict[str, Any]],
                       reading: Coroutine[Any, Any, list[Event | None]]) -> None:
        """Dispatch what ``reading`` finds the wake-ups ``bodies`` stand for; if it fails,
        log them and go on with the next."""
        try:
            events = await reading
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("wake-ups from another node could not be read: %.200s", bodies)
            return
        for body, event in zip(bodies, events, strict=True):
            if event is not None:
                for receiver in self._receivers:
                    receiver.dispatch(body["c"], event)

    def _wanted(self, text: str) -> dict[str, Any] | None:
        """The wake-up, if a receiver here listens on its channel (else nothing to read)."""
        body = wire.decode(text)
        if body is None or body.get("n") == self.node:
            return None  # our own: delivered here already
        if body["k"] == "s":
            self._resync()
            return None
        channel = body.get("c")
        if not isinstance(channel, str) or \
                not any(receiver.wants(channel) for receiver in self._receivers):
            return None
        return body
