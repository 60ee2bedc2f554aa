"""Data retention and erasure as write jobs (docs/privacy.md).

A purged conversation loses its messages (and their full-text rows, through the FTS triggers),
its read markers and the conversation row; its tickets become tombstones that point at the
site's placeholder conversation (``cv_erased_<site id>`` of the visitor row ``v_erased_<site
id>``, both without any data), because ``tickets.conversation_id`` may not be NULL. The events
of a tombstone lose the visitor's id and free-text reasons (the only update the
``ticket_events`` trigger allows) and gain an ``erased`` event. Every job that deletes writes
its ``privacy_audit`` record in the same transaction: nothing is deleted without its record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from widget_server.clock import isoformat
from widget_server.errors import NotFound
from widget_server.models import Site
from widget_server.store import sqlite_rows as rows
from widget_server.store.connection import Connection, dialect_of
from widget_server.store.grant_queries import revoke_user_grants
from widget_server.store.privacy_records import (
    ErasureSelector,
    Purged,
    RetentionBatch,
    cutoff,
    describe_days,
)
from widget_server.store.sqlite_writes import _event
from widget_server.visitor_tokens import user_visitor_id

LEASE_NAME = "retention"
T = TypeVar("T")
CHUNK = 400  # ids per statement, well below SQLite's limit of bound variables
PLACEHOLDER_PREFIX = "v_erased_"


def placeholder_ids(site_id: int) -> tuple[str, str]:
    """The site's placeholder visitor and conversation that tombstones point at."""
    return f"{PLACEHOLDER_PREFIX}{site_id}", f"cv_erased_{site_id}"


def _placeholder(conn: Connection, site_id: int, now: datetime) -> str:
    visitor_id, conversation_id = placeholder_ids(site_id)
    stamp = isoformat(now)
    conn.execute("INSERT INTO visitors (id, site_id, created_at) VALUES (?, ?, ?)"
                 " ON CONFLICT DO NOTHING",
                 (visitor_id, site_id, stamp))
    conn.execute(
        "INSERT INTO conversations (id, site_id, visitor_id, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (conversation_id, site_id, visitor_id, stamp, stamp))
    return conversation_id


def _chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[tuple[str, list[T]]]:
    for start in range(0, len(values), size):
        part = list(values[start:start + size])
        yield ",".join("?" * len(part)), part


# -- the lease: one purge at a time, also across processes


def take_lease(conn: Connection, holder: str, now: datetime, lease: timedelta) -> bool:
    conn.execute(
        "INSERT INTO scheduler_leases (name, holder, expires_at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
        " expires_at = excluded.expires_at"
        " WHERE scheduler_leases.expires_at <= ? OR scheduler_leases.holder = excluded.holder",
        (LEASE_NAME, holder, isoformat(now + lease), isoformat(now)))
    row = conn.execute("SELECT holder FROM scheduler_leases WHERE name = ?",
                       (LEASE_NAME,)).fetchone()
    return bool(row and row[0] == holder)


def release_lease(conn: Connection, holder: str, now: datetime) -> None:
    conn.execute("UPDATE scheduler_leases SET expires_at = ? WHERE name = ? AND holder = ?",
                 (isoformat(now), LEASE_NAME, holder))


# -- deleting


def purge_conversations(conn: Connection, site_id: int, conversation_ids: Sequence[str],
                        reason: str, now: datetime) -> tuple[Purged, set[str]]:
    """Delete the conversations with their messages and tombstone their tickets.

    Returns what was deleted and the ids of the visitors the conversations belonged to.
    """
    placeholder = _placeholder(conn, site_id, now)
    dialect = dialect_of(conn)
    stamp = isoformat(now)
    numbers: list[int] = []
    visitors: set[str] = set()
    messages = conversations = 0
    for marks, ids in _chunks([cid for cid in conversation_ids if cid != placeholder]):
        visitors.update(row[0] for row in conn.execute(
            f"SELECT visitor_id FROM conversations WHERE id IN ({marks})", ids))
        tickets = conn.execute(
            f"SELECT id, number, status FROM tickets WHERE conversation_id IN ({marks})",
            ids).fetchall()
        messages += conn.execute(
            f"DELETE FROM messages WHERE conversation_id IN ({marks})", ids).rowcount
        ticket_ids = [row["id"] for row in tickets]
        for ticket_marks, ticket_part in _chunks(ticket_ids):
            conn.execute(
                "UPDATE tickets SET subject = '', conversation_id = ?, erased_at = ?,"
                " erased_reason = ?, status = 'closed',"
                " closed_at = CASE WHEN status = 'closed' THEN closed_at ELSE ? END,"
                " sla_running_since = NULL, sla_due = NULL, sla_at_risk_at = NULL"
                f" WHERE id IN ({ticket_marks})",
                (placeholder, stamp, reason, stamp, *ticket_part))
            # the one update ticket_events allows, and only on tombstones
            conn.execute(
                "UPDATE ticket_events SET"
                " actor_id = CASE WHEN actor_type = 'visitor' THEN NULL ELSE actor_id END,"
                f" data = CASE WHEN {dialect.json_has('data', 'reason')}"
                f" THEN {dialect.json_without('data', 'reason')} ELSE data END"
                f" WHERE ticket_id IN ({ticket_marks}) AND ((actor_type = 'visitor'"
                f" AND actor_id IS NOT NULL) OR {dialect.json_has('data', 'reason')})",
                ticket_part)
            conn.execute(f"DELETE FROM agent_reads WHERE ticket_id IN ({ticket_marks})",
                         ticket_part)
        for row in tickets:
            data: dict[str, object] = {"by": reason}
            if row["status"] != "closed":
                data["status_before"] = row["status"]
            _event(conn, row["id"], "erased", "system", None, data, now)
            numbers.append(int(row["number"]))
        conn.execute(f"DELETE FROM mail_outbox WHERE conversation_id IN ({marks})", ids)
        conversations += conn.execute(
            f"DELETE FROM conversations WHERE id IN ({marks})", ids).rowcount
    return Purged(tuple(sorted(numbers)), conversations, messages), visitors


def _delete_visitors_without_data(conn: Connection, visitor_ids: Sequence[str]) -> int:
    """Delete the visitor rows that have no conversation and no article comment left."""
    deleted = 0
    for marks, ids in _chunks([v for v in visitor_ids if not v.startswith(PLACEHOLDER_PREFIX)]):
        deleted += conn.execute(
            f"DELETE FROM visitors WHERE id IN ({marks})"
            " AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.visitor_id = visitors.id)"
            " AND NOT EXISTS (SELECT 1 FROM article_comments a"
            "                 WHERE a.author_visitor_id = visitors.id)", ids).rowcount
    return deleted


def _audit(conn: Connection, site_id: int, action: str, actor: str,
           agent_id: int | None, subject: str, reference: str | None,
           counts: dict[str, object], now: datetime) -> None:
    conn.execute(
        "INSERT INTO privacy_audit (site_id, action, actor, agent_id, subject, reference,"
        " counts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (site_id, action, actor, agent_id, subject, reference, json.dumps(counts),
         isoformat(now)))


