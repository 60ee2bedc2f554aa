"""Exactly-once, in-order delivery to one visitor connection.

The stream remembers, per conversation, the highest ``seq`` this connection has sent (as a
message frame or as an ack). Live events may arrive out of order or after a gap (another
node, a slow publisher, a replay racing a live message); whenever the next ``seq`` is not the
one expected, the stream reads the missing messages from the database first. Since the
database is the source of truth, the frames a client sees are gap-free and never doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from widget_server.models import Conversation, Message, PostResult, Ticket
from widget_server.realtime import protocol
from widget_server.realtime.events import Event, MessagesAdded, Resync, TicketUpdated, Typing
from widget_server.store import Store

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000
PAGE = 500


class VisitorStream:
    def __init__(
        self,
        store: Store,
        send_text: Callable[[str], Awaitable[None]],
        on_overflow: Callable[[], None],
        queue_limit: int = QUEUE_LIMIT,  # WIDGET_WS_SEND_QUEUE
    ) -> None:
        self._store = store
        self._send_text = send_text
        self._on_overflow = on_overflow
        self._lock = asyncio.Lock()
        self._queue_limit = queue_limit
        # Events wait here until delivered. Neither the queue nor a delivery task exists while
        # the connection is idle (memory per idle socket): the queue is made by the first
        # event, the task started for a burst and gone when it is drained.
        self._pending: deque[Event] | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._live = False
        self.last_sent: dict[str, int] = {}
        self._known: set[str] = set()
        # for conversations the client did not resume: the last seq it was not sent live
        self._baseline: dict[str, int] = {}
        self.owned: set[str] = set()

    # -- called by the hub
    def notify(self, event: Event) -> None:
        if self._covered(event):  # e.g. the sender's own message: its ack was the delivery
            return
        pending = self._pending
        if pending is None:
            pending = self._pending = deque()
        elif len(pending) >= self._queue_limit:
            self._on_overflow()
            return
        pending.append(event)
        if self._live and self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    def _covered(self, event: Event) -> bool:
        """A MessagesAdded whose every message this connection has sent already: delivering
        it would send nothing (``last_sent`` only grows once set)."""
        if not isinstance(event, MessagesAdded):
            return False
        last = self.last_sent.get(event.conversation_id)
        return last is not None and all(m.internal or m.seq <= last for m in event.messages)

    # -- called by the websocket endpoint
    async def send(self, frame: dict[str, Any]) -> None:
        async with self._lock:
            await self._send_text(protocol.encode(frame))

    async def replay(
        self, conversations: list[Conversation], resume: dict[str, int]
    ) -> list[str]:
        """Replay what the client asked for; return the resume ids that are not its own."""
        async with self._lock:
            for conversation in conversations:
                self.owned.add(conversation.id)
                if conversation.id in resume:
                    self._known.add(conversation.id)
                    self.last_sent[conversation.id] = resume[conversation.id]
                    await self._fill(conversation.id)
                else:
                    self.last_sent[conversation.id] = conversation.last_seq
                    self._baseline[conversation.id] = conversation.last_seq
        return [conversation_id for conversation_id in resume if conversation_id not in self.owned]

    async def acknowledge(self, result: PostResult) -> None:
        message = result.message
        conversation_id = message.conversation_id
        async with self._lock:
            self.owned.add(conversation_id)
            newly_known = conversation_id not in self._known
            self._known.add(conversation_id)
            if result.duplicate:
                await self._send_text(protocol.ack_text(message, result.ticket))
                baseline = self._baseline.pop(conversation_id, 0)
                if newly_known and baseline > message.seq:
                    # its first ack was lost: send what followed it before this connection
                    # began; what came live since then was already sent
                    await self._send_range(conversation_id, message.seq, baseline)
                return
            self.last_sent.setdefault(conversation_id, 0)
            if self.last_sent[conversation_id] + 1 < message.seq:  # usually nothing is missing
                await self._fill(conversation_id, before=message.seq)
            await self._send_text(protocol.ack_text(message, result.ticket))
            self.last_sent[conversation_id] = max(self.last_sent[conversation_id], message.seq)

    def start(self) -> None:
        """Begin delivering hub events, those queued meanwhile first, in order."""
        self._live = True
        if self._pending and self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def stop(self) -> None:
        """Stop delivering (the connection is closing)."""
        self._live = False
        drainer, self._drainer = self._drainer, None
        if drainer is not None:
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await drainer

    async def _drain(self) -> None:
        while self._pending:
            event = self._pending.popleft()
            async with self._lock:
                await self._deliver(event)
        # drained: no task and no queue until the next event (a failed send leaves the task
        # set, so nothing more is delivered and stop() collects its exception)
        self._pending = None
        self._drainer = None

    # -- internals; all run under the lock
    async def _send(self, frame: dict[str, Any]) -> None:
        await self._send_text(protocol.encode(frame))

    async def _deliver(self, event: Event) -> None:
        if isinstance(event, MessagesAdded):
            await self._deliver_messages(event.conversation_id, event.messages, event.ticket,
                                         event.encoded)
        elif isinstance(event, TicketUpdated):
            self.owned.add(event.ticket.conversation_id)
            text = event.encoded.get("ticket")
            if not isinstance(text, str):  # encoded once for every connection it reaches
                text = event.encoded["ticket"] = protocol.encode(
                    protocol.ticket_frame(event.ticket))
            await self._send_text(text)
        elif isinstance(event, Typing):
            await self._send({
                "type": "typing",
                "conversation": event.conversation_id,
                "author": {"type": event.author.type, "name": event.author.name},
            })
        elif isinstance(event, Resync):
            await self._catch_up(event.channel.removeprefix("visitor:"))

    async def _catch_up(self, visitor_id: str) -> None:
        """Live events may have been lost (a broker connection dropped): send each ticket as
        it is now and every message after the last one sent, new conversations included."""
        for conversation in await self._store.visitor_conversations(visitor_id):
            if conversation.id not in self.last_sent:  # opened elsewhere meanwhile
                self.owned.add(conversation.id)
                self.last_sent[conversation.id] = 0
            if conversation.ticket is not None:
                await self._send(protocol.ticket_frame(conversation.ticket))
            if conversation.last_seq > self.last_sent[conversation.id]:
                await self._fill(conversation.id)

    async def _deliver_messages(
        self, conversation_id: str, messages: list[Message], ticket: Ticket | None,
        encoded: dict[object, object],
    ) -> None:
        if conversation_id not in self.last_sent:  # opened elsewhere (another tab, a split)
            self.owned.add(conversation_id)
            self.last_sent[conversation_id] = 0
            if ticket is not None:
                await self._send(protocol.ticket_frame(ticket))
        for message in sorted(messages, key=lambda m: m.seq):
            if message.internal:
                continue
            last = self.last_sent[conversation_id]
            if message.seq <= last:
                continue
            if message.seq > last + 1:
                await self._fill(conversation_id)
                continue
            text = encoded.get(message.id)
            if not isinstance(text, str):  # encoded once for every connection it reaches
                text = encoded[message.id] = protocol.encode(protocol.message_frame(message))
            await self._send_text(text)
            self.last_sent[conversation_id] = message.seq

    async def _send_range(self, conversation_id: str, after: int, upto: int) -> None:
        while after < upto:
            page = await self._store.messages_after(conversation_id, after, PAGE)
            if not page:
                return
            for message in page:
                if message.seq > upto:
                    return
                await self._send(protocol.message_frame(message))
                after = message.seq

    async def _fill(self, conversation_id: str, before: int | None = None) -> None:
        """Send the stored messages after the last one sent (and below ``before``)."""
        while True:
            last = self.last_sent[conversation_id]
            page = await self._store.messages_after(conversation_id, last, PAGE)
            for message in page:
                if before is not None and message.seq >= before:
                    return
                if message.seq != self.last_sent[conversation_id] + 1:
                    log.error("seq gap in %s after %s", conversation_id, last)
                await self._send(protocol.message_frame(message))
                self.last_sent[conversation_id] = message.seq
            if len(page) < PAGE:
                return
