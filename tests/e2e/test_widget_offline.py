"""Delivery survives a dead server and a page reload: nothing lost, nothing doubled."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import HostPages, host_page
from tests.support import ServerProcess, Site, create_site


@pytest.fixture
def own_server(tmp_path: Path, host_pages: HostPages) -> Iterator[tuple[ServerProcess, Site]]:
    process = ServerProcess(tmp_path / "widget.db")
    site = create_site(process.db, origin=host_pages.origin)
    process.start()
    yield process, site
    process.stop()


def visitor_bodies(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT body FROM messages WHERE author_type = 'visitor' ORDER BY seq").fetchall()
    return [row[0] for row in rows]


def test_messages_written_while_the_server_is_down_arrive_once_in_order(
    page: Page, host_pages: HostPages, own_server: tuple[ServerProcess, Site]
) -> None:
    server, site = own_server
    page.goto(host_pages.add("/offline", host_page(server, site)))
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    widget.get_by_role("button", name="Start a new request").click()
    widget.get_by_label("Describe the problem").fill("Sync stopped working")
    widget.get_by_role("button", name="Send").click()
    log = widget.get_by_role("log")
    expect(log).to_contain_text("Request #1 received")

    server.kill()
    expect(widget.get_by_role("status")).to_contain_text("Connecting")
    composer = widget.get_by_label("Your message")
    for n in (1, 2, 3):
        composer.fill(f"offline note {n}")
        composer.press("Enter")
    expect(log.get_by_text("Not sent yet, will retry")).to_have_count(3)

    page.reload()  # the outbox is in localStorage; the widget itself comes from the cache
    widget.get_by_role("button", name="Help").click()
    widget.locator("ul.tickets button").first.click()
    expect(log.get_by_text("Not sent yet, will retry")).to_have_count(3)

    server.start()
    page.evaluate("window.dispatchEvent(new Event('online'))")  # as the browser does
    for n in (1, 2, 3):
        expect(log.get_by_text(f"offline note {n}")).to_have_count(1)
    expect(log.get_by_text("Sent", exact=True)).to_have_count(4)
    assert visitor_bodies(server.db) == [
        "Sync stopped working", "offline note 1", "offline note 2", "offline note 3"]

    page.reload()
    widget.get_by_role("button", name="Help").click()
    widget.locator("ul.tickets button").first.click()
    expect(log.locator(".message")).to_have_count(5)  # four of ours and the acknowledgement
    assert len(visitor_bodies(server.db)) == 4
