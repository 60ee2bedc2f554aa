"""Helpers of the store tests: a query outside the store, a site, a visitor's message."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from widget_server.models import PostResult, Site, Visitor
from widget_server.store.base import VisitorPost
from widget_server.store.sqlite import SQLiteStore


def plain(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """A query on a connection of our own, outside the store."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()


async def shop(store: SQLiteStore) -> Site:
    site, _ = await store.ensure_site("Shop", ["https://shop.test"])
    return site


async def say(store: SQLiteStore, site: Site, body: str) -> PostResult:
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
