"""The single SQLite writer: one connection, one thread, batches of whole transactions.

Concurrent callers enqueue a job (a plain function over a ``sqlite3.Connection``). The
writer's own thread takes every job waiting, runs them in one ``BEGIN IMMEDIATE``
transaction, commits once, and only then hands the outcomes back to the event loop, which
resolves the callers' futures. One fsync per batch, instead of one per statement, is what
lets a small box persist thousands of messages per second while never acknowledging
anything that is not on disk. A job that raises fails alone: the batch is rolled back and
run again with a SAVEPOINT around each job. A job may therefore run twice (the first run
rolled back), so it must only touch the database.

The thread pulls its next batch itself, straight after a commit (when the event loop chose
the batches, the writer sat idle for a loop iteration after every commit), and while the
server is busy it groups commits (``LINGER``).

Work that may lag behind the writes (``upkeep``: indexing messages for search) runs in its
own transaction between batches: once no job has come for ``UPKEEP_IDLE``, or after
``upkeep_every`` jobs when none of those pauses come. A failing upkeep is logged and tried
again later; it never fails a caller.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]
Item = tuple[Job, "asyncio.Future[Any]"]
Outcome = tuple[bool, Any]

log = logging.getLogger(__name__)

MAX_BATCH = 256
# Group commit: while commits follow each other within BUSY_WINDOW, a batch of fewer than
# GROUP jobs waits up to LINGER for more. Each commit is an fsync and a wake-up of the event
# loop; at 1,000 messages/s most batches were a single message.
GROUP = 8
LINGER = 0.001
BUSY_WINDOW = 0.005
UPKEEP_IDLE = 0.05


class WriterClosed(RuntimeError):
    pass


class SQLiteWriter:
    def __init__(self, connect: Callable[[], sqlite3.Connection], *,
                 upkeep: Job | None = None, upkeep_every: int = 500) -> None:
        self._connect = connect
        self._upkeep = upkeep
        self._upkeep_every = upkeep_every
        self._since_upkeep = 0  # jobs committed since the upkeep last ran
        self._jobs: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._open = False
        self.batches = 0
        self.jobs = 0

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._stopped = loop.create_future()
        self._thread = threading.Thread(target=self._main, args=(ready,),
                                        name="sqlite-writer", daemon=True)
        self._thread.start()
        await ready
        self._open = True

    async def close(self) -> None:
        """Refuse new jobs, finish every job already queued, then close the connection."""
        if self._thread is None:
            return
        self._open = False
        self._jobs.put(None)
        assert self._stopped is not None
        await self._stopped
        self._thread.join()
        self._thread = None

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``job`` as one whole transaction; return once it is committed."""
        if not self._open:
            raise WriterClosed("the store is closed")
        assert self._loop is not None
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put((job, future))
        return await future

    # -- the writer thread

    def _main(self, ready: asyncio.Future[None]) -> None:
        loop, stopped = self._loop, self._stopped
        assert loop is not None and stopped is not None
        try:
            conn = self._connect()
        except BaseException as exc:
            loop.call_soon_threadsafe(_settle_one, ready, exc)
            loop.call_soon_threadsafe(_settle_one, stopped, None)
            return
        loop.call_soon_threadsafe(_settle_one, ready, None)
        try:
            self._serve(conn, loop)
        except BaseException:  # ends only this thread: say so, and refuse what comes next
            log.exception("the sqlite writer stopped")
        finally:  # normally after close(); also if the thread itself failed
            self._open = False
            conn.close()
            left = []
            while not self._jobs.empty():
                item = self._jobs.get_nowait()
                if item is not None:
                    left.append(item)
            if left:  # nobody waits forever: these were never run
                loop.call_soon_threadsafe(
                    _settle, left, [(False, WriterClosed("the store is closed"))] * len(left))
            loop.call_soon_threadsafe(_settle_one, stopped, None)

    def _serve(self, conn: sqlite3.Connection, loop: asyncio.AbstractEventLoop) -> None:
        stopping = False
        last_commit = 0.0
        while not stopping:
            due = self._upkeep is not None and self._since_upkeep > 0
            if due and self._since_upkeep >= self._upkeep_every:
                self._run_upkeep(conn)
                continue
            batch, stopping = self._take(time.monotonic() - last_commit < BUSY_WINDOW,
                                         idle=UPKEEP_IDLE if due else None)
            if not batch:
                if due and not stopping:
                    self._run_upkeep(conn)
                continue
            try:
                outcomes = _run_batch(conn, [job for job, _ in batch])
            except Exception as exc:  # the commit itself failed: nothing of the batch is stored
                log.exception("sqlite writer batch failed")
                outcomes = [(False, exc)] * len(batch)
            except BaseException:  # the thread is going down: refuse, never leave a caller
                self._open = False
                loop.call_soon_threadsafe(
                    _settle, batch, [(False, WriterClosed("the writer stopped"))] * len(batch))
                raise
            else:
                self.batches += 1
                self.jobs += len(batch)
                self._since_upkeep += len(batch)
            last_commit = time.monotonic()
            loop.call_soon_threadsafe(_settle, batch, outcomes)

    def _run_upkeep(self, conn: sqlite3.Connection) -> None:
        assert self._upkeep is not None
        self._since_upkeep = 0
        try:
            [(done, error)] = _run_batch(conn, [self._upkeep])
        except Exception as exc:  # the commit itself failed
            done, error = False, exc
        if not done:  # the upkeep's work stays pending; the writes go on
            log.error("sqlite writer upkeep failed", exc_info=error)

    def _take(self, busy: bool, idle: float | None = None) -> tuple[list[Item], bool]:
        """The next batch: every job waiting; while busy, also those that come within LINGER
        (group commit). A lone write on a quiet server is not held back. With ``idle``, an
        empty batch once no job has come for that long."""
        try:
            item = self._jobs.get(timeout=idle)
        except queue.Empty:
            return [], False
        batch: list[Item] = []
        deadline = time.monotonic() + LINGER if busy else 0.0
        while item is not None:
            batch.append(item)
            if len(batch) >= MAX_BATCH:
                break
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                wait = deadline - time.monotonic()
                if len(batch) >= GROUP or wait <= 0:
                    break
                try:
                    item = self._jobs.get(timeout=wait)
                except queue.Empty:
                    break
        return batch, item is None


