"""The statements of the PostgreSQL LISTEN/NOTIFY broker (realtime/pg_broker.py)."""

from __future__ import annotations

import asyncpg

CHANNEL = "widget_events"


async def notify(connection: asyncpg.Connection, texts: list[str]) -> None:
    """Send the texts on ``CHANNEL`` in one round trip, in order (one transaction)."""
    await connection.execute(
        "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload", CHANNEL, texts)


async def ping(connection: asyncpg.Connection, timeout: float) -> None:
    await connection.fetchval("SELECT 1", timeout=timeout)
