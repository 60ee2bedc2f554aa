"""The console's webhook page in a real browser: an admin registers an endpoint with the
form, copies the secret shown once, sends a test event and reads the delivery log; axe finds
no serious violation and the page's strict CSP refuses nothing."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import uuid

from playwright.sync_api import Browser, expect

from tests.e2e.test_console_browser import serious_violations
from tests.mail_sink import wait_until
from tests.support import ServerProcess, create_site, run_cli


def attempted(server: ServerProcess, site_key: str) -> bool:
    with contextlib.closing(sqlite3.connect(f"file:{server.db}?mode=ro", uri=True)) as conn:
        return conn.execute(
            "SELECT 1 FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id"
            " JOIN sites s ON s.id = d.site_id WHERE s.key = ?", (site_key,)).fetchone() is not None


def test_an_admin_registers_a_webhook_and_reads_its_delivery_log(
        browser: Browser, server: ServerProcess) -> None:
    site = create_site(server.db)
    email, password = f"admin-{uuid.uuid4().hex[:8]}@example.com", "pw-" + uuid.uuid4().hex
    run_cli("agent", "add", "--db", str(server.db), "--email", email, "--password", password,
            "--name", "Ada Admin", "--role", "admin")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    try:
        page.goto(f"{server.url}/console/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"{server.url}/console/admin/sites/{site.key}")
        page.get_by_role("link", name="Webhooks").click()
        expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
        assert serious_violations(page) == []  # the empty page with its form

        # the session's server refuses private destinations: a host name passes the form and
        # is checked when the delivery is sent (it does not resolve here)
        page.get_by_label("URL").fill("https://hooks.example.invalid/in")
        page.get_by_label("ticket.created", exact=True).check()
        page.get_by_label("message.created", exact=True).check()
        page.get_by_role("button", name="Register").click()
        secret = page.locator("#webhook-secret")
        expect(secret).to_have_text(re.compile(r"^whsec_[A-Za-z0-9+/]{32}$"))
        assert serious_violations(page) == []

        page.get_by_role("button", name="Send a test event").click()
        expect(page.locator(".admin-notice")).to_contain_text("A test event is queued")
        wait_until(lambda: attempted(server, site.key), "the sender's first attempt")
        page.reload()
        row = page.locator("#deliveries tbody tr").first
        expect(row.locator("details.attempt summary")).to_contain_text("does not resolve")
        expect(row).to_contain_text("webhook.test")
        assert serious_violations(page) == []
        assert refused == []
    finally:
        context.close()
