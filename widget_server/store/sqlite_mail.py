"""Write jobs of the mail outbox (docs/email.md); each runs inside the single writer.

A mail is queued by the job that causes it, in the same transaction: ``post_visitor_message``
(a Help Form request's acknowledgement), ``post_agent_message`` (a public reply) and
``update_ticket`` (solved) wrap the jobs of ``sqlite_writes``. The sender claims due rows,
has them composed and sent, then records the outcome.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from datetime import datetime, timedelta

from widget_server import tickets as rules
from widget_server.clock import isoformat, parse_iso
from widget_server.errors import Conflict, NotFound
from widget_server.models import Agent, PostResult, TicketChange
from widget_server.store import sqlite_sla as sla
from widget_server.store import sqlite_writes as writes
from widget_server.store.base import TicketPatch, VisitorPost
from widget_server.store.connection import Connection
from widget_server.store.mail_records import (
    MailContext,
    MailKind,
    MailPlan,
    OutboxMail,
    ThreadMessage,
)

ERROR_CHARS = 500  # of an SMTP server's answer kept as the reason


def enqueue(conn: Connection, plan: MailPlan, site_id: int, to_address: str,
            kind: MailKind, conversation_id: str | None, number: int | None,
            send_after: datetime, now: datetime, headers: dict[str, str] | None = None) -> int:
    """Queue one mail; its Message-ID is fixed here, so a retry is recognisably the same.
    ``headers``: kept with the mail until it is composed (an alert's kind)."""
    placeholder = f"<pending.{secrets.token_hex(16)}@{plan.domain}>"
    mail_id = int(conn.execute(
        "INSERT INTO mail_outbox (site_id, to_address, kind, conversation_id, ticket_number,"
        " message_id, send_after, next_attempt_at, created_at, headers)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (site_id, to_address, kind, conversation_id, number, placeholder,
         isoformat(send_after), isoformat(send_after), isoformat(now),
         json.dumps(headers or {}))).fetchone()[0])
    conn.execute("UPDATE mail_outbox SET message_id = ? WHERE id = ?",
                 (f"<outbox-{mail_id}.{secrets.token_hex(8)}@{plan.domain}>", mail_id))
    return mail_id


def post_visitor_message(conn: Connection, post: VisitorPost, now: datetime,
                         plan: MailPlan) -> PostResult:
    """A new request from a verified address: the conversation remembers the address; a
    Help Form request's acknowledgement is queued with the ticket (the widget shows its own)."""
    result = writes.post_visitor_message(conn, post, now)
    ticket = result.ticket
    if post.conversation_id is not None or result.duplicate or ticket is None:
        return result
    mail_to = post.mail_to or _confirmed(conn, post.visitor.id)
    if mail_to:
        conn.execute("UPDATE conversations SET mail_to = ? WHERE id = ?",
                     (mail_to, ticket.conversation_id))
        wanted = post.channel == "form" if post.acknowledge is None else post.acknowledge
        if wanted and post.mail_to:  # never to an address confirmed in the widget
            enqueue(conn, plan, post.visitor.site_id, post.mail_to, "acknowledgement",
                    ticket.conversation_id, ticket.number, now, now)
    return result


def _confirmed(conn: Connection, visitor_id: str) -> str | None:
    """The address the visitor confirmed through the link we mailed, if any."""
    row = conn.execute("SELECT mail_confirmed FROM visitors WHERE id = ?",
                       (visitor_id,)).fetchone()
    return row[0] if row else None


def queue_confirmation(conn: Connection, plan: MailPlan, site_id: int,
                       visitor_id: str, conversation_id: str, to_address: str, now: datetime
                       ) -> int | None:
    """Queue the mail with the link that confirms ``to_address`` for the visitor; None when
    the conversation is not one of the visitor's requests."""
    row = conn.execute(
        "SELECT t.number FROM conversations c JOIN tickets t ON t.conversation_id = c.id"
        " WHERE c.id = ? AND c.visitor_id = ? AND c.site_id = ?",
        (conversation_id, visitor_id, site_id)).fetchone()
    if row is None:
        return None
    return enqueue(conn, plan, site_id, to_address, "confirm", conversation_id, row[0], now,
                   now)


