"""The broker seam: how a published event reaches every node's hub.

``MemoryBroker`` serves one process. ``PgBroker`` (PostgreSQL LISTEN/NOTIFY) and
``RedisBroker`` (Redis pub/sub) relay events between nodes: an event is delivered on its own
node at once, and the other nodes get a small wake-up from which they read what they deliver
from the database (realtime/wire.py), which remains the only source of truth.
``hub.open_broker`` picks one from the settings.
"""

from __future__ import annotations

from typing import Protocol

from widget_server.realtime.events import Event


class Receiver(Protocol):
    """What a broker hands events to: the node's hub."""

    def dispatch(self, channel: str, event: Event) -> None: ...
    def wants(self, channel: str) -> bool: ...
    def resync(self) -> None:
        """Live events may have been missed: every subscriber catches up from the database."""


class Broker(Protocol):
    def listen(self, receiver: Receiver) -> None: ...
    def publish(self, channel: str, event: Event) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class MemoryBroker:
    def __init__(self) -> None:
        self._receivers: list[Receiver] = []

    def listen(self, receiver: Receiver) -> None:
        self._receivers.append(receiver)

    def publish(self, channel: str, event: Event) -> None:
        for receiver in self._receivers:
            receiver.dispatch(channel, event)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass
