"""Turning SQLite rows into the typed records of ``widget_server.models``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from operator import itemgetter

from widget_server.clock import parse_iso
from widget_server.models import Agent, ApiToken, AttachmentInfo, Author, Message, Site, Ticket
from widget_server.tickets import format_reference

TICKET_COLUMNS = (
    "t.id, t.site_id, t.number, t.conversation_id, t.subject, t.severity, t.status, t.stage,"
    " t.channel, t.assignee_id, t.first_response_due, t.first_response_at, t.created_at,"
    " t.updated_at, t.tier, t.split_from_id, t.merged_into_id, s.reference_prefix,"
    " t.sla_kind, t.sla_target, t.sla_consumed, t.sla_running_since, t.sla_due,"
    " t.sla_warned_at, t.sla_breached_at, t.next_response_at, t.solved_at,"
    " t.closed_at, t.erased_at, t.erased_reason"
)
# The rows TicketMemo builds records from: with the version (migration 0009), which
# TICKET_COLUMNS lacks (the writer's jobs add TICKET_VERSION_COLUMNS, for TicketVersions).
TICKET_READ_COLUMNS = f"{TICKET_COLUMNS}, t.version"
# What identifies the contents of a ticket row (why: TICKET_VERSION_COLUMNS below), in the
# order of TicketMemo's keys.
TICKET_KEY_COLUMNS = "t.id, t.version, t.created_at, t.conversation_id, s.reference_prefix"
_TICKET_KEY_AT = itemgetter(*(
    [name.strip() for name in TICKET_READ_COLUMNS.split(",")].index(name.strip())
    for name in TICKET_KEY_COLUMNS.split(",")))
TICKET_FROM = "tickets t JOIN sites s ON s.id = t.site_id"
# A conversation's latest ticket: one seek in the index on tickets (conversation_id), where
# ORDER BY t.id DESC LIMIT 1 over a join sorted the rows in a temporary b-tree.
LATEST_TICKET = "(SELECT MAX(id) FROM tickets WHERE conversation_id = {})"
MESSAGE_COLUMNS = (
    "id, conversation_id, seq, author_type, author_visitor_id, author_agent_id, author_name,"
    " body, internal, client_msg_id, created_at, attachments"
)


def site(row: sqlite3.Row) -> Site:
    return Site(
        id=row["id"],
        key=row["key"],
        name=row["name"],
        allowed_origins=tuple(json.loads(row["allowed_origins"])),
        identity_secret=row["identity_secret"],
        reference_prefix=row["reference_prefix"],
        tier_names=tuple(json.loads(row["tier_names"])),
        policy=row["policy"],
        identity_mode=row["identity_mode"],
        previous_identity_secret=row["previous_identity_secret"],
        previous_secret_until=(parse_iso(row["previous_secret_until"])
                               if row["previous_secret_until"] else None),
        grant_max_hours=row["grant_max_hours"],
        retention_days=row["retention_days"],
        mail_sender_name=row["mail_sender_name"],
        attachment_max_bytes=row["attachment_max_bytes"],
        attachment_max_files=row["attachment_max_files"],
        attachment_types=(tuple(row["attachment_types"].split(","))
                          if row["attachment_types"] else None),
        attachment_keep_metadata=bool(row["attachment_keep_metadata"]),
    )


def agent(row: sqlite3.Row) -> Agent:
    return Agent(
        id=row["id"], email=row["email"], name=row["name"], role=row["role"],
        active=bool(row["active"]), tier=row["tier"],
    )


def api_token(row: sqlite3.Row) -> ApiToken:
    return ApiToken(id=row["id"], name=row["name"], site_id=row["site_id"],
                    agent_id=row["agent_id"])


def ticket(row: sqlite3.Row) -> Ticket:
    first_response_at = row["first_response_at"]
    return Ticket(
        id=row["id"],
        site_id=row["site_id"],
        number=row["number"],
        reference=format_reference(row["number"], row["reference_prefix"]),
        conversation_id=row["conversation_id"],
        subject=row["subject"],
        severity=row["severity"],
        status=row["status"],
        stage=row["stage"],
        channel=row["channel"],
        assignee_id=row["assignee_id"],
        first_response_due=parse_iso(row["first_response_due"]),
        first_response_at=parse_iso(first_response_at) if first_response_at else None,
        created_at=parse_iso(row["created_at"]),
        updated_at=parse_iso(row["updated_at"]),
        tier=row["tier"],
        split_from_id=row["split_from_id"],
        merged_into_id=row["merged_into_id"],
        sla_kind=row["sla_kind"],
        sla_due=_maybe_time(row["sla_due"]),
        sla_paused=row["sla_target"] is not None and row["sla_running_since"] is None
        and row["status"] not in ("solved", "closed")
        and (row["first_response_at"] is None if row["sla_kind"] == "first_response"
             else row["next_response_at"] is None),
        at_risk=row["sla_warned_at"] is not None,
        breached=row["sla_breached_at"] is not None,
        next_response_at=_maybe_time(row["next_response_at"]),
        solved_at=_maybe_time(row["solved_at"]),
        closed_at=_maybe_time(row["closed_at"]),
        erased_at=_maybe_time(row["erased_at"]),
        erased_reason=row["erased_reason"],
    )


class _Bounded:
    """Ticket records by a key, at most ``size`` of them: when full, it starts over."""

    def __init__(self, size: int = 4096) -> None:
        self._found: dict[tuple[object, ...], Ticket] = {}
        self._size = size

    def _keep(self, key: tuple[object, ...], record: Ticket) -> Ticket:
        if len(self._found) >= self._size:
            self._found.clear()
        self._found[key] = record
        return record


class TicketMemo(_Bounded):
    """Ticket records for reads (the writer's jobs use TicketVersions), by the columns that
    identify a row's contents (``TICKET_KEY_COLUMNS``: every change gives a ticket a new
    version, so a changed ticket is a new entry, never a stale one). Tickets change rarely
    and are read often (a REST page lists 50): building one, parsing its instants, was the
    larger part of such a read, and a key of the whole row cost 2 us a ticket to hash and
    compare. A read may fetch only the key columns and the whole rows of the tickets the memo
    lacks (``known``). One memo per thread that uses it; bounded."""

    def __call__(self, row: sqlite3.Row) -> Ticket:
        """The record of a row that starts with ``TICKET_READ_COLUMNS``."""
        key = _TICKET_KEY_AT(row)
        found = self._found.get(key)
        return found if found is not None else self._keep(key, ticket(row))

    def known(self, key: Sequence[object]) -> Ticket | None:
        """The record of the row whose ``TICKET_KEY_COLUMNS`` are ``key``, if built before."""
        return self._found.get(tuple(key))


# What identifies the contents of a ticket row without reading them: its id and version (a
# trigger gives it a new random version on every update, migration 0009, so a version rolled
# back never names another state), its creation instant and conversation (SQLite may hand a
# deleted row's id to a new row, whose version starts at 0 again), and its site's reference
# prefix, the one part of the record from another table.
TICKET_VERSION_COLUMNS = (
    "t.id AS ticket_id, t.version AS ticket_version, t.created_at AS ticket_created_at,"
    " t.conversation_id AS ticket_conversation_id, s.reference_prefix AS ticket_prefix"
)


class TicketVersions(_Bounded):
    """Ticket records by ``TICKET_VERSION_COLUMNS``: a caller that reads those five columns
    gets the record without reading the thirty of the whole row (a message returns its
    ticket, which rarely changed since the last message). One memo per thread; bounded."""

    def __call__(self, versioned: sqlite3.Row, read: Callable[[], sqlite3.Row]) -> Ticket:
        """The record of the ticket ``versioned`` names; ``read`` fetches its whole row (with
        ``TICKET_COLUMNS``) when this version was not built yet."""
        key = (versioned["ticket_id"], versioned["ticket_version"],
               versioned["ticket_created_at"], versioned["ticket_conversation_id"],
               versioned["ticket_prefix"])
        found = self._found.get(key)
        return found if found is not None else self._keep(key, ticket(read()))


def _maybe_time(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None


def message(row: sqlite3.Row) -> Message:
    author_type = row["author_type"]
    if author_type == "visitor":
        author_id = row["author_visitor_id"]
    elif author_type == "agent":
        author_id = str(row["author_agent_id"])
    else:
        author_id = None
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        seq=row["seq"] if row["seq"] is not None else 0,
        author=Author(type=author_type, name=row["author_name"], id=author_id),
        body=row["body"],
        internal=bool(row["internal"]),
        created_at=parse_iso(row["created_at"]),
        client_msg_id=row["client_msg_id"],
        attachments=attachment_infos(row["attachments"]) if row["attachments"] else (),
    )


def attachment_infos(text: str) -> tuple[AttachmentInfo, ...]:
    """The ``messages.attachments`` JSON as records."""
    return tuple(AttachmentInfo(a["id"], a["name"], a["size"], a["content_type"])
                 for a in json.loads(text))
