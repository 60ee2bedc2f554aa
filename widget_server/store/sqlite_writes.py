"""Write jobs for the SQLite writer: each is one whole transaction over a ``sqlite3.Connection``.

The ticket rules come from ``widget_server.tickets``; only the SQL lives here.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from datetime import UTC, datetime

from widget_server import tickets as rules
from widget_server.clock import isoformat
from widget_server.errors import Conflict, NotFound, Unprocessable
from widget_server.models import (
    Agent,
    ApiToken,
    Author,
    AuthorType,
    Message,
    PostResult,
    Site,
    Ticket,
    TicketChange,
    Visitor,
)
from widget_server.policy import policy_from_text
from widget_server.store import sqlite_rows as rows
from widget_server.store import sqlite_sla as sla
from widget_server.store.base import TicketPatch, VisitorPost
from widget_server.store.connection import Connection, dialect_of
from widget_server.store.sqlite_credentials import (
    check_assignee,
    check_identity,
    check_not_erased,
)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def secret_key(conn: Connection) -> str:
    conn.execute(
        "INSERT INTO server_settings (key, value) VALUES ('secret_key', ?)"
        " ON CONFLICT (key) DO NOTHING",
        (secrets.token_urlsafe(48),),
    )
    return str(
        conn.execute("SELECT value FROM server_settings WHERE key = 'secret_key'").fetchone()[0]
    )


def set_setting(conn: Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO server_settings (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def ensure_site(
    conn: Connection, name: str, origins: list[str], now: datetime
) -> tuple[Site, bool]:
    """Create the site, or add the origins to the existing site of that name."""
    row = conn.execute("SELECT * FROM sites WHERE name = ?", (name,)).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO sites (key, name, allowed_origins, identity_secret, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                "site_" + secrets.token_urlsafe(12),
                name,
                json.dumps(sorted(set(origins))),
                secrets.token_hex(32),
                isoformat(now),
            ),
        )
        created = True
    else:
        merged = sorted(set(json.loads(row["allowed_origins"])) | set(origins))
        conn.execute(
            "UPDATE sites SET allowed_origins = ? WHERE id = ?", (json.dumps(merged), row["id"])
        )
        created = False
    row = conn.execute("SELECT * FROM sites WHERE name = ?", (name,)).fetchone()
    return rows.site(row), created


def ensure_agent(
    conn: Connection,
    email: str,
    name: str,
    role: str,
    password_hash: str | None,
    now: datetime,
) -> tuple[Agent, bool]:
    row = conn.execute("SELECT * FROM agents WHERE email = ?", (email,)).fetchone()
    created = row is None
    if created:
        conn.execute(
            "INSERT INTO agents (email, name, role, password_hash, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (email, name, role, password_hash, isoformat(now)),
        )
        row = conn.execute("SELECT * FROM agents WHERE email = ?", (email,)).fetchone()
    return rows.agent(row), created


def set_agent_password(conn: Connection, email: str, password_hash: str) -> Agent:
    row = conn.execute("SELECT * FROM agents WHERE email = ?", (email,)).fetchone()
    if row is None:
        raise NotFound(f"no agent with email {email}", code="agent_not_found")
    conn.execute("UPDATE agents SET password_hash = ? WHERE id = ?", (password_hash, row["id"]))
    # a new password ends every session opened with the old one
    conn.execute("UPDATE agent_sessions SET revoked_at = ? WHERE agent_id = ?"
                 " AND revoked_at IS NULL", (isoformat(datetime.now(UTC)), row["id"]))
    return rows.agent(row)


def create_api_token(
    conn: Connection, name: str, token_hash: str, site_id: int, agent_id: int,
    now: datetime,
) -> ApiToken:
    token_id = conn.execute(
        "INSERT INTO api_tokens (name, token_hash, site_id, agent_id, created_at)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        (name, token_hash, site_id, agent_id, isoformat(now)),
    ).fetchone()[0]
    return ApiToken(id=int(token_id), name=name, site_id=site_id, agent_id=agent_id)


def _insert_message(
    conn: Connection,
    conversation_id: str,
    seq: int | None,
    author_type: AuthorType,
    body: str,
    now: datetime,
    *,
    visitor_id: str | None = None,
    agent_id: int | None = None,
    author_name: str | None = None,
    internal: bool = False,
    client_msg_id: str | None = None,
) -> Message:
    message_id = conn.execute(
        "INSERT INTO messages (conversation_id, seq, author_type, author_visitor_id,"
        " author_agent_id, author_name, body, internal, client_msg_id, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (conversation_id, seq, author_type, visitor_id, agent_id, author_name, body,
         int(internal), client_msg_id, isoformat(now)),
    ).fetchone()[0]
    # the stored row is exactly these values: build the record instead of reading it back
    # (created_at as stored: UTC, whole milliseconds; rows.message parses it the same way)
    author_id = visitor_id if author_type == "visitor" else (
        str(agent_id) if author_type == "agent" else None)
    return Message(
        id=int(message_id), conversation_id=conversation_id, seq=seq or 0,
        author=Author(type=author_type, name=author_name, id=author_id), body=body,
        internal=internal, created_at=stored_instant(now), client_msg_id=client_msg_id,
    )


def stored_instant(now: datetime) -> datetime:
    """``now`` as it reads back from a stored ISO 8601 text (UTC, milliseconds); ``now``
    itself when it is that already."""
    moment = now if now.tzinfo is UTC else now.astimezone(UTC)
    if moment.microsecond % 1000:
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return moment


def _next_seq(conn: Connection, conversation_id: str, now: datetime) -> int:
    row = conn.execute(
        "UPDATE conversations SET last_seq = last_seq + 1, updated_at = ? WHERE id = ?"
        " RETURNING last_seq",
        (isoformat(now), conversation_id),
    ).fetchone()
    return int(row[0])


# A message in a conversation returns its ticket: reading its whole row and building the
# record cost more than the rest of storing the message. The jobs (and pg_messages) share it.
ticket_record = rows.TicketVersions()
# The whole rows the jobs read carry the version columns too, so that the record of a ticket
# a job changed is the one the next message in its conversation finds (after an agent's
# reply, say, instead of reading and building it again there).
_WHOLE_TICKET = (f"{rows.TICKET_COLUMNS}, {rows.TICKET_VERSION_COLUMNS}, s.policy AS site_policy,"
                 " (SELECT visitor_id FROM conversations WHERE id = t.conversation_id)"
                 " AS ticket_visitor_id")  # a reply's policy and visitor: no reads of their own


def _record_of(row: sqlite3.Row) -> Ticket:
    """The record of a whole ticket row a job read: built once per version of the ticket."""
    return ticket_record(row, lambda: row)


def _ticket_for_conversation(conn: Connection, conversation_id: str, lock: bool = False
                             ) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {_WHOLE_TICKET} FROM {rows.TICKET_FROM}"
        f" WHERE t.id = {rows.LATEST_TICKET.format('?')}"
        + (dialect_of(conn).for_update("t") if lock else ""), (conversation_id,)).fetchone()
    return row


def _found_ticket(conn: Connection, conversation_id: str, lock: bool = False) -> sqlite3.Row:
    """The whole row of the latest ticket of a conversation this transaction found one in."""
    row = _ticket_for_conversation(conn, conversation_id, lock)
    if row is None:  # the write lock is held: nothing can have deleted it since
        raise RuntimeError(f"the ticket of {conversation_id} vanished within a transaction")
    return row


def _ticket_by_number(conn: Connection, site_id: int, number: int, lock: bool = False
                      ) -> sqlite3.Row:
    row = conn.execute(
        f"SELECT {_WHOLE_TICKET} FROM {rows.TICKET_FROM} WHERE t.site_id = ? AND t.number = ?"
        + (dialect_of(conn).for_update("t") if lock else ""), (site_id, number),
    ).fetchone()
    if row is None:
        raise NotFound(f"ticket {number} does not exist", code="ticket_not_found")
    if row["erased_at"] is not None:  # a tombstone (docs/privacy.md): nothing changes it
        raise Conflict(f"ticket {number} was erased; only its number and dates are kept",
                       code="ticket_erased")
    found: sqlite3.Row = row
    return found


def _event(
    conn: Connection, ticket_id: int, type_: str, actor_type: str, actor_id: str | None,
    data: dict[str, object], now: datetime,
) -> None:
    conn.execute(
        "INSERT INTO ticket_events (ticket_id, type, actor_type, actor_id, data, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (ticket_id, type_, actor_type, actor_id, json.dumps(data), isoformat(now)),
    )


def _duplicate(conn: Connection, visitor_id: str, client_msg_id: str) -> PostResult | None:
    row = conn.execute(
        f"SELECT {rows.MESSAGE_COLUMNS} FROM messages"
        " WHERE author_visitor_id = ? AND client_msg_id = ?",
        (visitor_id, client_msg_id),
    ).fetchone()
    if row is None:
        return None
    message = rows.message(row)
    ticket_row = _ticket_for_conversation(conn, message.conversation_id)
    ticket = _record_of(ticket_row) if ticket_row else None
    return PostResult(message=message, ticket=ticket, created=[], duplicate=True)


def post_visitor_message(conn: Connection, post: VisitorPost, now: datetime) -> PostResult:
    visitor = post.visitor
    if post.conversation_id is None:
        earlier = _duplicate(conn, visitor.id, post.client_msg_id)
        if earlier is not None:
            return earlier
        check_identity(conn.execute("SELECT identity_mode FROM sites WHERE id = ?",
                                     (visitor.site_id,)).fetchone()[0], visitor)
        _upsert_visitor(conn, visitor, now)
        return _open_request(conn, post, now)
    conversation_id = post.conversation_id
    # the instant as stored, once: the message record, its ack and the statements then share
    # one object, and clock.isoformat formats it once (stored texts have milliseconds anyway)
    now = stored_instant(now)

    # One read answers whether this is a resend, and finds the conversation, its visitor row
    # and its latest ticket's status and version (the fast path of a message in an existing
    # conversation: this, the seq and the insert; the ticket's record is the memo's). It
    # always returns one row: the conversation may be missing.
    found = conn.execute(
        "SELECT (SELECT 1 FROM messages WHERE author_visitor_id = ? AND client_msg_id = ?)"
        " AS resent, c.id AS found_conversation, c.last_seq AS last_seq, v.name AS visitor_name,"
        f" v.email AS visitor_email, t.status AS ticket_status, {rows.TICKET_VERSION_COLUMNS},"
        " s.identity_mode AS identity_mode FROM (SELECT 1) AS one"
        " LEFT JOIN conversations c ON c.id = ? AND c.visitor_id = ?"
        " LEFT JOIN visitors v ON v.id = c.visitor_id"
        f" LEFT JOIN tickets t ON t.id = {rows.LATEST_TICKET.format('c.id')}"
        " LEFT JOIN sites s ON s.id = t.site_id",
        (visitor.id, post.client_msg_id, conversation_id, visitor.id),
    ).fetchone()
    if found["resent"] is not None:  # a resend, in whichever conversation it was stored
        earlier = _duplicate(conn, visitor.id, post.client_msg_id)
        if earlier is not None:
            return earlier
    if found["found_conversation"] is None:  # also another visitor's: never reveal it exists
        raise NotFound("no such conversation", code="conversation_not_found")
    check_identity(found["identity_mode"], visitor)
    if ((visitor.name is not None and visitor.name != found["visitor_name"])
            or (visitor.email is not None and visitor.email != found["visitor_email"])):
        _upsert_visitor(conn, visitor, now)  # the upsert only when it would change something
    status = found["ticket_status"]  # None: no ticket
    if status == "closed":
        raise Conflict("this request is closed; please open a new one",
                       code="conversation_closed")
    after = None if status is None else rules.status_after_visitor_message(status)
    # a ticket the message changes (reopens): its whole row before the change, locked before
    # the conversation's, in the order an agent's reply locks them (no deadlock on PostgreSQL)
    before = _found_ticket(conn, conversation_id, lock=True) if after != status else None
    # the seq read above is current: this transaction holds the write lock (an UPDATE
    # without RETURNING costs half as much as _next_seq's)
    seq = found["last_seq"] + 1
    conn.execute("UPDATE conversations SET last_seq = ?, updated_at = ? WHERE id = ?",
                 (seq, isoformat(now), conversation_id))
    message = _insert_message(
        conn, conversation_id, seq, "visitor", post.body, now,
        visitor_id=visitor.id, author_name=visitor.name, client_msg_id=post.client_msg_id,
    )
    ticket, changed = None, False
    if before is not None and after is not None:
        sla.on_status_change(conn, before, after, now, policy_from_text(before["site_policy"]))
        conn.execute(
            "UPDATE tickets SET status = ?, solved_at = NULL, updated_at = ? WHERE id = ?",
            (after, isoformat(now), before["id"]),
        )
        _event(conn, before["id"], "status_changed", "visitor", visitor.id,
               {"from": status, "to": after}, now)
        ticket, changed = _record_of(_found_ticket(conn, conversation_id)), True
    elif status is not None:
        ticket = ticket_record(found, lambda: _found_ticket(conn, conversation_id))
    return PostResult(message=message, ticket=ticket, created=[message], duplicate=False,
                      ticket_changed=changed)


def _upsert_visitor(conn: Connection, visitor: Visitor, now: datetime) -> None:
    check_not_erased(conn, visitor)  # every write that makes or renames a visitor row
    conn.execute(
        "INSERT INTO visitors (id, site_id, user_id, name, email, verified, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET name = COALESCE(excluded.name, visitors.name),"
        " email = COALESCE(excluded.email, visitors.email)",
        (visitor.id, visitor.site_id, visitor.user_id, visitor.name, visitor.email,
         int(visitor.verified), isoformat(now)),
    )


def _open_request(conn: Connection, post: VisitorPost, now: datetime) -> PostResult:
    visitor = post.visitor
    conversation_id = new_id("cv")
    conn.execute(
        "INSERT INTO conversations (id, site_id, visitor_id, created_at, updated_at, page_url,"
        " user_agent) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (conversation_id, visitor.site_id, visitor.id, isoformat(now), isoformat(now),
         post.page_url, post.user_agent),
    )
    site_row = conn.execute(
        "UPDATE sites SET ticket_counter = ticket_counter + 1 WHERE id = ?"
        " RETURNING ticket_counter, reference_prefix",
        (visitor.site_id,),
    ).fetchone()
    number = int(site_row["ticket_counter"])
    policy = sla.site_policy(conn, visitor.site_id)
    # the visitor proposes a severity only where the policy lets them; agents may change it
    proposed = post.severity if policy.visitor_proposes_severity else None
    severity = proposed or policy.default_severity
    level = policy.severity(severity)  # an unknown severity fails the whole write
    clock = sla.first_response_clock(policy, severity, now)
    due = clock.due_at(policy.calendar)
    subject = (post.subject or "").strip() or rules.subject_from_body(post.body)
    ticket_id = int(conn.execute(
        "INSERT INTO tickets (site_id, number, conversation_id, subject, severity, status,"
        " channel, first_response_due, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, 'new', ?, ?, ?, ?) RETURNING id",
        (visitor.site_id, number, conversation_id, subject, severity, post.channel,
         isoformat(due or now), isoformat(now), isoformat(now)),
    ).fetchone()[0])
    sla.write_clock(conn, ticket_id, clock, policy, new_clock=True)
    _event(conn, ticket_id, "created", "visitor", visitor.id,
           {"severity": severity, "channel": post.channel}, now)
    message = _insert_message(
        conn, conversation_id, _next_seq(conn, conversation_id, now), "visitor", post.body, now,
        visitor_id=visitor.id, author_name=visitor.name, client_msg_id=post.client_msg_id,
    )
    reference = rules.format_reference(number, site_row["reference_prefix"])
    receipt = _insert_message(
        conn, conversation_id, _next_seq(conn, conversation_id, now), "system",
        rules.acknowledgement(reference, level.label, due), now,
    )
    _event(conn, ticket_id, "acknowledged", "system", None, {"message_id": receipt.id}, now)
    ticket = _record_of(_found_ticket(conn, conversation_id))
    return PostResult(message=message, ticket=ticket, created=[message, receipt], duplicate=False)


def _visitor_of(conn: Connection, conversation_id: str) -> str:
    return str(
        conn.execute("SELECT visitor_id FROM conversations WHERE id = ?", (conversation_id,))
        .fetchone()[0]
    )


def post_agent_message(
    conn: Connection, site_id: int, number: int, agent: Agent, body: str,
    internal: bool, now: datetime,
) -> TicketChange:
    ticket_row = _ticket_by_number(conn, site_id, number, lock=True)  # locked to COMMIT
    conversation_id, ticket_id = ticket_row["conversation_id"], ticket_row["id"]
    actor = str(agent.id)
    if internal:
        note = _insert_message(conn, conversation_id, None, "agent", body, now,
                               agent_id=agent.id, author_name=agent.name, internal=True)
        _event(conn, ticket_id, "internal_note", "agent", actor, {"message_id": note.id}, now)
        return TicketChange(ticket=_record_of(_ticket_by_number(conn, site_id, number)),
                            visitor_id=ticket_row["ticket_visitor_id"], messages=[note],
                            changed=False)
    # The ticket's changes first, the conversation's seq last: every visitor's message in
    # the conversation increments that row and waits while a reply holds it (on PostgreSQL
    # a batch of them, pg_messages.py), so it is held for the fewest statements to COMMIT.
    running = ticket_row["sla_running_since"] is not None
    if sla.on_public_reply(conn, ticket_row, now, policy_from_text(ticket_row["site_policy"])):
        clock: str | None = "first_response"
    else:
        clock = "next_response" if running else None
    status = rules.status_after_agent_reply(ticket_row["status"])
    status_changed = status != ticket_row["status"]
    conn.execute("UPDATE tickets SET status = ?, updated_at = ? WHERE id = ?",
                 (status, isoformat(now), ticket_id))
    ticket = _record_of(_ticket_by_number(conn, site_id, number))
    message = _insert_message(conn, conversation_id, _next_seq(conn, conversation_id, now),
                              "agent", body, now, agent_id=agent.id, author_name=agent.name)
    if clock is not None:
        _event(conn, ticket_id, clock, "agent", actor, {"message_id": message.id}, now)
    if status_changed:
        _event(conn, ticket_id, "status_changed", "agent", actor,
               {"from": ticket_row["status"], "to": status}, now)
    return TicketChange(ticket=ticket, visitor_id=ticket_row["ticket_visitor_id"],
                        messages=[message], changed=clock is not None or status_changed)


def update_ticket(
    conn: Connection, site_id: int, number: int, agent: Agent, patch: TicketPatch,
    now: datetime,
) -> TicketChange:
    row = _ticket_by_number(conn, site_id, number)
    policy = policy_from_text(row["site_policy"])
    changes: dict[str, object] = {}
    if patch.status is not None and patch.status != row["status"]:
        if patch.status not in rules.STATUSES:
            raise Unprocessable(f"unknown status {patch.status!r}", code="invalid_status")
        changes["status"] = patch.status
        if patch.status == "solved":
            changes["solved_at"] = isoformat(now)
        if patch.status == "closed":
            changes["closed_at"] = isoformat(now)
    if patch.stage is not None and patch.stage != row["stage"]:
        if patch.stage not in rules.STAGES:
            raise Unprocessable(f"unknown stage {patch.stage!r}", code="invalid_stage")
        changes["stage"] = patch.stage
    if patch.severity is not None and patch.severity != row["severity"]:
        policy.severity(patch.severity)  # 422 invalid_severity for keys the policy lacks
        changes["severity"] = patch.severity
    if patch.unassign and row["assignee_id"] is not None:
        changes["assignee_id"] = None
    elif patch.assignee_id is not None and patch.assignee_id != row["assignee_id"]:
        check_assignee(conn, patch.assignee_id, site_id)
        changes["assignee_id"] = patch.assignee_id
    if "status" in changes:
        sla.on_status_change(conn, row, str(changes["status"]), now, policy)
        if row["status"] in sla.STOPPED_STATUSES and changes["status"] not in sla.STOPPED_STATUSES:
            changes.update(solved_at=None, closed_at=None)
    if "severity" in changes:
        sla.on_severity_change(conn, row, str(changes["severity"]), policy)
    if changes:
        assignments = ", ".join(f"{column} = ?" for column in changes)
        conn.execute(
            f"UPDATE tickets SET {assignments}, updated_at = ? WHERE id = ?",
            (*changes.values(), isoformat(now), row["id"]),
        )
        for column, value in changes.items():
            if column in {"solved_at", "closed_at"}:
                continue
            _event(conn, row["id"], f"{column}_changed", "agent", str(agent.id),
                   {"from": row[column], "to": value}, now)
    ticket = _record_of(_ticket_by_number(conn, site_id, number))
    return TicketChange(ticket=ticket, visitor_id=row["ticket_visitor_id"],
                        messages=[], changed=bool(changes))


def mark_read(conn: Connection, visitor_id: str, conversation_id: str, seq: int) -> None:
    cursor = conn.execute(
        "UPDATE conversations SET visitor_read_seq = CASE WHEN visitor_read_seq >= ? THEN"
        " visitor_read_seq WHEN ? < last_seq THEN ? ELSE last_seq END"
        " WHERE id = ? AND visitor_id = ?",
        (seq, seq, seq, conversation_id, visitor_id),
    )
    if cursor.rowcount == 0:
        raise NotFound("no such conversation", code="conversation_not_found")


def set_site_policy(conn: Connection, site_id: int, policy_toml: str | None) -> None:
    """Store a policy (already validated by the caller) as the TOML an admin wrote."""
    if policy_toml is not None:
        policy_from_text(policy_toml)  # raises PolicyError before anything is stored
    cursor = conn.execute("UPDATE sites SET policy = ? WHERE id = ?", (policy_toml, site_id))
    if cursor.rowcount == 0:
        raise NotFound("no such site", code="site_not_found")