def _settle_one(future: asyncio.Future[None], error: BaseException | None) -> None:
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _settle(batch: list[Item], outcomes: list[Outcome]) -> None:
    for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
        if future.done():  # the caller went away; the write stands regardless
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _run_batch(conn: sqlite3.Connection, jobs: list[Job]) -> list[Outcome]:
    """Run the jobs in one transaction. Jobs rarely fail, so they first run together; when one
    raises, the whole transaction is rolled back and the batch runs again with a SAVEPOINT
    around each job, so that only the failing job fails. A savepoint per job, always, cost
    two more statements per message and made FTS5 flush its pending terms into a new
    segment at every one of them (docs/performance.md)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        values = [job(conn) for job in jobs]
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if not isinstance(exc, Exception):
            raise
        if len(jobs) == 1:
            return [(False, exc)]
        return _run_isolated(conn, jobs)
    _commit(conn)
    return [(True, value) for value in values]


def _run_isolated(conn: sqlite3.Connection, jobs: list[Job]) -> list[Outcome]:
    """Each job inside its own savepoint: a job that raises is rolled back alone."""
    conn.execute("BEGIN IMMEDIATE")
    outcomes: list[Outcome] = []
    try:
        for job in jobs:
            conn.execute("SAVEPOINT job")
            try:
                value = job(conn)
            except Exception as exc:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((False, exc))
            else:
                conn.execute("RELEASE job")
                outcomes.append((True, value))
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    _commit(conn)
    return outcomes


def _commit(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
