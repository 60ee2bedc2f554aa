"""Exactly-once, in-order delivery to one visitor connection.

The stream remembers, per conversation, the highest ``seq`` this connection has sent (as a
message frame or as an ack). Live events may arrive out of order or after a gap (another
node, a slow publisher, a replay racing a live message); whenever the next ``seq`` is not the
one expected, the stream reads the missing messages from the database first. Since the
database is the source of truth, the frames a client sees are gap-free and never doubled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from widget_server.models import Conversation, Message, PostResult, Ticket
from widget_server.realtime import protocol
from widget_server.realtime.events import Event, MessagesAdded, TicketUpdated, Typing
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
    ) -> None:
        self._store = store
        self._send_text = send_text
        self._on_overflow = on_overflow
        self._lock = asyncio.Lock()
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self.last_sent: dict[str, int] = {}
        self._known: set[str] = set()
        # for conversations the client did not resume: the last seq it was not sent live
        self._baseline: dict[str, int] = {}
        self.owned: set[str] = set()

    # -- called by the hub
    def notify(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._on_overflow()

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
                await self._send(protocol.ack_frame(message, result.ticket))
                baseline = self._baseline.pop(conversation_id, 0)
                if newly_known and baseline > message.seq:
                    # its first ack was lost: send what followed it before this connection
                    # began; what came live since then was already sent
                    await self._send_range(conversation_id, message.seq, baseline)
                return
            self.last_sent.setdefault(conversation_id, 0)
            if self.last_sent[conversation_id] + 1 < message.seq:  # usually nothing is missing
                await self._fill(conversation_id, before=message.seq)
            await self._send(protocol.ack_frame(message, result.ticket))
            self.last_sent[conversation_id] = max(self.last_sent[conversation_id], message.seq)

    async def run(self) -> None:
        """Deliver hub events until cancelled."""
        while True:
            event = await self._queue.get()
            async with self._lock:
                await self._deliver(event)

    # -- internals; all run under the lock
    async def _send(self, frame: dict[str, Any]) -> None:
        await self._send_text(protocol.encode(frame))

    async def _deliver(self, event: Event) -> None:
        if isinstance(event, MessagesAdded):
            await self._deliver_messages(event.conversation_id, event.messages, event.ticket)
        elif isinstance(event, TicketUpdated):
            self.owned.add(event.ticket.conversation_id)
            await self._send(protocol.ticket_frame(event.ticket))
        elif isinstance(event, Typing):
            await self._send({
                "type": "typing",
                "conversation": event.conversation_id,
                "author": {"type": event.author.type, "name": event.author.name},
            })

    async def _deliver_messages(
        self, conversation_id: str, messages: list[Message], ticket: Ticket | None
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
            await self._send(protocol.message_frame(message))
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
