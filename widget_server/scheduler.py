"""The SLA scheduler: marks tickets at risk and breached at the exact instant, auto-closes
solved tickets, and tells the console and the widget.

Several processes may run it: a lease row in the database lets one act at a time, and every
mark is written only where it is still missing, so a restart or a race never marks twice.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import timedelta

from widget_server import metrics
from widget_server.background import BackgroundLoop
from widget_server.clock import Clock
from widget_server.models import SweepResult
from widget_server.realtime.events import TicketUpdated, agents_channel, visitor_channel
from widget_server.realtime.hub import Hub
from widget_server.store import Store

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
MAX_SLEEP = 30.0
POKE_DEBOUNCE = 1.0


class SlaScheduler(BackgroundLoop):
    task_name = "sla-scheduler"

    def __init__(self, store: Store, hub: Hub, clock: Clock, holder: str | None = None) -> None:
        self.store = store
        self.hub = hub
        self.clock = clock
        self.holder = holder or "scheduler-" + secrets.token_hex(6)
        self._poked = asyncio.Event()

    async def run_once(self) -> SweepResult:
        result = await self.store.sla_sweep(self.holder, self.clock.now(), LEASE)
        await self.store.expire_access_grants(self.clock.now())  # the audit's expiry events
        for mark in result.marks:
            metrics.SLA_MARKS.labels(metrics.SLA_MARK_NAMES[mark]).inc()
        for ticket, visitor_id in result.changed:
            event = TicketUpdated(ticket)
            self.hub.publish(agents_channel(ticket.site_id), event)
            self.hub.publish(visitor_channel(visitor_id), event)
        return result

    def poke(self) -> None:
        """A ticket changed: its new due time may be sooner than the planned wake-up."""
        self._poked.set()

    async def _loop(self) -> None:
        while True:
            self._poked.clear()  # before the sweep: a change during it wakes the next one
            try:
                result = await self.run_once()
            except Exception:
                log.exception("SLA sweep failed; retrying")
                result = SweepResult(False, [], None)
            delay = MAX_SLEEP
            if result.next_wake is not None:
                delay = min(MAX_SLEEP, (result.next_wake - self.clock.now()).total_seconds())
            try:
                await asyncio.wait_for(self._poked.wait(), max(0.0, delay) + 0.001)
            except TimeoutError:
                continue  # the planned instant: sweep at once
            # woken by a change: under chat load that is every message, so gather changes for
            # a moment (never past the planned instant); a new clock is due minutes away
            await asyncio.sleep(max(0.0, min(POKE_DEBOUNCE, delay)))
