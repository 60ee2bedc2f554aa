"""Write jobs on PostgreSQL: the same sync functions SQLite's writer runs, each in a greenlet
on the event loop's thread over a ``JobConnection``: each statement switches back to the
loop, which awaits it on the job's asyncpg connection and resumes the job with the rows (no
thread hand-off per statement; the loop serves others while a statement is out).

Every job is one transaction at SERIALIZABLE isolation, so a job sees and leaves the database
as if no other job ran beside it, on this node or another, as with SQLite's single writer
(per-site ticket numbers, per-conversation seq, the client_msg_id check). A job that loses a
race (serialization failure 40001, deadlock 40P01) is rolled back and run again whole; jobs
only touch the database, so running one again is safe. A retry first takes a session
advisory lock that every retrying job shares, so jobs that conflicted once run one after
another instead of colliding again. A job's result reaches its caller only after COMMIT.

A visitor's message in its conversation runs at REPEATABLE READ instead
(``connection.write_isolation``): each of its read-then-writes is of a row it also writes
(the conversation's seq), which PostgreSQL refuses to two concurrent transactions (40001),
and a concurrent insert of the same message key is retried (23505) until the new snapshot
finds it. That spares it serializable's false conflicts between unrelated conversations.
A new request and an agent's reply run at READ COMMITTED: the site's ticket counter, the one
row every new request of a site writes, and the conversation's seq are incremented where
they stand once the row is free, and a reply locks its ticket as it reads it, so they wait
for the rows they contend for instead of being refused as a snapshot's would be.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import asyncpg
import greenlet

from widget_server.store.connection import (
    POSTGRESQL,
    SERIALIZABLE,
    WRITE_ISOLATION,
    PgIntegrityError,
)
from widget_server.store.pg_sql import returns_rows, rowcount, translate

T = TypeVar("T")
RETRY_LOCK = 0x77696467  # the advisory lock retried jobs take in turn ("widg")
MAX_ATTEMPTS = 60
RETRY_CODES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
# at REPEATABLE READ a concurrent insert of the same key (a resent message, a new request
# sent twice at once) is a unique violation, not a serialization failure: run it again,
# and the new snapshot finds the row
SNAPSHOT_RETRY_CODES = RETRY_CODES | {"23505"}
# statements that change a site row other than its ticket counter: the site cache reloads
_SITE_CHANGE = ("INSERT INTO SITES", "DELETE FROM SITES", "UPDATE SITES")


class JobCursor:
    """The rows and count of one statement, read like a ``sqlite3.Cursor``."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], count: int) -> None:
        self._rows = rows
        self.rowcount = count

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[Any]:
        found, self._rows = self._rows, []
        return found

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class JobConnection:
    """What a job calls from its greenlet; each statement is handed to the loop (the
    greenlet's parent), which awaits it on ``conn``."""

    dialect = POSTGRESQL

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.sites_changed = False

    def _run(self, coroutine: Any) -> Any:
        parent = greenlet.getcurrent().parent
        if parent is None:
            coroutine.close()
            raise RuntimeError("a PostgreSQL job runs inside JobRunner")
        try:
            return parent.switch(coroutine)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise PgIntegrityError(str(exc)) from exc

    def _note(self, sql: str) -> None:
        head = " ".join(sql.split()[:3]).upper()
        if head.startswith(_SITE_CHANGE) and "TICKET_COUNTER = TICKET_COUNTER + 1" not in \
                sql.upper():
            self.sites_changed = True

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> JobCursor:
        self._note(sql)
        query = translate(sql)
        if returns_rows(sql):
            found = self._run(self._conn.fetch(query, *parameters))
            return JobCursor(list(found), len(found))
        status = self._run(self._conn.execute(query, *parameters))
        return JobCursor([], rowcount(status))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> JobCursor:
        self._note(sql)
        arguments = [tuple(row) for row in parameters]
        if arguments:
            self._run(self._conn.executemany(translate(sql), arguments))
        return JobCursor([], len(arguments))


async def run_in_greenlet(job: Callable[[], T]) -> T:
    """Run the sync ``job``; each coroutine it hands over (``JobConnection._run``) is awaited
    here and its result, or its exception, sent back in."""
    child = greenlet.greenlet(job)
    handed = child.switch()
    while not child.dead:
        try:
            answer = await handed
        except BaseException as exc:  # the job sees the statement's error where it ran it
            handed = child.throw(exc)
        else:
            handed = child.switch(answer)
    result: T = handed
    return result


class JobRunner:
    """Runs jobs on a pool: one connection per job in flight."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._running: set[asyncio.Future[Any]] = set()
        self._closed = False
        self.jobs = 0  # jobs committed
        self.retries = 0  # jobs run again after losing a race (for tests and the bench)
        self.deadlocks = 0  # of those, a deadlock's victims (jobs that lock in another order)

    async def close(self) -> None:
        """Refuse new jobs and let the running ones finish."""
        self._closed = True
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def run(self, job: Callable[..., T], args: tuple[Any, ...],
                  on_sites_changed: Callable[[], None]) -> T:
        """The job's result once committed. A caller that goes away does not stop the job
        halfway: it runs to its commit or rollback, as on SQLite's writer."""
        if self._closed:
            raise RuntimeError("the store is closed")
        attempts = asyncio.ensure_future(self._attempts(job, args, on_sites_changed,
                                                        WRITE_ISOLATION.get()))
        self._running.add(attempts)
        attempts.add_done_callback(self._running.discard)
        return await asyncio.shield(attempts)

    async def _attempts(self, job: Callable[..., T], args: tuple[Any, ...],
                        on_sites_changed: Callable[[], None], isolation: str) -> T:
        retry_codes = RETRY_CODES if isolation == SERIALIZABLE else SNAPSHOT_RETRY_CODES
        for attempt in range(MAX_ATTEMPTS):
            async with self._pool.acquire() as conn:
                contended = attempt > 0
                if contended:  # one retrying job at a time across every node
                    await conn.execute("SELECT pg_advisory_lock($1)", RETRY_LOCK)
                try:
                    adapter = JobConnection(conn)
                    try:
                        result = await self._transaction(conn, adapter, job, args, isolation)
                    finally:
                        if adapter.sites_changed:
                            on_sites_changed()
                    return result
                except asyncpg.PostgresError as exc:
                    if exc.sqlstate not in retry_codes or attempt == MAX_ATTEMPTS - 1:
                        raise
                    self.retries += 1
                    self.deadlocks += exc.sqlstate == "40P01"
                except PgIntegrityError as exc:
                    cause = exc.__cause__
                    if getattr(cause, "sqlstate", None) not in retry_codes \
                            or attempt == MAX_ATTEMPTS - 1:
                        raise
                    self.retries += 1
                finally:
                    if contended:
                        await conn.execute("SELECT pg_advisory_unlock($1)", RETRY_LOCK)
            await asyncio.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
        raise AssertionError("unreachable")

    async def _transaction(self, conn: asyncpg.Connection, adapter: JobConnection,
                           job: Callable[..., T], args: tuple[Any, ...], isolation: str) -> T:
        await conn.execute(f"BEGIN ISOLATION LEVEL {isolation}")
        try:
            result = await run_in_greenlet(lambda: job(adapter, *args))
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")  # may fail with 40001: the caller runs the job again
        self.jobs += 1
        return result
