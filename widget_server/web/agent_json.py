"""A ticket and a message as agents see them: the one JSON of the REST API (web/api.py) and
of the /ws/console frames (web/console/live.py), so the two never drift apart."""

from __future__ import annotations

from typing import Any

from widget_server.clock import isoformat
from widget_server.models import Message, Ticket
from widget_server.realtime.protocol import attachments_json, ticket_json


def api_ticket(ticket: Ticket) -> dict[str, Any]:
    """The widget's ticket JSON and what only agents see: the conversation, channel,
    assignee, last change and the erasure."""
    erased = ticket.erased_at is not None  # a tombstone: number, status, dates (privacy.md)
    return {**ticket_json(ticket), "conversation": None if erased else ticket.conversation_id,
            "channel": ticket.channel, "assignee_id": ticket.assignee_id,
            "updated_at": isoformat(ticket.updated_at),
            "closed_at": isoformat(ticket.closed_at) if ticket.closed_at else None,
            "erased": erased, "erased_at": isoformat(ticket.erased_at) if erased else None,
            "erased_reason": ticket.erased_reason}


def api_message(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "seq": message.seq if not message.internal else None,
        "author": {"type": message.author.type, "name": message.author.name,
                   "id": message.author.id},
        "body": message.body,
        "internal": message.internal,
        "created_at": isoformat(message.created_at),
        "attachments": attachments_json(message.attachments),
    }
