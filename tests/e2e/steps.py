"""Widget steps several browser tests share."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect


def open_request(page: Page, description: str, confirmation: str = "received") -> Locator:
    """Open the panel, start a request with ``description`` and wait for the receipt in the
    conversation's log; return the widget."""
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    widget.get_by_role("button", name="Start a new request").click()
    widget.get_by_label("Describe the problem").fill(description)
    widget.get_by_role("button", name="Send").click()
    expect(widget.get_by_role("log")).to_contain_text(confirmation)
    return widget
