"""Webhooks in the store: the endpoints' subscriptions kept in memory, the wrapping of write
jobs while a site listens, and the reads and writes of endpoints and deliveries, mixed into
the SQLite store like MailQueries (docs/webhooks.md).

The write jobs live in ``sqlite_webhooks.py``; the sender that uses them is
``webhook_sender.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, timedelta
from typing import Any, TypeVar

from widget_server.clock import isoformat
from widget_server.store import sqlite_webhooks as jobs
from widget_server.store.console_queries import StoreMixin
from widget_server.store.webhook_records import (
    ENDPOINT_COLUMNS,
    Attempt,
    Claimed,
    Delivery,
    Endpoint,
    attempt,
    delivery,
    endpoint,
)
from widget_server.webhooks import new_secret

T = TypeVar("T")
TTL_SECONDS = 1.0
Subscriptions = dict[int, frozenset[str]]  # site id -> the events its enabled endpoints want


class WebhookSubscriptions:
    """Which events each site's enabled endpoints want, read at most once a second (changes
    made by another process show within that time) and again at once after a change made
    through this store. Every message asks, so a site without endpoints costs a dict lookup
    and its write jobs run unwrapped."""

    def __init__(self, load: Callable[[], Awaitable[Subscriptions]], ttl: float = TTL_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self._ttl = ttl
        self._monotonic = monotonic
        self._known: Subscriptions = {}
        self._expires = 0.0
        self._generation = 0
        self._loading = asyncio.Lock()

    def invalidate(self) -> None:
        self._generation += 1
        self._expires = 0.0

    async def current(self) -> Subscriptions:
        if self._monotonic() < self._expires:
            return self._known
        async with self._loading:
            if self._monotonic() >= self._expires:
                generation = self._generation
                self._known = await self._load()
                if generation == self._generation:  # no change landed while reading
                    self._expires = self._monotonic() + self._ttl
        return self._known

    async def wanted(self, site_id: int | None, events: Collection[str] | None) -> bool:
        """Whether any endpoint (of ``site_id``; None: of any site) wants one of ``events``
        (None: any event)."""
        known = await self.current()
        if not known:
            return False
        found = known.values() if site_id is None else [known.get(site_id, frozenset())]
        return any(wanted and (events is None or not wanted.isdisjoint(events))
                   for wanted in found)


class WebhookQueries(StoreMixin):
    _webhooks: WebhookSubscriptions

    async def _read_webhook_subscriptions(self) -> Subscriptions:
        found: dict[int, set[str]] = {}
        for site_id, events in await self._fetchall(
                "SELECT site_id, events FROM webhook_endpoints WHERE enabled = 1"):
            found.setdefault(int(site_id), set()).update(json.loads(events))
        return {site_id: frozenset(events) for site_id, events in found.items()}

    async def _hooked(self, site_id: int | None, job: Callable[..., T], *args: Any,
                      events: Collection[str] | None = None, off_loop: bool = False) -> T:
        """Run a write job; while an endpoint of ``site_id`` (None: of any site) wants one of
        ``events`` it may cause, wrapped so its events are queued in its transaction."""
        if not await self._webhooks.wanted(site_id, events):
            return await self._write(job, *args, off_loop=off_loop)
        return await self._write(jobs.captured, job, args, off_loop=off_loop)

    # -- endpoints
    async def create_webhook(self, site_id: int, url: str, events: tuple[str, ...],
                             include_notes: bool = False) -> tuple[Endpoint, str]:
        """A new endpoint and its secret (which no read returns again)."""
        secret = new_secret()
        try:
            made = await self._write(jobs.create_endpoint, site_id, url, events, include_notes,
                                     secret, self._clock.now())
        finally:
            self._webhooks.invalidate()
        return made, secret

    async def webhooks(self, site_id: int) -> list[Endpoint]:
        return [endpoint(row) for row in await self._fetchall(
            f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE site_id = ? ORDER BY id",
            (site_id,))]

    async def delete_webhook(self, site_id: int, endpoint_id: int) -> None:
        try:
            await self._write(jobs.delete_endpoint, site_id, endpoint_id)
        finally:
            self._webhooks.invalidate()

    async def enable_webhook(self, site_id: int, endpoint_id: int) -> None:
        try:
            await self._write(jobs.enable_endpoint, site_id, endpoint_id)
        finally:
            self._webhooks.invalidate()

    # -- deliveries and their log
    async def webhook_deliveries(self, site_id: int, endpoint_id: int | None = None,
                                 limit: int = 100) -> list[Delivery]:
        """The newest deliveries of a site (of one endpoint), newest first."""
        return [delivery(row) for row in await self._fetchall(
            "SELECT * FROM webhook_deliveries WHERE site_id = ? AND (CAST(? AS BIGINT) IS NULL OR"
            " endpoint_id = ?) ORDER BY id DESC LIMIT ?",
            (site_id, endpoint_id, endpoint_id, limit))]

    async def webhook_attempts(self, delivery_ids: list[int]) -> dict[int, list[Attempt]]:
        """The log of each delivery, oldest attempt first."""
        found: dict[int, list[Attempt]] = {}
        if not delivery_ids:
            return found
        for row in await self._fetchall(
                "SELECT * FROM webhook_attempts WHERE delivery_id IN"
                f" ({', '.join('?' * len(delivery_ids))}) ORDER BY id", tuple(delivery_ids)):
            found.setdefault(row["delivery_id"], []).append(attempt(row))
        return found

    async def resend_webhook_delivery(self, site_id: int, delivery_id: int) -> None:
        await self._write(jobs.resend, site_id, delivery_id, self._clock.now())

    async def queue_webhook_test(self, site_id: int, endpoint_id: int) -> int:
        return await self._write(jobs.queue_test, site_id, endpoint_id, self._clock.now())

    async def webhook_outbox_stats(self) -> tuple[int, int]:
        """(pending deliveries, given-up deliveries) over every site: the outbox's depth and
        its failures, for metrics."""
        row = await self._fetchone(
            "SELECT (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'),"
            " (SELECT count(*) FROM webhook_deliveries WHERE state = 'failed')", slow=True)
        return int(row[0]), int(row[1])

    # -- the sender
    async def webhooks_due(self, now: datetime) -> bool:
        """Whether any delivery is due: a cheap read before claiming in a write."""
        row = await self._fetchone_now(
            "SELECT 1 FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ?"
            " LIMIT 1", (isoformat(now),))
        return row is not None

    async def claim_webhooks(self, now: datetime, lease: timedelta, limit: int
                             ) -> list[Claimed]:
        return await self._write(jobs.claim_due, now, now + lease, limit)

    async def prune_webhook_log(self, before: datetime) -> int:
        """Forget settled deliveries queued before ``before`` (see sqlite_webhooks.prune)."""
        return await self._write(jobs.prune, before, off_loop=True)

    async def record_webhook_attempt(self, attempt: Attempt, console_url: str) -> str:
        """Log an attempt and settle its delivery; see sqlite_webhooks.record_attempt."""
        outcome = await self._write(jobs.record_attempt, attempt, self._mail, console_url)
        if outcome == "disabled":
            self._webhooks.invalidate()
        return outcome
