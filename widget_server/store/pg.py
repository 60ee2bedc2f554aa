"""The PostgreSQL backend: reads on an asyncpg pool, write jobs through ``pg_jobs``.

The business rules are the SQLite backend's: the same query mixins and the same write jobs,
over the four primitives below. Any number of processes on any number of machines may share
one database; every write job is one transaction (see ``pg_jobs``), and visitors' messages
that change nothing else are stored in batches of one statement (``pg_messages``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from widget_server.clock import Clock, SystemClock
from widget_server.models import PostResult
from widget_server.store import pg_schema
from widget_server.store import sqlite_rows as rows
from widget_server.store.attachment_queries import AttachmentQueries
from widget_server.store.availability_queries import AvailabilityQueries
from widget_server.store.base import VisitorPost
from widget_server.store.connection import POSTGRESQL
from widget_server.store.console_queries import ConsoleQueries, ReportQueries
from widget_server.store.core_queries import MESSAGE_EVENTS, CoreQueries
from widget_server.store.grant_queries import GrantQueries
from widget_server.store.help_queries import HelpQueries
from widget_server.store.inbound_queries import InboundQueries
from widget_server.store.mail_queries import MailQueries
from widget_server.store.mail_records import MailPlan
from widget_server.store.pg_jobs import JobRunner
from widget_server.store.pg_messages import QuickPosts
from widget_server.store.pg_search import PgSearch
from widget_server.store.pg_sql import translate
from widget_server.store.presence_queries import PresenceQueries
from widget_server.store.privacy_queries import PrivacyQueries
from widget_server.store.rating_queries import RatingQueries
from widget_server.store.site_cache import SiteCache
from widget_server.store.webhook_queries import WebhookQueries, WebhookSubscriptions

T = TypeVar("T")
POOL_SIZE = 10  # connections per process; each write job in flight holds one


def is_postgresql_url(db: str) -> bool:
    return db.startswith(("postgres://", "postgresql://"))


async def _setup(conn: asyncpg.Connection) -> None:
    # SUM and AVG of integers are numeric in PostgreSQL: read them as floats, as SQLite does
    await conn.set_type_codec("numeric", encoder=str, decoder=float, schema="pg_catalog",
                              format="text")


async def _release(conn: asyncpg.Connection) -> None:
    """Instead of asyncpg's reset query on every release (a round trip per job and read):
    our statements leave no session state (no LISTEN, no SET, advisory locks released where
    taken), so only a transaction left open is rolled back."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class PgStore(PgSearch, CoreQueries, ConsoleQueries, ReportQueries, HelpQueries, GrantQueries,
              PrivacyQueries, MailQueries, InboundQueries, RatingQueries, PresenceQueries,
              AvailabilityQueries, WebhookQueries, AttachmentQueries):
    _dialect = POSTGRESQL

    def __init__(self, url: str, *, clock: Clock | None = None,
                 site_cache_seconds: float = 0.0, mail_plan: MailPlan | None = None,
                 pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self._mail = mail_plan  # None: mail is off, nothing is queued
        self._clock = clock or SystemClock()
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._jobs: JobRunner | None = None
        # other nodes' changes to sites are seen within the cache's time to live
        self._sites = SiteCache(self._read_sites, site_cache_seconds)
        self._tickets = rows.TicketMemo(2048)
        self._webhooks = WebhookSubscriptions(self._read_webhook_subscriptions)
        self._quick: QuickPosts | None = None  # visitors' messages in batches (pg_messages)

    # -- lifecycle
    async def open(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            await pg_schema.migrate(conn)
        finally:
            await conn.close()
        self._pool = await asyncpg.create_pool(
            self.url, min_size=1, max_size=self._pool_size, init=_setup, reset=_release)
        self._jobs = JobRunner(self._pool)
        self._quick = QuickPosts(self._pool, alerts_on=self._mail is not None)

    async def close(self) -> None:
        if self._quick is not None:
            await self._quick.close()
            self._quick = None
        if self._jobs is not None:
            await self._jobs.close()
            self._jobs = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _ready(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        return self._pool

    # -- the four primitives of the query mixins
    async def _fetchall(self, sql: str, params: tuple[Any, ...] = (), *,
                        slow: bool = False) -> list[Any]:
        return list(await self._ready().fetch(translate(sql), *params))

    async def _fetchone(self, sql: str, params: tuple[Any, ...] = (), *,
                        slow: bool = False) -> Any:
        return await self._ready().fetchrow(translate(sql), *params)

    async def _fetchone_now(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return await self._fetchone(sql, params)

    async def _write(self, job: Callable[..., T], *args: Any, off_loop: bool = False) -> T:
        if self._jobs is None:
            raise RuntimeError("the store is not open")
        return await self._jobs.run(job, args, self._sites.invalidate)

    # -- the one write with a path of its own here: batches of one statement (pg_messages.py)
    async def post_visitor_message(self, post: VisitorPost, now: datetime,
                                   max_files: int = 10) -> PostResult:
        if self._quick is not None and post.conversation_id is not None \
                and not post.attachments \
                and not await self._webhooks.wanted(post.visitor.site_id, MESSAGE_EVENTS):
            stored = await self._quick.post(post, now)
            if stored is not None:
                return stored
        return await super().post_visitor_message(post, now, max_files)

    @property
    def writer_stats(self) -> dict[str, int]:
        """Transactions committed (``batches``: each job, each statement of messages) and
        what they stored (``jobs``: each job, each message), jobs run again (of them,
        ``deadlocks``' victims), and the messages stored in batches (``quick_posts``)."""
        jobs, retries, deadlocks = (self._jobs.jobs, self._jobs.retries, self._jobs.deadlocks
                                    ) if self._jobs else (0, 0, 0)
        stored, statements = (self._quick.stored, self._quick.statements) if self._quick \
            else (0, 0)
        return {"batches": jobs + statements, "jobs": jobs + stored, "retries": retries,
                "deadlocks": deadlocks, "quick_posts": stored}