TRANSCRIPT_TARGET = (
    "SELECT c.mail_to, t.number FROM conversations c JOIN tickets t"
    " ON t.conversation_id = c.id WHERE c.id = ? AND c.site_id = ?"
    " AND (CAST(? AS TEXT) IS NULL OR c.visitor_id = ?)")


def transcript_target(row: sqlite3.Row | tuple[str | None, int] | None) -> tuple[str, int]:
    """The verified address and ticket number a transcript goes to, from a row of
    TRANSCRIPT_TARGET; NotFound, or Conflict without a verified address."""
    if row is None:
        raise NotFound("no request of yours has this id", code="unknown_conversation")
    if row[0] is None:
        raise Conflict("this request has no verified email address to mail a transcript to",
                       code="no_verified_address")
    return str(row[0]), int(row[1])


def queue_transcript(conn: Connection, plan: MailPlan, site_id: int,
                     conversation_id: str, visitor_id: str | None, now: datetime) -> str:
    """Queue the public thread to the conversation's verified address; return the address.
    ``visitor_id``: asked for by this visitor, whose conversation it must be."""
    to_address, number = transcript_target(conn.execute(
        TRANSCRIPT_TARGET, (conversation_id, site_id, visitor_id, visitor_id)).fetchone())
    enqueue(conn, plan, site_id, to_address, "transcript", conversation_id, number, now, now)
    return to_address


def confirm_address(conn: Connection, site_id: int, visitor_id: str, email: str
                    ) -> bool:
    """The visitor confirmed ``email``: their requests, open and later, are mailed to it.
    False when the visitor is gone (erased since the link was mailed)."""
    updated = conn.execute("UPDATE visitors SET mail_confirmed = ? WHERE id = ? AND site_id = ?",
                           (email, visitor_id, site_id)).rowcount
    if not updated:
        return False
    conn.execute("UPDATE conversations SET mail_to = ? WHERE visitor_id = ?",
                 (email, visitor_id))
    return True


def _mail_to(conn: Connection, conversation_id: str) -> str | None:
    row = conn.execute("SELECT mail_to FROM conversations WHERE id = ?",
                       (conversation_id,)).fetchone()
    return row[0] if row else None


def post_agent_message(conn: Connection, site_id: int, number: int, agent: Agent,
                       body: str, internal: bool, now: datetime, plan: MailPlan
                       ) -> TicketChange:
    """A public reply to a conversation with a verified address queues a reply mail, due
    after the delay, unless one not yet composed is waiting: that one will carry every
    reply still unread when it falls due."""
    change = writes.post_agent_message(conn, site_id, number, agent, body, internal, now)
    conversation_id = change.ticket.conversation_id
    to_address = None if internal else _mail_to(conn, conversation_id)
    if to_address is None:
        return change
    waiting = conn.execute(
        "SELECT 1 FROM mail_outbox WHERE conversation_id = ? AND kind = 'reply'"
        " AND state = 'queued' AND subject IS NULL", (conversation_id,)).fetchone()
    if waiting is None:
        enqueue(conn, plan, site_id, to_address, "reply", conversation_id, number,
                now + plan.delay, now)
    return change


def update_ticket(conn: Connection, site_id: int, number: int, agent: Agent,
                  patch: TicketPatch, now: datetime, plan: MailPlan) -> TicketChange:
    """A ticket of a conversation with a verified address becoming solved queues one mail,
    due after the delay like a reply (so the replies before it go first), and dropped if the
    ticket is reopened meanwhile."""
    before = conn.execute("SELECT status FROM tickets WHERE site_id = ? AND number = ?",
                          (site_id, number)).fetchone()
    change = writes.update_ticket(conn, site_id, number, agent, patch, now)
    if before is None or before[0] == "solved" or change.ticket.status != "solved":
        return change
    to_address = _mail_to(conn, change.ticket.conversation_id)
    if to_address is not None:
        enqueue(conn, plan, site_id, to_address, "solved", change.ticket.conversation_id,
                number, now + plan.delay, now)
    return change


