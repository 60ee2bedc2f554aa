"""What a write job needs of its connection, whichever backend runs it.

A job is a plain function ``job(conn, *args)`` that runs inside one transaction. On SQLite
``conn`` is the writer's ``sqlite3.Connection``; on PostgreSQL it is ``pg_jobs.JobConnection``,
which hands each statement to the loop to run on the job's pool connection. Both answer
``execute`` and ``executemany`` with a cursor that has ``fetchone``, ``fetchall``,
``rowcount`` and iteration, and rows that read by column name or position.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


class PgIntegrityError(Exception):
    """A PostgreSQL constraint refused a statement of a job (a unique key, a check)."""


# what a job catches when a constraint refuses its write, on either backend
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, PgIntegrityError)


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few SQL fragments that differ between the backends; everything else is written
    once in portable SQL. Each method returns SQL text around trusted expressions."""

    name: str

    def json_text(self, expr: str, key: str) -> str:
        """The text value of ``key`` in the JSON object text ``expr``."""
        if self.name == "sqlite":
            return f"json_extract({expr}, '$.{key}')"
        return f"({expr}::jsonb ->> '{key}')"

    def json_has(self, expr: str, key: str) -> str:
        """A condition: the JSON object text ``expr`` has the key ``key``."""
        if self.name == "sqlite":
            return f"json_type({expr}, '$.{key}') IS NOT NULL"
        return f"jsonb_exists({expr}::jsonb, '{key}')"

    def json_without(self, expr: str, key: str) -> str:
        """The JSON object text ``expr`` without the key ``key``."""
        if self.name == "sqlite":
            return f"json_remove({expr}, '$.{key}')"
        return f"({expr}::jsonb - '{key}')::text"

    def for_update(self, alias: str) -> str:
        """A clause that keeps the rows of ``alias`` a SELECT reads locked to COMMIT (SQLite's
        single writer holds the whole database already)."""
        return "" if self.name == "sqlite" else f" FOR UPDATE OF {alias}"

    def arrival(self, alias: str) -> str:
        """A column that orders rows of a table with a text key as they were inserted, as far
        as the backend keeps one (a tie-break only)."""
        return f"{alias}.rowid" if self.name == "sqlite" else f"{alias}.id"


SQLITE = Dialect("sqlite")
POSTGRESQL = Dialect("postgresql")


def dialect_of(conn: Connection) -> Dialect:
    """The dialect of a job's connection (a ``sqlite3.Connection`` has none of its own)."""
    found = getattr(conn, "dialect", SQLITE)
    return found if isinstance(found, Dialect) else SQLITE


# The isolation the write jobs started while it is set run at on PostgreSQL (pg_jobs.py);
# SQLite's single writer ignores it. Only the message jobs lower it (core_queries.py).
SERIALIZABLE = "SERIALIZABLE"
REPEATABLE_READ = "REPEATABLE READ"
READ_COMMITTED = "READ COMMITTED"
WRITE_ISOLATION: ContextVar[str] = ContextVar("write_isolation", default=SERIALIZABLE)


@contextmanager
def write_isolation(level: str) -> Iterator[None]:
    """Jobs started inside run at ``level`` on PostgreSQL instead of SERIALIZABLE.

    REPEATABLE READ: for jobs whose every read-then-write is of rows they also write (a
    conversation's seq), which PostgreSQL refuses to two concurrent transactions, so that
    serializable's false conflicts between unrelated conversations cost no reruns.

    READ COMMITTED: for a job whose contended rows are ones it updates relative to
    themselves (a site's ticket counter: ``SET ticket_counter = ticket_counter + 1`` waits
    for the row and counts on from its newest value; the lock, held to COMMIT, keeps the
    numbers gap-free) or locks as it reads them (an agent's reply reads its ticket
    ``for_update``, then takes the conversation's next seq the same way), and whose other
    reads are of rows it makes or of settings. Every job at REPEATABLE READ that waited for
    such a row would be refused and run again instead."""
    token = WRITE_ISOLATION.set(level)
    try:
        yield
    finally:
        WRITE_ISOLATION.reset(token)