# -- the retention job


EXPIRED_CONVERSATIONS = (
    # closed tickets whose own last change, conversation and messages are all older than the
    # cutoff, and no other ticket on the conversation that is open or recent
    "SELECT t.conversation_id FROM tickets t JOIN conversations c ON c.id = t.conversation_id"
    " WHERE t.site_id = ? AND t.status = 'closed' AND t.erased_at IS NULL"
    " AND t.updated_at < ? AND c.updated_at < ?"
    " AND NOT EXISTS (SELECT 1 FROM tickets o WHERE o.conversation_id = c.id"
    "                 AND (o.status != 'closed' OR o.updated_at >= ?))"
    " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id"
    "                 AND m.created_at >= ?)"
    " ORDER BY t.updated_at LIMIT ?"  # walks the partial index, oldest first, and stops
)


def retention_batch(conn: Connection, holder: str, now: datetime, lease: timedelta,
                    limit: int, actor: str) -> RetentionBatch:
    """Purge at most ``limit`` expired conversations over all sites that have a period."""
    if not take_lease(conn, holder, now, lease):
        return RetentionBatch(False, {}, False)
    remaining = limit
    purged: dict[int, Purged] = {}
    for site_id, days in conn.execute(
            "SELECT id, retention_days FROM sites WHERE retention_days IS NOT NULL ORDER BY id"
    ).fetchall():
        if remaining <= 0:
            break
        edge = isoformat(cutoff(now, days))
        ids = list(dict.fromkeys(row[0] for row in conn.execute(  # (one ticket each, today)
            EXPIRED_CONVERSATIONS, (site_id, edge, edge, edge, edge, remaining))))
        if not ids:
            continue
        result, visitors = purge_conversations(conn, site_id, ids, "retention", now)
        result = result + Purged(visitors=_delete_visitors_without_data(conn, sorted(visitors)))
        remaining -= len(ids)
        purged[site_id] = result
        _audit(conn, site_id, "retention", actor, None,
               f"closed conversations with no activity since {edge} ({describe_days(days)})",
               None, result.as_json(), now)
    return RetentionBatch(True, purged, remaining <= 0)