def outbox_mail(row: sqlite3.Row, context: MailContext | None = None) -> OutboxMail:
    return OutboxMail(
        id=row["id"], site_id=row["site_id"], to_address=row["to_address"], kind=row["kind"],
        conversation_id=row["conversation_id"], ticket_number=row["ticket_number"],
        subject=row["subject"], text_body=row["text_body"], html_body=row["html_body"],
        headers=json.loads(row["headers"]), message_id=row["message_id"], state=row["state"],
        attempts=row["attempts"], send_after=parse_iso(row["send_after"]),
        next_attempt_at=parse_iso(row["next_attempt_at"]), last_error=row["last_error"],
        created_at=parse_iso(row["created_at"]),
        sent_at=parse_iso(row["sent_at"]) if row["sent_at"] else None,
        upto_seq=row["upto_seq"], context=context)


def claim_due(conn: Connection, now: datetime, lease: timedelta, limit: int
              ) -> list[OutboxMail]:
    """The queued mails due now, each leased until ``now + lease`` (a sender killed while
    sending leaves them to be claimed again then). A mail not yet composed comes with what
    composing it needs; a reply mail whose replies have all been read meanwhile is skipped."""
    found = conn.execute(
        "SELECT * FROM mail_outbox WHERE state = 'queued' AND next_attempt_at <= ?"
        " ORDER BY next_attempt_at, id LIMIT ?", (isoformat(now), limit)).fetchall()
    claimed = []
    for row in found:
        if _bouncing(conn, row["to_address"]):
            conn.execute("UPDATE mail_outbox SET state = 'skipped', last_error = ?"
                         " WHERE id = ?", ("the address bounces", row["id"]))
            continue
        context = None if row["subject"] is not None else _context(conn, row)
        if row["subject"] is None and _nothing_to_tell(row["kind"], context):
            conn.execute("UPDATE mail_outbox SET state = 'skipped', last_error = ?"
                         " WHERE id = ?", ("nothing left to tell", row["id"]))
            continue
        conn.execute("UPDATE mail_outbox SET next_attempt_at = ? WHERE id = ?",
                     (isoformat(now + lease), row["id"]))
        claimed.append(outbox_mail(row, context))
    return claimed


def _bouncing(conn: Connection, address: str) -> bool:
    return conn.execute("SELECT 1 FROM mail_bounces WHERE address = ?",
                        (address.lower(),)).fetchone() is not None


def _nothing_to_tell(kind: str, context: MailContext | None) -> bool:
    """Erased or merged away; a reply mail whose replies were read; a solved mail whose
    ticket was reopened."""
    if context is None:
        return True
    if kind == "reply":
        return not context.messages
    return kind == "solved" and context.status not in {"solved", "closed"}


