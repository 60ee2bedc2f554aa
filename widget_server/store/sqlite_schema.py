"""Connections and numbered migrations for SQLite.

Migrations are the files ``migrations/sqlite/NNNN_name.sql``; each runs in its own
transaction together with the row that records its version in ``schema_migrations``.
"""

from __future__ import annotations

import re
import sqlite3
from importlib import resources

from widget_server.clock import SystemClock, isoformat

BUSY_TIMEOUT_MS = 5000
MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def connect(path: str, *, synchronous: str = "full") -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with our pragmas."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    configure(conn, synchronous=synchronous)
    return conn


def connect_reader(path: str) -> sqlite3.Connection:
    """A connection that cannot write: for the readers (sqlite_readers.py)."""
    conn = connect(path)
    conn.execute("PRAGMA query_only = ON")
    return conn


def configure(conn: sqlite3.Connection, *, synchronous: str = "full") -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")


def available_migrations(dialect: str = "sqlite") -> list[tuple[int, str, str]]:
    """(number, name, SQL) of every migration file of ``dialect``'s folder, in order."""
    folder = resources.files("widget_server.store.migrations").joinpath(dialect)
    found = []
    for entry in folder.iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    return sorted(found)


def schema_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def split_statements(sql: str) -> list[str]:
    """Split a script into statements; ``sqlite3.complete_statement`` knows trigger bodies."""
    statements, pending = [], ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                statements.append(pending.strip())
            pending = ""
    if pending.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in pending.splitlines()
    ):
        raise ValueError("migration ends with an incomplete statement")
    return statements


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration newer than the recorded version; return the version reached.

    Each migration and its version row commit together; the version is read inside the same
    write transaction, so two processes starting at once cannot both apply a migration.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    current = schema_version(conn)
    for version, name, sql in available_migrations():
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = schema_version(conn)
            if version > current:
                for statement in split_statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, isoformat(SystemClock().now())),
                )
                current = version
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return current
