"""SLA clock bookkeeping inside write transactions: the rules of ``sla.py`` on ticket rows."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from widget_server.clock import isoformat, parse_iso
from widget_server.policy import Policy, policy_from_text
from widget_server.sla import Clock, start_clock
from widget_server.store.connection import Connection

STOPPED_STATUSES = ("solved", "closed")


def site_policy(conn: Connection, site_id: int) -> Policy:
    row = conn.execute("SELECT policy FROM sites WHERE id = ?", (site_id,)).fetchone()
    return policy_from_text(row[0] if row else None)


def row_clock(row: sqlite3.Row) -> Clock | None:
    if row["sla_target"] is None:
        return None
    since = row["sla_running_since"]
    return Clock(row["sla_kind"], float(row["sla_target"]), float(row["sla_consumed"]),
                 parse_iso(since) if since else None)


def write_clock(conn: Connection, ticket_id: int, clock: Clock | None, policy: Policy,
                *, new_clock: bool = False) -> datetime | None:
    """Store the clock and its derived instants; a new clock clears the old marks."""
    calendar = policy.calendar
    due = clock.due_at(calendar) if clock else None
    at_risk = clock.at_risk_at(calendar) if clock else None
    conn.execute(
        "UPDATE tickets SET sla_kind = COALESCE(?, sla_kind), sla_target = ?, sla_consumed = ?,"
        " sla_running_since = ?, sla_due = ?, sla_at_risk_at = ?"
        + (", sla_warned_at = NULL, sla_breached_at = NULL" if new_clock else "")
        + " WHERE id = ?",
        (clock.kind if clock else None, clock.target_seconds if clock else None,
         clock.consumed if clock else 0,
         isoformat(clock.running_since) if clock and clock.running_since else None,
         isoformat(due) if due else None, isoformat(at_risk) if at_risk else None, ticket_id))
    if clock is not None and clock.kind == "first_response" and due is not None:
        conn.execute("UPDATE tickets SET first_response_due = ? WHERE id = ?",
                     (isoformat(due), ticket_id))
    return due


def first_response_clock(policy: Policy, severity: str, now: datetime) -> Clock:
    return start_clock("first_response", policy.severity(severity).first_response, now)


def on_status_change(conn: Connection, row: sqlite3.Row, new_status: str,
                     now: datetime, policy: Policy) -> None:
    """Pause on pausing statuses, resume when leaving them, stop on solve, and give a reopened
    ticket a fresh next-response clock (never an instant breach)."""
    old_status = row["status"]
    clock = row_clock(row)
    if old_status in STOPPED_STATUSES and new_status not in STOPPED_STATUSES:
        level = policy.severity(row["severity"])
        target = level.next_response or level.first_response
        write_clock(conn, row["id"], start_clock("next_response", target, now), policy,
                    new_clock=True)
        return
    if clock is None:
        return
    calendar = policy.calendar
    if new_status in STOPPED_STATUSES:
        stopped = clock.pause(calendar, now)
        write_clock(conn, row["id"], stopped, policy)
        conn.execute("UPDATE tickets SET sla_due = NULL, sla_at_risk_at = NULL WHERE id = ?",
                     (row["id"],))
    elif new_status in policy.pause_statuses and old_status not in policy.pause_statuses:
        write_clock(conn, row["id"], clock.pause(calendar, now), policy)
    elif old_status in policy.pause_statuses and new_status not in policy.pause_statuses:
        if _clock_done(row):
            return
        write_clock(conn, row["id"], clock.resume(now), policy)


def _clock_done(row: sqlite3.Row) -> bool:
    if row["sla_kind"] == "first_response":
        return row["first_response_at"] is not None
    return row["next_response_at"] is not None


def on_public_reply(conn: Connection, row: sqlite3.Row, now: datetime,
                    policy: Policy) -> bool:
    """The response the running clock waits for: stop it. True when it was the first."""
    clock = row_clock(row)
    first = row["first_response_at"] is None
    if first:
        conn.execute("UPDATE tickets SET first_response_at = ? WHERE id = ?",
                     (isoformat(now), row["id"]))
    elif row["sla_kind"] == "next_response" and row["next_response_at"] is None:
        conn.execute("UPDATE tickets SET next_response_at = ? WHERE id = ?",
                     (isoformat(now), row["id"]))
    if clock is not None and clock.running_since is not None:
        write_clock(conn, row["id"], clock.pause(policy.calendar, now), policy)
    return first


def on_severity_change(conn: Connection, row: sqlite3.Row, severity: str,
                       policy: Policy) -> None:
    """Same business time used since creation, measured against the new target."""
    level = policy.severity(severity)
    clock = row_clock(row)
    if clock is None or _clock_done(row):
        return
    target = level.first_response if clock.kind == "first_response" else (
        level.next_response or level.first_response)
    # a new target may move the due time past a recorded breach: judge it afresh
    write_clock(conn, row["id"], clock.retarget(target.total_seconds()), policy, new_clock=True)