# -- erasure


def selector_where(selector: ErasureSelector) -> tuple[str, tuple[str, ...]]:
    """The condition on ``visitors`` (besides the site) that an erasure request names."""
    value = selector.value.strip()
    if selector.kind == "user_id":
        return "user_id = ?", (value,)
    if selector.kind == "email":  # also an address confirmed for replies by email
        return "(lower(email) = lower(?) OR lower(mail_confirmed) = lower(?))", (value, value)
    return "id = ?", (value,)


def matching_visitors(conn: Connection, site_id: int,
                      selector: ErasureSelector) -> list[str]:
    where, params = selector_where(selector)
    return [row[0] for row in conn.execute(
        f"SELECT id FROM visitors WHERE site_id = ? AND {where} AND id NOT LIKE 'v\\_erased\\_%'"
        " ESCAPE '\\' ORDER BY id", (site_id, *params))]


def erase_visitor(conn: Connection, site_id: int, selector: ErasureSelector, actor: str,
                  agent_id: int | None, reference: str | None, now: datetime) -> Purged:
    """Delete everything of the matching visitors on the site; tombstone their tickets."""
    visitor_ids = matching_visitors(conn, site_id, selector)
    user_ids = {row[0] for marks, ids in _chunks(visitor_ids) for row in conn.execute(
        f"SELECT user_id FROM visitors WHERE id IN ({marks}) AND user_id IS NOT NULL", ids)}
    if selector.kind == "user_id":  # grants need no visitor row: a user may never have written
        user_ids.add(selector.value.strip())
    revoked = sum(revoke_user_grants(conn, site_id, user_id, now, "erasure request")
                  for user_id in sorted(user_ids))
    if not visitor_ids and not revoked:
        raise NotFound(f"no visitor on this site has that {selector.kind.replace('_', ' ')}",
                       code="visitor_not_found")
    conversation_ids: list[str] = []
    comments = messages = visitors = 0
    for marks, ids in _chunks(visitor_ids):
        conversation_ids += [row[0] for row in conn.execute(
            f"SELECT id FROM conversations WHERE visitor_id IN ({marks}) ORDER BY id", ids)]
    result, _ = purge_conversations(conn, site_id, conversation_ids, "erasure", now)
    # every credential issued for them until now stops speaking for them (Visitor.since)
    conn.executemany(
        "INSERT INTO erased_visitors (visitor_id, site_id, erased_at) VALUES (?, ?, ?)"
        " ON CONFLICT (visitor_id) DO UPDATE SET erased_at = excluded.erased_at",
        [(visitor_id, site_id, isoformat(now)) for visitor_id in
         sorted({*visitor_ids, *(user_visitor_id(site_id, user) for user in user_ids)})])
    for marks, ids in _chunks(visitor_ids):
        # anything they wrote elsewhere (today nothing: a visitor writes in their own threads)
        messages += conn.execute(
            f"DELETE FROM messages WHERE author_visitor_id IN ({marks})", ids).rowcount
        comments += conn.execute(
            f"DELETE FROM article_comments WHERE author_visitor_id IN ({marks})", ids).rowcount
        visitors += conn.execute(f"DELETE FROM visitors WHERE id IN ({marks})", ids).rowcount
    result = result + Purged(messages=messages, visitors=visitors, comments=comments,
                             grants_revoked=revoked)
    _audit(conn, site_id, "erasure", actor, agent_id, selector.kind, reference,
           result.as_json(), now)
    return result


def forget_erased(conn: Connection, before: datetime) -> int:
    """Drop the marks of erasures older than ``before``: no credential from before them is
    still valid, so they protect nothing any more and only keep a visitor id around."""
    return conn.execute("DELETE FROM erased_visitors WHERE erased_at < ?",
                        (isoformat(before),)).rowcount


# -- the retention period


def set_retention(conn: Connection, site_id: int, days: int | None, actor: str,
                  agent_id: int | None, now: datetime) -> Site:
    row = conn.execute("SELECT * FROM sites WHERE id = ?", (site_id,)).fetchone()
    if row is None:
        raise NotFound("no such site", code="site_not_found")
    if row["retention_days"] != days:
        conn.execute("UPDATE sites SET retention_days = ? WHERE id = ?", (days, site_id))
        _audit(conn, site_id, "retention_set", actor, agent_id, describe_days(days), None,
               {"from": row["retention_days"], "to": days}, now)
        row = conn.execute("SELECT * FROM sites WHERE id = ?", (site_id,)).fetchone()
    return rows.site(row)
