"""The single SQLite writer: one connection, one thread, batches of whole transactions.

Concurrent callers enqueue a job (a plain function over a ``sqlite3.Connection``). The writer
drains the queue, runs every job of the batch inside its own SAVEPOINT within one
``BEGIN IMMEDIATE`` transaction, commits once, and only then resolves the callers' futures.
A failing job rolls back to its savepoint and fails alone. One thread hop and one fsync per
batch, instead of one per statement, is what lets a small box persist thousands of messages
per second while never acknowledging anything that is not on disk.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]

log = logging.getLogger(__name__)

MAX_BATCH = 256


class WriterClosed(RuntimeError):
    pass


class SQLiteWriter:
    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future[Any]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._conn: sqlite3.Connection | None = None
        self.batches = 0
        self.jobs = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._executor, self._connect)
        self._task = asyncio.create_task(self._run(), name="sqlite-writer")

    async def close(self) -> None:
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        if self._conn is not None:
            conn = self._conn
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``job`` as one whole transaction; return once it is committed."""
        if self._task is None or self._task.done():
            raise WriterClosed("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._queue.put((job, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            item = await self._queue.get()
            batch: list[tuple[Job, asyncio.Future[Any]]] = []
            while item is not None:
                batch.append(item)
                if len(batch) >= MAX_BATCH or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            stopping = item is None
            if not batch:
                continue
            try:
                outcomes = await loop.run_in_executor(self._executor, self._run_batch, batch)
            except Exception as exc:  # the commit itself failed: nothing of the batch is stored
                log.exception("sqlite writer batch failed")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            self.jobs += len(batch)
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():  # the caller went away; the write stands regardless
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _run_batch(self, batch: list[tuple[Job, asyncio.Future[Any]]]) -> list[tuple[bool, Any]]:
        conn = self._conn
        assert conn is not None
        outcomes: list[tuple[bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        if len(batch) == 1:  # alone in its transaction: no savepoint needed to fail alone
            try:
                value = batch[0][0](conn)
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if not isinstance(exc, Exception):
                    raise
                return [(False, exc)]
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return [(True, value)]
        try:
            for job, _ in batch:
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
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes
