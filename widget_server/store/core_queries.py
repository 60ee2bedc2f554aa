"""The store's methods that both backends share: sites, agents, tokens, conversations,
tickets and their messages. Written once in portable SQL over the host's primitives
(``StoreMixin``); mixed into ``SQLiteStore`` and ``PgStore``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from widget_server.models import (
    Agent,
    ApiToken,
    Conversation,
    Message,
    PostResult,
    Site,
    SweepResult,
    Ticket,
    TicketChange,
    Uploader,
)
from widget_server.store import attachment_queries as attached
from widget_server.store import inbound_queries as inbound
from widget_server.store import sqlite_alerts as alerts
from widget_server.store import sqlite_mail as mail
from widget_server.store import sqlite_rows as rows
from widget_server.store import sqlite_writes as writes
from widget_server.store.base import TicketPatch, VisitorPost
from widget_server.store.connection import (
    POSTGRESQL,
    READ_COMMITTED,
    REPEATABLE_READ,
    write_isolation,
)
from widget_server.store.console_queries import StoreMixin
from widget_server.store.site_cache import SiteCache
from widget_server.store.sqlite_sweep import sweep

# A visitor's conversations are read on the loop (every session and hello) while there are
# at most this many; more go to a reader thread, so no visitor's history holds the loop.
T = TypeVar("T")
QUICK_CONVERSATIONS = 20
MESSAGE_EVENTS = ("ticket.created", "message.created", "ticket.updated")
UPDATE_EVENTS = ("ticket.updated",)
SWEEP_EVENTS = ("ticket.sla_at_risk", "ticket.sla_breached", "ticket.updated")


# a conversation and its latest ticket, as a wake-up from another node reads them (the
# ticket's columns first, as TicketMemo reads them: a ticket is built once per version)
_CONVERSATIONS = (
    f"SELECT {rows.TICKET_READ_COLUMNS}, c.id AS found_id, c.site_id AS found_site_id,"
    " c.visitor_id, c.last_seq FROM conversations c"
    f" LEFT JOIN tickets t ON t.id = {rows.LATEST_TICKET.format('c.id')}"
    " LEFT JOIN sites s ON s.id = t.site_id")


class CoreQueries(StoreMixin):
    _sites: SiteCache
    _tickets: rows.TicketMemo

    def _read_now(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any] | None:
        """A read of a few rows by key without leaving the loop's thread, where the backend
        can; None: read it the usual way."""
        return None

    async def ping(self) -> bool:
        return (await self._fetchone("SELECT 1")) is not None

    # -- setup and administration
    async def secret_key(self) -> str:
        return await self._write(writes.secret_key)

    async def set_setting(self, key: str, value: str) -> None:
        await self._write(writes.set_setting, key, value)

    async def get_setting(self, key: str) -> str | None:
        row = await self._fetchone("SELECT value FROM server_settings WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def ensure_site(self, name: str, origins: list[str]) -> tuple[Site, bool]:
        return await self._write(writes.ensure_site, name, origins, self._clock.now())

    async def ensure_agent(
        self, email: str, name: str, role: str, password_hash: str | None
    ) -> tuple[Agent, bool]:
        return await self._write(
            writes.ensure_agent, email, name, role, password_hash, self._clock.now()
        )

    async def set_agent_password(self, email: str, password_hash: str) -> Agent:
        return await self._write(writes.set_agent_password, email, password_hash)

    async def create_api_token(
        self, name: str, token_hash: str, site_id: int, agent_id: int
    ) -> ApiToken:
        return await self._write(
            writes.create_api_token, name, token_hash, site_id, agent_id, self._clock.now()
        )

    # -- reads
    # sites come from a cache (site_cache.py): read at most once a second, and again at once
    # after this process changes one
    async def get_site_by_key(self, key: str) -> Site | None:
        return await self._sites.by_key(key)

    async def get_site(self, site_id: int) -> Site | None:
        return await self._sites.by_id(site_id)

    async def list_sites(self, fresh: bool = False) -> list[Site]:
        return await self._sites.all(fresh)

    async def _read_sites(self) -> list[Site]:
        return [rows.site(row) for row in await self._fetchall("SELECT * FROM sites ORDER BY id")]

    async def get_agent(self, agent_id: int) -> Agent | None:
        row = await self._fetchone("SELECT * FROM agents WHERE id = ?", (agent_id,))
        return rows.agent(row) if row else None

    async def get_agent_by_email(self, email: str) -> Agent | None:
        row = await self._fetchone("SELECT * FROM agents WHERE email = ?", (email,))
        return rows.agent(row) if row else None

    async def site_agent_by_email(self, site_id: int, email: str) -> Agent | None:
        # one read whichever way it goes: an agent of another site looks like no agent
        row = await self._fetchone(
            "SELECT a.* FROM agents a WHERE a.email = ? AND a.active = 1 AND (a.role = 'admin'"
            " OR EXISTS (SELECT 1 FROM agent_sites m WHERE m.agent_id = a.id"
            " AND m.site_id = ?))", (email, site_id))
        return rows.agent(row) if row else None

    async def find_api_agent(self, token_hash: str) -> tuple[int, Agent] | None:
        # the token's authority is checked now, not only when it was made: the agent must
        # still be active and still work on the token's site (an admin works on every site),
        # so removing the agent from the site or demoting an admin ends the token at once
        row = await self._fetchone_now(
            "SELECT a.*, t.site_id AS token_site_id FROM api_tokens t"
            " JOIN agents a ON a.id = t.agent_id WHERE t.token_hash = ? AND t.revoked_at IS NULL"
            " AND a.active = 1 AND (a.role = 'admin' OR EXISTS (SELECT 1 FROM agent_sites m"
            " WHERE m.agent_id = a.id AND m.site_id = t.site_id))",
            (token_hash,),
        )
        return (row["token_site_id"], rows.agent(row)) if row else None

    async def visitor_conversations(self, visitor_id: str) -> list[Conversation]:
        conversations_sql = (
            "SELECT id, site_id, visitor_id, last_seq FROM conversations WHERE visitor_id = ?"
            " ORDER BY created_at DESC")
        tickets_sql = (
            f"SELECT {rows.TICKET_READ_COLUMNS} FROM {rows.TICKET_FROM}"
            " JOIN conversations c ON c.id = t.conversation_id"
            " WHERE c.visitor_id = ? ORDER BY t.id")
        found = self._read_now(f"{conversations_sql} LIMIT {QUICK_CONVERSATIONS + 1}",
                               (visitor_id,))
        ticket_rows = (self._read_now(tickets_sql, (visitor_id,))
                       if found is not None and len(found) <= QUICK_CONVERSATIONS else None)
        if found is None or ticket_rows is None:  # a long history, or the database was busy
            found = await self._fetchall(conversations_sql, (visitor_id,))
            ticket_rows = await self._fetchall(tickets_sql, (visitor_id,))
        tickets = {ticket.conversation_id: ticket for ticket in map(self._tickets, ticket_rows)}
        return [
            Conversation(id=row["id"], site_id=row["site_id"], visitor_id=row["visitor_id"],
                         last_seq=row["last_seq"], ticket=tickets.get(row["id"]))
            for row in found
        ]

    def _conversation(self, row: Any) -> Conversation:
        return Conversation(id=row["found_id"], site_id=row["found_site_id"],
                            visitor_id=row["visitor_id"], last_seq=row["last_seq"],
                            ticket=self._tickets(row) if row["id"] is not None else None)

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        # one read: every wake-up from another node asks this (realtime/wire.py)
        row = await self._fetchone(_CONVERSATIONS + " WHERE c.id = ?", (conversation_id,))
        return None if row is None else self._conversation(row)

    async def messages_in_ranges(self, ranges: list[tuple[str, int, int]]
                                 ) -> tuple[dict[str, Conversation], list[Message]]:
        """For (conversation, first seq, last seq) each: the conversations found, with their
        latest tickets, and their public messages in those ranges in seq order; two reads
        however many (the wake-ups of another node's batch, realtime/wire.py)."""
        if not ranges:
            return {}, []
        ids = sorted({conversation for conversation, _, _ in ranges})
        found = await self._fetchall(
            _CONVERSATIONS + f" WHERE c.id IN ({', '.join(['?'] * len(ids))})", tuple(ids))
        messages = await self._fetchall(*self._ranges_query(ranges))
        return ({row["found_id"]: self._conversation(row) for row in found},
                [rows.message(row) for row in messages])

    def _ranges_query(self, ranges: list[tuple[str, int, int]]) -> tuple[str, tuple[Any, ...]]:
        """The public messages in ranges, read by an index search per range. PostgreSQL plans
        a join with a list of ranges as a hash join over every message in the table (25 ms at
        100,000 messages however few are wanted); a lateral subquery with a LIMIT (the most
        a range of unique seqs can hold) is not merged into such a join, so each range is
        its own index scan there. SQLite's nested loop searches the index for each range."""
        order = " ORDER BY conversation_id, seq"
        if self._dialect is POSTGRESQL:
            return ("SELECT m.* FROM unnest(CAST(? AS TEXT[]), CAST(? AS BIGINT[]),"
                    " CAST(? AS BIGINT[])) AS wanted (wanted_id, low, high)"
                    f" CROSS JOIN LATERAL (SELECT {rows.MESSAGE_COLUMNS} FROM messages"
                    " WHERE conversation_id = wanted_id AND seq BETWEEN low AND high"
                    " AND internal = 0 LIMIT high - low + 1) m" + order,
                    tuple([one[k] for one in ranges] for k in range(3)))
        wanted = ", ".join(
            ["(CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS INTEGER))"] * len(ranges))
        return (f"WITH wanted (wanted_id, low, high) AS (VALUES {wanted})"
                f" SELECT {rows.MESSAGE_COLUMNS} FROM messages JOIN wanted"
                " ON conversation_id = wanted_id AND seq BETWEEN low AND high"
                " WHERE internal = 0" + order,
                tuple(value for one in ranges for value in one))

    async def messages_after(
        self, conversation_id: str, after_seq: int, limit: int = 500
    ) -> list[Message]:
        found = await self._fetchall(
            f"SELECT {rows.MESSAGE_COLUMNS} FROM messages"
            " WHERE conversation_id = ? AND seq > ? AND internal = 0 ORDER BY seq LIMIT ?",
            (conversation_id, after_seq, limit),
        )
        return [rows.message(row) for row in found]

    async def list_tickets(
        self,
        site_id: int,
        *,
        status: str | None = None,
        severity: str | None = None,
        limit: int = 50,
        after_number: int | None = None,
    ) -> list[Ticket]:
        where: list[str] = ["t.site_id = ?"]
        params: list[object] = [site_id]
        for column, value in (("t.status", status), ("t.severity", severity)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if after_number is not None:
            where.append("t.number < ?")
            params.append(after_number)
        page = f"FROM {rows.TICKET_FROM} WHERE {' AND '.join(where)} ORDER BY t.number DESC LIMIT ?"
        # first only the columns that identify each ticket's contents: a page of tickets that
        # did not change since they were last read comes from the memo, at a third of the
        # cost of reading their thirty columns (docs/performance.md)
        keys = await self._fetchall(f"SELECT {rows.TICKET_KEY_COLUMNS} {page}", (*params, limit))
        found = [self._tickets.known(key) for key in keys]
        missing = [key[0] for key, ticket in zip(keys, found, strict=True) if ticket is None]
        if missing:
            read = {row["id"]: self._tickets(row) for row in await self._fetchall(
                f"SELECT {rows.TICKET_READ_COLUMNS} FROM {rows.TICKET_FROM}"
                f" WHERE t.id IN ({','.join('?' * len(missing))})", tuple(missing))}
            if len(read) < len(missing):  # deleted in between: read the page whole, once
                return [self._tickets(row) for row in await self._fetchall(
                    f"SELECT {rows.TICKET_READ_COLUMNS} {page}", (*params, limit))]
            found = [ticket or read[key[0]] for key, ticket in zip(keys, found, strict=True)]
        return [ticket for ticket in found if ticket is not None]

    async def get_ticket(self, site_id: int, number: int) -> tuple[Ticket, str] | None:
        row = await self._fetchone(
            f"SELECT {rows.TICKET_COLUMNS}, c.visitor_id FROM {rows.TICKET_FROM}"
            " JOIN conversations c ON c.id = t.conversation_id"
            " WHERE t.site_id = ? AND t.number = ?",
            (site_id, number),
        )
        return (rows.ticket(row), row["visitor_id"]) if row else None

    async def ticket_messages(self, ticket: Ticket) -> list[Message]:
        found = await self._fetchall(
            f"SELECT {rows.MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id",
            (ticket.conversation_id,),
        )
        return [rows.message(row) for row in found]

    async def ticket_events(self, ticket: Ticket) -> list[dict[str, object]]:
        found = await self._fetchall(
            "SELECT type, actor_type, actor_id, data, created_at FROM ticket_events"
            " WHERE ticket_id = ? ORDER BY id",
            (ticket.id,),
        )
        return [
            {"type": row["type"], "actor": {"type": row["actor_type"], "id": row["actor_id"]},
             "data": json.loads(row["data"]), "created_at": row["created_at"]}
            for row in found
        ]

    # -- writes
    # the jobs of events webhooks tell of run through _hooked: wrapped to queue the events
    # while an endpoint of the site wants them (webhook_queries.py), plain otherwise
    async def post_visitor_message(self, post: VisitorPost, now: datetime,
                                   max_files: int = 10) -> PostResult:
        site_id = post.visitor.site_id
        job: Callable[..., PostResult] = writes.post_visitor_message
        args: tuple[Any, ...] = (post, now)
        if self._mail is not None:  # a verified address to remember, alerts to agents
            job, args = alerts.post_visitor_message, (post, now, self._mail)
        if post.follow_up_of is not None and post.conversation_id is None:
            job, args = inbound.with_follow_up, (job, args)
        if post.attachments:
            uploader = Uploader(site_id, visitor_id=post.visitor.id)
            job, args = attached.with_attachments, (job, args, uploader, post.attachments,
                                                    max_files)
        # a new request's one contended row is its site's ticket counter (connection.py)
        with write_isolation(READ_COMMITTED if post.conversation_id is None
                             else REPEATABLE_READ):
            return await self._hooked(site_id, job, *args, events=MESSAGE_EVENTS)

    async def post_agent_message(
        self, site_id: int, number: int, agent: Agent, body: str, internal: bool, now: datetime,
        attachments: tuple[str, ...] = (), max_files: int = 10,
    ) -> TicketChange:
        job: Callable[..., TicketChange] = writes.post_agent_message
        args: tuple[Any, ...] = (site_id, number, agent, body, internal, now)
        if self._mail is not None and not internal:
            job, args = mail.post_agent_message, (*args, self._mail)
        if attachments:
            job, args = attached.with_attachments, (job, args,
                                                    Uploader(site_id, agent_id=agent.id),
                                                    attachments, max_files)
        with write_isolation(READ_COMMITTED):  # its ticket locked as read, then the seq's + 1
            return await self._hooked(site_id, job, *args, events=MESSAGE_EVENTS)

    async def update_ticket(
        self, site_id: int, number: int, agent: Agent, patch: TicketPatch, now: datetime
    ) -> TicketChange:
        if self._mail is not None and patch.status == "solved":
            return await self._hooked(site_id, mail.update_ticket, site_id, number, agent,
                                      patch, now, self._mail, events=UPDATE_EVENTS)
        return await self._hooked(site_id, writes.update_ticket, site_id, number, agent, patch,
                                  now, events=UPDATE_EVENTS)

    async def sla_sweep(self, holder: str, now: datetime, lease: timedelta) -> SweepResult:
        # every site's solved tickets may close at once after a pause: off the loop
        if self._mail is not None:  # and mail each SLA mark to the agents who want it
            return await self._hooked(None, alerts.sla_sweep, self._mail, holder, now, lease,
                                      events=SWEEP_EVENTS, off_loop=True)
        return await self._hooked(None, sweep, holder, now, lease, events=SWEEP_EVENTS,
                                  off_loop=True)

    async def set_site_policy(self, site_id: int, policy_toml: str | None) -> None:
        await self._write(writes.set_site_policy, site_id, policy_toml)

    async def mark_read(self, visitor_id: str, conversation_id: str, seq: int) -> None:
        await self._write(writes.mark_read, visitor_id, conversation_id, seq)