def _context(conn: Connection, row: sqlite3.Row) -> MailContext | None:
    found = conn.execute(
        "SELECT s.key AS site_key, s.name AS site_name, s.mail_sender_name,"
        " s.reference_prefix, t.subject,"
        " t.severity, t.status, t.first_response_due, t.first_response_at, c.visitor_id,"
        " c.page_url, c.visitor_read_seq, v.name AS visitor_name"
        " FROM tickets t JOIN sites s ON s.id = t.site_id"
        " JOIN conversations c ON c.id = t.conversation_id"
        " LEFT JOIN visitors v ON v.id = c.visitor_id"
        " WHERE t.site_id = ? AND t.number = ? AND t.conversation_id = ?",
        (row["site_id"], row["ticket_number"], row["conversation_id"])).fetchone()
    if found is None:  # erased, or moved by a merge: nothing to tell
        return None
    messages: tuple[ThreadMessage, ...] = ()
    if row["kind"] in ("transcript", "alert"):  # the public thread: never an internal note
        messages = tuple(
            ThreadMessage(m["seq"], m["author_type"], m["author_name"], m["body"],
                          parse_iso(m["created_at"]))
            for m in conn.execute(
                "SELECT seq, author_type, author_name, body, created_at FROM messages"
                " WHERE conversation_id = ? AND internal = 0 ORDER BY seq",
                (row["conversation_id"],)))
        if row["kind"] == "alert":  # what the visitor wrote last, if anything
            messages = tuple(m for m in messages if m.author_type == "visitor")[-1:]
    elif row["kind"] == "reply":
        mailed = conn.execute(
            "SELECT MAX(upto_seq) FROM mail_outbox WHERE conversation_id = ? AND kind = 'reply'"
            " AND subject IS NOT NULL AND state IN ('queued', 'sent')",
            (row["conversation_id"],)).fetchone()[0] or 0
        messages = tuple(
            ThreadMessage(m["seq"], m["author_type"], m["author_name"], m["body"],
                          parse_iso(m["created_at"]))
            for m in conn.execute(
                "SELECT seq, author_type, author_name, body, created_at FROM messages"
                " WHERE conversation_id = ? AND author_type = 'agent' AND internal = 0"
                " AND seq > ? ORDER BY seq",
                (row["conversation_id"], max(mailed, found["visitor_read_seq"]))))
    try:
        label = sla.site_policy(conn, row["site_id"]).severity(found["severity"]).label
    except Exception:  # a policy edited since: the key says enough
        label = found["severity"]
    return MailContext(
        site_key=found["site_key"], site_name=found["site_name"],
        reference=rules.format_reference(row["ticket_number"], found["reference_prefix"]),
        subject=found["subject"], severity_label=label, status=found["status"],
        first_response_due=_maybe(found["first_response_due"]),
        first_response_at=_maybe(found["first_response_at"]),
        visitor_id=found["visitor_id"], visitor_name=found["visitor_name"],
        page_url=found["page_url"], messages=messages, sender_name=found["mail_sender_name"])


def _maybe(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None


def composed(conn: Connection, mail_id: int, subject: str, text: str, html: str,
             headers: dict[str, str], upto_seq: int | None) -> None:
    conn.execute(
        "UPDATE mail_outbox SET subject = ?, text_body = ?, html_body = ?, headers = ?,"
        " upto_seq = ? WHERE id = ? AND subject IS NULL",
        (subject, text, html, json.dumps(headers), upto_seq, mail_id))


def sent(conn: Connection, mail_id: int, now: datetime) -> None:
    conn.execute("UPDATE mail_outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1,"
                 " last_error = NULL WHERE id = ?", (isoformat(now), mail_id))


def requeue(conn: Connection, mail_id: int, site_ids: list[int], now: datetime
            ) -> bool:
    """A failed mail of one of ``site_ids`` is due again now (an admin's "Retry"); its
    attempts and last answer stay for the record. False: no such failed mail."""
    marks = ", ".join("?" * len(site_ids)) or "NULL"
    done = conn.execute(
        "UPDATE mail_outbox SET state = 'queued', next_attempt_at = ? WHERE id = ?"
        f" AND state = 'failed' AND site_id IN ({marks})",
        (isoformat(now), mail_id, *site_ids))
    return done.rowcount == 1


def queue_composed(conn: Connection, plan: MailPlan, site_id: int, to_address: str,
                   kind: MailKind, subject: str, text: str, html: str,
                   headers: dict[str, str], now: datetime) -> int:
    """Queue a mail composed already (a test mail: no ticket to read when it falls due)."""
    mail_id = enqueue(conn, plan, site_id, to_address, kind, None, None, now, now)
    composed(conn, mail_id, subject, text, html, headers, None)
    return mail_id


def set_sender_name(conn: Connection, site_id: int, name: str | None) -> None:
    conn.execute("UPDATE sites SET mail_sender_name = ? WHERE id = ?", (name, site_id))


def failed_attempt(conn: Connection, mail_id: int, error: str,
                   retry_at: datetime | None) -> None:
    """One attempt failed: try again at ``retry_at``, or (None) give up."""
    if retry_at is None:
        conn.execute("UPDATE mail_outbox SET state = 'failed', attempts = attempts + 1,"
                     " last_error = ? WHERE id = ?", (error[:ERROR_CHARS], mail_id))
    else:
        conn.execute("UPDATE mail_outbox SET attempts = attempts + 1, last_error = ?,"
                     " next_attempt_at = ? WHERE id = ?",
                     (error[:ERROR_CHARS], isoformat(retry_at), mail_id))
