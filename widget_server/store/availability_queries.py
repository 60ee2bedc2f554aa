"""The rows behind a site's reply speed (widget_server/availability.py): recent first
responses and the queue still waiting for one. Mixed into the SQLite store."""

from __future__ import annotations

from datetime import datetime

from widget_server.clock import isoformat, parse_iso
from widget_server.store.console_queries import StoreMixin

# enough recent first responses for a typical time, few enough to read in one small query
MAX_SAMPLES = 2000


class AvailabilityQueries(StoreMixin):
    async def first_responses(self, site_id: int, since: datetime
                              ) -> list[tuple[datetime, datetime]]:
        """(created_at, first_response_at) of the site's tickets opened since ``since`` and
        answered, newest first."""
        rows = await self._fetchall(
            "SELECT created_at, first_response_at FROM tickets WHERE site_id = ?"
            " AND created_at >= ? AND first_response_at IS NOT NULL"
            " ORDER BY created_at DESC LIMIT ?",
            (site_id, isoformat(since), MAX_SAMPLES), slow=True)
        return [(parse_iso(row[0]), parse_iso(row[1])) for row in rows]

    async def waiting_queue(self, site_id: int) -> tuple[int, datetime | None]:
        """How many of the site's tickets wait for a first response, and since when the
        oldest of them does."""
        row = await self._fetchone(
            "SELECT COUNT(*), MIN(created_at) FROM tickets WHERE site_id = ?"
            " AND first_response_at IS NULL AND status IN ('new', 'open')", (site_id,),
            slow=True)
        return int(row[0]), parse_iso(row[1]) if row[1] else None
