"""Data retention and erasure: the records, the rules and the periodic job (docs/privacy.md).

A site's retention period (``retention_days``, None: keep forever) lets the job delete closed
conversations whose last activity is older than the period: their messages, the conversation,
its read markers and, once they have nothing left, the visitor rows. Each ticket stays as a
tombstone (number, status, severity, dates). An erasure request does the same at once for every
conversation of one visitor, open or not. Both write an append-only ``privacy_audit`` record.

The job works in bounded batches (each one write transaction of at most ``BATCH`` conversations),
so a first run over years of history never holds the single writer for long, and under a lease
(like the SLA scheduler), so several processes never purge at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from widget_server.background import BackgroundLoop
from widget_server.clock import Clock
from widget_server.help_tokens import FORM_MAX_AGE

if TYPE_CHECKING:
    from widget_server.store import Store

log = logging.getLogger(__name__)

BATCH = 200  # conversations per write transaction
LEASE = timedelta(seconds=60)
DEFAULT_INTERVAL = 3600.0  # seconds between runs in a server (WIDGET_RETENTION_INTERVAL)
MAX_DAYS = 36500
Actor = Literal["cli", "admin", "scheduler"]
SelectorKind = Literal["user_id", "email", "visitor"]
SELECTOR_KINDS: tuple[SelectorKind, ...] = ("user_id", "email", "visitor")


class RetentionError(ValueError):
    """A retention period that cannot be used; the message says why."""


def parse_days(text: str) -> int | None:
    """'30' -> 30; 'off' (or 'forever', 'none', '') -> None: keep everything."""
    value = text.strip().lower()
    if value in {"", "off", "forever", "none"}:
        return None
    if not value.isdigit():
        raise RetentionError("the retention period is a whole number of days, or off")
    days = int(value)
    if not 1 <= days <= MAX_DAYS:
        raise RetentionError(f"the retention period is between 1 and {MAX_DAYS} days, or off")
    return days


def describe_days(days: int | None) -> str:
    if days is None:
        return "off"
    return "1 day" if days == 1 else f"{days} days"


def cutoff(now: datetime, days: int) -> datetime:
    """Conversations whose last activity is strictly before this instant are expired."""
    return now - timedelta(days=days)


@dataclass(frozen=True)
class ErasureSelector:
    """How an erasure request names the visitor: never kept after the erasure."""

    kind: SelectorKind
    value: str


@dataclass(frozen=True)
class Purged:
    """What one deletion removed (per site)."""

    tickets: tuple[int, ...] = ()  # numbers of the tickets that are now tombstones
    conversations: int = 0
    messages: int = 0
    visitors: int = 0
    comments: int = 0
    grants_revoked: int = 0  # support access grants an erasure ended (docs/access_grants.md)

    def __add__(self, other: Purged) -> Purged:
        return Purged(tuple(sorted({*self.tickets, *other.tickets})),
                      self.conversations + other.conversations,
                      self.messages + other.messages, self.visitors + other.visitors,
                      self.comments + other.comments,
                      self.grants_revoked + other.grants_revoked)

    @property
    def empty(self) -> bool:
        return not (self.tickets or self.conversations or self.messages or self.visitors
                    or self.comments or self.grants_revoked)

    def as_json(self) -> dict[str, object]:
        return {"tickets": list(self.tickets), "conversations": self.conversations,
                "messages": self.messages, "visitors": self.visitors,
                "comments": self.comments, "grants_revoked": self.grants_revoked}

    def summary(self) -> str:
        numbers = ", ".join(f"#{number}" for number in self.tickets[:20])
        if len(self.tickets) > 20:
            numbers += f", … ({len(self.tickets) - 20} more)"
        return (f"{len(self.tickets)} tickets kept as tombstones"
                f"{f' ({numbers})' if numbers else ''}; deleted {self.conversations} "
                f"conversations, {self.messages} messages, {self.visitors} visitors, "
                f"{self.comments} article comments; revoked {self.grants_revoked} "
                "support access grants")


@dataclass(frozen=True)
class RetentionBatch:
    acted: bool  # False when another process holds the retention lease
    purged: dict[int, Purged]  # by site id
    more: bool  # the batch was full: run another one


@dataclass
class RetentionReport:
    acted: bool = True
    purged: dict[int, Purged] = field(default_factory=dict)
    batches: int = 0


@dataclass(frozen=True)
class ErasurePreview:
    visitors: int
    conversations: int
    tickets: tuple[int, ...]
    messages: int
    comments: int
    grants: int = 0  # active support access grants the erasure would revoke

    @property
    def empty(self) -> bool:
        return self.visitors == 0 and self.grants == 0


@dataclass(frozen=True)
class AuditEntry:
    id: int
    site_id: int
    action: str  # retention, erasure, retention_set
    actor: str  # cli, admin, scheduler
    agent_id: int | None
    subject: str
    reference: str | None
    counts: dict[str, object]
    created_at: datetime


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

    async def run_once(self) -> RetentionReport:
        report = await run_retention(self.store, self.clock, "scheduler", self.holder,
                                     credentials=self.credentials)
        for site_id, purged in report.purged.items():
            if not purged.empty:
                log.info("retention on site %s: %s", site_id, purged.summary())
        return report

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("retention run failed; retrying at the next interval")
            await asyncio.sleep(self.interval)
