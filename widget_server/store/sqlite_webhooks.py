"""Write jobs of webhooks (docs/webhooks.md); each runs inside the single writer.

A delivery is queued in the transaction of its event, so an event that commits is
delivered (at least once) and one rolled back never is. Two ways in:

- ``queue_event(conn, site_id, event_type, ticket_id, data, at)``: the one function a write
  job calls to tell the site's endpoints of an event; it queues one delivery per enabled
  endpoint subscribed to the event, and nothing when none is.
- ``captured(conn, job, args)``: runs a write job and queues what it recorded, read from the
  rows it appended to ``ticket_events``, ``messages`` and ``access_grant_events``. The
  store wraps the jobs of ticket changes, messages, the SLA sweep and access grants with it
  while a site has endpoints (``webhook_queries.py``), so those jobs need no change.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from typing import Any, TypeVar

from widget_server.access_grants import event_json, grant_json
from widget_server.clock import isoformat, parse_iso
from widget_server.errors import Conflict, NotFound
from widget_server.models import Ticket
from widget_server.store import sqlite_rows as rows
from widget_server.store.connection import Connection
from widget_server.store.grant_queries import GRANT_COLUMNS, GRANT_FROM, event_row, grant_row
from widget_server.store.mail_records import MailPlan
from widget_server.store.sqlite_mail import queue_composed
from widget_server.store.webhook_records import (
    ENDPOINT_COLUMNS,
    Attempt,
    Claimed,
    Endpoint,
    delivery,
    endpoint,
)
from widget_server.webhooks import (
    DISABLE_AFTER,
    EXCERPT_CHARS,
    MAX_ENDPOINTS,
    TEST_EVENT,
    envelope,
    new_webhook_id,
    retry_at,
)

T = TypeVar("T")
_CHANGES = {"status_changed": "status", "stage_changed": "stage",
            "severity_changed": "severity", "assignee_id_changed": "assignee",
            "escalated": "tier", "returned": "tier"}
_GRANT_EVENTS = {"granted": "access_grant.created", "revoked": "access_grant.revoked",
                 "expired": "access_grant.expired", "used": "access_grant.used"}


class _Listeners:
    """The enabled endpoints of each site, read once per transaction that needs them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._found: dict[int, list[tuple[int, frozenset[str], bool]]] = {}

    def of(self, site_id: int) -> list[tuple[int, frozenset[str], bool]]:
        if site_id not in self._found:
            self._found[site_id] = [
                (row[0], frozenset(json.loads(row[1])), bool(row[2]))
                for row in self.conn.execute(
                    "SELECT id, events, include_notes FROM webhook_endpoints"
                    " WHERE site_id = ? AND enabled = 1 ORDER BY id", (site_id,))]
        return self._found[site_id]


def _insert(conn: sqlite3.Connection, endpoint_id: int, site_id: int, event_type: str,
            ordering_key: str | None, body: str, at: datetime, due: datetime) -> int:
    return int(conn.execute(
        "INSERT INTO webhook_deliveries (webhook_id, endpoint_id, site_id, event_type,"
        " ordering_key, payload, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " RETURNING id",
        (new_webhook_id(), endpoint_id, site_id, event_type, ordering_key, body,
         isoformat(due), isoformat(at))).fetchone()[0])


def _queue(listeners: _Listeners, site_id: int, event_type: str, ordering_key: str | None,
           data: dict[str, Any], at: datetime, internal: bool = False) -> int:
    wanted = [endpoint_id for endpoint_id, events, notes in listeners.of(site_id)
              if event_type in events and (notes or not internal)]
    if not wanted:
        return 0
    body = envelope(event_type, at, data)  # one body, byte for byte, for every endpoint
    for endpoint_id in wanted:
        _insert(listeners.conn, endpoint_id, site_id, event_type, ordering_key, body, at, at)
    return len(wanted)


def queue_event(conn: sqlite3.Connection, site_id: int, event_type: str,
                ticket_id: int | None, data: dict[str, Any], at: datetime, *,
                internal: bool = False) -> int:
    """Queue ``event_type`` for every enabled endpoint of the site subscribed to it, in the
    caller's transaction; return how many deliveries were queued (0: nobody listens).

    ``data`` becomes the payload's ``data`` (``{"type", "version", "timestamp", "data"}``);
    ``ticket_id`` orders the deliveries (one endpoint receives a ticket's events in the order
    they were queued; None: no order); ``internal``: only for endpoints that asked for
    internal notes. The event type must be one of ``webhooks.EVENTS``."""
    ordering_key = None if ticket_id is None else f"ticket:{ticket_id}"
    return _queue(_Listeners(conn), site_id, event_type, ordering_key, data, at, internal)


