"""Persistence behind one async interface (``Store``); SQLite now, PostgreSQL later."""

from __future__ import annotations

from widget_server.clock import Clock, SystemClock
from widget_server.config import ConfigError, Settings
from widget_server.store.base import Store, TicketPatch, VisitorPost

__all__ = ["Store", "TicketPatch", "VisitorPost", "open_store"]


def open_store(settings: Settings, clock: Clock | None = None) -> Store:
    """The backend the ``db`` setting names; call ``await store.open()`` before use."""
    if settings.db.startswith(("postgres://", "postgresql://")):
        raise ConfigError("PostgreSQL is not supported yet; use a SQLite file path")
    from widget_server.store.sqlite import SQLiteStore

    return SQLiteStore(settings.db, synchronous=settings.sqlite_synchronous,
                       clock=clock or SystemClock(),
                       site_cache_seconds=settings.site_cache_seconds)
