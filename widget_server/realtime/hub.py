"""Who is subscribed to what on this node, and the fan-out of published events."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Protocol

from widget_server.realtime.broker import Broker, MemoryBroker
from widget_server.realtime.events import Event, Resync

if TYPE_CHECKING:
    from widget_server.config import Settings
    from widget_server.store import Store


class Subscriber(Protocol):
    def notify(self, event: Event) -> None:
        """Take the event without blocking; delivery happens on the subscriber's own task."""


class Hub:
    def __init__(self, broker: Broker | None = None) -> None:
        self._broker = broker or MemoryBroker()
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)
        self._broker.listen(self)

    def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        self._subscribers[channel].add(subscriber)

    def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(channel)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[channel]

    def publish(self, channel: str, event: Event) -> None:
        self._broker.publish(channel, event)

    def subscriber_count(self, channel: str | None = None) -> int:
        if channel is not None:
            return len(self._subscribers.get(channel, ()))
        return sum(len(subscribers) for subscribers in self._subscribers.values())

    @property
    def broker(self) -> Broker:
        return self._broker

    # -- the broker's receiver
    def dispatch(self, channel: str, event: Event) -> None:
        for subscriber in tuple(self._subscribers.get(channel, ())):
            subscriber.notify(event)

    def wants(self, channel: str) -> bool:
        return channel in self._subscribers

    def resync(self) -> None:
        for channel, subscribers in tuple(self._subscribers.items()):
            event = Resync(channel)
            for subscriber in tuple(subscribers):
                subscriber.notify(event)


def open_broker(settings: Settings, store: Store) -> Broker:
    """Redis when ``WIDGET_REDIS_URL`` is set, else NOTIFY on a PostgreSQL database, else
    in memory (one node)."""
    if settings.redis_url:
        from widget_server.realtime.redis_broker import RedisBroker

        return RedisBroker(settings.redis_url, store)
    if settings.db.startswith(("postgres://", "postgresql://")):
        from widget_server.realtime.pg_broker import PgBroker

        return PgBroker(settings.db, store)
    return MemoryBroker()
