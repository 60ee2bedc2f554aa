"""The SQLite backend: reads on reader threads (by key: on the loop), writes through one writer."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from widget_server.clock import Clock, SystemClock
from widget_server.store import sqlite_message_index as message_index
from widget_server.store import sqlite_rows as rows
from widget_server.store import sqlite_schema as schema
from widget_server.store.connection import SQLITE
from widget_server.store.console_queries import ConsoleQueries, ReportQueries
from widget_server.store.core_queries import CoreQueries
from widget_server.store.grant_queries import GrantQueries
from widget_server.store.help_queries import HelpQueries
from widget_server.store.inbound_queries import InboundQueries
from widget_server.store.mail_queries import MailQueries
from widget_server.store.mail_records import MailPlan
from widget_server.store.privacy_queries import PrivacyQueries
from widget_server.store.site_cache import SiteCache
from widget_server.store.sqlite_readers import Readers
from widget_server.store.sqlite_search import SQLiteSearch
from widget_server.store.sqlite_writer import SQLiteWriter

T = TypeVar("T")


class SQLiteStore(SQLiteSearch, CoreQueries, ConsoleQueries, ReportQueries, HelpQueries,
                  GrantQueries, PrivacyQueries, MailQueries, InboundQueries):
    _dialect = SQLITE
    def __init__(self, path: str, *, synchronous: str = "full", clock: Clock | None = None,
                 site_cache_seconds: float = 0.0, mail_plan: MailPlan | None = None) -> None:
        self.path = path
        self._mail = mail_plan  # None: mail is off, nothing is queued
        self._synchronous = synchronous
        self._clock = clock or SystemClock()
        self._writer = SQLiteWriter(partial(schema.connect, path, synchronous=synchronous),
                                    upkeep=message_index.index_some,
                                    upkeep_every=message_index.INDEX_EVERY)
        self._readers = Readers(partial(schema.connect_reader, path))
        self._quick: sqlite3.Connection | None = None  # reads by key, on the loop's thread
        self._sites = SiteCache(self._read_sites, site_cache_seconds)
        self._tickets = rows.TicketMemo(2048)  # for reads, on the event loop's thread

    # -- lifecycle
    async def open(self) -> None:
        conn = await asyncio.to_thread(schema.connect, self.path, synchronous=self._synchronous)
        try:
            await asyncio.to_thread(schema.migrate, conn)
        finally:
            await asyncio.to_thread(conn.close)
        await self._writer.start()
        await self._writer.run(self._sites.watch)
        await self._readers.open()
        self._quick = schema.connect_reader(self.path)
        self._quick.execute("PRAGMA busy_timeout = 0")  # never wait on the loop

    async def close(self) -> None:
        await self._writer.close()
        if self._quick is not None:
            self._quick.close()
            self._quick = None
        await self._readers.close()

    async def _fetchall(self, sql: str, params: tuple[Any, ...] = (), *,
                        slow: bool = False) -> list[Any]:
        """Rows from a reader thread; ``slow``: a read that may take long (sqlite_readers)."""
        return await self._readers.fetchall(sql, params, slow=slow)

    async def _fetchone(self, sql: str, params: tuple[Any, ...] = (), *,
                        slow: bool = False) -> Any:
        """The first row of a query that finds one row (a key, an aggregate): all are read."""
        return next(iter(await self._readers.fetchall(sql, params, slow=slow)), None)

    def _read_now(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row] | None:
        """A read of a few rows found by key, on the loop's thread; None when SQLite says
        the database is busy or locked (with ``busy_timeout = 0`` it does not wait: say, a
        database being recovered after a crash): the caller then reads on a reader thread.
        A trip to a reader costs the loop about 50 us of CPU and a thread hand-off each way;
        a read like this costs 5-10 us, and in WAL mode no writer's lock holds it up. Only
        for reads whose size is bounded by their key."""
        assert self._quick is not None
        try:
            return self._quick.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_BUSY,
                                                                 sqlite3.SQLITE_LOCKED):
                return None
            raise

    async def _fetchone_now(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        found = self._read_now(sql, params)
        if found is None:
            return await self._fetchone(sql, params)
        return next(iter(found), None)

    async def _write(self, job: Callable[..., T], *args: Any, off_loop: bool = False) -> T:
        try:
            return await self._writer.run(lambda conn: job(conn, *args), off_loop=off_loop)
        finally:
            self._sites.committed()  # a write that changed a site: read the sites again

    @property
    def writer_stats(self) -> dict[str, int]:
        return {"batches": self._writer.batches, "jobs": self._writer.jobs}