# -- capture: the events a job recorded, read back from the rows it appended

def marks(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """The newest row of each event source: what a job appends comes after."""
    row = conn.execute(
        "SELECT (SELECT MAX(id) FROM ticket_events), (SELECT MAX(id) FROM messages),"
        " (SELECT MAX(id) FROM access_grant_events)").fetchone()
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


def captured(conn: sqlite3.Connection, job: Callable[..., T], args: Sequence[Any]) -> T:
    """Run ``job(conn, *args)`` and queue the webhook events of what it recorded."""
    before = marks(conn)
    result = job(conn, *args)
    queue_since(conn, before)
    return result


def ticket_data(ticket: Ticket) -> dict[str, Any]:
    """A ticket in a payload (docs/webhooks.md)."""
    def when(moment: datetime | None) -> str | None:
        return isoformat(moment) if moment else None

    return {"number": ticket.number, "reference": ticket.reference, "subject": ticket.subject,
            "status": ticket.status, "stage": ticket.stage, "severity": ticket.severity,
            "tier": ticket.tier, "channel": ticket.channel, "assignee_id": ticket.assignee_id,
            "conversation": ticket.conversation_id, "created_at": isoformat(ticket.created_at),
            "updated_at": isoformat(ticket.updated_at),
            "first_response_due": isoformat(ticket.first_response_due),
            "first_response_at": when(ticket.first_response_at),
            "sla_due": when(ticket.sla_due), "at_risk": ticket.at_risk,
            "breached": ticket.breached}


class _Tickets:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._keys: dict[int, str] = {}

    def site_key(self, site_id: int) -> str:
        if site_id not in self._keys:
            self._keys[site_id] = str(self.conn.execute(
                "SELECT key FROM sites WHERE id = ?", (site_id,)).fetchone()[0])
        return self._keys[site_id]

    def read(self, ticket_id: int) -> Ticket:
        return rows.ticket(self.conn.execute(
            f"SELECT {rows.TICKET_COLUMNS} FROM {rows.TICKET_FROM} WHERE t.id = ?",
            (ticket_id,)).fetchone())


def queue_since(conn: sqlite3.Connection, before: tuple[int, int, int]) -> int:
    """Queue the events of the rows appended after ``before`` (``marks()``): new tickets
    first, then messages, then each ticket's changes (one ticket.updated per ticket), SLA
    marks, and access grant events. Returns how many deliveries were queued."""
    listeners, tickets, queued = _Listeners(conn), _Tickets(conn), 0
    events = conn.execute(
        "SELECT e.ticket_id, e.type, e.data, e.created_at, t.site_id FROM ticket_events e"
        " JOIN tickets t ON t.id = e.ticket_id WHERE e.id > ? ORDER BY e.id",
        (before[0],)).fetchall()
    changes: dict[int, tuple[int, dict[str, Any], datetime]] = {}
    marked: list[tuple[int, int, str, dict[str, Any], datetime]] = []
    rated: list[tuple[int, int, dict[str, Any], datetime]] = []
    for ticket_id, type_, raw, created_at, site_id in events:
        if not listeners.of(site_id):
            continue
        data, at = json.loads(raw), parse_iso(created_at)
        if type_ == "created":
            queued += _queue(listeners, site_id, "ticket.created", f"ticket:{ticket_id}",
                             {"site": tickets.site_key(site_id),
                              "ticket": ticket_data(tickets.read(ticket_id))}, at)
        elif type_ in _CHANGES or type_ in ("auto_closed", "merged"):
            _, found, _ = changes.setdefault(ticket_id, (site_id, {}, at))
            if type_ == "auto_closed":
                found["status"] = {"from": "solved", "to": "closed"}
            elif type_ == "merged":
                found["status"] = {"from": None, "to": "closed"}
                found["merged_into"] = {"from": None, "to": data.get("into")}
            else:
                found[_CHANGES[type_]] = {"from": data.get("from"), "to": data.get("to")}
            changes[ticket_id] = (site_id, found, at)
        elif type_ in ("sla_at_risk", "sla_breached"):
            marked.append((ticket_id, site_id, f"ticket.{type_}", data, at))
        elif type_ == "rating":
            rated.append((ticket_id, site_id, data, at))
    for message in conn.execute(
            f"SELECT {', '.join('m.' + c for c in rows.MESSAGE_COLUMNS.split(', '))},"
            " t.id AS ticket_id, t.site_id FROM messages m"
            f" JOIN tickets t ON t.id = {rows.LATEST_TICKET.format('m.conversation_id')}"
            " WHERE m.id > ? AND m.author_type != 'system' ORDER BY m.id",
            (before[1],)).fetchall():
        if not listeners.of(message["site_id"]):
            continue
        record = rows.message(message)
        ticket = tickets.read(message["ticket_id"])
        queued += _queue(listeners, ticket.site_id, "message.created",
                         f"ticket:{ticket.id}", {
                             "site": tickets.site_key(ticket.site_id),
                             "ticket": {"number": ticket.number,
                                        "reference": ticket.reference},
                             "message": {"id": record.id, "seq": record.seq,
                                         "author": {"type": record.author.type,
                                                    "name": record.author.name,
                                                    "id": record.author.id},
                                         "body": record.body, "internal": record.internal,
                                         "created_at": isoformat(record.created_at)}},
                         record.created_at, internal=record.internal)
    for ticket_id, (site_id, found, at) in changes.items():
        queued += _queue(listeners, site_id, "ticket.updated", f"ticket:{ticket_id}",
                         {"site": tickets.site_key(site_id),
                          "ticket": ticket_data(tickets.read(ticket_id)), "changes": found}, at)
    for ticket_id, site_id, type_, data, at in marked:
        queued += _queue(listeners, site_id, type_, f"ticket:{ticket_id}",
                         {"site": tickets.site_key(site_id),
                          "ticket": ticket_data(tickets.read(ticket_id)),
                          "due": data.get("due")}, at)
    for ticket_id, site_id, data, at in rated:  # the comment is read from the rating itself
        comment = conn.execute("SELECT comment FROM ratings WHERE ticket_id = ?",
                               (ticket_id,)).fetchone()
        queued += _queue(listeners, site_id,
                         "rating.updated" if "from" in data else "rating.created",
                         f"ticket:{ticket_id}",
                         {"site": tickets.site_key(site_id),
                          "ticket": ticket_data(tickets.read(ticket_id)),
                          "rating": {"score": data.get("score"), "from": data.get("from"),
                                     "channel": data.get("channel"),
                                     "comment": comment[0] if comment else None}}, at)
    for row in conn.execute(
            "SELECT id, grant_id, site_id, user_id, type, actor_type, actor_name, action,"
            " detail, created_at FROM access_grant_events WHERE id > ? ORDER BY id",
            (before[2],)).fetchall():
        if not listeners.of(row["site_id"]):
            continue
        event = event_row(row)
        grant = grant_row(conn.execute(
            f"SELECT {GRANT_COLUMNS} FROM {GRANT_FROM} WHERE g.id = ?",
            (event.grant_id,)).fetchone())
        queued += _queue(listeners, row["site_id"], _GRANT_EVENTS[event.type],
                         f"grant:{grant.id}",
                         {"site": tickets.site_key(row["site_id"]),
                          "grant": grant_json(grant, event.created_at),
                          "event": event_json(event)}, event.created_at)
    return queued


# -- endpoints

def create_endpoint(conn: sqlite3.Connection, site_id: int, url: str, events: tuple[str, ...],
                    include_notes: bool, secret: str, now: datetime) -> Endpoint:
    (count,) = conn.execute("SELECT count(*) FROM webhook_endpoints WHERE site_id = ?",
                            (site_id,)).fetchone()
    if count >= MAX_ENDPOINTS:
        raise Conflict(f"a site has at most {MAX_ENDPOINTS} webhook endpoints; delete one",
                       code="too_many_webhooks")
    row = conn.execute(
        "INSERT INTO webhook_endpoints (site_id, url, events, include_notes, secret,"
        f" created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING {ENDPOINT_COLUMNS}",
        (site_id, url, json.dumps(list(events)), int(include_notes), secret,
         isoformat(now))).fetchone()
    return endpoint(row)


def delete_endpoint(conn: sqlite3.Connection, site_id: int, endpoint_id: int) -> None:
    """The endpoint, its deliveries and their log; NotFound unless it is the site's."""
    if conn.execute("SELECT 1 FROM webhook_endpoints WHERE id = ? AND site_id = ?",
                    (endpoint_id, site_id)).fetchone() is None:
        raise NotFound("this site has no webhook with this id", code="webhook_not_found")
    conn.execute("DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM"
                 " webhook_deliveries WHERE endpoint_id = ?)", (endpoint_id,))
    conn.execute("DELETE FROM webhook_deliveries WHERE endpoint_id = ?", (endpoint_id,))
    conn.execute("DELETE FROM webhook_endpoints WHERE id = ?", (endpoint_id,))


def enable_endpoint(conn: sqlite3.Connection, site_id: int, endpoint_id: int) -> None:
    """Enable a disabled endpoint again, its failure streak forgotten."""
    if conn.execute(
            "UPDATE webhook_endpoints SET enabled = 1, failure_streak = 0, failing_since = NULL,"
            " disabled_at = NULL, disabled_reason = NULL WHERE id = ? AND site_id = ?",
            (endpoint_id, site_id)).rowcount == 0:
        raise NotFound("this site has no webhook with this id", code="webhook_not_found")


def queue_test(conn: sqlite3.Connection, site_id: int, endpoint_id: int, now: datetime
               ) -> int:
    """A ``webhook.test`` delivery to one endpoint, due now; its delivery id."""
    found = conn.execute("SELECT s.key FROM webhook_endpoints e JOIN sites s ON s.id ="
                         " e.site_id WHERE e.id = ? AND e.site_id = ? AND e.enabled = 1",
                         (endpoint_id, site_id)).fetchone()
    if found is None:
        raise NotFound("this site has no enabled webhook with this id",
                       code="webhook_not_found")
    body = envelope(TEST_EVENT, now, {"site": found[0], "webhook": endpoint_id,
                                      "text": "A test event sent from the console."})
    return _insert(conn, endpoint_id, site_id, TEST_EVENT, None, body, now, now)


def resend(conn: sqlite3.Connection, site_id: int, delivery_id: int, now: datetime) -> None:
    """Send a delivery again now, under the same webhook-id (receivers may drop it as one
    they have); its log stays."""
    if conn.execute(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?,"
            " delivered_at = NULL WHERE id = ? AND site_id = ? AND EXISTS (SELECT 1 FROM"
            " webhook_endpoints e WHERE e.id = endpoint_id AND e.enabled = 1)",
            (isoformat(now), delivery_id, site_id)).rowcount == 0:
        raise NotFound("no delivery of an enabled webhook of this site has this id",
                       code="delivery_not_found")


def forget_tickets(conn: Connection, ticket_ids: Sequence[str | int]) -> None:
    """Delete the deliveries about these tickets and their log (an erasure: the payloads
    carry what the visitor wrote)."""
    keys = [f"ticket:{ticket_id}" for ticket_id in ticket_ids]
    if not keys:
        return
    marks = ", ".join("?" * len(keys))
    conn.execute("DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM"
                 f" webhook_deliveries WHERE ordering_key IN ({marks}))", keys)
    conn.execute(f"DELETE FROM webhook_deliveries WHERE ordering_key IN ({marks})", keys)


def prune(conn: sqlite3.Connection, before: datetime) -> int:
    """Delete the settled deliveries (delivered or given up) queued before ``before``, with
    their log; how many."""
    old = "SELECT id FROM webhook_deliveries WHERE state != 'pending' AND created_at < ?"
    conn.execute(f"DELETE FROM webhook_attempts WHERE delivery_id IN ({old})",
                 (isoformat(before),))
    return int(conn.execute(
        "DELETE FROM webhook_deliveries WHERE state != 'pending' AND created_at < ?",
        (isoformat(before),)).rowcount)


# -- the sender's jobs

def claim_due(conn: sqlite3.Connection, now: datetime, lease_until: datetime, limit: int
              ) -> list[Claimed]:
    """The due deliveries of enabled endpoints that wait for no earlier pending delivery of
    the same ticket (or grant) to the same endpoint, each leased until ``lease_until``."""
    found = conn.execute(
        "SELECT d.*, e.url AS endpoint_url, e.secret AS endpoint_secret"
        " FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id"
        " WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND e.enabled = 1"
        " AND (d.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM webhook_deliveries p"
        " WHERE p.state = 'pending' AND p.endpoint_id = d.endpoint_id"
        " AND p.ordering_key = d.ordering_key AND p.id < d.id))"
        " ORDER BY d.next_attempt_at, d.id LIMIT ?", (isoformat(now), limit)).fetchall()
    for row in found:
        conn.execute("UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ?",
                     (isoformat(lease_until), row["id"]))
    return [Claimed(delivery(row), row["endpoint_url"], row["endpoint_secret"])
            for row in found]


def record_attempt(conn: sqlite3.Connection, attempt: Attempt, plan: MailPlan | None,
                   console_url: str) -> str:
    """Log an attempt and settle its delivery: "delivered", "retry", "given_up", or
    "disabled" when the endpoint's every attempt has failed for DISABLE_AFTER, or since the
    event of a delivery now given up (its pending deliveries are given up too, and admins
    are mailed when mail is on)."""
    now = attempt.attempted_at
    response = attempt.response[:EXCERPT_CHARS] if attempt.response is not None else None
    error = attempt.error[:EXCERPT_CHARS] if attempt.error is not None else None
    row = conn.execute(
        "SELECT d.endpoint_id, d.attempts, d.created_at, d.state, e.failing_since, e.site_id,"
        " e.url FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id"
        " WHERE d.id = ?", (attempt.delivery_id,)).fetchone()
    if row is None:  # deleted with its endpoint while being sent
        return "gone"
    conn.execute(
        "INSERT INTO webhook_attempts (delivery_id, attempted_at, status, error, response,"
        " duration_ms) VALUES (?, ?, ?, ?, ?, ?)",
        (attempt.delivery_id, isoformat(now), attempt.status, error, response,
         attempt.duration_ms))
    attempts = row["attempts"] + 1
    if error is None:
        conn.execute(
            "UPDATE webhook_deliveries SET state = 'delivered', attempts = ?, delivered_at = ?,"
            " last_status = ?, last_error = NULL, last_response = ? WHERE id = ?",
            (attempts, isoformat(now), attempt.status, response, attempt.delivery_id))
        conn.execute("UPDATE webhook_endpoints SET failure_streak = 0, failing_since = NULL"
                     " WHERE id = ?", (row["endpoint_id"],))
        return "delivered"
    again = retry_at(parse_iso(row["created_at"]), attempts, now)
    conn.execute(
        "UPDATE webhook_deliveries SET state = ?, attempts = ?, next_attempt_at = ?,"
        " last_status = ?, last_error = ?, last_response = ? WHERE id = ?",
        ("pending" if again else "failed", attempts, isoformat(again or now), attempt.status,
         error, response, attempt.delivery_id))
    since = parse_iso(row["failing_since"]) if row["failing_since"] else now
    conn.execute("UPDATE webhook_endpoints SET failure_streak = failure_streak + 1,"
                 " failing_since = ? WHERE id = ?", (isoformat(since), row["endpoint_id"]))
    # disabled: every attempt for DISABLE_AFTER failed, or a delivery was given up after
    # failing from its first attempt with no success to the endpoint in between
    if now - since < DISABLE_AFTER and (again or since > parse_iso(row["created_at"])):
        return "retry" if again else "given_up"
    reason = f"every attempt failed since {isoformat(since)}; the last: {error}"
    conn.execute(
        "UPDATE webhook_endpoints SET enabled = 0, disabled_at = ?, disabled_reason = ?"
        " WHERE id = ?", (isoformat(now), reason[:EXCERPT_CHARS], row["endpoint_id"]))
    conn.execute(
        "UPDATE webhook_deliveries SET state = 'failed', last_error = COALESCE(last_error,"
        " 'the endpoint was disabled') WHERE endpoint_id = ? AND state = 'pending'",
        (row["endpoint_id"],))
    if plan is not None:
        _notify_admins(conn, plan, row["site_id"], row["url"], reason, now, console_url)
    return "disabled"


def _notify_admins(conn: sqlite3.Connection, plan: MailPlan, site_id: int, url: str,
                   reason: str, now: datetime, console_url: str) -> None:
    site_name, site_key = conn.execute("SELECT name, key FROM sites WHERE id = ?",
                                       (site_id,)).fetchone()
    page = f"{console_url}/console/admin/sites/{site_key}/webhooks"
    subject = f"Webhook disabled: {url[:80]}"
    text = (f"The webhook {url} of the site {site_name} was disabled: {reason}\n\n"
            f"No more events go to it. Check the receiver, then enable it again at {page}\n")
    html = (f"<p>The webhook <code>{escape(url)}</code> of the site {escape(site_name)} was"
            f" disabled: {escape(reason)}</p><p>No more events go to it. Check the receiver,"
            f" then enable it again on <a href=\"{escape(page)}\">its page</a>.</p>")
    for (email,) in conn.execute("SELECT email FROM agents WHERE role = 'admin'"
                                 " AND active = 1 ORDER BY id").fetchall():
        queue_composed(conn, plan, site_id, email, "alert", subject, text, html,
                       {"X-Site-Name": site_name}, now)
