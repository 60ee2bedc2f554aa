"""Sites kept in memory for a moment: every session call and widget hello needs its site
(origins, identity secrets, limits), and reading the table for each connect was most of what
a connect cost.

The list is read again after ``ttl`` seconds (changes made by another process, such as a
``widget-server`` command, are seen within that time; a key, id or origin not in the list is
looked for again at once, so a site just created is never refused) and at once after any
change made by this process: temporary triggers on the writer's connection call back
whenever a row of ``sites`` is inserted, deleted or updated (except the ticket counter,
bumped by every new request), and the store calls ``committed()`` once that write is on
disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable

from widget_server.models import Site

TTL_SECONDS = 1.0
_FUNCTION = "widget_sites_changed"
_TRIGGERS = (
    f"CREATE TEMP TRIGGER IF NOT EXISTS widget_sites_inserted AFTER INSERT ON main.sites"
    f" BEGIN SELECT {_FUNCTION}(); END",
    f"CREATE TEMP TRIGGER IF NOT EXISTS widget_sites_deleted AFTER DELETE ON main.sites"
    f" BEGIN SELECT {_FUNCTION}(); END",
    f"CREATE TEMP TRIGGER IF NOT EXISTS widget_sites_updated AFTER UPDATE ON main.sites"
    f" WHEN NEW.ticket_counter IS OLD.ticket_counter BEGIN SELECT {_FUNCTION}(); END",
)


class SiteCache:
    def __init__(self, load: Callable[[], Awaitable[list[Site]]], ttl: float = TTL_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self._ttl = ttl
        self._monotonic = monotonic
        self._by_key: dict[str, Site] = {}
        self._by_id: dict[int, Site] = {}
        self._expires = 0.0  # monotonic instant; 0 = read again
        self._generation = 0  # bumped by every change, so a read racing one is not kept
        self._touched = False  # set by a trigger in a write job, before the commit
        self._loading = asyncio.Lock()  # a connect storm reads the table once, not per connect
        self._started = 0  # reads begun

    def watch(self, conn: sqlite3.Connection) -> None:
        """Install the triggers on the writer's connection (run as a write job)."""
        conn.create_function(_FUNCTION, 0, self._touch)
        for statement in _TRIGGERS:
            conn.execute(statement)

    def _touch(self) -> None:
        self._touched = True
        self.invalidate()

    def committed(self) -> None:
        """After a write: if it changed a site, forget the list (again, now it is on disk)."""
        if self._touched:
            self._touched = False
            self.invalidate()

    def invalidate(self) -> None:
        self._generation += 1
        self._expires = 0.0

    async def _fresh(self, force: bool = False) -> tuple[dict[str, Site], dict[int, Site]]:
        if self._ttl <= 0:  # off: read every time, as without a cache
            sites = await self._load()
            return {site.key: site for site in sites}, {site.id: site for site in sites}
        if force or self._monotonic() >= self._expires:
            asked = self._started
            async with self._loading:
                # a read that began after this call was made is as good as a new one
                if self._started == asked and (force or self._monotonic() >= self._expires):
                    self._started += 1
                    generation = self._generation
                    sites = await self._load()
                    self._by_key = {site.key: site for site in sites}
                    self._by_id = {site.id: site for site in sites}
                    if generation == self._generation:  # no change landed while reading
                        self._expires = self._monotonic() + self._ttl
        return self._by_key, self._by_id

    async def all(self, fresh: bool = False) -> list[Site]:
        by_key, _ = await self._fresh(force=fresh)
        return list(by_key.values())

    # a key or id not in the list is looked for in the database before it is called unknown
    # (a site just made by `widget-server init` in another process): one read, no cache
    async def by_key(self, key: str) -> Site | None:
        by_key, _ = await self._fresh()
        if key not in by_key:
            by_key, _ = await self._fresh(force=True)
        return by_key.get(key)

    async def by_id(self, site_id: int) -> Site | None:
        _, by_id = await self._fresh()
        if site_id not in by_id:
            _, by_id = await self._fresh(force=True)
        return by_id.get(site_id)
