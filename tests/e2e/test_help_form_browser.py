"""The Help Form works in a browser with JavaScript turned off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support import ServerProcess, Site


@pytest.fixture
def no_js_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(java_script_enabled=False)
    yield context.new_page()
    context.close()


def test_help_form_without_javascript(no_js_page: Page, server: ServerProcess,
                                      site: Site) -> None:
    page = no_js_page
    page.goto(f"{server.url}/help/new?site={site.key}")
    page.get_by_label("Your name").fill("Ada")
    page.get_by_label("Email address").fill("ada@example.com")
    page.get_by_label("Subject (optional)").fill("Cannot export")
    page.get_by_label("Description").fill("The export button does nothing.")
    page.get_by_label("High").check()
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("heading", name="Request #1 received")).to_be_visible()
    expect(page.get_by_text("We'll reply by")).to_be_visible()
    assert "/help/requests/" in page.url
    page.get_by_label("Your reply").fill("More detail: it started today.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_text("More detail: it started today.")).to_be_visible()
