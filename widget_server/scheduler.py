"""The SLA scheduler: marks tickets at risk and breached at the exact instant, auto-closes
solved tickets, and tells the console and the widget.

Several processes may run it: a lease row in the database lets one act at a time, and every
mark is written only where it is still missing, so a restart or a race never marks twice.
When the holder dies, another takes over once its lease ends (every scheduler sweeps at least
twice per lease). A change on any node pokes the schedulers of every node (``Poke`` on the
hub's ``scheduler`` channel, at most one a second per node), so the holder sees a sooner due
time made elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from datetime import timedelta

from widget_server import metrics
from widget_server.background import BackgroundLoop
from widget_server.clock import Clock
from widget_server.models import SweepResult
from widget_server.realtime.events import (
    SCHEDULER_CHANNEL,
    Event,
    Poke,
    TicketUpdated,
    agents_channel,
    visitor_channel,
)
from widget_server.realtime.hub import Hub
from widget_server.store import Store

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
MAX_SLEEP = 30.0
POKE_DEBOUNCE = 1.0


class SlaScheduler(BackgroundLoop):
    task_name = "sla-scheduler"

    def __init__(self, store: Store, hub: Hub, clock: Clock, holder: str | None = None,
                 lease: timedelta = LEASE) -> None:
        self.store = store
        self.hub = hub
        self.clock = clock
        # host and process id: who holds the lease is plain in scheduler_leases
        self.holder = holder or \
            f"scheduler-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.lease = lease
        self._poked = asyncio.Event()
        self._told_at = -POKE_DEBOUNCE
        self._telling: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.hub.subscribe(SCHEDULER_CHANNEL, self)
        super().start()

    async def stop(self) -> None:
        self.hub.unsubscribe(SCHEDULER_CHANNEL, self)
        if self._telling is not None:
            self._telling.cancel()
        await super().stop()

    def notify(self, event: Event) -> None:  # the hub: a change on this node or another
        if isinstance(event, Poke):
            self._poked.set()

    def changed(self) -> None:
        """Tickets changed here: poke this scheduler now, every node's within a second."""
        self.poke()
        if self._telling is not None:
            return
        wait = self._told_at + POKE_DEBOUNCE - time.monotonic()
        if wait <= 0:
            self._tell()
        else:
            self._telling = asyncio.get_running_loop().call_later(wait, self._tell)

    def _tell(self) -> None:
        self._telling = None
        self._told_at = time.monotonic()
        self.hub.publish(SCHEDULER_CHANNEL, Poke())

    async def run_once(self) -> SweepResult:
        result = await self.store.sla_sweep(self.holder, self.clock.now(), self.lease)
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
            # at least twice per lease: the holder renews it, the others take over in time
            delay = min(MAX_SLEEP, self.lease.total_seconds() / 2)
            if result.next_wake is not None:
                delay = min(delay, (result.next_wake - self.clock.now()).total_seconds())
            try:
                await asyncio.wait_for(self._poked.wait(), max(0.0, delay) + 0.001)
            except TimeoutError:
                continue  # the planned instant: sweep at once
            # woken by a change: under chat load that is every message, so gather changes for
            # a moment (never past the planned instant); a new clock is due minutes away
            await asyncio.sleep(max(0.0, min(POKE_DEBOUNCE, delay)))
