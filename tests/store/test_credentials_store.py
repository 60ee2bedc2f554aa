"""Credential checks in the SQLite store, with a clock moved by hand: the sign-in throttle's
reservation under concurrency, API tokens of integration agents made before migration 0010,
and erasure marks that refuse older credentials and are dropped when none can be left."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from tests.pg import BACKENDS
from tests.store.helpers import shop
from widget_server.api_tokens import hash_api_token
from widget_server.clock import FakeClock
from widget_server.console_auth import lockout
from widget_server.errors import Unauthorized
from widget_server.models import Visitor
from widget_server.store.base import VisitorPost
from widget_server.store.privacy_records import ErasureSelector
from widget_server.store.sqlite import SQLiteStore

pytestmark = [pytest.mark.anyio,
              pytest.mark.parametrize("backend", BACKENDS, indirect=True)]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


async def test_attempts_at_once_are_each_counted_before_any_is_checked(
    store: SQLiteStore, clock: FakeClock
) -> None:
    keys = ["email:a", "client:b"]
    waits = await asyncio.gather(*[store.reserve_login_attempt(keys, lockout)
                                   for _ in range(20)])
    let_through = [wait for wait in waits if wait == timedelta(0)]
    assert len(let_through) == 3  # the free failures; the fourth waits 1 s
    assert all(wait == timedelta(seconds=1) for wait in waits if wait)
    assert await store.login_failures("email:a") == (3, T0)
    clock.advance(timedelta(seconds=1))
    assert await store.reserve_login_attempt(keys, lockout) == timedelta(0)
    assert await store.reserve_login_attempt(keys, lockout) == timedelta(seconds=2)
    # another account from the same address waits too: the address is counted
    assert await store.reserve_login_attempt(["email:c", "client:b"], lockout) > timedelta(0)


async def test_tokens_of_integration_agents_made_before_0010_keep_working(
    store: SQLiteStore, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("an upgrade of a SQLite file made before 0010")
    site = await shop(store)
    agent, _ = await store.ensure_agent("crm@integrations.invalid", "CRM", "agent", None)
    await store.create_api_token("crm", hash_api_token("wst_crm"), site.id, agent.id)
    human, _ = await store.ensure_agent("dana@example.com", "Dana", "agent", "scrypt$x")
    await store.create_api_token("dana", hash_api_token("wst_dana"), site.id, human.id)
    with contextlib.closing(sqlite3.connect(store.path)) as conn, conn:  # as before 0010
        conn.execute("DELETE FROM schema_migrations WHERE version >= 10")
        conn.execute("DROP TABLE erased_visitors")
        conn.execute("DELETE FROM agent_sites")
        conn.execute("DROP TABLE mail_outbox")  # 0011 and 0012, which follow
        conn.execute("ALTER TABLE conversations DROP COLUMN mail_to")
        conn.execute("DROP TABLE mail_bounces")
        conn.execute("DROP INDEX sites_support_address")
        conn.execute("ALTER TABLE sites DROP COLUMN support_address")
        conn.execute("ALTER TABLE tickets DROP COLUMN follow_up_of_id")
        conn.execute("ALTER TABLE sites DROP COLUMN mail_sender_name")  # 0014
        conn.execute("ALTER TABLE visitors DROP COLUMN mail_confirmed")  # 0013
        conn.execute("DROP TABLE agent_mail_prefs")
        conn.execute("DROP TABLE ratings")  # 0016
        conn.execute("ALTER TABLE tickets DROP COLUMN rating")
        conn.execute("ALTER TABLE tickets DROP COLUMN rated_at")
        conn.execute("ALTER TABLE sites DROP COLUMN ratings_enabled")
        conn.execute("DROP TABLE agent_presence")  # 0018 (its CHECK edit is idempotent)
        for table in ("webhook_attempts", "webhook_deliveries", "webhook_endpoints"):  # 0017
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DROP TABLE attachments")  # 0015
        conn.execute("ALTER TABLE messages DROP COLUMN attachments")
        for column in ("max_bytes", "max_files", "types", "keep_metadata"):
            conn.execute(f"ALTER TABLE sites DROP COLUMN attachment_{column}")
    upgraded = SQLiteStore(store.path)  # the next start migrates
    await upgraded.open()
    try:
        assert await upgraded.find_api_agent(hash_api_token("wst_crm")) is not None
        assert await upgraded.find_api_agent(hash_api_token("wst_dana")) is None  # no member
    finally:
        await upgraded.close()


async def test_an_erasure_refuses_older_credentials_until_none_can_be_left(
    store: SQLiteStore, clock: FakeClock
) -> None:
    site = await shop(store)
    visitor = Visitor(id="v_erin", site_id=site.id, user_id=None, name="Erin",
                      email="erin@example.com", verified=False, since=T0)

    def post(who: Visitor, message: str) -> VisitorPost:
        return VisitorPost(visitor=who, conversation_id=None, client_msg_id=message,
                           body="hello", severity=None, subject=None)

    await store.post_visitor_message(post(visitor, "m1"), clock.now())
    clock.advance(timedelta(minutes=5))
    await store.erase_visitor(site.id, ErasureSelector("visitor", "v_erin"), "cli")
    assert await store.visitor_erased("v_erin", T0)
    with pytest.raises(Unauthorized):
        await store.post_visitor_message(post(visitor, "m2"), clock.now())
    later = Visitor(id="v_erin", site_id=site.id, user_id=None, name=None, email=None,
                    verified=False, since=clock.now() + timedelta(seconds=1))
    assert not await store.visitor_erased("v_erin", later.since)  # type: ignore[arg-type]
    await store.post_visitor_message(post(later, "m3"), clock.now())
    clock.advance(timedelta(days=31))
    assert await store.forget_erased_visitors(clock.now() - timedelta(days=30)) == 1
    assert not await store.visitor_erased("v_erin", T0)
