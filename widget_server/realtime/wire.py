"""Events as they cross nodes: small wake-ups that name what changed, never its content.

A published event becomes a short JSON text (the channel, the conversation, the seq range and
the ids of internal notes), far below PostgreSQL's 8000-byte NOTIFY limit. The receiving node
reads the messages and the ticket from the database, which stays the only source of truth.
"""

from __future__ import annotations

import json
from typing import Any

from widget_server.models import Author, Conversation, Message, Ticket
from widget_server.realtime.events import (
    Event,
    MessagesAdded,
    Poke,
    PresenceChanged,
    TicketUpdated,
    Typing,
    agents_channel,
    visitor_channel,
)
from widget_server.store import Store

MAX_NOTE_IDS = 100  # internal notes named in one wake-up; a batch is never that large
MAX_NAME = 200


def encode(node: str, channel: str, event: Event) -> str | None:
    """The wake-up for ``event`` on ``channel``, or None for what never leaves the node."""
    body: dict[str, Any] = {"n": node, "c": channel}
    if isinstance(event, MessagesAdded):
        seqs = [m.seq for m in event.messages if not m.internal and m.seq]
        notes = [m.id for m in event.messages if m.internal][:MAX_NOTE_IDS]
        if not seqs and not notes:
            return None
        body.update(k="m", v=event.conversation_id, r=[min(seqs), max(seqs)] if seqs else None,
                    i=notes)
    elif isinstance(event, TicketUpdated):
        body.update(k="t", v=event.ticket.conversation_id)
    elif isinstance(event, Poke):
        body.update(k="p")
    elif isinstance(event, PresenceChanged):
        body.update(k="a", a=[event.agent_id, event.name[:MAX_NAME], event.status])
    elif isinstance(event, Typing):
        author = event.author
        body.update(k="y", v=event.conversation_id,
                    a=[author.type, (author.name or "")[:MAX_NAME] or None, author.id])
    else:
        return None
    return json.dumps(body, separators=(",", ":"))


def encode_prefix(node: str) -> str:
    """How every wake-up of ``node`` begins (the node comes first in each)."""
    return json.dumps({"n": node}, separators=(",", ":"))[:-1]


def everything(node: str) -> str:
    """The wake-up telling every other node to catch up on everything (wake-ups were lost)."""
    return json.dumps({"n": node, "k": "s"}, separators=(",", ":"))


def merge(into: dict[str, Any], body: dict[str, Any]) -> bool:
    """Fold the wake-up ``body`` into ``into``, the one before it for the same conversation,
    when both name new messages on the same channel and their seq ranges touch (one read
    then covers exactly both: never a message this node delivered already)."""
    if into.get("k") != "m" or body.get("k") != "m" or into.get("c") != body.get("c") \
            or into.get("v") != body.get("v"):
        return False
    try:
        ranges = [(int(r[0]), int(r[1])) for r in (into.get("r"), body.get("r")) if r]
        notes = [*(into.get("i") or []), *(body.get("i") or [])]
    except (TypeError, ValueError, IndexError, KeyError):
        return False  # resolved alone, where a malformed one is logged
    if len(notes) > MAX_NOTE_IDS or (len(ranges) == 2 and not (
            ranges[0][0] <= ranges[1][1] + 1 and ranges[1][0] <= ranges[0][1] + 1)):
        return False
    into["r"] = [min(r[0] for r in ranges), max(r[1] for r in ranges)] if ranges else None
    into["i"] = notes
    return True


def decode(text: str) -> dict[str, Any] | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body if isinstance(body, dict) and isinstance(body.get("k"), str) else None


def batchable(body: dict[str, Any]) -> bool:
    """A wake-up of new public messages only (no internal notes): ``resolve_messages`` reads
    many of them at once."""
    found = body.get("r")
    return body.get("k") == "m" and isinstance(body.get("v"), str) and not body.get("i") \
        and isinstance(found, list) and len(found) == 2 \
        and all(isinstance(seq, int) and not isinstance(seq, bool) for seq in found)


async def resolve_messages(store: Store, bodies: list[dict[str, Any]]) -> list[Event | None]:
    """The events of ``batchable`` wake-ups, read together (two reads for them all), each
    checked as ``resolve`` checks it."""
    ranges = [(str(body["v"]), int(body["r"][0]), int(body["r"][1])) for body in bodies]
    conversations, messages = await store.messages_in_ranges(ranges)
    by_conversation: dict[str, list[Message]] = {}
    for message in messages:
        by_conversation.setdefault(message.conversation_id, []).append(message)
    events: list[Event | None] = []
    for body, (conversation_id, low, high) in zip(bodies, ranges, strict=True):
        ticket = _ticket_to_tell(body, conversations.get(conversation_id))
        found = [m for m in by_conversation.get(conversation_id, []) if low <= m.seq <= high]
        events.append(MessagesAdded(conversation_id, found, ticket) if ticket and found
                      else None)
    return events


def _ticket_to_tell(body: dict[str, Any], conversation: Conversation | None) -> Ticket | None:
    """The conversation's ticket, if the wake-up's channel is the conversation's visitor's or
    its site's consoles: never another visitor's conversation, whoever sent the wake-up."""
    if conversation is None or body.get("c") not in (
            visitor_channel(conversation.visitor_id), agents_channel(conversation.site_id)):
        return None
    return conversation.ticket


async def resolve(store: Store, body: dict[str, Any]) -> Event | None:
    """The event a wake-up stands for, read from the database now (None: nothing to deliver,
    e.g. the conversation was erased meanwhile)."""
    kind, conversation_id = body.get("k"), body.get("v")
    if kind == "p":
        return Poke()
    if kind == "a":  # an agent's availability, for the consoles of the channel's site
        agent_id, name, status = body["a"]
        if status not in ("online", "away") or not str(body.get("c", "")).startswith("agents:"):
            return None
        return PresenceChanged(int(agent_id), str(name)[:MAX_NAME], status)
    if not isinstance(conversation_id, str):
        return None
    if kind == "y":
        kind_, name, author_id = body["a"]
        return Typing(conversation_id, Author(kind_, name, author_id))
    ticket = _ticket_to_tell(body, await store.get_conversation(conversation_id))
    if ticket is None:
        return None
    if kind == "t":
        return TicketUpdated(ticket)
    if kind != "m":
        return None
    messages: list[Message] = []
    seq_range, notes = body.get("r"), body.get("i") or []
    if seq_range:
        low, high = int(seq_range[0]), int(seq_range[1])
        found = await store.messages_after(conversation_id, low - 1, high - low + 1)
        messages += [m for m in found if m.seq <= high]
    if notes:
        wanted = {int(note) for note in notes}
        messages += [m for m in await store.ticket_messages(ticket) if m.id in wanted]
    if not messages:
        return None
    return MessagesAdded(conversation_id, messages, ticket)
