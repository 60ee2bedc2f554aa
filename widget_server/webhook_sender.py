"""The webhook sender: a background loop that POSTs the outbox's due deliveries.

Each round claims the due deliveries (a write that leases them, so several processes never
send the same one at once and a process killed mid-send leaves them to the next claim;
only the oldest pending delivery of a ticket to an endpoint is due, so a ticket's events
arrive in order) and sends them side by side. A 2xx answer delivers; anything else (a
refused destination, no connection, a timeout, a 3xx: redirects are not followed, a 4xx or
5xx) is retried with exponential backoff for 3 days under the same webhook-id, then given
up. An endpoint whose every attempt has failed for 3 days is disabled
(``sqlite_webhooks.record_attempt``).

Where a delivery connects is decided once: the host is resolved, every address it resolves
to is checked (``webhooks.refusal``: no loopback, private, link-local, multicast,
unspecified or reserved address unless WIDGET_WEBHOOK_ALLOW_PRIVATE), and the connection
goes to the address checked, not to a second lookup; TLS still verifies the certificate
against the URL's host name and sends it as SNI. No proxy from the environment is used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from widget_server.background import BackgroundLoop
from widget_server.clock import Clock
from widget_server.store.webhook_records import Attempt, Claimed
from widget_server.webhooks import (
    CONNECT_TIMEOUT,
    EXCERPT_CHARS,
    KEEP_LOG,
    LEASE,
    TOTAL_TIMEOUT,
    refusal,
    sign,
)

if TYPE_CHECKING:
    from widget_server.store import Store

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how often the outbox is looked at; a look is one indexed read
PRUNE_SECONDS = 3600.0  # how often settled deliveries older than KEEP_LOG are deleted
BATCH = 20  # deliveries claimed (and sent side by side) per round
USER_AGENT = "widget-server-webhooks/1"


class Refused(Exception):
    """The destination may not be connected to (or cannot be resolved)."""


async def destination(url: str, allow_private: bool) -> str:
    """The one address a delivery to ``url`` connects to; Refused when the host does not
    resolve or resolves to an address it may not go to."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                              type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Refused(f"{host} does not resolve: {exc}") from None
    addresses = [str(info[4][0]).split("%")[0] for info in found]
    if not addresses:
        raise Refused(f"{host} does not resolve")
    if not allow_private:
        for address in addresses:
            reason = refusal(ipaddress.ip_address(address))
            if reason is not None:
                raise Refused(f"refused: {host} resolves to {address}, {reason}")
    return addresses[0]


async def post(url: str, headers: dict[str, str], body: bytes, address: str,
               tls: ssl.SSLContext) -> tuple[int, str]:
    """POST once to ``address`` (TLS, SNI and Host still the URL's host), without following
    redirects; the status and an excerpt of the answer. TimeoutError past the timeouts."""
    from widget_server import webhook_http  # httpcore loads with the first delivery

    return await webhook_http.post(url, headers, body, address, tls)


def verdict(status: int) -> str | None:
    """None for a 2xx answer; else why it counts as a failure."""
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return f"HTTP {status}: redirects are not followed"
    return f"HTTP {status}"


class WebhookSender(BackgroundLoop):
    task_name = "webhook-sender"

    def __init__(self, store: Store, clock: Clock, allow_private: bool, console_url: str
                 ) -> None:
        self.store = store
        self.clock = clock
        self.allow_private = allow_private
        self.console_url = console_url  # the admins' notice links to the console
        self.tls = ssl.create_default_context()
        self._pruned = 0.0  # monotonic instant of the last pruning; 0: not yet

    async def _loop(self) -> None:
        while True:
            try:
                while await self.run_once() > 0:
                    pass  # something was sent: the next of a ticket may be due now
                if not self._pruned or time.monotonic() - self._pruned >= PRUNE_SECONDS:
                    self._pruned = time.monotonic()
                    await self.store.prune_webhook_log(self.clock.now() - KEEP_LOG)
            except Exception:
                log.exception("webhook sender round failed; trying again shortly")
            await asyncio.sleep(POLL_SECONDS)

    async def run_once(self) -> int:
        """Send what is due; return how many deliveries were claimed."""
        now = self.clock.now()
        if not await self.store.webhooks_due(now):
            return 0
        claimed = await self.store.claim_webhooks(now, LEASE, BATCH)
        await asyncio.gather(*(self._deliver(each) for each in claimed))
        return len(claimed)

    async def _deliver(self, claimed: Claimed) -> None:
        attempt = await self.attempt(claimed)
        outcome = await self.store.record_webhook_attempt(attempt, self.console_url)
        if outcome in {"given_up", "disabled"}:  # the host only: a URL may hold a token
            log.warning("webhook delivery %s to endpoint %s at %s %s: %s",
                        claimed.delivery.webhook_id, claimed.delivery.endpoint_id,
                        urlsplit(claimed.url).hostname, "given up" if outcome == "given_up"
                        else "failed; the endpoint is disabled", attempt.error)

    async def attempt(self, claimed: Claimed) -> Attempt:
        delivery = claimed.delivery
        at = self.clock.now()
        body = delivery.payload.encode()
        headers = {"content-type": "application/json", "user-agent": USER_AGENT,
                   **sign(claimed.secret, delivery.webhook_id, at, body)}
        started = time.monotonic()
        status: int | None = None
        response: str | None = None
        try:
            async with asyncio.timeout(TOTAL_TIMEOUT):  # the lookup, connection, answer
                address = await destination(claimed.url, self.allow_private)
                status, response = await post(claimed.url, headers, body, address, self.tls)
            error = verdict(status)
        except Refused as exc:
            error = str(exc)
        except TimeoutError:
            error = f"timed out (connect {CONNECT_TIMEOUT:g} s, in all {TOTAL_TIMEOUT:g} s)"
        except Exception as exc:  # refused connections, TLS failures, broken answers
            error = f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS]
        return Attempt(delivery_id=delivery.id, attempted_at=at, status=status, error=error,
                       response=response, duration_ms=int((time.monotonic() - started) * 1000))
