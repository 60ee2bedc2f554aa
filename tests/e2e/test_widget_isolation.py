"""The widget is a polite guest: strict CSP, hostile CSS, its own z-index and side."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.conftest import HostPages, host_page
from tests.e2e.steps import open_request
from tests.support import ServerProcess, Site

WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
    (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI), true);
"""


def collect_console_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def round_trip(page: Page) -> None:
    open_request(page, "Works under CSP?")


def test_strict_csp_cross_origin_page_has_no_violations_and_no_errors(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    ws_server = server.url.replace("http://", "ws://")
    csp = (f"default-src 'self'; script-src 'self' {server.url}; "
           f"connect-src {server.url} {ws_server}; style-src 'self'")
    url = host_pages.add(f"/csp-{uuid.uuid4().hex[:8]}", host_page(server, widget_site),
                         {"Content-Security-Policy": csp})
    page.add_init_script(WATCH_VIOLATIONS)
    errors = collect_console_errors(page)
    page.goto(url)
    round_trip(page)
    assert page.evaluate("window.__violations") == []
    assert errors == []
    assert page.evaluate("document.cookie") == ""
    globals_added = page.evaluate("""() => {
        const frame = document.createElement("iframe");
        document.documentElement.append(frame);
        const clean = new Set(Object.getOwnPropertyNames(frame.contentWindow));
        frame.remove();
        return Object.getOwnPropertyNames(window).filter((name) => !clean.has(name)
            && !name.startsWith("__"));
    }""")
    assert globals_added == ["HelpWidget"]
    assert page.evaluate("document.title") == "Host"
    assert page.locator("[style]").count() == 0


HOSTILE_CSS = """
* { all: unset !important; }
button { display: none !important; }
help-widget { display: none !important; visibility: hidden !important; }
div { z-index: 2147483647 !important; }
html, body { font-size: 4px !important; color: #fff !important; }
.cover { position: fixed !important; top: 0; left: 0; width: 40vw; height: 100vh;
         z-index: 99999 !important; display: block !important; }
"""


def test_hostile_css_cannot_hide_or_break_it(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    host_pages.add("/hostile.css", HOSTILE_CSS, {"Content-Type": "text/css"})
    html = host_page(server, widget_site, head='<link rel="stylesheet" href="/hostile.css">',
                     body='<div class="cover"></div><button>host button</button>')
    page.goto(host_pages.add(f"/hostile-{uuid.uuid4().hex[:8]}", html))
    launcher = page.locator("help-widget").get_by_role("button", name="Help")
    expect(launcher).to_be_visible()
    box = launcher.bounding_box()
    assert box is not None and box["width"] >= 44 and box["height"] >= 44  # a usable target
    round_trip(page)  # the click above lands on the launcher, not on the cover
    text = page.locator("help-widget").get_by_role("log").locator(".message").first
    font_size = text.evaluate("(el) => parseFloat(getComputedStyle(el).fontSize)")
    assert font_size >= 12


def test_z_index_and_side_are_configurable(
    page: Page, host_pages: HostPages, server: ServerProcess, widget_site: Site
) -> None:
    host_pages.add("/topmost.css", ".topmost { position: fixed; left: 0; bottom: 0; width: 200px;"
                   " height: 200px; z-index: 2147483647; background: #eee; }",
                   {"Content-Type": "text/css"})
    html = host_page(server, widget_site, head='<link rel="stylesheet" href="/topmost.css">',
                     body='<div class="topmost">a host overlay</div>',
                     side="left", z_index="2147483647")
    page.goto(host_pages.add(f"/left-{uuid.uuid4().hex[:8]}", html))
    launcher = page.locator("help-widget").get_by_role("button", name="Help")
    expect(launcher).to_be_visible()
    box: Any = launcher.bounding_box()
    assert box["x"] < 100  # on the left
    z = page.evaluate("getComputedStyle(document.querySelector('help-widget')).zIndex")
    assert z == "2147483647"
    launcher.click()  # not intercepted by the host's overlay of equal z-index
    expect(page.locator("help-widget").get_by_role("dialog")).to_be_visible()
    panel: Any = page.locator("help-widget").get_by_role("dialog").bounding_box()
    assert panel["x"] < 100
