"""The SLA sweep as one write transaction: take the lease, mark, auto-close, report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from widget_server.clock import isoformat, parse_iso
from widget_server.models import SweepResult
from widget_server.policy import policy_from_text
from widget_server.store import sqlite_rows as rows
from widget_server.store.connection import Connection
from widget_server.store.sqlite_writes import _event


def _take_lease(conn: Connection, holder: str, now: datetime,
                lease: timedelta) -> bool:
    conn.execute(
        "INSERT INTO scheduler_leases (name, holder, expires_at) VALUES ('sla', ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
        " expires_at = excluded.expires_at"
        " WHERE scheduler_leases.expires_at <= ? OR scheduler_leases.holder = excluded.holder",
        (holder, isoformat(now + lease), isoformat(now)))
    row = conn.execute("SELECT holder FROM scheduler_leases WHERE name = 'sla'").fetchone()
    return bool(row and row[0] == holder)


def sweep(conn: Connection, holder: str, now: datetime, lease: timedelta,
          marked: Callable[[int, str], object] | None = None) -> SweepResult:
    """``marked(ticket_id, "sla_at_risk" | "sla_breached")`` is told of each mark, in the
    transaction (the mail alerts of sqlite_alerts.py)."""
    if not _take_lease(conn, holder, now, lease):
        return SweepResult(False, [], None)
    stamp = isoformat(now)
    touched: set[int] = set()
    for row in conn.execute(
            "UPDATE tickets SET sla_warned_at = ? WHERE sla_due IS NOT NULL"
            " AND sla_warned_at IS NULL AND sla_at_risk_at <= ? RETURNING id, sla_due",
            (stamp, stamp)).fetchall():
        _event(conn, row[0], "sla_at_risk", "system", None, {"due": row[1]}, now)
        touched.add(row[0])
        if marked is not None:
            marked(row[0], "sla_at_risk")
    for row in conn.execute(
            "UPDATE tickets SET sla_breached_at = ? WHERE sla_due IS NOT NULL"
            " AND sla_breached_at IS NULL AND sla_due <= ? RETURNING id, sla_due, sla_kind",
            (stamp, stamp)).fetchall():
        _event(conn, row[0], "sla_breached", "system", None,
               {"due": row[1], "clock": row[2]}, now)
        touched.add(row[0])
        if marked is not None:
            marked(row[0], "sla_breached")
    wakes = []
    for site_id, policy_text in conn.execute("SELECT id, policy FROM sites").fetchall():
        after = policy_from_text(policy_text).auto_close_after
        for row in conn.execute(
                "UPDATE tickets SET status = 'closed', closed_at = ?, updated_at = ?"
                " WHERE site_id = ? AND status = 'solved' AND solved_at <= ? RETURNING id",
                (stamp, stamp, site_id, isoformat(now - after))).fetchall():
            _event(conn, row[0], "auto_closed", "system", None,
                   {"after_days": after.days}, now)
            touched.add(row[0])
        oldest = conn.execute("SELECT MIN(solved_at) FROM tickets WHERE site_id = ?"
                              " AND status = 'solved'", (site_id,)).fetchone()[0]
        if oldest:
            wakes.append(parse_iso(oldest) + after)
    for column, mark in (("sla_at_risk_at", "sla_warned_at"), ("sla_due", "sla_breached_at")):
        soonest = conn.execute(
            f"SELECT MIN({column}) FROM tickets WHERE sla_due IS NOT NULL AND {mark} IS NULL"
        ).fetchone()[0]
        if soonest:
            wakes.append(parse_iso(soonest))
    changed = []
    for ticket_id in sorted(touched):
        row = conn.execute(
            f"SELECT {rows.TICKET_COLUMNS}, c.visitor_id FROM {rows.TICKET_FROM}"
            " JOIN conversations c ON c.id = t.conversation_id WHERE t.id = ?",
            (ticket_id,)).fetchone()
        changed.append((rows.ticket(row), row["visitor_id"]))
    return SweepResult(True, changed, min(wakes) if wakes else None)
