"""Support access grants end to end in Chromium: a verified visitor grants access in the
widget, the host backend checks it and records a use, the visitor sees the use, revokes, and a
second grant expires when the server's clock moves on (docs/access_grants.md)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.clocked import TimeShift
from tests.e2e.conftest import HostPages, host_page
from tests.e2e.steps import open_request
from tests.e2e.test_widget_a11y import serious_widget_violations
from tests.support import ServerProcess, Site, create_site, identity_secret, user_hash

HOST_API = "/api/v1/access-grants"


@pytest.fixture
def access_site(clocked: ServerProcess, host_pages: HostPages) -> Site:
    return create_site(clocked.db, origin=host_pages.origin)


def identified_page(host_pages: HostPages, server: ServerProcess, site: Site, user_id: str
                    ) -> str:
    name = uuid.uuid4().hex[:8]
    digest = user_hash(identity_secret(site), user_id)
    host_pages.add(f"/id-{name}.js", f'HelpWidget("identify", {{id: "{user_id}", '
                   f'name: "Ana", hash: "{digest}"}});')
    return host_pages.add(f"/access-{name}", host_page(
        server, site, body=f'<script src="/id-{name}.js"></script>'))


def open_access(widget: Locator) -> None:
    widget.get_by_role("button", name="Access and Security").click()
    expect(widget.get_by_role("heading", name="Access and Security")).to_be_visible()
    expect(widget.get_by_text("Loading…")).to_have_count(0)


def status(server: ServerProcess, site: Site, user_id: str) -> dict[str, object]:
    response = httpx.get(server.url + HOST_API, params={"user_id": user_id},
                         headers={"Authorization": f"Bearer {site.api_token()}"})
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


def test_grant_check_use_revoke_and_expire_in_the_widget(
    browser: Browser, host_pages: HostPages, clocked: ServerProcess, access_site: Site,
    shift: TimeShift,
) -> None:
    user_id = f"user-{uuid.uuid4().hex[:6]}"
    context = browser.new_context()
    page: Page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(identified_page(host_pages, clocked, access_site, user_id))
    widget = open_request(page, "Export is broken")
    widget.get_by_role("button", name="← All requests").click()

    open_access(widget)
    expect(widget.locator("ul.grants")).to_contain_text("Support has no access")
    assert serious_widget_violations(page) == []
    widget.get_by_label("24 hours").check()
    expect(widget.get_by_label("About").locator("option")).to_have_count(2)
    widget.get_by_label("About").select_option(index=1)
    widget.get_by_label("Reason (optional)").fill("<img src=x onerror=alert(1)> check export")
    widget.get_by_role("button", name="Grant access").click()
    expect(widget.get_by_role("status").filter(has_text="Access granted.")).to_be_visible()
    expect(widget.locator("ul.grants li.grant")).to_have_count(1)
    expect(widget.locator("ul.grants")).to_contain_text("<img src=x onerror=alert(1)> check export")

    checked = status(clocked, access_site, user_id)
    assert checked["active"] is True and checked["scope"] == "account"
    grant = checked["grants"][0]  # type: ignore[index]
    assert grant["hours"] == 24 and grant["ticket"] is not None
    used = httpx.post(f"{clocked.url}{HOST_API}/{checked['grant_id']}/events",
                      headers={"Authorization": f"Bearer {access_site.api_token()}"},
                      json={"action": "Opened the export settings", "actor": "Sam"})
    assert used.status_code == 201

    widget.get_by_role("button", name="← Back").click()
    open_access(widget)
    history = widget.locator("ul.history")
    expect(history).to_contain_text("Support used access · Sam")
    expect(history).to_contain_text("Opened the export settings")

    widget.get_by_role("button", name="Revoke").click()
    expect(widget.get_by_role("status").filter(has_text="Access revoked.")).to_be_visible()
    expect(widget.locator("ul.grants")).to_contain_text("Support has no access")
    expect(history).to_contain_text("Access revoked")
    assert status(clocked, access_site, user_id)["active"] is False

    widget.get_by_label("1 hour").check()
    widget.get_by_role("button", name="Grant access").click()
    expect(widget.locator("ul.grants li.grant")).to_have_count(1)
    assert status(clocked, access_site, user_id)["active"] is True
    shift.advance(3601)
    assert status(clocked, access_site, user_id)["active"] is False
    widget.get_by_role("button", name="← Back").click()
    open_access(widget)
    expect(widget.locator("ul.grants")).to_contain_text("Support has no access")
    expect(history.get_by_text("Access ended")).to_have_count(1)
    assert dialogs == []
    context.close()


def test_anonymous_visitors_see_no_access_settings(
    page: Page, host_pages: HostPages, clocked: ServerProcess, access_site: Site
) -> None:
    page.goto(host_pages.add(f"/anon-{uuid.uuid4().hex[:8]}", host_page(clocked, access_site)))
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    expect(widget.get_by_role("button", name="Start a new request")).to_be_visible()
    expect(widget.get_by_role("button", name="Access and Security")).to_have_count(0)
