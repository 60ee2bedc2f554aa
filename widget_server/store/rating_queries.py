"""Satisfaction ratings: the write job that records one, and the reads of the ticket page and
the CSAT report; mixed into the SQLite store like ConsoleQueries (rules: ratings.py)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from widget_server import ratings as rules
from widget_server.clock import isoformat, parse_iso
from widget_server.errors import Conflict, NotFound
from widget_server.models import Ticket
from widget_server.ratings import Rating, RatingRow
from widget_server.store import sqlite_rows as rows
from widget_server.store.console_queries import StoreMixin
from widget_server.store.sqlite_writes import _event, _record_of
from widget_server.tickets import format_reference

RATING_COLUMNS = ("ticket_id, score, comment, channel, created_at, updated_at, agent_id")


def rating(row: sqlite3.Row) -> Rating:
    return Rating(ticket_id=row["ticket_id"], score=row["score"], comment=row["comment"],
                  channel=row["channel"], created_at=parse_iso(row["created_at"]),
                  updated_at=parse_iso(row["updated_at"]), agent_id=row["agent_id"])


def rate(conn: sqlite3.Connection, site_id: int, visitor_id: str, conversation_id: str,
         score: int, comment: str | None, keep: bool, channel: str, now: datetime
         ) -> tuple[Rating, Ticket]:
    """Record or change the rating of the conversation's latest ticket, as its visitor."""
    enabled = conn.execute("SELECT ratings_enabled FROM sites WHERE id = ?",
                           (site_id,)).fetchone()
    if enabled is None or not enabled[0]:
        raise Conflict("this site does not ask for ratings", code="ratings_off")
    row = conn.execute(
        f"SELECT {rows.TICKET_COLUMNS} FROM {rows.TICKET_FROM}"
        " JOIN conversations c ON c.id = t.conversation_id"
        f" WHERE t.id = {rows.LATEST_TICKET.format('?')} AND c.visitor_id = ?"
        " AND c.site_id = ?", (conversation_id, visitor_id, site_id)).fetchone()
    if row is None or row["erased_at"] is not None:  # another visitor's looks like none
        raise NotFound("no request of yours has this id", code="unknown_conversation")
    if row["status"] not in rules.RATEABLE_STATUSES:
        raise Conflict("a request can be rated once it is solved", code="ticket_not_solved")
    before = conn.execute(f"SELECT {RATING_COLUMNS} FROM ratings WHERE ticket_id = ?",
                          (row["id"],)).fetchone()
    old = rating(before) if before is not None else None
    if old is not None and now >= old.changeable_until:
        raise Conflict("a rating can be changed for 7 days after it was given",
                       code="rating_locked")
    kept = (old.comment if old else None) if keep else comment
    stamp = isoformat(now)
    conn.execute(
        "INSERT INTO ratings (ticket_id, site_id, visitor_id, agent_id, score, comment,"
        " channel, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (ticket_id) DO UPDATE SET score = excluded.score,"
        " comment = excluded.comment, channel = excluded.channel,"
        " agent_id = excluded.agent_id, updated_at = excluded.updated_at",
        (row["id"], site_id, visitor_id, row["assignee_id"], score, kept, channel, stamp,
         stamp))
    if old is None or old.score != score or old.comment != kept:
        data: dict[str, object] = {"score": score, "channel": channel}
        if old is not None:
            data["from"] = old.score
        # the comment stays out of the append-only history: an erasure deletes it
        _event(conn, row["id"], "rating", "visitor", visitor_id, data, now)
    conn.execute("UPDATE tickets SET rating = ?, rated_at = ? WHERE id = ?",
                 (score, isoformat(old.created_at) if old else stamp, row["id"]))
    found = conn.execute(f"SELECT {RATING_COLUMNS} FROM ratings WHERE ticket_id = ?",
                         (row["id"],)).fetchone()
    ticket = conn.execute(
        f"SELECT {rows.TICKET_COLUMNS}, {rows.TICKET_VERSION_COLUMNS} FROM {rows.TICKET_FROM}"
        " WHERE t.id = ?", (row["id"],)).fetchone()
    return rating(found), _record_of(ticket)


def set_enabled(conn: sqlite3.Connection, site_id: int, enabled: bool) -> None:
    if conn.execute("UPDATE sites SET ratings_enabled = ? WHERE id = ?",
                    (int(enabled), site_id)).rowcount == 0:
        raise NotFound("no such site", code="site_not_found")


class RatingQueries(StoreMixin):
    async def rate_ticket(self, site_id: int, visitor_id: str, conversation_id: str,
                          score: int, comment: str | None, keep: bool, channel: str,
                          now: datetime) -> tuple[Rating, Ticket]:
        """Record the visitor's rating of the conversation's latest ticket; ``keep``
        keeps the stored comment. ``NotFound`` for another visitor's conversation,
        ``Conflict`` when the site asks for none, the ticket is not solved or closed, or the
        rating was first given ``CHANGE_WINDOW`` ago or more."""
        return await self._hooked(site_id, rate, site_id, visitor_id, conversation_id, score,
                                  comment, keep, channel, now,
                                  events=("rating.created", "rating.updated"))

    async def ticket_rating(self, ticket_id: int) -> Rating | None:
        row = await self._fetchone_now(
            f"SELECT {RATING_COLUMNS} FROM ratings WHERE ticket_id = ?", (ticket_id,))
        return rating(row) if row else None

    async def rating_rows(self, site_id: int, since: datetime) -> list[RatingRow]:
        """The site's ratings first given at ``since`` or later, newest first."""
        found = await self._fetchall(
            "SELECT t.number, s.reference_prefix, t.severity, r.agent_id, a.name AS agent_name,"
            " r.score, r.comment, r.created_at, r.updated_at FROM ratings r"
            " JOIN tickets t ON t.id = r.ticket_id JOIN sites s ON s.id = r.site_id"
            " LEFT JOIN agents a ON a.id = r.agent_id"
            " WHERE r.site_id = ? AND r.created_at >= ? ORDER BY r.created_at DESC, r.id DESC",
            (site_id, isoformat(since)), slow=True)
        return [RatingRow(number=row["number"],
                          reference=format_reference(row["number"],
                                                          row["reference_prefix"]),
                          severity=row["severity"], agent_id=row["agent_id"],
                          agent_name=row["agent_name"], score=row["score"],
                          comment=row["comment"], created_at=parse_iso(row["created_at"]),
                          updated_at=parse_iso(row["updated_at"])) for row in found]

    async def set_ratings_enabled(self, site_id: int, enabled: bool) -> None:
        await self._write(set_enabled, site_id, enabled)
