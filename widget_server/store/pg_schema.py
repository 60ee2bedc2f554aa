"""Numbered migrations for PostgreSQL: the files ``migrations/postgresql/NNNN_name.sql``,
named as their SQLite twins. Each runs in its own transaction together with the row that
records its version in ``schema_migrations``; an advisory lock held meanwhile makes a second
process starting at once wait, then find the work done."""

from __future__ import annotations

import asyncpg

from widget_server.clock import SystemClock, isoformat
from widget_server.store import sqlite_schema

MIGRATE_LOCK = 0x77696468  # the advisory lock of the migration runner


def available_migrations() -> list[tuple[int, str, str]]:
    return sqlite_schema.available_migrations("postgresql")


async def schema_version(conn: asyncpg.Connection) -> int:
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return 0
    return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))


async def migrate(conn: asyncpg.Connection) -> int:
    """Apply every migration newer than the recorded version; return the version reached."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATE_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
        current = await schema_version(conn)
        for version, name, sql in available_migrations():
            if version <= current:
                continue
            async with conn.transaction():
                await conn.execute(sql)  # a whole script: the simple query protocol
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at)"
                    " VALUES ($1, $2, $3)", version, name, isoformat(SystemClock().now()))
            current = version
        return current
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATE_LOCK)
