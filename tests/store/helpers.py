"""Helpers of the store tests: a query outside the store, a site, a visitor's message."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from widget_server.models import PostResult, Site, Visitor
from widget_server.store.base import Store, VisitorPost
from widget_server.store.pg_sql import returns_rows, translate


def db_of(store: Store) -> str:
    """The database a store opened: a SQLite path or a PostgreSQL URL."""
    return str(getattr(store, "path", None) or store.url)


def refused() -> tuple[type[Exception], ...]:
    """What a constraint's refusal raises on a connection of our own, on either backend."""
    import asyncpg

    return (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)


def plain(db: Path | str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """A query on a connection of our own, outside the store: on the SQLite file, or on the
    PostgreSQL database of a ``postgresql://`` URL (``?`` placeholders either way)."""
    if isinstance(db, str) and db.startswith("postgresql://"):
        return pg_plain(db, sql, params)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        found = conn.execute(sql, params).fetchall()
        conn.commit()
        return found


def pg_plain(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import asyncpg

    async def run() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url)
        try:
            if returns_rows(sql):
                return [tuple(row) for row in await conn.fetch(translate(sql), *params)]
            await conn.execute(translate(sql), *params)
            return []
        finally:
            await conn.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


async def shop(store: Store) -> Site:
    site, _ = await store.ensure_site("Shop", ["https://shop.test"])
    return site


async def say(store: Store, site: Site, body: str) -> PostResult:
    """A new request, then ``body`` as a follow-up in it (so only the message holds the
    words, not the ticket's subject)."""
    who = Visitor(id="v_" + uuid.uuid4().hex[:24], site_id=site.id, user_id=None,
                  name="Visitor", email=None, verified=False)
    opened = await store.post_visitor_message(VisitorPost(
        visitor=who, conversation_id=None, client_msg_id=str(uuid.uuid4()), body="Help",
        severity="normal", subject=None), datetime.now(UTC))
    return await store.post_visitor_message(VisitorPost(
        visitor=who, conversation_id=opened.message.conversation_id,
        client_msg_id=str(uuid.uuid4()), body=body, severity="normal", subject=None),
        datetime.now(UTC))
