"""The records the store's retention and erasure methods take and return (docs/privacy.md).

They belong to the store's interface (``store/base.py``), so they live beside it, not in the
retention job (``widget_server/retention.py``), which uses the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

SelectorKind = Literal["user_id", "email", "visitor"]
SELECTOR_KINDS: tuple[SelectorKind, ...] = ("user_id", "email", "visitor")


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
