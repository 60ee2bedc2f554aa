"""The widget and the idle timeout: its heartbeat keeps one socket open; a page that cannot
ping (frozen timers) is closed with 1001 and reconnects, resumes and keeps working."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, WebSocket, expect

from tests.e2e.conftest import HostPages, host_page
from tests.e2e.steps import open_request
from tests.support import ServerProcess, Site, create_site


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory, host_pages: HostPages
                ) -> Iterator[tuple[ServerProcess, Site]]:
    process = ServerProcess(tmp_path_factory.mktemp("idle") / "widget.db",
                            env={"WIDGET_WS_IDLE_TIMEOUT": "1"})
    site = create_site(process.db, origin=host_pages.origin)
    process.start()
    yield process, site
    process.stop()


def wait_until(page: Page, condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Let the browser run until ``condition`` holds (events reach Python while it waits)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        page.wait_for_timeout(50)


def open_idle_request(page: Page, host_pages: HostPages, server: ServerProcess, site: Site) -> None:
    page.goto(host_pages.add(f"/idle-{uuid.uuid4().hex[:8]}", host_page(server, site)))
    open_request(page, "Idle socket check", "Request #1 received")


def test_the_heartbeat_keeps_one_socket_open_past_the_idle_timeout(
    page: Page, host_pages: HostPages, idle_server: tuple[ServerProcess, Site]
) -> None:
    server, site = idle_server
    sockets: list[WebSocket] = []
    pongs: list[str] = []

    def watch(ws: WebSocket) -> None:
        sockets.append(ws)
        ws.on("framereceived", lambda payload: pongs.append(str(payload))
              if '"pong"' in str(payload) else None)

    page.on("websocket", watch)
    open_idle_request(page, host_pages, server, site)
    wait_until(page, lambda: len(pongs) >= 9)  # ~3 s of pings every 1/3 s: three timeouts
    assert len(sockets) == 1 and not sockets[0].is_closed()


def test_a_page_that_cannot_ping_is_closed_and_reconnects_and_resumes(
    page: Page, host_pages: HostPages, tmp_path: Path
) -> None:
    server = ServerProcess(tmp_path / "widget.db", env={"WIDGET_WS_IDLE_TIMEOUT": "1"})
    site = create_site(server.db, origin=host_pages.origin)
    server.start()
    try:
        page.add_init_script("window.setInterval = () => 0;")  # timers of a frozen page
        sockets: list[WebSocket] = []
        page.on("websocket", lambda ws: sockets.append(ws))
        open_idle_request(page, host_pages, server, site)
        wait_until(page, lambda: len(sockets) >= 2 and sockets[0].is_closed())

        reply = httpx.post(f"{server.url}/api/v1/tickets/1/messages",
                           headers={"Authorization": f"Bearer {site.api_token()}"},
                           json={"body": "Replied between reconnects"})
        assert reply.status_code == 201
        widget = page.locator("help-widget")
        log = widget.get_by_role("log")
        expect(log).to_contain_text("Replied between reconnects")
        composer = widget.get_by_label("Your message")
        composer.fill("Still here")
        composer.press("Enter")
        expect(log.get_by_text("Sent", exact=True)).to_have_count(2)
        expect(log.get_by_text("Replied between reconnects")).to_have_count(1)
    finally:
        server.stop()
