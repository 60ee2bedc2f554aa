"""The write-ahead log's sync, in a thread of its own, so that batches go on committing while
the disk syncs the ones before.

With ``synchronous=full`` SQLite syncs the WAL inside COMMIT, holding the write lock: the
next batch can begin only once the disk has answered, and on network storage (several ms per
fsync) the writer spends most of its time waiting. So with ``full`` configured the writer
commits at ``synchronous=normal`` (a COMMIT writes its frames to the WAL and syncs nothing)
and hands each committed batch here. This thread syncs the WAL file (``fdatasync``), and
only then are the batch's callers answered. One sync covers every commit written before it
began; the batches committed while it runs are answered together after the next one.

What an answered caller was promised holds as with ``full``: its frames are on disk before
it hears of its write, and SQLite's recovery keeps every commit whose frames are whole, in
order (a WAL that starts over after a checkpoint has its header synced by SQLite first). One
thing differs: a committed batch is visible to the readers' connections up to one sync
before its callers are answered. Only a power loss or an OS crash in that window, not a
crash of the process, undoes it; its callers were never answered and send again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

Synced = Callable[[BaseException | None], None]  # None: synced; else why the sync failed


class WalSync:
    """Syncs the WAL at ``wal_path`` after commits, one sync at a time, answering on the loop."""

    def __init__(self, wal_path: str) -> None:
        self._path = wal_path
        self._fd: int | None = None  # the sync thread's own
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-sync")
        self._committed = 0  # commits handed over so far
        self._waiting: list[tuple[int, Synced]] = []
        self._syncing: asyncio.Future[None] | None = None
        self.seconds = 0.0  # in the sync thread; read by /metrics

    def after_commit(self, then: Synced) -> None:
        """Call ``then`` on the loop once a sync begun after this commit has ended."""
        self._committed += 1
        self._waiting.append((self._committed, then))
        if self._syncing is None:
            self._start()

    @property
    def busy(self) -> bool:
        """Commits are waiting for a sync, or one runs."""
        return self._syncing is not None

    async def drained(self) -> None:
        """Once every commit handed over so far is answered."""
        while self._syncing is not None:
            await asyncio.wait([self._syncing])

    async def close(self) -> None:
        """Answer every commit handed over, then close the file."""
        await self.drained()
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close_file)
        self._thread.shutdown()

    def _start(self) -> None:
        covered = self._committed
        self._syncing = asyncio.get_running_loop().run_in_executor(self._thread, self._sync)
        self._syncing.add_done_callback(lambda done: self._synced(done, covered))

    def _synced(self, done: asyncio.Future[None], covered: int) -> None:
        self._syncing = None
        error = None if done.cancelled() else done.exception()
        if error is not None:
            log.error("syncing the SQLite write-ahead log failed", exc_info=error)
        answered = [then for commit, then in self._waiting if commit <= covered]
        self._waiting = [(commit, then) for commit, then in self._waiting if commit > covered]
        if self._waiting:  # committed while the disk synced: the next sync is theirs
            self._start()
        for then in answered:
            then(error)

    def _sync(self) -> None:  # in the sync thread
        began = time.perf_counter()
        try:
            fd = self._open()
            if fd is not None:
                os.fdatasync(fd)
        finally:
            self.seconds += time.perf_counter() - began

    def _open(self) -> int | None:
        """The WAL's descriptor, opened again if SQLite made the file anew; None when there is
        no WAL (the last connection to close copies it into the database, synced, and
        deletes it: nothing is left to sync)."""
        try:
            now = os.stat(self._path).st_ino
        except FileNotFoundError:
            self._close_file()
            return None
        if self._fd is not None and os.fstat(self._fd).st_ino != now:
            self._close_file()
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
        return self._fd

    def _close_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
