"""The records of webhooks that store methods take and return (docs/webhooks.md)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from widget_server.clock import parse_iso


def _maybe(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None


@dataclass(frozen=True)
class Endpoint:
    id: int
    site_id: int
    url: str
    events: tuple[str, ...]
    include_notes: bool
    enabled: bool
    failure_streak: int
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class Delivery:
    id: int
    webhook_id: str
    endpoint_id: int
    site_id: int
    event_type: str
    ordering_key: str | None
    payload: str
    state: str  # pending, delivered, failed (given up)
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    last_response: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class Claimed:
    """A delivery the sender claimed, with where it goes and the secret that signs it."""

    delivery: Delivery
    url: str
    secret: str


@dataclass(frozen=True)
class Attempt:
    """One attempt of a delivery, as the sender saw it: the delivery log's row."""

    delivery_id: int
    attempted_at: datetime
    status: int | None  # None: no HTTP answer
    error: str | None  # None: delivered (a 2xx answer)
    response: str | None  # an excerpt of the answer's body
    duration_ms: int


ENDPOINT_COLUMNS = ("id, site_id, url, events, include_notes, enabled, failure_streak,"
                    " failing_since, disabled_at, disabled_reason, created_at")


def endpoint(row: sqlite3.Row) -> Endpoint:
    return Endpoint(
        id=row["id"], site_id=row["site_id"], url=row["url"],
        events=tuple(json.loads(row["events"])), include_notes=bool(row["include_notes"]),
        enabled=bool(row["enabled"]), failure_streak=row["failure_streak"],
        failing_since=_maybe(row["failing_since"]), disabled_at=_maybe(row["disabled_at"]),
        disabled_reason=row["disabled_reason"], created_at=parse_iso(row["created_at"]))


def delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        id=row["id"], webhook_id=row["webhook_id"], endpoint_id=row["endpoint_id"],
        site_id=row["site_id"], event_type=row["event_type"], ordering_key=row["ordering_key"],
        payload=row["payload"], state=row["state"], attempts=row["attempts"],
        next_attempt_at=parse_iso(row["next_attempt_at"]), last_status=row["last_status"],
        last_error=row["last_error"], last_response=row["last_response"],
        created_at=parse_iso(row["created_at"]), delivered_at=_maybe(row["delivered_at"]))


def attempt(row: sqlite3.Row) -> Attempt:
    return Attempt(delivery_id=row["delivery_id"], attempted_at=parse_iso(row["attempted_at"]),
                   status=row["status"], error=row["error"], response=row["response"],
                   duration_ms=row["duration_ms"])
