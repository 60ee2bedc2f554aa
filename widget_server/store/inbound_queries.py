"""Reads and writes of inbound mail (docs/email.md), mixed into the SQLite store like
MailQueries: the conversation an answer belongs to, bouncing addresses, follow-up links."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from widget_server import tickets as rules
from widget_server.clock import isoformat
from widget_server.errors import Conflict
from widget_server.models import PostResult, Visitor
from widget_server.store.connection import Connection
from widget_server.store.console_queries import StoreMixin
from widget_server.store.mail_records import MailThread

REASON_CHARS = 500


def mark_bouncing(conn: Connection, address: str, reason: str, now: datetime) -> None:
    conn.execute(
        "INSERT INTO mail_bounces (address, reason, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (address) DO UPDATE SET reason = excluded.reason,"
        " created_at = excluded.created_at",
        (address.lower(), reason[:REASON_CHARS], isoformat(now)))


def link_follow_up(conn: Connection, site_id: int, number: int, of_number: int,
                   now: datetime, via: str = "mail") -> None:
    """The ticket ``number`` follows up the closed ticket ``of_number``: linked both ways in
    its history, as a split is; ``via`` says how (a mail, or the widget's follow-up)."""
    found = {row[0]: row[1] for row in conn.execute(
        "SELECT number, id FROM tickets WHERE site_id = ? AND number IN (?, ?)",
        (site_id, number, of_number))}
    if number not in found or of_number not in found:
        return
    conn.execute("UPDATE tickets SET follow_up_of_id = ? WHERE id = ?",
                 (found[of_number], found[number]))
    for ticket_id, type_, data in ((found[number], "follow_up_of", {"number": of_number}),
                                   (found[of_number], "followed_up_by", {"number": number})):
        conn.execute(
            "INSERT INTO ticket_events (ticket_id, type, actor_type, actor_id, data,"
            " created_at) VALUES (?, ?, 'system', NULL, ?, ?)",
            (ticket_id, type_, json.dumps({**data, "via": via}), isoformat(now)))


def with_follow_up(conn: Connection, job: Callable[..., PostResult], args: tuple[Any, ...]
                   ) -> PostResult:
    """The new request the message job ``job(conn, *args)`` opens, linked to the closed
    ticket its post follows up in the same transaction. A resend links nothing more."""
    result = job(conn, *args)
    post, now = args[0], args[1]
    if result.ticket is not None and not result.duplicate:
        link_follow_up(conn, post.visitor.site_id, result.ticket.number, post.follow_up_of,
                       now, post.follow_up_via)
    return result


def set_support_address(conn: Connection, site_id: int, address: str | None) -> None:
    """``address`` (None: none) becomes the site's support address; Conflict when another
    site has it."""
    if address is not None:
        other = conn.execute("SELECT key FROM sites WHERE support_address = ? AND id != ?",
                             (address, site_id)).fetchone()
        if other is not None:
            raise Conflict(f"{address} is already the support address of site {other[0]}",
                           code="support_address_taken")
    conn.execute("UPDATE sites SET support_address = ? WHERE id = ?", (address, site_id))


class InboundQueries(StoreMixin):
    async def mail_thread(self, conversation_id: str) -> MailThread | None:
        row = await self._fetchone(
            "SELECT c.id, c.site_id, c.mail_to, v.id AS visitor_id, v.user_id, v.name,"
            " v.email, v.verified, t.number, t.status, t.channel, s.reference_prefix"
            " FROM conversations c JOIN visitors v ON v.id = c.visitor_id"
            " JOIN sites s ON s.id = c.site_id"
            " LEFT JOIN tickets t ON t.id = (SELECT MAX(id) FROM tickets"
            " WHERE conversation_id = c.id) WHERE c.id = ?", (conversation_id,))
        if row is None:
            return None
        visitor = Visitor(id=row["visitor_id"], site_id=row["site_id"], user_id=row["user_id"],
                          name=row["name"], email=row["email"], verified=bool(row["verified"]))
        number = row["number"]
        return MailThread(
            conversation_id=row["id"], site_id=row["site_id"], visitor=visitor,
            mail_to=row["mail_to"], ticket_number=number, ticket_status=row["status"],
            channel=row["channel"],
            reference=None if number is None else rules.format_reference(
                number, row["reference_prefix"]))

    async def conversation_of_mail(self, message_ids: list[str]) -> str | None:
        """The conversation of the first of our mails' Message-IDs an answer refers to."""
        for message_id in message_ids[:20]:
            row = await self._fetchone(
                "SELECT conversation_id FROM mail_outbox WHERE message_id = ?"
                " AND conversation_id IS NOT NULL", (message_id,))
            if row is not None:
                return str(row[0])
        return None

    async def mark_bouncing(self, address: str, reason: str) -> None:
        await self._write(mark_bouncing, address, reason, self._clock.now())

    async def is_bouncing(self, address: str) -> bool:
        row = await self._fetchone("SELECT 1 FROM mail_bounces WHERE address = ?",
                                   (address.lower(),))
        return row is not None

    async def bouncing_addresses(self, limit: int = 100) -> list[tuple[str, str, str]]:
        """The newest bouncing addresses: (address, reason, since) each."""
        rows = await self._fetchall(
            "SELECT address, reason, created_at FROM mail_bounces"
            " ORDER BY created_at DESC LIMIT ?", (limit,))
        return [(row[0], row[1], row[2]) for row in rows]

    async def set_support_address(self, site_id: int, address: str | None) -> None:
        await self._write(set_support_address, site_id, address and address.lower())

    async def support_address(self, site_id: int) -> str | None:
        row = await self._fetchone("SELECT support_address FROM sites WHERE id = ?",
                                   (site_id,))
        return row[0] if row else None

    async def support_site(self, address: str) -> int | None:
        """The site whose support address ``address`` is."""
        row = await self._fetchone("SELECT id FROM sites WHERE support_address = ?",
                                   (address.lower(),))
        return int(row[0]) if row else None

