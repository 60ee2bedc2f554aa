"""The site cache (store/site_cache.py): a change made through this process is seen at once,
one made by another process within WIDGET_SITE_CACHE_SECONDS, a new site at once."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from tests.support import ServerProcess, create_site, start_session
from widget_server.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


def _external(db: Path, sql: str, *params: object) -> None:
    """A write by another connection, as `widget-server site ...` in another process does."""
    with sqlite3.connect(db) as conn:
        conn.execute(sql, params)
    conn.close()


async def test_changes_in_this_process_are_seen_at_once_others_after_the_ttl(
        tmp_path: Path) -> None:
    db = tmp_path / "widget.db"
    store = SQLiteStore(str(db), site_cache_seconds=0.5)
    await store.open()
    try:
        site, _ = await store.ensure_site("Shop", ["https://shop.test"])
        assert (await store.get_site_by_key(site.key)) == site  # a site made here: at once
        _external(db, "UPDATE sites SET identity_mode = 'required' WHERE id = ?", site.id)
        cached = await store.get_site_by_key(site.key)
        assert cached is not None and cached.identity_mode == "optional"  # within the TTL
        changed = await store.update_site(site.id, origins=["https://other.test"])  # console
        for found in (await store.get_site_by_key(site.key), await store.get_site(site.id),
                      (await store.list_sites())[0]):
            assert found == changed
            assert found.allowed_origins == ("https://other.test",)
            assert found.identity_mode == "required"  # read again, with the other change
        _external(db, "UPDATE sites SET grant_max_hours = 1 WHERE id = ?", site.id)
        await store.set_grant_max_hours(site.id, 168)  # every site write of this process
        assert (await store.get_site(site.id)).grant_max_hours == 168  # type: ignore[union-attr]
        _external(db, "UPDATE sites SET grant_max_hours = 24 WHERE id = ?", site.id)
        deadline = time.monotonic() + 10
        while (await store.get_site(site.id)).grant_max_hours != 24:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the change was not seen after the TTL"
            await asyncio.sleep(0.05)  # between two checks of the condition
        # a key or an origin not cached is looked up again: a site made elsewhere just now
        _external(db, "INSERT INTO sites (key, name, allowed_origins, identity_secret,"
                  " created_at) VALUES ('site_new', 'New', '[\"https://new.test\"]', 'x',"
                  " '2026-01-01T00:00:00+00:00')")
        assert (await store.get_site_by_key("site_new")) is not None
        assert await store.get_site_by_key("site_nope") is None
    finally:
        await store.close()


async def test_new_visitor_counter_does_not_empty_the_cache(tmp_path: Path) -> None:
    db = tmp_path / "widget.db"
    store = SQLiteStore(str(db), site_cache_seconds=60)
    await store.open()
    try:
        site, _ = await store.ensure_site("Shop", ["https://shop.test"])
        await store.get_site(site.id)
        _external(db, "UPDATE sites SET name = 'Renamed' WHERE id = ?", site.id)
        _external(db, "UPDATE sites SET ticket_counter = ticket_counter WHERE id = ?", site.id)
        # an UPDATE through this process's writer that only bumps the ticket counter (every
        # new request does) keeps the cached list; any other column change drops it
        await store._write(lambda conn: conn.execute(
            "UPDATE sites SET ticket_counter = ticket_counter + 1 WHERE id = ?", (site.id,)))
        assert (await store.get_site(site.id)).name == "Shop"  # type: ignore[union-attr]
        await store._write(lambda conn: conn.execute(
            "UPDATE sites SET tier_names = tier_names WHERE id = ?", (site.id,)))
        assert (await store.get_site(site.id)).name == "Renamed"  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_a_running_server_sees_another_process_change_within_the_ttl(
        tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "widget.db", env={"WIDGET_SITE_CACHE_SECONDS": "1"})
    create_site(server.db)  # the database exists before the server starts
    server.start()
    try:
        site = create_site(server.db)  # made after the start: usable at once
        assert (await start_session(server, site))["visitor"]["verified"] is False
        _external(site.db, "UPDATE sites SET identity_mode = 'required' WHERE key = ?", site.key)
        changed_at = time.monotonic()
        while True:
            try:
                await start_session(server, site)
            except AssertionError as refused:  # start_session asserts a 200
                assert "identity_required" in str(refused)
                break
            assert time.monotonic() - changed_at < 2.5, "the change was not seen in time"
            await asyncio.sleep(0.1)
    finally:
        server.stop()
