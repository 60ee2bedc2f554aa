"""Visitors' messages in their conversations on PostgreSQL, many in one statement.

Most of what the server writes is this: a message in an open conversation that changes
nothing else. The shared job (``sqlite_writes.post_visitor_message``) takes five round trips
on PostgreSQL (BEGIN, its read, the seq, the insert, COMMIT) and a commit of its own. Here
the messages that arrive while a statement is out wait for the next one, which stores them
all in one implicit transaction: one round trip and one commit for the batch, as SQLite's
writer groups its jobs. A batch holds at most one message per conversation.

The statement stores a message only where the job would have done nothing more: not a
resend, the visitor's name and address unchanged, a ticket whose status the message leaves
as it is, the site's identity rule met, no mail alert due (``alerts_on`` and an assigned
ticket), and the conversation's seq still the one the statement read (the UPDATE re-checks
it against the newest row, so a message that raced another in its conversation stores
nothing here). For any other message it changes nothing and answers None, and the caller
runs the job, which handles every case. A batch that fails as a whole (a unique violation:
one message sent twice at once) answers None for each of its messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import asyncpg

from widget_server.clock import isoformat
from widget_server.models import Author, Message, PostResult
from widget_server.store import sqlite_rows as rows
from widget_server.store.base import VisitorPost
from widget_server.store.sqlite_writes import stored_instant, ticket_record
from widget_server.tickets import STATUSES, status_after_visitor_message

# the statuses a visitor's message leaves as they are (a closed ticket refuses it)
UNCHANGED = [status for status in STATUSES
             if status != "closed" and status_after_visitor_message(status) == status]
MAX_BATCH = 100
LANES = 2  # statements out at once: one is stored while the next fills

POST_IN_CONVERSATIONS = f"""
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::boolean[])
        WITH ORDINALITY AS i (conversation_id, visitor_id, client_msg_id, author_name,
                              author_email, body, created_at, verified, n)
), found AS (
    SELECT i.n, c.id AS found_conversation, c.last_seq,
           NOT EXISTS (SELECT 1 FROM messages m WHERE m.author_visitor_id = i.visitor_id
                       AND m.client_msg_id = i.client_msg_id)
           AND (i.author_name IS NULL OR i.author_name = v.name)
           AND (i.author_email IS NULL OR i.author_email = v.email)
           AND t.status = ANY($9::text[])
           AND (i.verified OR s.identity_mode IS DISTINCT FROM 'required')
           AND ($10 OR t.assignee_id IS NULL) AS plain,
           {rows.TICKET_COLUMNS}, {rows.TICKET_VERSION_COLUMNS}
    FROM input i JOIN conversations c ON c.id = i.conversation_id
        AND c.visitor_id = i.visitor_id
    JOIN visitors v ON v.id = c.visitor_id
    JOIN LATERAL (SELECT * FROM tickets WHERE conversation_id = c.id
                  ORDER BY id DESC LIMIT 1) t ON true
    JOIN sites s ON s.id = t.site_id
), seq AS (
    UPDATE conversations c SET last_seq = c.last_seq + 1, updated_at = i.created_at
    FROM found f JOIN input i ON i.n = f.n
    WHERE f.plain AND c.id = f.found_conversation AND c.last_seq = f.last_seq
    RETURNING i.n, c.last_seq
), stored AS (
    INSERT INTO messages (conversation_id, seq, author_type, author_visitor_id, author_name,
                          body, internal, client_msg_id, created_at)
    SELECT i.conversation_id, seq.last_seq, 'visitor', i.visitor_id, i.author_name, i.body,
           0, i.client_msg_id, i.created_at
    FROM seq JOIN input i ON i.n = seq.n
    RETURNING id, conversation_id
)
SELECT found.*, stored.id AS message_id
FROM found LEFT JOIN stored ON stored.conversation_id = found.found_conversation
"""

def _whole(row: asyncpg.Record) -> Callable[[], asyncpg.Record]:
    """The ticket's whole row, which the batch's statement read."""
    return lambda: row


Waiting = tuple[VisitorPost, datetime, "asyncio.Future[PostResult | None]"]


class QuickPosts:
    """Batches of visitors' messages, each stored by one statement on ``pool``."""

    def __init__(self, pool: asyncpg.Pool, *, alerts_on: bool) -> None:
        self._pool = pool
        self._alerts_on = alerts_on  # mail alerts: a reply on an assigned ticket is the job's
        self._waiting: list[Waiting] = []
        self._lanes: set[asyncio.Task[None]] = set()
        self.stored = 0  # messages stored here (the rest went to the job)
        self.statements = 0

    async def post(self, post: VisitorPost, now: datetime) -> PostResult | None:
        """The stored message and its ticket, or None when the shared job must run instead.
        Stored once it is answered; a caller that goes away does not stop its batch."""
        answer: asyncio.Future[PostResult | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((post, stored_instant(now), answer))
        if len(self._lanes) < LANES:
            lane = asyncio.ensure_future(self._drain())
            self._lanes.add(lane)
            lane.add_done_callback(self._lanes.discard)
        return await asyncio.shield(answer)

    async def close(self) -> None:
        """Let the batches out finish."""
        while self._lanes:
            await asyncio.gather(*self._lanes, return_exceptions=True)

    async def _drain(self) -> None:
        while self._waiting:
            batch: list[Waiting] = []
            later: list[Waiting] = []
            conversations: set[str | None] = set()
            for waiting in self._waiting:
                conversation = waiting[0].conversation_id
                if conversation in conversations or len(batch) >= MAX_BATCH:
                    later.append(waiting)
                else:
                    conversations.add(conversation)
                    batch.append(waiting)
            self._waiting = later
            answers = await self._store(batch)
            for (_, _, answer), result in zip(batch, answers, strict=True):
                if not answer.done():
                    answer.set_result(result)

    async def _store(self, batch: list[Waiting]) -> list[PostResult | None]:
        posts = [post for post, _, _ in batch]
        try:
            found = await self._pool.fetch(
                POST_IN_CONVERSATIONS, [post.conversation_id for post in posts],
                [post.visitor.id for post in posts], [post.client_msg_id for post in posts],
                [post.visitor.name for post in posts], [post.visitor.email for post in posts],
                [post.body for post in posts], [isoformat(now) for _, now, _ in batch],
                [post.visitor.verified for post in posts], UNCHANGED, not self._alerts_on)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            # the whole batch rolled back: each message's job runs, and answers for itself
            return [None] * len(batch)
        finally:
            self.statements += 1
        by_number = {row["n"]: row for row in found}
        answers: list[PostResult | None] = []
        for number, (post, now, _) in enumerate(batch, start=1):
            row = by_number.get(number)
            if row is None or row["message_id"] is None:
                answers.append(None)
                continue
            message = Message(
                id=int(row["message_id"]), conversation_id=row["found_conversation"],
                seq=int(row["last_seq"]) + 1,
                author=Author(type="visitor", name=post.visitor.name, id=post.visitor.id),
                body=post.body, internal=False, created_at=now,
                client_msg_id=post.client_msg_id)
            # the jobs' memo: one record per version of the ticket
            ticket = ticket_record(row, _whole(row))
            answers.append(PostResult(message=message, ticket=ticket, created=[message],
                                      duplicate=False, ticket_changed=False))
            self.stored += 1
        return answers
