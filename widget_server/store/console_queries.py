"""Reads and writes of the agent console, mixed into the SQLite store.

The mixin needs ``_fetchall``, ``_fetchone``, ``_fetchone_now`` and ``_write`` from its host
class.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from widget_server.clock import Clock, isoformat, parse_iso
from widget_server.models import (
    Agent,
    AgentSession,
    ApiToken,
    InboxRow,
    SavedReply,
    SearchHit,
    Site,
    Ticket,
    TicketChange,
    VisitorProfile,
)
from widget_server.reports import TicketFacts
from widget_server.store import sqlite_alerts as alerts
from widget_server.store import sqlite_console as jobs
from widget_server.store import sqlite_rows as rows
from widget_server.store.connection import Dialect
from widget_server.store.mail_records import MailPlan

T = TypeVar("T")
OPEN_STATUSES = ("new", "open", "pending")
_WORD = re.compile(r"\w+", re.UNICODE)


def search_words(text: str) -> list[str]:
    """The words of a search (at most 12); each must match as a prefix. The backends quote
    each one, so user input never becomes search syntax."""
    return _WORD.findall(text)[:12]


class StoreMixin:
    """What the query mixins need from the store class they are mixed into."""

    _clock: Clock
    _mail: MailPlan | None  # None: mail is off
    _dialect: Dialect  # the SQL fragments that differ between backends (connection.py)

    async def _fetchall(self, sql: str, params: tuple[Any, ...] = (), *,
                        slow: bool = False) -> list[Any]:
        raise NotImplementedError

    async def _fetchone(self, sql: str, params: tuple[Any, ...] = (), *,
                        slow: bool = False) -> Any:
        raise NotImplementedError

    async def _fetchone_now(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """A read of one row by key, on the loop's thread when it can (no reader trip)."""
        raise NotImplementedError

    async def _write(self, job: Callable[..., T], *args: Any, off_loop: bool = False) -> T:
        raise NotImplementedError

    # full-text search, the one part each backend writes in its own SQL (sqlite_search.py,
    # pg_search.py); ranks: lower is better
    async def _ticket_matches(self, site_ids: list[int], words: list[str]
                              ) -> list[tuple[int, float, str]]:
        """(ticket id, rank, snippet) of subjects and messages that have every word."""
        raise NotImplementedError

    async def _article_matches(self, site_id: int, words: list[str], every: bool,
                               limit: int) -> list[tuple[int, str, str, str, str]]:
        """(id, slug, title, category, snippet) of published articles, best first."""
        raise NotImplementedError


