"""The single SQLite writer: one connection, batches of whole transactions whose statements
run on the event loop and whose commit runs in the writer's helper thread.

Callers hand over a job (a plain function over a ``sqlite3.Connection``). Every job handed
over during one iteration of the event loop runs in the next, together, in one
``BEGIN IMMEDIATE`` transaction with one commit (while the server is busy, a batch waits up
to ``LINGER`` for more: group commit); only then are the callers' futures resolved. One
commit (an fsync with ``synchronous=full``) per batch is what lets a small box persist
thousands of messages per second while never acknowledging anything not on disk. A job that
raises fails alone: the batch is rolled back and run again with a SAVEPOINT around each job
(sqlite_batch.py), so a job may run twice and must only touch the database.

A batch's statements run on the loop's thread (about 0.1 ms per message, no thread hand-over
per message) and sync nothing. Whatever can wait for the disk runs in the helper thread, with
new jobs held until it is done, so those that come meanwhile make the next batch: every
``COMMIT`` (0.3 ms on a local SSD, several ms on network storage), the WAL's checkpoint,
closing the connection, a batch that finds the database locked by another process
(``busy_timeout`` is 0 on the loop, waits in the thread), and a job marked ``off_loop``.
If a commit fails, every job of its batch fails and nothing of it is stored.

The upkeep runs once no job has come for ``UPKEEP_IDLE``, or after ``upkeep_every`` jobs
otherwise. First the ``upkeep`` job (indexing messages for search): when jobs are waiting,
as the last job of the next batch (a commit of its own would hold them for one more fsync),
else in a transaction of its own right after the acks of the batch before. It must do
bounded work (a few ms) and return True when more remains; it runs again at the next chance.
Then a passive WAL checkpoint on a connection and thread of its own, waiting for no writer
(SQLite's own, which would copy and sync inside a commit, is off). A failing upkeep is
logged and tried again later; it never fails a caller.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from widget_server.store.sqlite_batch import (
    Job,
    Outcome,
    busy,
    checkpoint_passive,
    commit_batch,
    run_batch,
)

T = TypeVar("T")
Upkeep = Callable[[sqlite3.Connection], bool | None]  # True: more work remains
Item = tuple[Job, "asyncio.Future[Any]"]

log = logging.getLogger(__name__)

MAX_BATCH = 256
# Group commit: while batches follow each other within BUSY_WINDOW, the next one waits up to
# LINGER for more jobs (at most until it has GROUP). Each commit is an fsync; at 1,000
# messages/s most loop iterations hand over a single message. The jobs handed over while a
# commit is under way wait for it, and go together in the next batch.
GROUP = 8
LINGER = 0.001
BUSY_WINDOW = 0.005
UPKEEP_IDLE = 0.05
# The writer's connection copies what a checkpoint left (holding the writes for two syncs)
# once the WAL holds this many frames (16 MB).
CATCH_UP_FRAMES = 4000


class WriterClosed(RuntimeError):
    pass


class SQLiteWriter:
    def __init__(self, connect: Callable[[], sqlite3.Connection], *,
                 upkeep: Upkeep | None = None, upkeep_every: int = 500) -> None:
        self._connect = connect
        self._upkeep = upkeep
        self._upkeep_every = upkeep_every
        self._since_upkeep = 0  # jobs committed since the upkeep last ran
        self._conn: sqlite3.Connection | None = None
        self._busy_timeout_ms = 0  # the connection's own, used only in the helper thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._helper: ThreadPoolExecutor | None = None
        self._pending: list[Item] = []
        self._off_loop: list[Item] = []  # jobs that may run long: one at a time, in the helper
        self._flush_due = False  # a flush is scheduled: soon, or after LINGER
        self._linger: asyncio.TimerHandle | None = None
        self._away: asyncio.Future[Any] | None = None  # the connection is the helper's
        self._upkeep_due = False  # scheduled to run on the loop
        self._upkeep_folded = False  # the upkeep rides in the next batch
        self._upkeep_future: asyncio.Future[Any] | None = None
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpointing: asyncio.Future[int | None] | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None  # the checkpointer's own
        self._catch_up = False  # the writer's connection copies what a checkpoint left
        self._idle_timer: asyncio.TimerHandle | None = None
        self._last_batch = float("-inf")  # no batch yet: not busy, however new the clock
        self._open = False
        self.batches = self.jobs = 0
        self.commit_seconds = 0.0  # in the helper thread; read by /metrics

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        conn = self._connect()
        # a locked database fails at once on the loop; the helper thread waits as configured
        self._busy_timeout_ms = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer's, not the commit's
        self._conn = conn
        self._helper = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-checkpoint")
        self._open = True

    async def close(self) -> None:
        """Refuse new jobs, finish every job already handed over, then close the connection."""
        self._open = False
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        while self._away is not None or self._pending or self._off_loop:
            if self._away is not None:
                await asyncio.wait([self._away])
            elif self._conn is not None:
                self._flush()
            else:  # never started: nobody waits forever
                self._refuse_all(WriterClosed("the store is closed"))
        conn, self._conn = self._conn, None
        if self._checkpointer is not None:
            self._checkpointer.submit(self._close_checkpoint_conn)
            # after a checkpoint still running, which may be syncing the database file
            await asyncio.to_thread(self._checkpointer.shutdown)
            self._checkpointer = None
        if self._helper is not None:
            if conn is not None:  # the last connection to close checkpoints: syncs
                await asyncio.get_running_loop().run_in_executor(self._helper, conn.close)
            self._helper.shutdown()
            self._helper = None
        elif conn is not None:
            conn.close()

    async def run(self, job: Callable[[sqlite3.Connection], T], *, off_loop: bool = False) -> T:
        """Run ``job`` as one whole transaction; return once it is committed. A job that may
        take long (a retention batch, an erasure, indexing a backlog) says ``off_loop``: it
        runs alone in the helper thread, so the loop goes on serving meanwhile."""
        if not self._open:
            raise WriterClosed("the store is closed")
        assert self._loop is not None
        future: asyncio.Future[T] = self._loop.create_future()
        (self._off_loop if off_loop else self._pending).append((job, future))
        if not self._flush_due:
            self._schedule_flush()
        elif len(self._pending) == GROUP and self._linger is not None:
            self._linger.cancel()  # a full group need not wait for more
            self._linger = None
            self._loop.call_soon(self._flush)
        return await future

    # -- batches: statements on the event loop, the commit in the helper thread

    def _flush(self) -> None:
        self._flush_due = False
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        conn, loop = self._conn, self._loop
        if self._away is not None or conn is None or loop is None:
            return
        if self._catch_up:  # before more writes, which would leave frames to copy again
            self._catch_up = False
            self._hand_over(lambda: checkpoint_passive(conn), self._caught_up)
            return
        if self._off_loop:  # first, or a steady stream of small writes would starve it
            self._send_batch_away([self._off_loop.pop(0)])
            return
        if not self._pending:
            return
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        if self._upkeep_folded:
            batch, self._upkeep_folded = [*batch, self._folded_upkeep()], False
        jobs = [job for job, _ in batch]
        try:
            outcomes = run_batch(conn, jobs, commit=False)
        except sqlite3.OperationalError as exc:
            if not busy(exc) or conn.in_transaction:
                log.exception("sqlite writer batch failed")
                outcomes = [(False, exc)] * len(batch)
            else:  # another process holds the lock: wait for it off the loop
                self._send_batch_away(batch)
                return
        except Exception as exc:  # a rollback failed: nothing of the batch is stored
            log.exception("sqlite writer batch failed")
            outcomes = [(False, exc)] * len(batch)
        except BaseException:  # a job ended the writer: refuse, never leave a caller waiting
            log.exception("the sqlite writer stopped")
            self._open = False
            self._pending = batch + self._pending
            self._refuse_all(WriterClosed("the writer stopped"))
            return
        else:
            if conn.in_transaction:  # run; the futures wait for the commit
                self._commit_away(batch, outcomes)
                return
        self._done(batch, outcomes)  # every job failed: rolled back, nothing to commit

    def _commit_away(self, batch: list[Item], outcomes: list[Outcome]) -> None:
        """Commit in the helper thread: the loop serves on while the disk syncs (no GIL)."""
        assert self._conn is not None
        conn = self._conn

        def commit() -> list[Outcome]:
            began = time.perf_counter()
            commit_batch(conn)
            self.commit_seconds += time.perf_counter() - began
            return outcomes

        self._in_helper(batch, commit)

    def _send_batch_away(self, batch: list[Item]) -> None:
        """Run the batch in the helper thread, waiting for a lock as configured."""
        assert self._conn is not None
        conn, wait_ms = self._conn, self._busy_timeout_ms
        jobs = [job for job, _ in batch]

        def waiting() -> list[Outcome]:
            conn.execute(f"PRAGMA busy_timeout = {wait_ms}")
            try:
                return run_batch(conn, jobs)
            finally:
                conn.execute("PRAGMA busy_timeout = 0")

        self._in_helper(batch, waiting)

    def _in_helper(self, batch: list[Item], work: Callable[[], list[Outcome]]) -> None:
        """``work`` gives the batch's outcomes in the helper; if it raises, every job fails."""
        def back(away: asyncio.Future[list[Outcome]]) -> None:
            error = away.exception()
            if error is not None:
                log.error("sqlite writer batch failed in the helper thread", exc_info=error)
            self._done(batch, away.result() if error is None else [(False, error)] * len(batch))

        self._hand_over(work, back)

    def _hand_over(self, work: Callable[[], T],
                   then: Callable[[asyncio.Future[T]], None]) -> None:
        """Run ``work`` in the helper thread, holding new jobs until ``then``, on the loop,
        has seen it end."""
        loop, helper = self._loop, self._helper
        assert loop is not None and helper is not None
        took = [0.0]  # in the thread: the work alone, not the wait for a busy loop

        def timed() -> T:
            began = time.perf_counter()
            try:
                return work()
            finally:
                took[0] = time.perf_counter() - began

        away = loop.run_in_executor(helper, timed)

        def back(done: asyncio.Future[T]) -> None:
            self._away = None
            gathered = took[0] >= LINGER
            then(done)
            if gathered and self._pending and not self._upkeep_due and self._conn is not None:
                # The jobs held meanwhile gathered for longer than a linger: they run now,
                # before the acks just released go out, so that the disk syncs them while
                # the loop sends those. A due upkeep first, or such batches would starve it.
                self._flush()
            else:
                self._schedule_flush()

        self._away = away
        away.add_done_callback(back)

    def _refuse_all(self, error: WriterClosed) -> None:
        left, self._pending, self._off_loop = self._pending + self._off_loop, [], []
        _settle(left, [(False, error)] * len(left))

    def _done(self, batch: list[Item], outcomes: list[Outcome]) -> None:
        assert self._loop is not None
        jobs = len(batch) - (bool(batch) and batch[-1][1] is self._upkeep_future)
        self.batches += 1
        self.jobs += jobs
        self._since_upkeep += jobs
        self._last_batch = self._loop.time()
        _settle(batch, outcomes)
        if self._since_upkeep >= self._upkeep_every:
            if self._pending and self._upkeep is not None and not self._upkeep_folded:
                # busy: it rides in the next batch, which a commit of its own would hold
                self._since_upkeep = 0
                self._upkeep_folded = True
            else:
                self._run_upkeep()
        elif self._idle_timer is None:
            self._idle_timer = self._loop.call_at(self._last_batch + UPKEEP_IDLE,
                                                  self._upkeep_when_idle)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        loop = self._loop
        waiting = self._pending or self._off_loop or self._catch_up
        if not waiting or self._flush_due or self._away is not None or loop is None:
            return
        self._flush_due = True
        busy = loop.time() - self._last_batch < BUSY_WINDOW
        if busy and not self._catch_up and 0 < len(self._pending) < GROUP:
            self._linger = loop.call_later(LINGER, self._flush)
        else:  # a lone write on a quiet server is not held back
            loop.call_soon(self._flush)

    # -- the upkeep, and the checkpoint, in a thread of its own

    def _upkeep_when_idle(self) -> None:
        assert self._loop is not None
        self._idle_timer = None
        if self._since_upkeep == 0 or self._conn is None:
            return
        quiet = self._loop.time() >= self._last_batch + UPKEEP_IDLE
        if quiet and self._away is None and not self._pending:
            self._run_upkeep()
        else:  # look again one pause from now
            self._idle_timer = self._loop.call_later(UPKEEP_IDLE, self._upkeep_when_idle)

    def _run_upkeep(self) -> None:
        assert self._loop is not None
        self._since_upkeep = 0
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if not self._upkeep_due:
            self._upkeep_due = True
            self._loop.call_soon(self._upkeep_on_loop)  # after the acks just released

    def _upkeep_on_loop(self) -> None:
        self._upkeep_due = False
        upkeep, conn = self._upkeep, self._conn
        if conn is None:
            return
        if self._away is not None:  # the connection is the helper's for now
            self._upkeep_later()
            return
        if upkeep is not None:
            try:
                (done, value), = run_batch(conn, [upkeep], commit=False)
            except sqlite3.OperationalError as exc:
                if busy(exc) and not conn.in_transaction:  # another process writes
                    self._upkeep_later()
                else:
                    log.error("sqlite writer upkeep failed", exc_info=exc)
            except Exception as exc:  # the rollback failed
                log.error("sqlite writer upkeep failed", exc_info=exc)
            else:
                if not done:  # its work stays pending; the writes go on
                    log.error("sqlite writer upkeep failed", exc_info=value)
                elif conn.in_transaction:
                    more = bool(value)
                    self._hand_over(lambda: commit_batch(conn),
                                    lambda away: self._upkept(away, more))
                    return
        self._checkpoint()

    def _folded_upkeep(self) -> Item:  # if it raises, it fails alone like any job
        assert self._loop is not None and self._upkeep is not None
        future: asyncio.Future[Any] = self._loop.create_future()
        self._upkeep_future = future
        future.add_done_callback(self._folded_upkept)
        return self._upkeep, future

    def _folded_upkept(self, done: asyncio.Future[Any]) -> None:
        if not isinstance(done.exception(), WriterClosed):
            self._upkept(done, done.exception() is None and bool(done.result()))

    def _upkept(self, away: asyncio.Future[Any], more: bool) -> None:
        error = away.exception()
        if error is not None:  # it or its commit failed: the work is still there to do
            log.error("sqlite writer upkeep failed", exc_info=error)
        elif more:
            self._upkeep_later()
        self._checkpoint()

    def _upkeep_later(self) -> None:
        """Run the upkeep again at the next chance: when idle, or after the next batches."""
        assert self._loop is not None
        self._since_upkeep = max(self._since_upkeep, self._upkeep_every - 1, 1)
        if self._idle_timer is None:
            self._idle_timer = self._loop.call_later(UPKEEP_IDLE, self._upkeep_when_idle)

    def _checkpoint(self) -> None:
        """A passive checkpoint in the checkpointer's thread, one at a time."""
        if self._checkpointer is None or self._loop is None or self._checkpointing is not None:
            return
        self._checkpointing = self._loop.run_in_executor(self._checkpointer,
                                                         self._checkpoint_now)
        self._checkpointing.add_done_callback(self._checkpointed)

    def _checkpoint_now(self) -> int | None:  # in the checkpointer's thread
        """The frames in the WAL, or None when the checkpoint failed."""
        try:
            if self._checkpoint_conn is None:
                self._checkpoint_conn = self._connect()
            return checkpoint_passive(self._checkpoint_conn)
        except Exception:
            log.exception("sqlite writer checkpoint failed")
            return None

    def _checkpointed(self, done: asyncio.Future[int | None]) -> None:
        """Then, once the WAL holds CATCH_UP_FRAMES, copy the frames committed meanwhile on
        the writer's connection in the helper thread, before the next batch. SQLite starts the
        WAL over only when a write transaction begins with every frame copied: while writes
        keep coming, without this the WAL would grow for as long as they do."""
        self._checkpointing = None
        if done.cancelled() or done.exception() or self._conn is None:
            return
        frames = done.result()
        if frames is None or frames < CATCH_UP_FRAMES:  # the next upkeep's will do
            return
        self._catch_up = True
        self._schedule_flush()

    def _caught_up(self, away: asyncio.Future[int]) -> None:
        error = away.exception()
        if error is not None:
            log.error("sqlite writer checkpoint failed", exc_info=error)

    def _close_checkpoint_conn(self) -> None:  # in the checkpointer's thread
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None


def _settle(batch: list[Item], outcomes: list[Outcome]) -> None:
    for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
        if future.done():  # the caller went away; the write stands regardless
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
