"""Browser tests: the system Chromium driven by Playwright, a real server, real host pages.

Host pages are served by a tiny HTTP server of their own on another port, so the widget is
always embedded cross-origin, as on a customer's site.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.support import ServerProcess, Site, create_site, free_port

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    return os.environ.get("WIDGET_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")


@dataclass
class HostPages:
    """Pages of a pretend customer site, each with the headers the test wants."""

    port: int
    pages: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, path: str, content: str, headers: dict[str, str] | None = None) -> str:
        kind = "text/javascript" if path.endswith(".js") else "text/html; charset=utf-8"
        self.pages[path] = (content, {"Content-Type": kind, **(headers or {})})
        return self.origin + path


def _handler(pages: HostPages) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = pages.pages.get(self.path.split("?")[0])
            if found is None:
                self.send_error(404)
                return
            html, headers = found
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="session")
def host_pages() -> Iterator[HostPages]:
    pages = HostPages(port=free_port())
    pages.add("/q.js", QUEUE_STUB)
    pages.add("/favicon.ico", "", {"Content-Type": "image/x-icon"})
    httpd = ThreadingHTTPServer(("127.0.0.1", pages.port), _handler(pages))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield pages
    httpd.shutdown()
    httpd.server_close()


# Module scope, not session: the sync driver keeps an event loop running while it is open,
# which would stop the asyncio tests of other modules from starting their own.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    executable = chromium_path()
    if executable is None:
        if os.environ.get("WIDGET_REQUIRE_BROWSER") == "1":
            pytest.fail("WIDGET_REQUIRE_BROWSER=1 but no Chromium was found")
        pytest.skip("no Chromium on this machine (apt-get install chromium); browser tests skipped")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(viewport={"width": 1280, "height": 800})
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def widget_site(server: ServerProcess, host_pages: HostPages) -> Site:
    """A site allowed on the host pages' origin."""
    return create_site(server.db, origin=host_pages.origin)


def snippet(server: ServerProcess, site: Site, **data: str) -> str:
    attributes = "".join(f' data-{name.replace("_", "-")}="{value}"'
                         for name, value in data.items())
    return (
        f'<script async src="{server.url}/widget.js" data-site="{site.key}"{attributes}></script>'
    )


QUEUE_STUB = ("window.HelpWidget=window.HelpWidget||function(){(HelpWidget.q=HelpWidget.q||[])"
              ".push(arguments)};")


def host_page(server: ServerProcess, site: Site, *, head: str = "", body: str = "",
              **data: str) -> str:
    """A plain host page; the queue stub is an external file so strict CSP pages work too."""
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Host</title>"
            f'<script src="/q.js"></script>{head}'
            f"</head><body><main><h1>Host app</h1>{body}</main>"
            f"{snippet(server, site, **data)}</body></html>")
