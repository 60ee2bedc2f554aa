"""Write jobs of the agent console: sessions, login throttling, memberships, saved replies,
read markers, and the ticket operations split, merge, escalate and return.

Each job runs as one whole transaction inside the single writer (see sqlite_writer.py).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from widget_server.clock import isoformat, parse_iso
from widget_server.errors import Conflict, NotFound, Unprocessable
from widget_server.models import IDENTITY_MODES, Agent, Message, Site, TicketChange
from widget_server.store import sqlite_rows as rows
from widget_server.store import sqlite_sla as sla
from widget_server.store.connection import INTEGRITY_ERRORS, Connection
from widget_server.store.sqlite_writes import (
    _event,
    _insert_message,
    _next_seq,
    _record_of,
    _ticket_by_number,
    _visitor_of,
    new_id,
)


def create_session(conn: Connection, agent_id: int, csrf: str, now: datetime,
                   expires: datetime) -> str:
    session_id = secrets.token_urlsafe(24)
    conn.execute(
        "INSERT INTO agent_sessions (id, agent_id, csrf_token, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (session_id, agent_id, csrf, isoformat(now), isoformat(expires)),
    )
    return session_id


def revoke_session(conn: Connection, session_id: str, now: datetime) -> None:
    conn.execute("UPDATE agent_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                 (isoformat(now), session_id))


def record_login_failure(conn: Connection, key: str, now: datetime) -> int:
    row = conn.execute(
        "INSERT INTO login_failures (key, failures, last_failed_at) VALUES (?, 1, ?)"
        " ON CONFLICT (key) DO UPDATE SET failures = login_failures.failures + 1,"
        " last_failed_at = excluded.last_failed_at RETURNING failures",
        (key, isoformat(now)),
    ).fetchone()
    return int(row[0])


def reserve_login_attempt(conn: Connection, keys: list[str], now: datetime,
                          lockout: Callable[[int], timedelta]) -> timedelta:
    """Count a sign-in attempt as failed before its password is checked, unless a key must
    still wait: then nothing is counted and the wait is returned. One transaction of the
    single writer, so N attempts at once are counted N times and the throttle holds however
    many arrive together. A success clears the keys afterwards."""
    wait = timedelta(0)
    for key in keys:
        row = conn.execute("SELECT failures, last_failed_at FROM login_failures WHERE key = ?",
                           (key,)).fetchone()
        if row is not None:
            wait = max(wait, parse_iso(row[1]) + lockout(int(row[0])) - now)
    if wait > timedelta(0):
        return wait
    for key in keys:
        record_login_failure(conn, key, now)
    return timedelta(0)


def clear_login_failures(conn: Connection, key: str) -> None:
    conn.execute("DELETE FROM login_failures WHERE key = ?", (key,))


def update_agent(conn: Connection, agent_id: int, *, active: bool | None = None,
                 tier: int | None = None, role: str | None = None,
                 site_ids: list[int] | None = None, now: datetime) -> Agent:
    row = conn.execute("SELECT * FROM agents WHERE id = ?", (agent_id,)).fetchone()
    if row is None:
        raise NotFound("no such agent", code="agent_not_found")
    if active is not None:
        conn.execute("UPDATE agents SET active = ? WHERE id = ?", (int(active), agent_id))
        if not active:  # a disabled agent is signed out everywhere at once
            conn.execute("UPDATE agent_sessions SET revoked_at = ? WHERE agent_id = ?"
                         " AND revoked_at IS NULL", (isoformat(now), agent_id))
    if tier is not None:
        if tier < 1:
            raise Unprocessable("tiers start at 1", code="invalid_tier")
        conn.execute("UPDATE agents SET tier = ? WHERE id = ?", (tier, agent_id))
    if role is not None:
        if role not in {"admin", "agent"}:
            raise Unprocessable("role must be admin or agent", code="invalid_role")
        conn.execute("UPDATE agents SET role = ? WHERE id = ?", (role, agent_id))
    if site_ids is not None:
        conn.execute("DELETE FROM agent_sites WHERE agent_id = ?", (agent_id,))
        conn.executemany("INSERT INTO agent_sites (agent_id, site_id) VALUES (?, ?)",
                         [(agent_id, site_id) for site_id in sorted(set(site_ids))])
    return rows.agent(conn.execute("SELECT * FROM agents WHERE id = ?", (agent_id,)).fetchone())


def update_site(conn: Connection, site_id: int, *, name: str | None = None,
                origins: list[str] | None = None, rotate_secret: bool = False,
                tier_names: list[str] | None = None, identity_mode: str | None = None,
                grace: timedelta | None = None, now: datetime | None = None) -> Site:
    if name is not None:
        try:
            conn.execute("UPDATE sites SET name = ? WHERE id = ?", (name, site_id))
        except INTEGRITY_ERRORS:
            raise Conflict(f"a site named {name!r} exists already",
                           code="site_name_taken") from None
    if origins is not None:
        conn.execute("UPDATE sites SET allowed_origins = ? WHERE id = ?",
                     (json.dumps(sorted(set(origins))), site_id))
    if rotate_secret:
        # the old secret stays valid for ``grace`` (none when grace is None or zero)
        until = (isoformat(now + grace) if now is not None and grace is not None
                 and grace > timedelta(0) else None)
        conn.execute(
            "UPDATE sites SET previous_identity_secret = CASE WHEN CAST(? AS TEXT) IS NULL"
            " THEN NULL"
            " ELSE identity_secret END, previous_secret_until = ?, identity_secret = ?"
            " WHERE id = ?", (until, until, secrets.token_hex(32), site_id))
    if identity_mode is not None:
        if identity_mode not in IDENTITY_MODES:
            raise Unprocessable("the identity mode is optional or required",
                                code="invalid_identity_mode")
        conn.execute("UPDATE sites SET identity_mode = ? WHERE id = ?", (identity_mode, site_id))
    if tier_names is not None:
        if not tier_names:
            raise Unprocessable("a site needs at least one tier", code="invalid_tiers")
        conn.execute("UPDATE sites SET tier_names = ? WHERE id = ?",
                     (json.dumps(tier_names), site_id))
    row = conn.execute("SELECT * FROM sites WHERE id = ?", (site_id,)).fetchone()
    if row is None:
        raise NotFound("no such site", code="site_not_found")
    return rows.site(row)


def revoke_api_token(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                 (isoformat(now), token_id))


def save_reply(conn: Connection, site_id: int, shortcut: str, title: str, body: str,
               now: datetime, reply_id: int | None = None) -> int:
    try:
        if reply_id is None:
            return int(conn.execute(
                "INSERT INTO saved_replies (site_id, shortcut, title, body, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (site_id, shortcut, title, body, isoformat(now), isoformat(now))).fetchone()[0])
        conn.execute(
            "UPDATE saved_replies SET shortcut = ?, title = ?, body = ?, updated_at = ?"
            " WHERE id = ? AND site_id = ?",
            (shortcut, title, body, isoformat(now), reply_id, site_id))
        return reply_id
    except INTEGRITY_ERRORS:
        raise Conflict(f"the shortcut {shortcut!r} is taken on this site",
                       code="shortcut_taken") from None


def delete_reply(conn: Connection, site_id: int, reply_id: int) -> None:
    conn.execute("DELETE FROM saved_replies WHERE id = ? AND site_id = ?", (reply_id, site_id))


def mark_agent_read(conn: Connection, agent_id: int, ticket_id: int,
                    message_id: int) -> None:
    conn.execute(
        "INSERT INTO agent_reads (agent_id, ticket_id, message_id) VALUES (?, ?, ?)"
        " ON CONFLICT (agent_id, ticket_id) DO UPDATE"
        " SET message_id = CASE WHEN excluded.message_id > agent_reads.message_id"
        " THEN excluded.message_id ELSE agent_reads.message_id END",
        (agent_id, ticket_id, message_id),
    )


def _system_note(conn: Connection, conversation_id: str, body: str,
                 now: datetime) -> Message:
    return _insert_message(conn, conversation_id, _next_seq(conn, conversation_id, now),
                           "system", body, now)


def split_ticket(conn: Connection, site_id: int, number: int, message_ids: list[int],
                 agent: Agent, now: datetime) -> tuple[TicketChange, TicketChange]:
    """Copy the chosen messages into a new conversation and ticket of the same visitor."""
    source = _ticket_by_number(conn, site_id, number)
    chosen = conn.execute(
        f"SELECT {rows.MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND internal = 0"
        f" AND author_type != 'system' AND id IN ({','.join('?' * len(message_ids))})"
        " ORDER BY seq",
        (source["conversation_id"], *message_ids),
    ).fetchall() if message_ids else []
    if not chosen:
        raise Unprocessable("choose at least one message of this ticket to split off",
                            code="nothing_to_split")
    visitor_id = _visitor_of(conn, source["conversation_id"])
    conversation_id = new_id("cv")
    conn.execute(
        "INSERT INTO conversations (id, site_id, visitor_id, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (conversation_id, site_id, visitor_id, isoformat(now), isoformat(now)))
    counter = conn.execute(
        "UPDATE sites SET ticket_counter = ticket_counter + 1 WHERE id = ?"
        " RETURNING ticket_counter, reference_prefix", (site_id,)).fetchone()
    new_number = int(counter["ticket_counter"])
    first = rows.message(chosen[0])
    cursor = conn.execute(
        "INSERT INTO tickets (site_id, number, conversation_id, subject, severity, status,"
        " channel, first_response_due, created_at, updated_at, tier, split_from_id)"
        " VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?) RETURNING id",
        (site_id, new_number, conversation_id, f"{source['subject']} (split)",
         source["severity"], source["channel"], source["first_response_due"],
         isoformat(now), isoformat(now), source["tier"], source["id"]))
    new_ticket_id = int(cursor.fetchone()[0])
    policy = sla.site_policy(conn, site_id)
    sla.write_clock(conn, new_ticket_id, sla.first_response_clock(policy, source["severity"], now),
                    policy, new_clock=True)
    copied = []
    for row in chosen:
        original = rows.message(row)
        copied.append(_insert_message(
            conn, conversation_id, _next_seq(conn, conversation_id, now), original.author.type,
            original.body, now,
            visitor_id=row["author_visitor_id"], agent_id=row["author_agent_id"],
            author_name=original.author.name))
    source_ref = rows.ticket(source).reference
    new_ref = f"#{counter['reference_prefix']}{new_number}"
    notes_new = _system_note(conn, conversation_id,
                             f"Split from {source_ref}: we track this part as {new_ref}.", now)
    notes_old = _system_note(conn, source["conversation_id"],
                             f"Part of this request continues as {new_ref}.", now)
    actor = str(agent.id)
    _event(conn, source["id"], "split", "agent", actor,
           {"into": new_number, "message_ids": [m.id for m in copied]}, now)
    _event(conn, new_ticket_id, "created", "agent", actor,
           {"split_from": int(source["number"]), "first_message_at": isoformat(first.created_at)},
           now)
    old = _record_of(_ticket_by_number(conn, site_id, number))
    new = _record_of(_ticket_by_number(conn, site_id, new_number))
    return (TicketChange(old, visitor_id, [notes_old]),
            TicketChange(new, visitor_id, [*copied, notes_new]))


def merge_ticket(conn: Connection, site_id: int, number: int, into_number: int,
                 agent: Agent, now: datetime) -> tuple[TicketChange, TicketChange]:
    """Close ``number`` as merged into ``into_number``; both threads say so."""
    if number == into_number:
        raise Unprocessable("a ticket cannot be merged into itself", code="invalid_merge")
    source = _ticket_by_number(conn, site_id, number)
    target = _ticket_by_number(conn, site_id, into_number)
    if source["merged_into_id"] is not None:
        raise Conflict("this ticket was already merged", code="already_merged")
    conn.execute(
        "UPDATE tickets SET status = 'closed', closed_at = ?, merged_into_id = ?, updated_at = ?"
        " WHERE id = ?", (isoformat(now), target["id"], isoformat(now), source["id"]))
    source_ref, target_ref = rows.ticket(source).reference, rows.ticket(target).reference
    note_source = _system_note(conn, source["conversation_id"],
                               f"This request was merged into {target_ref}.", now)
    note_target = _insert_message(conn, target["conversation_id"], None, "agent",
                                  f"{source_ref} was merged into this request.", now,
                                  agent_id=agent.id, author_name=agent.name, internal=True)
    actor = str(agent.id)
    _event(conn, source["id"], "merged", "agent", actor, {"into": into_number}, now)
    _event(conn, target["id"], "merged_from", "agent", actor, {"from": number}, now)
    return (
        TicketChange(_record_of(_ticket_by_number(conn, site_id, number)),
                     _visitor_of(conn, source["conversation_id"]), [note_source]),
        TicketChange(_record_of(_ticket_by_number(conn, site_id, into_number)),
                     _visitor_of(conn, target["conversation_id"]), [note_target]),
    )


def move_tier(conn: Connection, site_id: int, number: int, agent: Agent, step: int,
              reason: str, now: datetime) -> TicketChange:
    """Escalate (step +1) or return (step -1) a ticket between support tiers."""
    row = _ticket_by_number(conn, site_id, number)
    tiers = len(json.loads(conn.execute("SELECT tier_names FROM sites WHERE id = ?",
                                        (site_id,)).fetchone()[0]))
    tier = int(row["tier"]) + step
    if not 1 <= tier <= tiers:
        raise Conflict("there is no tier to move this ticket to", code="no_such_tier")
    if not reason.strip():
        raise Unprocessable("say why", code="reason_required")
    conn.execute("UPDATE tickets SET tier = ?, assignee_id = NULL, updated_at = ? WHERE id = ?",
                 (tier, isoformat(now), row["id"]))
    _event(conn, row["id"], "escalated" if step > 0 else "returned", "agent", str(agent.id),
           {"from": int(row["tier"]), "to": tier, "reason": reason.strip()}, now)
    return TicketChange(_record_of(_ticket_by_number(conn, site_id, number)),
                        _visitor_of(conn, row["conversation_id"]), [])
