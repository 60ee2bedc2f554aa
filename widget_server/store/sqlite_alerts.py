"""Mail alerts to agents, queued in the transaction of what causes them (docs/email.md).

Each agent picks the alerts they get (``agent_mail_prefs``; without a row, the defaults):
a new ticket on their sites, a visitor's reply on a ticket assigned to them, SLA at risk and
SLA breached (the assignee, or every agent of the site while nobody is assigned), and a
ticket escalated to their tier. The write jobs here wrap the plain ones.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from widget_server.models import Agent, PostResult, SweepResult, TicketChange
from widget_server.store import sqlite_console as console
from widget_server.store import sqlite_mail as mail
from widget_server.store.base import VisitorPost
from widget_server.store.connection import Connection
from widget_server.store.mail_records import MailPlan
from widget_server.store.sqlite_mail import enqueue
from widget_server.store.sqlite_sweep import sweep

ALERTS = ("new_ticket", "visitor_reply", "sla_at_risk", "sla_breached", "escalated")
DEFAULTS = {"new_ticket": False, "visitor_reply": True, "sla_at_risk": True,
            "sla_breached": False, "escalated": False}
HEADER = "X-Widget-Alert"  # kept with the queued mail: which alert it is
_SITE_AGENTS = (
    "SELECT a.id, a.email FROM agents a LEFT JOIN agent_mail_prefs p ON p.agent_id = a.id"
    " WHERE a.active = 1 AND COALESCE(p.{alert}, {default}) = 1 AND (a.role = 'admin' OR"
    " EXISTS (SELECT 1 FROM agent_sites m WHERE m.agent_id = a.id AND m.site_id = ?))")


def _wanted(alert: str) -> str:
    assert alert in DEFAULTS  # a fixed column name, never input
    return _SITE_AGENTS.format(alert=alert, default=int(DEFAULTS[alert]))


def alert(conn: Connection, plan: MailPlan, ticket_id: int, kind: str,
          now: datetime, tier: int | None = None, skip: int | None = None) -> int:
    """Queue ``kind`` about a ticket to the agents who want it: the assignee alone when the
    ticket has one (``visitor_reply`` only then), else the site's agents (of ``tier``);
    never to ``skip``, the agent who caused it. Returns how many were queued."""
    ticket = conn.execute("SELECT site_id, number, conversation_id, assignee_id FROM tickets"
                          " WHERE id = ?", (ticket_id,)).fetchone()
    if ticket is None:
        return 0
    site_id, number, conversation_id, assignee = ticket
    sql, params = _wanted(kind), [site_id]
    if assignee is not None and kind != "new_ticket" and kind != "escalated":
        sql, params = sql + " AND a.id = ?", [site_id, assignee]
    elif kind == "visitor_reply":
        return 0
    if tier is not None:
        sql, params = sql + " AND a.tier = ?", [*params, tier]
    queued = 0
    for agent_id, email in conn.execute(sql, params).fetchall():
        if agent_id != skip:
            enqueue(conn, plan, site_id, email, "alert", conversation_id, number, now, now,
                    headers={HEADER: kind})
            queued += 1
    return queued


def sla_sweep(conn: Connection, plan: MailPlan, holder: str, now: datetime,
              lease: timedelta) -> SweepResult:
    """The sweep, and an alert for each SLA mark it makes."""
    return sweep(conn, holder, now, lease,
                 marked=lambda ticket_id, kind: alert(conn, plan, ticket_id, kind, now))


def move_tier(conn: Connection, plan: MailPlan, site_id: int, number: int,
              agent: Agent, step: int, reason: str, now: datetime) -> TicketChange:
    change = console.move_tier(conn, site_id, number, agent, step, reason, now)
    if step > 0:
        alert(conn, plan, change.ticket.id, "escalated", now, tier=change.ticket.tier,
              skip=agent.id)
    return change


PREFS = f"SELECT {', '.join(ALERTS)} FROM agent_mail_prefs WHERE agent_id = ?"


def prefs(row: sqlite3.Row | None) -> dict[str, bool]:
    """An agent's choices from their PREFS row; the defaults without one."""
    return dict(DEFAULTS) if row is None else {a: bool(v) for a, v in zip(ALERTS, row,
                                                                          strict=True)}


def set_prefs(conn: Connection, agent_id: int, wanted: dict[str, bool]) -> None:
    values = [int(bool(wanted.get(a))) for a in ALERTS]
    conn.execute(
        f"INSERT INTO agent_mail_prefs (agent_id, {', '.join(ALERTS)}) VALUES (?, ?, ?, ?, ?, ?)"
        f" ON CONFLICT (agent_id) DO UPDATE SET "
        + ", ".join(f"{a} = excluded.{a}" for a in ALERTS), (agent_id, *values))


def post_visitor_message(conn: Connection, post: VisitorPost, now: datetime,
                         plan: MailPlan) -> PostResult:
    """A visitor's message as mail.post_visitor_message stores it, and the alert it causes:
    a new ticket, or a reply on an assigned one."""
    result = mail.post_visitor_message(conn, post, now, plan)
    if not result.duplicate and result.ticket is not None:
        alert(conn, plan, result.ticket.id,
              "new_ticket" if post.conversation_id is None else "visitor_reply", now)
    return result
