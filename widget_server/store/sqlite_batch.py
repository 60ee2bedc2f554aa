"""A batch of write jobs run in one SQLite transaction, as the single writer runs them."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

Job = Callable[[sqlite3.Connection], Any]
Outcome = tuple[bool, Any]  # (True, the job's value) or (False, what it raised)


def checkpoint_passive(conn: sqlite3.Connection) -> int:
    """Copy what it can of the WAL into the database file; the frames in the WAL."""
    _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames)


def busy(error: sqlite3.OperationalError) -> bool:
    return bool(getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY)


def run_batch(conn: sqlite3.Connection, jobs: list[Job], *, commit: bool = True
              ) -> list[Outcome]:
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
        return _run_isolated(conn, jobs, commit=commit)
    if commit:
        commit_batch(conn)
    return [(True, value) for value in values]


def _run_isolated(conn: sqlite3.Connection, jobs: list[Job], *, commit: bool
                  ) -> list[Outcome]:
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
    if commit:
        commit_batch(conn)
    return outcomes


def commit_batch(conn: sqlite3.Connection) -> None:
    """COMMIT; if it fails, nothing of the transaction stays."""
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
