"""Support access grants: a verified visitor lets support into their account for a while.

A grant belongs to the host product's user id on one site, lasts 1 hour, 24 hours or 7 days
(never longer than the site allows), may name one of the visitor's tickets and a reason, and
ends by itself or when the visitor revokes it. Host backends ask whether a grant is active
before letting support in, and record what support did; every grant, revoke, expiry and use is
an append-only event that the visitor and the site's admins can read. See docs/access_grants.md.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from widget_server.clock import isoformat
from widget_server.errors import Forbidden, Unprocessable

DURATIONS_HOURS = (1, 24, 168)  # the choices a visitor has, shortest first
GRANT_MAX_CHOICES = (0, *DURATIONS_HOURS)  # 0: the site has grants turned off
SCOPE = "account"  # what a grant lets support do: act in the user's account in the host product
MAX_REASON = 500
MAX_ACTION = 200
MAX_DETAIL = 2000
EVENT_TYPES = ("granted", "revoked", "expired", "used")


@dataclass(frozen=True)
class AccessGrant:
    id: str
    site_id: int
    user_id: str
    ticket_number: int | None
    scope: str
    reason: str | None
    hours: int
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "active" if now < self.expires_at else "expired"


@dataclass(frozen=True)
class GrantEvent:
    id: int
    grant_id: str
    user_id: str
    type: str
    actor_type: str
    actor_name: str | None
    action: str | None
    detail: str | None
    created_at: datetime


@dataclass(frozen=True)
class GrantRequest:
    hours: int
    ticket_number: int | None
    reason: str | None


def new_grant_id() -> str:
    return "gr_" + secrets.token_urlsafe(16)


def duration_label(hours: int) -> str:
    return {1: "1 hour", 24: "24 hours", 168: "7 days"}.get(hours, f"{hours} hours")


def parse_grant_request(data: dict[str, Any], max_hours: int) -> GrantRequest:
    """What a visitor asked for, checked against the site's longest allowed grant."""
    if max_hours == 0:
        raise Forbidden("this site does not take support access grants", code="grants_disabled")
    hours = data.get("hours")
    if isinstance(hours, bool) or hours not in DURATIONS_HOURS:
        raise Unprocessable("hours must be 1, 24 or 168", code="invalid_duration")
    if hours > max_hours:
        raise Unprocessable(f"this site allows grants of at most {duration_label(max_hours)}",
                            code="duration_not_allowed")
    ticket = data.get("ticket")
    if ticket is not None and (isinstance(ticket, bool) or not isinstance(ticket, int)
                               or not 0 < ticket < 2**63):
        raise Unprocessable("ticket must be one of your ticket numbers", code="invalid_ticket")
    return GrantRequest(hours, ticket, optional_text(data, "reason", MAX_REASON))


def optional_text(data: dict[str, Any], key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise Unprocessable(f"{key} must be text of at most {limit} characters",
                            code=f"invalid_{key}")
    return value.strip() or None


def expiry(created_at: datetime, hours: int) -> datetime:
    return created_at + timedelta(hours=hours)


def grant_json(grant: AccessGrant, now: datetime) -> dict[str, Any]:
    return {
        "id": grant.id,
        "user_id": grant.user_id,
        "scope": grant.scope,
        "state": grant.state(now),
        "active": grant.active(now),
        "hours": grant.hours,
        "ticket": grant.ticket_number,
        "reason": grant.reason,
        "created_at": isoformat(grant.created_at),
        "expires_at": isoformat(grant.expires_at),
        "revoked_at": isoformat(grant.revoked_at) if grant.revoked_at else None,
    }


def event_json(event: GrantEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "grant": event.grant_id,
        "type": event.type,
        "actor": {"type": event.actor_type, "name": event.actor_name},
        "action": event.action,
        "detail": event.detail,
        "created_at": isoformat(event.created_at),
    }


def status_json(user_id: str, grants: list[AccessGrant], now: datetime) -> dict[str, Any]:
    """The host's answer: is support allowed in right now, how far, and until when."""
    active = [grant for grant in grants if grant.active(now)]
    longest = max(active, key=lambda grant: grant.expires_at, default=None)
    return {
        "user_id": user_id,
        "active": longest is not None,
        "scope": longest.scope if longest else None,
        "expires_at": isoformat(longest.expires_at) if longest else None,
        "grant_id": longest.id if longest else None,
        "grants": [grant_json(grant, now) for grant in active],
    }
