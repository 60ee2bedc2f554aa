"""Data retention and erasure: the rules and the periodic job (docs/privacy.md).

A site's retention period (``retention_days``, None: keep forever) lets the job delete closed
conversations whose last activity is older than the period: their messages, the conversation,
its read markers and, once they have nothing left, the visitor rows. Each ticket stays as a
tombstone (number, status, severity, dates). An erasure request does the same at once for every
conversation of one visitor, open or not. Both write an append-only ``privacy_audit`` record.

The job works in bounded batches (each one write transaction of at most ``BATCH`` conversations),
so a first run over years of history never holds the single writer for long, and under a lease
(like the SLA scheduler), so several processes never purge at the same time. The records the
store takes and returns for it are in ``store/privacy_records.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from widget_server.background import BackgroundLoop
from widget_server.clock import Clock
from widget_server.help_tokens import FORM_MAX_AGE
from widget_server.numbers import parse_int
from widget_server.store.privacy_records import Purged

if TYPE_CHECKING:
    from widget_server.store import Store

log = logging.getLogger(__name__)

BATCH = 200  # conversations per write transaction
LEASE = timedelta(seconds=60)
DEFAULT_INTERVAL = 3600.0  # seconds between runs in a server (WIDGET_RETENTION_INTERVAL)
MAX_DAYS = 36500
Actor = Literal["cli", "admin", "scheduler"]


class RetentionError(ValueError):
    """A retention period that cannot be used; the message says why."""


def parse_days(text: str) -> int | None:
    """'30' -> 30; 'off' (or 'forever', 'none', '') -> None: keep everything."""
    value = text.strip().lower()
    if value in {"", "off", "forever", "none"}:
        return None
    if parse_int(value) is None:
        raise RetentionError("the retention period is a whole number of days, or off")
    days = parse_int(value, 1, MAX_DAYS)
    if days is None:
        raise RetentionError(f"the retention period is between 1 and {MAX_DAYS} days, or off")
    return days


@dataclass
class RetentionReport:
    acted: bool = True
    purged: dict[int, Purged] = field(default_factory=dict)
    batches: int = 0


def credential_lifetime(token_max_age: int) -> timedelta:
    """How long after an erasure a credential issued before it may still be presented: the
    visitor token's lifetime (WIDGET_TOKEN_MAX_AGE), or a Help Form token's if longer."""
    return timedelta(seconds=max(token_max_age, FORM_MAX_AGE))


async def run_retention(store: Store, clock: Clock, actor: Actor, holder: str | None = None,
                        batch: int = BATCH, credentials: timedelta | None = None
                        ) -> RetentionReport:
    """Purge every site's expired conversations, one bounded batch after another.

    ``credentials``: the longest lifetime of a credential naming a visitor; the marks of
    erasures older than that are dropped too (they protect nothing any more)."""
    holder = holder or f"{actor}-{secrets.token_hex(6)}"
    report = RetentionReport()
    if credentials is not None:
        await store.forget_erased_visitors(clock.now() - credentials)
    try:
        while True:
            result = await store.retention_batch(holder, clock.now(), LEASE, batch, actor)
            if not result.acted:
                report.acted = report.batches > 0
                return report
            report.batches += 1
            for site_id, purged in result.purged.items():
                report.purged[site_id] = report.purged.get(site_id, Purged()) + purged
            if not result.more:
                return report
            await asyncio.sleep(0)  # other writers get their turn between batches
    finally:
        with contextlib.suppress(Exception):
            await store.release_retention_lease(holder, clock.now())


class RetentionJob(BackgroundLoop):
    """Runs the retention purge in a server process every ``interval`` seconds."""

    task_name = "retention"

    def __init__(self, store: Store, clock: Clock, interval: float = DEFAULT_INTERVAL,
                 credentials: timedelta | None = None) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval
        self.credentials = credentials
        self.holder = "retention-" + secrets.token_hex(6)
        self.after_run: Callable[[], Awaitable[object]] | None = None  # the attachment sweep

    async def run_once(self) -> RetentionReport:
        report = await run_retention(self.store, self.clock, "scheduler", self.holder,
                                     credentials=self.credentials)
        for site_id, purged in report.purged.items():
            if not purged.empty:
                log.info("retention on site %s: %s", site_id, purged.summary())
        if self.after_run is not None:
            await self.after_run()
        return report

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("retention run failed; retrying at the next interval")
            await asyncio.sleep(self.interval)
