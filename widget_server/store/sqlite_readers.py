"""The SQLite readers: read-only connections, each on a thread of its own, in two lanes.

Every read runs on a thread so that it never holds the event loop, and every such thread
competes with the loop for the GIL (SQLite releases it while it steps; the rows are built
holding it). On a two-core machine, with three reader threads busy at once, the REST ticket
listing serves about half the requests it serves with one (docs/performance.md): the
GIL goes back and forth between them and the loop across the cores. So the reads go to the
**quick lane**, one connection, first. A read that is still running there after
``QUICK_BUDGET`` is interrupted (``sqlite3_interrupt``, called from the loop) and run again
in the **slow lane** (``SLOW_READERS`` connections): no read holds the quick one for longer
than the budget, however large a site grows. Reads known to be long (reports, searches)
go to the slow lane directly. Interrupting a read is always safe: readers are
``query_only`` and each read is one statement in autocommit mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

QUICK_BUDGET = 0.05
SLOW_READERS = 2

Connect = Callable[[], sqlite3.Connection]
Work = Callable[[sqlite3.Connection], Any]


class ReaderClosed(RuntimeError):
    pass


class Reader:
    """One read-only connection, used only on its own thread; ``call`` runs work there."""

    def __init__(self, connect: Connect, name: str) -> None:
        self._connect = connect
        self._jobs: queue.SimpleQueue[tuple[Work, asyncio.Future[Any]] | None] = (
            queue.SimpleQueue())
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._conn: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread.start()
        await self.call(lambda _: None)  # the connection is open once that has run

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    async def close(self) -> None:
        """Refuse new reads; a read still running is abandoned (interrupted)."""
        self._closed = True
        if self._thread.is_alive():
            self.interrupt()
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join)

    def call(self, work: Work) -> asyncio.Future[Any]:
        assert self._loop is not None
        future: asyncio.Future[Any] = self._loop.create_future()
        if self._closed:
            future.set_exception(ReaderClosed("the store is closed"))
        else:
            self._jobs.put((work, future))
        return future

    async def fetchall(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        # execute and fetch in one trip: each trip is a hand-off to the thread and back
        rows: list[Any] = await self.call(lambda conn: conn.execute(sql, params).fetchall())
        return rows

    def interrupt(self) -> None:
        """Stop the statement running now, if any (SQLite allows this from any thread)."""
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed meanwhile: no read
                conn.interrupt()

    def _serve(self) -> None:
        loop = self._loop
        assert loop is not None
        try:
            while (item := self._jobs.get()) is not None:
                work, future = item
                if future.done():  # its caller went away while it waited: not worth a read
                    continue  # (a read of the future's state; only the loop changes it)
                try:
                    if self._conn is None:  # a connect that fails fails this read alone
                        self._conn = self._connect()
                    outcome: tuple[bool, Any] = (True, work(self._conn))
                except BaseException as exc:  # handed to the caller, who re-raises it
                    outcome = (False, exc)
                with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                    loop.call_soon_threadsafe(_settle, future, outcome)
        finally:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
            while not self._jobs.empty():  # handed over as it closed: never left waiting
                if (item := self._jobs.get()) is not None:
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(
                            _settle, item[1], (False, ReaderClosed("the store is closed")))


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():  # the caller went away; a read has nothing to undo
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class Lane:
    """Readers shared first come, first served."""

    def __init__(self, connect: Connect, size: int, name: str) -> None:
        self._all = [Reader(connect, f"{name}-{n}") for n in range(size)]
        self._free: asyncio.Queue[Reader] = asyncio.Queue()

    async def open(self) -> None:
        for reader in self._all:
            await reader.open()
            self._free.put_nowait(reader)

    async def close(self) -> None:
        for reader in self._all:
            await reader.close()

    async def fetchall(self, sql: str, params: tuple[Any, ...],
                       budget: float | None = None) -> list[Any]:
        reader = await self._free.get()
        timer = None if budget is None else reader.loop.call_later(budget, reader.interrupt)
        try:
            return await reader.fetchall(sql, params)
        except asyncio.CancelledError:  # nobody will read the rows: free the reader sooner
            reader.interrupt()
            raise
        finally:
            if timer is not None:
                timer.cancel()
            self._free.put_nowait(reader)


class Readers:
    """The two lanes, and how many reads took which way (for tests and benchmarks)."""

    def __init__(self, connect: Connect) -> None:
        self._quick = Lane(connect, 1, "sqlite-reader-quick")
        self._slow = Lane(connect, SLOW_READERS, "sqlite-reader-slow")
        self.stats = {"quick": 0, "moved": 0, "slow": 0}

    async def open(self) -> None:
        await self._quick.open()
        await self._slow.open()

    async def close(self) -> None:
        await self._quick.close()
        await self._slow.close()

    async def fetchall(self, sql: str, params: tuple[Any, ...] = (), *,
                       slow: bool = False) -> list[Any]:
        if not slow:
            try:
                found = await self._quick.fetchall(sql, params, QUICK_BUDGET)
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", 0) != sqlite3.SQLITE_INTERRUPT:
                    raise
                self.stats["moved"] += 1
                # the operator's slow-query log: such a read lost its budget before it began
                # again (an index, or slow=True, would spare that); no parameters are shown
                log.warning("a read outlasted %d ms on the quick reader; running it in the "
                            "slow lane: %s", round(QUICK_BUDGET * 1000),
                            " ".join(sql.split())[:300])
            else:
                self.stats["quick"] += 1
                return found
        self.stats["slow"] += 1
        return await self._slow.fetchall(sql, params)
