"""What the hub carries: committed changes, named by the channel they concern."""

from __future__ import annotations

from dataclasses import dataclass, field

from widget_server.models import Author, Message, Ticket


@dataclass(slots=True)  # made per message: not frozen, see models.Author
class MessagesAdded:
    conversation_id: str
    messages: list[Message]
    ticket: Ticket | None = None
    # frames encoded once per event and shared by every connection it reaches (fan-out)
    encoded: dict[object, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class TicketUpdated:
    ticket: Ticket
    encoded: dict[object, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Typing:
    conversation_id: str
    author: Author
    extra: dict[str, object] = field(default_factory=dict)
    encoded: dict[object, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class PresenceChanged:
    """An agent set their availability ("online" or "away"); told to the agents of a site."""

    agent_id: int
    name: str
    status: str
    encoded: dict[object, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Resync:
    """Live events for ``channel`` may have been missed (a broker connection dropped): the
    subscriber reads its state from the database again."""

    channel: str
    encoded: dict[object, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Poke:
    """Tickets changed on some node: the scheduler holding the lease looks at its clocks."""

    encoded: dict[object, object] = field(default_factory=dict, compare=False, repr=False)


Event = MessagesAdded | TicketUpdated | Typing | PresenceChanged | Resync | Poke

SCHEDULER_CHANNEL = "scheduler"


def visitor_channel(visitor_id: str) -> str:
    return f"visitor:{visitor_id}"


def agents_channel(site_id: int) -> str:
    return f"agents:{site_id}"
