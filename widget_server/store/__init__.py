"""Persistence behind one async interface (``Store``): SQLite (a file path) or PostgreSQL
(a ``postgresql://`` URL)."""

from __future__ import annotations

import socket
import sqlite3
from datetime import timedelta

from widget_server.clock import Clock, SystemClock
from widget_server.config import ConfigError, Settings
from widget_server.mail_settings import mail_from_address
from widget_server.store.base import Store, TicketPatch, VisitorPost
from widget_server.store.mail_records import MailPlan

__all__ = ["Store", "TicketPatch", "VisitorPost", "open_store"]


def open_store(settings: Settings, clock: Clock | None = None) -> Store:
    """The backend the ``db`` setting names; call ``await store.open()`` before use."""
    if settings.db.startswith(("postgres://", "postgresql://")):
        try:
            from widget_server.store.pg import PgStore
        except ImportError as exc:
            raise ConfigError("a postgresql:// database needs asyncpg: pip install"
                              " 'widget-server[postgresql]'") from exc

        return PgStore(settings.db, clock=clock or SystemClock(),
                       site_cache_seconds=settings.site_cache_seconds,
                       mail_plan=mail_plan(settings))
    from widget_server.store.sqlite import SQLiteStore

    return SQLiteStore(settings.db, synchronous=settings.sqlite_synchronous,
                       clock=clock or SystemClock(),
                       site_cache_seconds=settings.site_cache_seconds,
                       mail_plan=mail_plan(settings))


def database_errors() -> tuple[type[BaseException], ...]:
    """What a backend raises when its database cannot be used: SQLite's errors, a
    PostgreSQL server that cannot be reached or refuses (asyncpg, when installed)."""
    found: list[type[BaseException]] = [sqlite3.Error, ConnectionError, TimeoutError,
                                         socket.gaierror]
    try:
        import asyncpg
    except ImportError:
        return tuple(found)
    return (*found, asyncpg.PostgresError, asyncpg.InterfaceError)


def mail_plan(settings: Settings) -> MailPlan | None:
    """What the write jobs need to queue mail; None when no mail server is set."""
    if settings.smtp_url is None or not settings.mail_from:
        return None
    domain = mail_from_address(settings.mail_from).rpartition("@")[2]
    return MailPlan(domain=domain, delay=timedelta(seconds=settings.mail_delay_seconds))
