"""Websocket frames of /ws/widget: schemas, validation and encoding, all in one place.

Incoming frames are decoded straight into typed structs by msgspec, which checks field types
and lengths as it parses; everything behind this module works with those structs only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import msgspec

from widget_server.clock import isoformat
from widget_server.models import AttachmentInfo, Message, Ticket, Visitor
from widget_server.numbers import MAX_INT
from widget_server.tickets import STAGE_LABELS, STATUS_LABELS

ShortId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Text = Annotated[str, msgspec.Meta(max_length=100_000)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT)]  # a 64-bit column holds it
MAX_RESUME = 200
MAX_ATTACHMENTS = 100  # a site allows at most its own number (attachment_max_files)
AttachmentId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class Hello(msgspec.Struct, tag="hello", tag_field="type"):
    site: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    token: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    resume: Annotated[dict[ShortId, Seq], msgspec.Meta(max_length=MAX_RESUME)] = {}
    page: Annotated[str, msgspec.Meta(max_length=2000)] | None = None  # the host page's URL


class Send(msgspec.Struct, tag="send", tag_field="type"):
    conversation: ShortId | None
    client_msg_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    body: Text
    severity: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    subject: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    attachments: Annotated[list[AttachmentId], msgspec.Meta(max_length=MAX_ATTACHMENTS)] = []


class Typing(msgspec.Struct, tag="typing", tag_field="type"):
    conversation: ShortId


class Read(msgspec.Struct, tag="read", tag_field="type"):
    conversation: ShortId
    seq: Seq


class Ping(msgspec.Struct, tag="ping", tag_field="type"):
    pass


ClientFrame = Hello | Send | Typing | Read | Ping
CLIENT_TYPES = frozenset({"hello", "send", "typing", "read", "ping"})


class _Envelope(msgspec.Struct):
    type: Any = None


class FrameError(Exception):
    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


_decoder = msgspec.json.Decoder(ClientFrame)
_envelope_decoder = msgspec.json.Decoder(_Envelope)
_encoder = msgspec.json.Encoder()


def decode(raw: str | bytes) -> ClientFrame:
    """Parse one client frame or raise ``FrameError`` with the code the client is told."""
    try:
        frame: ClientFrame = _decoder.decode(raw)
        return frame
    except msgspec.ValidationError as exc:
        reason = str(exc)
    except msgspec.DecodeError:
        raise FrameError("invalid_json", "the frame is not valid JSON") from None
    except RecursionError:  # msgspec gives up on very deep nesting inside an object
        raise FrameError("invalid_json", "the frame is nested too deeply") from None
    try:
        envelope = _envelope_decoder.decode(raw)
    except msgspec.ValidationError:
        raise FrameError("invalid_frame", "a frame must be a JSON object") from None
    except (msgspec.DecodeError, RecursionError):
        raise FrameError("invalid_json", "the frame is nested too deeply") from None
    if not isinstance(envelope.type, str):
        raise FrameError("invalid_frame", "a frame needs a string field `type`")
    if envelope.type not in CLIENT_TYPES:
        raise FrameError("unknown_type", f"unknown frame type {envelope.type[:40]!r}")
    raise FrameError("invalid_frame", reason)


def encode(frame: dict[str, Any]) -> str:
    return _encoder.encode(frame).decode()


# -- server frames


def visitor_json(visitor: Visitor) -> dict[str, Any]:
    return {"id": visitor.id, "name": visitor.name, "email": visitor.email,
            "verified": visitor.verified}


# The writer hands out the same Ticket object while a ticket does not change (one per row),
# so every ack of a conversation would rebuild the same object (four instants formatted) and
# encode it again: keep the last ones by identity, built and encoded. ticket_json's callers
# get a copy, free to add their own keys; acks splice the encoded text in whole.
_TICKET_JSON: dict[int, tuple[Ticket, dict[str, Any]]] = {}
_TICKET_RAW: dict[int, tuple[Ticket, msgspec.Raw]] = {}
_TICKET_KEPT_MAX = 4096
T = TypeVar("T")


def ticket_json(ticket: Ticket) -> dict[str, Any]:
    built: dict[str, Any] = _kept(_TICKET_JSON, ticket, _ticket_json)
    return dict(built)


def _ticket_raw(ticket: Ticket) -> msgspec.Raw:
    return _kept(_TICKET_RAW, ticket, lambda same: msgspec.Raw(
        _encoder.encode(_kept(_TICKET_JSON, same, _ticket_json))))


def _kept(kept: dict[int, tuple[Ticket, T]], ticket: Ticket, build: Callable[[Ticket], T]) -> T:
    found = kept.get(id(ticket))
    if found is not None and found[0] is ticket:  # the entry keeps the object: no reused id
        return found[1]
    if len(kept) >= _TICKET_KEPT_MAX:
        kept.clear()
    value = build(ticket)
    kept[id(ticket)] = (ticket, value)
    return value


def _ticket_json(ticket: Ticket) -> dict[str, Any]:
    return {
        "number": ticket.number,
        "reference": ticket.reference,
        "status": ticket.status,
        "status_label": STATUS_LABELS[ticket.status],
        "stage": ticket.stage,
        "stage_label": STAGE_LABELS.get(ticket.stage or ""),
        "severity": ticket.severity,
        "subject": ticket.subject,
        "first_response_due": isoformat(ticket.first_response_due),
        "first_response_at": (
            isoformat(ticket.first_response_at) if ticket.first_response_at else None
        ),
        "created_at": isoformat(ticket.created_at),
        # visitors learn only that specialists have it, never the internal tier structure
        "specialists": ticket.tier > 1,
        "response_due": isoformat(ticket.sla_due) if ticket.sla_due else None,
        "response_kind": ticket.sla_kind,
        "sla_paused": ticket.sla_paused,
        "breached": ticket.breached,
    }


def message_frame(message: Message) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "message",
        "conversation": message.conversation_id,
        "seq": message.seq,
        "id": message.id,
        "author": {"type": message.author.type, "name": message.author.name},
        "body": message.body,
        "created_at": isoformat(message.created_at),
        "attachments": attachments_json(message.attachments),
    }
    if message.client_msg_id is not None:
        frame["client_msg_id"] = message.client_msg_id
    return frame


def attachments_json(attachments: tuple[AttachmentInfo, ...]) -> list[dict[str, Any]]:
    """A message's attachments as every message shape lists them; ``url`` is relative to
    the server and needs a credential (docs/api.md#attachments)."""
    return [{"id": a.id, "name": a.name, "size": a.size, "content_type": a.content_type,
             "url": f"/attachments/{a.id}"} for a in attachments]


def ack_frame(message: Message, ticket: Ticket | None) -> dict[str, Any]:
    return _ack(message, ticket_json(ticket) if ticket else None)


def ack_text(message: Message, ticket: Ticket | None) -> str:
    """``ack_frame`` encoded, the ticket's JSON encoded once per version of the ticket."""
    return encode(_ack(message, _ticket_raw(ticket) if ticket else None))


def _ack(message: Message, ticket: dict[str, Any] | msgspec.Raw | None) -> dict[str, Any]:
    if message.attachments:  # only then: the ack of a message without any stays as it was
        return {**_plain_ack(message, ticket),
                "attachments": attachments_json(message.attachments)}
    return _plain_ack(message, ticket)


def _plain_ack(message: Message, ticket: dict[str, Any] | msgspec.Raw | None
               ) -> dict[str, Any]:
    return {
        "type": "ack",
        "client_msg_id": message.client_msg_id,
        "conversation": message.conversation_id,
        "seq": message.seq,
        "message_id": message.id,
        "created_at": isoformat(message.created_at),
        "ticket": ticket,
    }


def ticket_frame(ticket: Ticket) -> dict[str, Any]:
    return {"type": "ticket", "conversation": ticket.conversation_id, "ticket": ticket_json(ticket)}


def error_frame(code: str, message: str, ref: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref is not None:
        frame["ref"] = ref
    return frame
