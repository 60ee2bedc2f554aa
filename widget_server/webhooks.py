"""Webhooks as pure rules (docs/webhooks.md): the events, an endpoint's URL, secrets and
signatures by the Standard Webhooks specification, the retry schedule and the rules on
where a delivery may connect to.

Signing uses the ``standardwebhooks`` package, the specification's own implementation, so
receivers verify with the same code: ``webhook-signature: v1,<base64 HMAC-SHA256>`` over
``{webhook-id}.{webhook-timestamp}.{body}`` with the secret's bytes (``whsec_`` + base64).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from widget_server.clock import isoformat
from widget_server.errors import Unprocessable

# Every event an endpoint may subscribe to. A new event: add its name here, describe its
# payload in docs/webhooks.md and openapi.json, and call store.sqlite_webhooks.queue_event
# from the write job that causes it.
EVENTS = (
    "ticket.created", "ticket.updated", "message.created", "ticket.sla_at_risk",
    "ticket.sla_breached", "access_grant.created", "access_grant.revoked",
    "access_grant.expired", "access_grant.used", "rating.created", "rating.updated",
)
TEST_EVENT = "webhook.test"  # "Send a test event": to one endpoint, whatever it subscribes to
PAYLOAD_VERSION = 1
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
URL_MAX = 2000
MAX_ENDPOINTS = 20  # per site

RETRY_FIRST = timedelta(seconds=30)  # then doubling: 30 s, 1 min, 2 min ... 12 h
RETRY_CAP = timedelta(hours=12)
GIVE_UP_AFTER = timedelta(days=3)  # a delivery not through 3 days after its event: given up
DISABLE_AFTER = timedelta(days=3)  # an endpoint whose every attempt failed this long: disabled
CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 15.0  # connect, send, and the whole answer
KEEP_LOG = timedelta(days=30)  # settled deliveries and their log are kept this long
EXCERPT_CHARS = 500  # of an answer's body kept in the delivery log
LEASE = timedelta(seconds=2 * TOTAL_TIMEOUT + 30)  # a claimed delivery is claimed again after


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_webhook_id() -> str:
    return f"msg_{secrets.token_urlsafe(18)}"


def sign(secret: str, webhook_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The three headers of the Standard Webhooks specification for one attempt."""
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(at.timestamp())),
            # signed as text: every standardwebhooks release encodes it as UTF-8, the body's
            # encoding (releases before 1.3 would sign bytes as their repr)
            "webhook-signature": Webhook(secret).sign(webhook_id, at, body.decode())}


def envelope(event_type: str, at: datetime, data: dict[str, Any]) -> str:
    """The body of every delivery: versioned, the event's instant, its data."""
    return json.dumps({"type": event_type, "version": PAYLOAD_VERSION,
                       "timestamp": isoformat(at), "data": data},
                      ensure_ascii=False, separators=(",", ":"))


def retry_at(created_at: datetime, attempts: int, now: datetime) -> datetime | None:
    """When to try again after the ``attempts``-th failed attempt; None: give up (the next
    attempt would fall past GIVE_UP_AFTER from the event)."""
    delay: timedelta = min(RETRY_FIRST * 2 ** min(max(attempts - 1, 0), 20), RETRY_CAP)
    due = now + delay
    return None if due > created_at + GIVE_UP_AFTER else due


def parse_events(value: object) -> tuple[str, ...]:
    """The events of a registration: a non-empty list of known names, each once; returned
    in EVENTS' order."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise Unprocessable("events must be a non-empty list of event names",
                            code="invalid_events")
    if len(set(value)) != len(value):
        raise Unprocessable("events names an event twice", code="invalid_events")
    unknown = sorted(set(value) - set(EVENTS))
    if unknown:
        raise Unprocessable(f"unknown events: {', '.join(unknown)}; known: {', '.join(EVENTS)}",
                            code="invalid_events")
    return tuple(event for event in EVENTS if event in value)


def refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a delivery may not connect to ``address`` without WIDGET_WEBHOOK_ALLOW_PRIVATE
    (say, "a loopback address"), or None. An IPv4-mapped IPv6 address is judged as the
    IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind, flag in (("loopback", address.is_loopback), ("private", address.is_private),
                       ("link-local", address.is_link_local),
                       ("multicast", address.is_multicast),
                       ("unspecified", address.is_unspecified),
                       ("reserved", address.is_reserved),
                       ("shared (carrier-grade NAT)",
                        address in ipaddress.ip_network("100.64.0.0/10")),
                       ("not globally routable", not address.is_global)):
        if flag:
            return f"a {kind} address"
    return None


def parse_url(text: object, allow_private: bool) -> str:
    """An endpoint's URL: https (http too with ``allow_private``), a host, no credentials;
    a literal IP address must be one a delivery may connect to."""
    if not isinstance(text, str) or not text.strip():
        raise Unprocessable("url must be an https URL", code="invalid_url")
    url = text.strip()
    if len(url) > URL_MAX or any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise Unprocessable("url must be an https URL without spaces, at most 2000 characters",
                            code="invalid_url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Unprocessable("url is not a valid URL", code="invalid_url") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise Unprocessable("url must start with https://" + (
            " or http://" if allow_private else ""), code="invalid_url")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise Unprocessable("url needs a host and no user name or password",
                            code="invalid_url")
    if parts.fragment:
        raise Unprocessable("url may not have a #fragment", code="invalid_url")
    if port == 0:
        raise Unprocessable("url has an invalid port", code="invalid_url")
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        literal = None
    if literal is not None and not allow_private:
        reason = refusal(literal)
        if reason is not None:
            raise Unprocessable(f"webhooks may not go to {literal}, {reason}",
                                code="webhook_url_refused")
    return url
