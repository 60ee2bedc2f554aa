"""Support access grants in SQLite: the write jobs and the reads, mixed into the store.

Expiry needs no job to be correct: a grant is active while now < expires_at. The ``expired``
audit event is written by the scheduler's sweep, or by the first read that finds it missing,
and carries the instant the grant ended, not the instant somebody noticed.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from widget_server.access_grants import (
    SCOPE,
    AccessGrant,
    GrantEvent,
    GrantRequest,
    expiry,
    new_grant_id,
)
from widget_server.clock import isoformat, parse_iso
from widget_server.errors import Conflict, NotFound
from widget_server.store.connection import Connection
from widget_server.store.console_queries import StoreMixin

MAX_ACTIVE_GRANTS = 20  # per user: more than this is somebody clicking in a loop
GRANT_COLUMNS = ("g.id, g.site_id, g.user_id, g.scope, g.reason, g.hours, g.created_at,"
                 " g.expires_at, g.revoked_at, t.number AS ticket_number")
GRANT_FROM = "access_grants g LEFT JOIN tickets t ON t.id = g.ticket_id"
EVENT_COLUMNS = ("id, grant_id, user_id, type, actor_type, actor_name, action, detail,"
                 " created_at")


def grant_row(row: sqlite3.Row) -> AccessGrant:
    return AccessGrant(
        id=row["id"], site_id=row["site_id"], user_id=row["user_id"],
        ticket_number=row["ticket_number"], scope=row["scope"], reason=row["reason"],
        hours=row["hours"], created_at=parse_iso(row["created_at"]),
        expires_at=parse_iso(row["expires_at"]),
        revoked_at=parse_iso(row["revoked_at"]) if row["revoked_at"] else None)


def event_row(row: sqlite3.Row) -> GrantEvent:
    return GrantEvent(
        id=row["id"], grant_id=row["grant_id"], user_id=row["user_id"], type=row["type"],
        actor_type=row["actor_type"], actor_name=row["actor_name"], action=row["action"],
        detail=row["detail"], created_at=parse_iso(row["created_at"]))


def _grant(conn: Connection, site_id: int, grant_id: str) -> AccessGrant | None:
    row = conn.execute(f"SELECT {GRANT_COLUMNS} FROM {GRANT_FROM} WHERE g.id = ? AND g.site_id = ?",
                       (grant_id, site_id)).fetchone()
    return grant_row(row) if row else None


def _event(conn: Connection, grant: AccessGrant, type_: str, actor_type: str,
           actor_name: str | None, at: datetime, action: str | None = None,
           detail: str | None = None) -> GrantEvent:
    row = conn.execute(
        "INSERT INTO access_grant_events (grant_id, site_id, user_id, type, actor_type,"
        f" actor_name, action, detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        f" RETURNING {EVENT_COLUMNS}",
        (grant.id, grant.site_id, grant.user_id, type_, actor_type, actor_name, action, detail,
         isoformat(at))).fetchone()
    return event_row(row)


def create_grant(conn: Connection, site_id: int, user_id: str, visitor_id: str,
                 request: GrantRequest, now: datetime) -> AccessGrant:
    ticket_id = None
    if request.ticket_number is not None:
        found = conn.execute(
            "SELECT t.id FROM tickets t JOIN conversations c ON c.id = t.conversation_id"
            " JOIN visitors v ON v.id = c.visitor_id"
            " WHERE t.site_id = ? AND t.number = ? AND v.user_id = ?",
            (site_id, request.ticket_number, user_id)).fetchone()
        if found is None:  # someone else's ticket looks exactly like a missing one
            raise NotFound(f"you have no ticket {request.ticket_number}",
                           code="ticket_not_found")
        ticket_id = found[0]
    (active,) = conn.execute(
        "SELECT count(*) FROM access_grants WHERE site_id = ? AND user_id = ?"
        " AND revoked_at IS NULL AND expires_at > ?", (site_id, user_id, isoformat(now))
    ).fetchone()
    if active >= MAX_ACTIVE_GRANTS:
        raise Conflict("revoke some of your active grants first", code="too_many_grants")
    grant_id = new_grant_id()
    conn.execute(
        "INSERT INTO access_grants (id, site_id, user_id, visitor_id, ticket_id, scope, reason,"
        " hours, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (grant_id, site_id, user_id, visitor_id, ticket_id, SCOPE, request.reason,
         request.hours, isoformat(now), isoformat(expiry(now, request.hours))))
    grant = _grant(conn, site_id, grant_id)
    assert grant is not None
    _event(conn, grant, "granted", "visitor", None, now, detail=request.reason)
    return grant


def revoke_grant(conn: Connection, site_id: int, user_id: str, grant_id: str,
                 now: datetime) -> AccessGrant:
    """End a grant at once. Revoking one that already ended changes nothing."""
    grant = _grant(conn, site_id, grant_id)
    if grant is None or grant.user_id != user_id:
        raise NotFound("you have no such grant", code="grant_not_found")
    if not grant.active(now):
        return grant
    conn.execute("UPDATE access_grants SET revoked_at = ? WHERE id = ?",
                 (isoformat(now), grant_id))
    _event(conn, grant, "revoked", "visitor", None, now)
    revoked = _grant(conn, site_id, grant_id)
    assert revoked is not None
    return revoked


def revoke_user_grants(conn: Connection, site_id: int, user_id: str, now: datetime,
                       why: str) -> int:
    """End every active grant of a user at once (an erasure request); how many ended."""
    found = [grant_row(row) for row in conn.execute(
        f"SELECT {GRANT_COLUMNS} FROM {GRANT_FROM} WHERE g.site_id = ? AND g.user_id = ?"
        " AND g.revoked_at IS NULL AND g.expires_at > ?", (site_id, user_id, isoformat(now)))]
    for grant in found:
        conn.execute("UPDATE access_grants SET revoked_at = ? WHERE id = ?",
                     (isoformat(now), grant.id))
        _event(conn, grant, "revoked", "system", why, now)
    return len(found)


def record_use(conn: Connection, site_id: int, grant_id: str, actor_name: str,
               action: str, detail: str | None, now: datetime) -> GrantEvent:
    grant = _grant(conn, site_id, grant_id)
    if grant is None:
        raise NotFound("no grant has this id on this site", code="grant_not_found")
    if not grant.active(now):
        raise Conflict(f"this grant is {grant.state(now)}: support has no access",
                       code="grant_not_active")
    return _event(conn, grant, "used", "api", actor_name, now, action=action, detail=detail)


def expire_due(conn: Connection, now: datetime) -> int:
    """Write the ``expired`` event of every grant that ended by itself and lacks one."""
    due = [grant_row(row) for row in conn.execute(
        f"SELECT {GRANT_COLUMNS} FROM {GRANT_FROM} WHERE g.revoked_at IS NULL"
        " AND g.expiry_recorded = 0 AND g.expires_at <= ? ORDER BY g.expires_at LIMIT 500",
        (isoformat(now),))]
    for grant in due:
        conn.execute("UPDATE access_grants SET expiry_recorded = 1 WHERE id = ?", (grant.id,))
        _event(conn, grant, "expired", "system", None, grant.expires_at)
    return len(due)


def set_grant_max(conn: Connection, site_id: int, hours: int) -> None:
    if conn.execute("UPDATE sites SET grant_max_hours = ? WHERE id = ?",
                    (hours, site_id)).rowcount == 0:
        raise NotFound("no such site", code="site_not_found")


class GrantQueries(StoreMixin):
    async def create_access_grant(self, site_id: int, user_id: str, visitor_id: str,
                                  request: GrantRequest, now: datetime) -> AccessGrant:
        return await self._write(create_grant, site_id, user_id, visitor_id, request, now)

    async def revoke_access_grant(self, site_id: int, user_id: str, grant_id: str,
                                  now: datetime) -> AccessGrant:
        return await self._write(revoke_grant, site_id, user_id, grant_id, now)

    async def record_grant_use(self, site_id: int, grant_id: str, actor_name: str, action: str,
                               detail: str | None, now: datetime) -> GrantEvent:
        return await self._write(record_use, site_id, grant_id, actor_name, action, detail, now)

    async def expire_access_grants(self, now: datetime) -> int:
        """Record every expiry that is due; cheap when none is (one indexed read)."""
        if await self._fetchone(
                "SELECT 1 FROM access_grants WHERE revoked_at IS NULL AND expiry_recorded = 0"
                " AND expires_at <= ? LIMIT 1", (isoformat(now),)) is None:
            return 0
        return await self._write(expire_due, now)

    async def set_grant_max_hours(self, site_id: int, hours: int) -> None:
        await self._write(set_grant_max, site_id, hours)

    async def access_grant(self, site_id: int, grant_id: str) -> AccessGrant | None:
        row = await self._fetchone(
            f"SELECT {GRANT_COLUMNS} FROM {GRANT_FROM} WHERE g.id = ? AND g.site_id = ?",
            (grant_id, site_id))
        return grant_row(row) if row else None

    async def user_access_grants(self, site_id: int, user_id: str, now: datetime,
                                 limit: int = 50) -> list[AccessGrant]:
        """The user's grants, newest first, with every due expiry recorded first."""
        await self.expire_access_grants(now)
        found = await self._fetchall(
            f"SELECT {GRANT_COLUMNS} FROM {GRANT_FROM} WHERE g.site_id = ? AND g.user_id = ?"
            f" ORDER BY g.created_at DESC, {self._dialect.arrival('g')} DESC LIMIT ?",
            (site_id, user_id, limit))
        return [grant_row(row) for row in found]

    async def grant_events(self, site_id: int, *, user_id: str | None = None,
                           grant_id: str | None = None, limit: int = 100
                           ) -> list[GrantEvent]:
        """Audit events, newest first: of a site, one user, or one grant."""
        where: list[str] = ["site_id = ?"]
        params: list[object] = [site_id]
        for column, value in (("user_id", user_id), ("grant_id", grant_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        found = await self._fetchall(
            f"SELECT {EVENT_COLUMNS} FROM access_grant_events WHERE {' AND '.join(where)}"
            " ORDER BY created_at DESC, id DESC LIMIT ?", (*params, limit))
        return [event_row(row) for row in found]