class ConsoleQueries(StoreMixin):
    # -- agents and sessions
    async def agent_password_hash(self, email: str) -> tuple[Agent, str | None] | None:
        row = await self._fetchone("SELECT * FROM agents WHERE email = ?", (email,))
        return (rows.agent(row), row["password_hash"]) if row else None

    async def create_agent_session(self, agent_id: int, csrf: str, lifetime: timedelta) -> str:
        now = self._clock.now()
        return await self._write(jobs.create_session, agent_id, csrf, now, now + lifetime)

    async def agent_session(self, session_id: str) -> AgentSession | None:
        row = await self._fetchone_now(
            "SELECT s.id AS session_id, s.csrf_token, s.expires_at, a.* FROM agent_sessions s"
            " JOIN agents a ON a.id = s.agent_id WHERE s.id = ? AND s.revoked_at IS NULL"
            " AND s.expires_at > ? AND a.active = 1",
            (session_id, isoformat(self._clock.now())))
        if row is None:
            return None
        return AgentSession(row["session_id"], rows.agent(row), row["csrf_token"],
                            parse_iso(row["expires_at"]))

    async def revoke_agent_session(self, session_id: str) -> None:
        await self._write(jobs.revoke_session, session_id, self._clock.now())

    async def login_failures(self, key: str) -> tuple[int, datetime] | None:
        row = await self._fetchone(
            "SELECT failures, last_failed_at FROM login_failures WHERE key = ?", (key,))
        return (int(row[0]), parse_iso(row[1])) if row else None

    async def record_login_failure(self, key: str) -> int:
        return await self._write(jobs.record_login_failure, key, self._clock.now())

    async def reserve_login_attempt(self, keys: list[str],
                                    lockout: Callable[[int], timedelta]) -> timedelta:
        return await self._write(jobs.reserve_login_attempt, keys, self._clock.now(), lockout)

    async def clear_login_failures(self, key: str) -> None:
        await self._write(jobs.clear_login_failures, key)

    async def list_agents(self) -> list[tuple[Agent, list[int]]]:
        agents = [rows.agent(row) for row in
                  await self._fetchall("SELECT * FROM agents ORDER BY email")]
        memberships: dict[int, list[int]] = {}
        for row in await self._fetchall("SELECT agent_id, site_id FROM agent_sites"):
            memberships.setdefault(row[0], []).append(row[1])
        return [(agent, sorted(memberships.get(agent.id, []))) for agent in agents]

    async def update_agent(self, agent_id: int, *, active: bool | None = None,
                           tier: int | None = None, role: str | None = None,
                           site_ids: list[int] | None = None) -> Agent:
        return await self._write(lambda conn: jobs.update_agent(
            conn, agent_id, active=active, tier=tier, role=role, site_ids=site_ids,
            now=self._clock.now()))

    async def agent_site_ids(self, agent: Agent) -> list[int]:
        if agent.is_admin:
            found = await self._fetchall("SELECT id FROM sites ORDER BY id")
        else:
            found = await self._fetchall(
                "SELECT site_id FROM agent_sites WHERE agent_id = ? ORDER BY site_id",
                (agent.id,))
        return [int(row[0]) for row in found]

    # -- sites and tokens
    async def update_site(self, site_id: int, *, name: str | None = None,
                          origins: list[str] | None = None, rotate_secret: bool = False,
                          tier_names: list[str] | None = None,
                          identity_mode: str | None = None,
                          grace: timedelta | None = None) -> Site:
        return await self._write(lambda conn: jobs.update_site(
            conn, site_id, name=name, origins=origins, rotate_secret=rotate_secret,
            tier_names=tier_names, identity_mode=identity_mode, grace=grace,
            now=self._clock.now()))

    async def list_api_tokens(self, site_ids: list[int]) -> list[tuple[ApiToken, str, bool]]:
        """Tokens with the creation time and whether they are revoked."""
        found = await self._fetchall(
            f"SELECT * FROM api_tokens WHERE site_id IN ({marks(site_ids)}) ORDER BY id DESC",
            tuple(site_ids))
        return [(rows.api_token(row), row["created_at"], row["revoked_at"] is not None)
                for row in found]

    async def revoke_api_token(self, token_id: int) -> None:
        await self._write(jobs.revoke_api_token, token_id, self._clock.now())

    # -- saved replies
    async def saved_replies(self, site_ids: list[int]) -> list[SavedReply]:
        found = await self._fetchall(
            f"SELECT * FROM saved_replies WHERE site_id IN ({marks(site_ids)})"
            " ORDER BY shortcut", tuple(site_ids))
        return [SavedReply(row["id"], row["site_id"], row["shortcut"], row["title"], row["body"])
                for row in found]

    async def save_reply(self, site_id: int, shortcut: str, title: str, body: str,
                         reply_id: int | None = None) -> int:
        return await self._write(jobs.save_reply, site_id, shortcut, title, body,
                                 self._clock.now(), reply_id)

    async def delete_reply(self, site_id: int, reply_id: int) -> None:
        await self._write(jobs.delete_reply, site_id, reply_id)

    # -- inbox and tickets
    async def inbox(
        self, agent: Agent, site_ids: list[int], *, statuses: tuple[str, ...] = OPEN_STATUSES,
        severity: str | None = None, assignee: str | None = None, sla: str | None = None,
        tier: int | None = None, limit: int = 200,
    ) -> list[InboxRow]:
        """Breached tickets first, then by first-response due time."""
        if not site_ids:
            return []
        now = isoformat(self._clock.now())
        where = [f"t.site_id IN ({marks(site_ids)})", f"t.status IN ({marks(statuses)})"]
        params: list[Any] = [*site_ids, *statuses]
        if severity:
            where.append("t.severity = ?")
            params.append(severity)
        if assignee == "me":
            where.append("t.assignee_id = ?")
            params.append(agent.id)
        elif assignee == "unassigned":
            where.append("t.assignee_id IS NULL")
        if tier is not None:
            where.append("t.tier = ?")
            params.append(tier)
        # the running clock (first or next response) decides; a paused clock has no due time
        if sla == "breached":
            where.append("t.sla_due IS NOT NULL AND t.sla_due <= ?")
            params.append(now)
        elif sla == "due_soon":
            where.append("t.sla_due > ? AND t.sla_due <= ?")
            params.extend([now, isoformat(self._clock.now() + timedelta(hours=1))])
        found = await self._fetchall(
            f"SELECT {rows.TICKET_COLUMNS}, s.key AS site_key, s.name AS site_name,"
            " v.name AS visitor_name, v.email AS visitor_email,"
            " (SELECT m.body FROM messages m WHERE m.conversation_id = t.conversation_id"
            "  ORDER BY m.id DESC LIMIT 1) AS last_body,"
            " (SELECT m.author_type FROM messages m WHERE m.conversation_id = t.conversation_id"
            "  ORDER BY m.id DESC LIMIT 1) AS last_author,"
            " EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = t.conversation_id"
            "  AND m.author_type = 'visitor' AND m.id > COALESCE((SELECT r.message_id FROM"
            "  agent_reads r WHERE r.agent_id = ? AND r.ticket_id = t.id), 0)) AS unread"
            f" FROM {rows.TICKET_FROM} JOIN conversations c ON c.id = t.conversation_id"
            " JOIN visitors v ON v.id = c.visitor_id"
            f" WHERE {' AND '.join(where)}"
            " ORDER BY CASE WHEN t.sla_due <= ? THEN 0 WHEN t.sla_due IS NOT NULL THEN 1"
            " ELSE 2 END, t.sla_due, t.id LIMIT ?",
            (agent.id, *params, now, limit))
        return [InboxRow(rows.ticket(row), row["site_key"], row["site_name"],
                         row["visitor_name"], row["visitor_email"], row["last_body"],
                         row["last_author"], bool(row["unread"])) for row in found]

    async def visitor_profile(self, ticket: Ticket) -> tuple[VisitorProfile, list[Ticket]]:
        row = await self._fetchone(
            "SELECT v.*, c.page_url, c.user_agent FROM conversations c"
            " JOIN visitors v ON v.id = c.visitor_id WHERE c.id = ?", (ticket.conversation_id,))
        profile = VisitorProfile(row["id"], row["name"], row["email"], bool(row["verified"]),
                                 row["page_url"], row["user_agent"], row["user_id"])
        others = await self._fetchall(
            f"SELECT {rows.TICKET_COLUMNS} FROM {rows.TICKET_FROM}"
            " JOIN conversations c ON c.id = t.conversation_id"
            " WHERE c.visitor_id = ? AND t.id != ? ORDER BY t.number DESC",
            (profile.id, ticket.id))
        return profile, [rows.ticket(other) for other in others]

    async def mark_agent_read(self, agent_id: int, ticket: Ticket) -> None:
        row = await self._fetchone(
            "SELECT MAX(id) FROM messages WHERE conversation_id = ?", (ticket.conversation_id,))
        if row and row[0]:
            await self._write(jobs.mark_agent_read, agent_id, ticket.id, int(row[0]))

    async def ticket_by_id(self, ticket_id: int) -> Ticket | None:
        row = await self._fetchone(
            f"SELECT {rows.TICKET_COLUMNS} FROM {rows.TICKET_FROM} WHERE t.id = ?", (ticket_id,))
        return rows.ticket(row) if row else None

    async def search(self, site_ids: list[int], text: str, limit: int = 50) -> list[SearchHit]:
        """Tickets whose subject or messages match every word (as prefixes), best first."""
        words = search_words(text)
        if not words or not site_ids:
            return []
        matches = await self._ticket_matches(site_ids, words)
        best: dict[int, tuple[float, str]] = {}
        for ticket_id, rank, snippet in matches:
            if ticket_id not in best or rank < best[ticket_id][0]:
                best[ticket_id] = (rank, snippet)
        chosen = sorted(best.items(), key=lambda item: item[1][0])[:limit]
        if not chosen:
            return []
        found = {row["id"]: row for row in await self._fetchall(
            f"SELECT {rows.TICKET_COLUMNS}, s.key AS site_key FROM {rows.TICKET_FROM}"
            f" WHERE t.id IN ({marks([ticket_id for ticket_id, _ in chosen])})",
            tuple(ticket_id for ticket_id, _ in chosen))}
        return [SearchHit(rows.ticket(found[ticket_id]), found[ticket_id]["site_key"], snippet)
                for ticket_id, (_, snippet) in chosen]

    # -- ticket operations
    async def split_ticket(self, site_id: int, number: int, message_ids: list[int],
                           agent: Agent) -> tuple[TicketChange, TicketChange]:
        return await self._write(jobs.split_ticket, site_id, number, message_ids, agent,
                                 self._clock.now())

    async def merge_ticket(self, site_id: int, number: int, into_number: int,
                           agent: Agent) -> tuple[TicketChange, TicketChange]:
        return await self._write(jobs.merge_ticket, site_id, number, into_number, agent,
                                 self._clock.now())

    async def move_tier(self, site_id: int, number: int, agent: Agent, step: int,
                        reason: str) -> TicketChange:
        if self._mail is not None:  # an escalation alerts the agents of the new tier
            return await self._write(alerts.move_tier, self._mail, site_id, number, agent,
                                     step, reason, self._clock.now())
        return await self._write(jobs.move_tier, site_id, number, agent, step, reason,
                                 self._clock.now())


def marks(values: tuple[Any, ...] | list[Any]) -> str:
    return ",".join("?" * len(values)) or "NULL"



class ReportQueries(StoreMixin):
    """Raw rows for widget_server.reports; mixed into the SQLite store like ConsoleQueries."""

    async def report_rows(self, site_ids: list[int], since: datetime) -> tuple[
            list[TicketFacts], list[datetime], dict[str, int]]:
        sites = marks(site_ids)
        facts = [
            TicketFacts(row[0], row[1], parse_iso(row[2]),
                        parse_iso(row[3]) if row[3] else None, bool(row[4]))
            for row in await self._fetchall(
                "SELECT t.severity, t.status, t.created_at, t.first_response_at,"
                " EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = t.id"
                "  AND e.type = 'sla_breached'"
                f"  AND {self._dialect.json_text('e.data', 'clock')} = 'first_response')"
                f" FROM tickets t WHERE t.site_id IN ({sites}) AND t.created_at >= ?",
                (*site_ids, isoformat(since)), slow=True)
        ]
        solved = [parse_iso(row[0]) for row in await self._fetchall(
            "SELECT e.created_at FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id"
            f" WHERE t.site_id IN ({sites}) AND e.type = 'status_changed'"
            f" AND {self._dialect.json_text('e.data', 'to')} = 'solved' AND e.created_at >= ?",
            (*site_ids, isoformat(since)), slow=True)]
        backlog = {row[0]: int(row[1]) for row in await self._fetchall(
            f"SELECT status, COUNT(*) FROM tickets WHERE site_id IN ({sites}) GROUP BY status",
            tuple(site_ids), slow=True)}
        return facts, solved, backlog
