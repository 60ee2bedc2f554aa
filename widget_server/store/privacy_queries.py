"""Retention and erasure in the SQLite store: reads, and the write jobs of sqlite_retention.py.

Mixed into SQLiteStore like ConsoleQueries; needs ``_fetchall``, ``_fetchone`` and ``_write``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from widget_server.clock import isoformat, parse_iso
from widget_server.models import Site
from widget_server.store import sqlite_retention as jobs
from widget_server.store.console_queries import StoreMixin
from widget_server.store.privacy_records import (
    AuditEntry,
    ErasurePreview,
    ErasureSelector,
    Purged,
    RetentionBatch,
)


class PrivacyQueries(StoreMixin):
    async def set_retention(self, site_id: int, days: int | None, actor: str,
                            agent_id: int | None = None) -> Site:
        """Set (or with None, turn off) a site's retention period; audited when it changes."""
        return await self._write(jobs.set_retention, site_id, days, actor, agent_id,
                                 self._clock.now())

    async def retention_batch(self, holder: str, now: datetime, lease: timedelta, limit: int,
                              actor: str) -> RetentionBatch:
        return await self._write(jobs.retention_batch, holder, now, lease, limit, actor,
                                 off_loop=True)  # up to BATCH conversations with their rows

    async def release_retention_lease(self, holder: str, now: datetime) -> None:
        await self._write(jobs.release_lease, holder, now)

    async def visitor_erased(self, visitor_id: str, since: datetime) -> bool:
        """Whether the visitor was erased at or after ``since`` (a credential's issue)."""
        row = await self._fetchone_now(
            "SELECT 1 FROM erased_visitors WHERE visitor_id = ? AND erased_at >= ?",
            (visitor_id, isoformat(since)))
        return row is not None

    async def forget_erased_visitors(self, before: datetime) -> int:
        return await self._write(jobs.forget_erased, before)

    async def stale_open_tickets(self, site_id: int, before: datetime) -> int:
        """Tickets not closed whose last change is older than ``before``: the job keeps them."""
        row = await self._fetchone(
            "SELECT COUNT(*) FROM tickets WHERE site_id = ? AND status != 'closed'"
            " AND erased_at IS NULL AND updated_at < ?", (site_id, isoformat(before)),
            slow=True)
        return int(row[0])

    async def erasure_preview(self, site_id: int, selector: ErasureSelector) -> ErasurePreview:
        where, params = jobs.selector_where(selector)
        found = await self._fetchall(
            f"SELECT id FROM visitors WHERE site_id = ? AND {where}"
            " AND id NOT LIKE 'v\\_erased\\_%' ESCAPE '\\'", (site_id, *params))
        ids = [row[0] for row in found]
        grants = await self._active_grants_of(site_id, selector, ids)
        if not ids:
            return ErasurePreview(0, 0, (), 0, 0, grants)
        marks = ",".join("?" * len(ids))
        conversations = await self._fetchone(
            f"SELECT COUNT(*) FROM conversations WHERE visitor_id IN ({marks})", tuple(ids))
        numbers = await self._fetchall(
            "SELECT t.number FROM tickets t JOIN conversations c ON c.id = t.conversation_id"
            f" WHERE c.visitor_id IN ({marks}) ORDER BY t.number", tuple(ids))
        messages = await self._fetchone(
            "SELECT COUNT(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            f" WHERE c.visitor_id IN ({marks})", tuple(ids))
        comments = await self._fetchone(
            f"SELECT COUNT(*) FROM article_comments WHERE author_visitor_id IN ({marks})",
            tuple(ids))
        return ErasurePreview(len(ids), int(conversations[0]),
                              tuple(int(row[0]) for row in numbers), int(messages[0]),
                              int(comments[0]), grants)

    async def _active_grants_of(self, site_id: int, selector: ErasureSelector,
                                visitor_ids: list[str]) -> int:
        """Active access grants of the users an erasure names (a user may have none of our
        visitor rows: granting needs no message)."""
        marks = ",".join("?" * len(visitor_ids)) or "NULL"
        user_ids = {row[0] for row in await self._fetchall(
            f"SELECT user_id FROM visitors WHERE id IN ({marks}) AND user_id IS NOT NULL",
            tuple(visitor_ids))}
        if selector.kind == "user_id":
            user_ids.add(selector.value.strip())
        if not user_ids:
            return 0
        row = await self._fetchone(
            "SELECT COUNT(*) FROM access_grants WHERE site_id = ? AND revoked_at IS NULL"
            f" AND expires_at > ? AND user_id IN ({','.join('?' * len(user_ids))})",
            (site_id, isoformat(self._clock.now()), *sorted(user_ids)))
        return int(row[0])

    async def erase_visitor(self, site_id: int, selector: ErasureSelector, actor: str,
                            agent_id: int | None = None, reference: str | None = None
                            ) -> Purged:
        """Erase every matching visitor of the site in one transaction; 404
        ``visitor_not_found`` when none matches."""
        return await self._hooked(site_id, jobs.erase_visitor, site_id, selector, actor,
                                  agent_id, reference, self._clock.now(),
                                  events=("access_grant.revoked",), off_loop=True)

    async def privacy_audit(self, site_id: int, limit: int = 100) -> list[AuditEntry]:
        found = await self._fetchall(
            "SELECT * FROM privacy_audit WHERE site_id = ? ORDER BY id DESC LIMIT ?",
            (site_id, limit))
        return [AuditEntry(row["id"], row["site_id"], row["action"], row["actor"],
                           row["agent_id"], row["subject"], row["reference"],
                           json.loads(row["counts"]), parse_iso(row["created_at"]))
                for row in found]
