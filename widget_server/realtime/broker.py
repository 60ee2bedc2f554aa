"""The broker seam: how a published event reaches every node's hub.

Only ``MemoryBroker`` exists today (one process). A PostgreSQL NOTIFY or Redis broker will
implement the same two methods; events stay small wake-up calls and every node reads what it
delivers from the database, which remains the only source of truth.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from widget_server.realtime.events import Event

Listener = Callable[[str, Event], None]


class Broker(Protocol):
    def listen(self, listener: Listener) -> None: ...
    def publish(self, channel: str, event: Event) -> None: ...


class MemoryBroker:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def publish(self, channel: str, event: Event) -> None:
        for listener in self._listeners:
            listener(channel, event)
