"""Get replies by email in Chromium: the widget offers it only when the server mails, the
visitor types an address, the link in the mail confirms it, and the offer is gone after a
reload while the next agent reply is mailed (docs/email.md)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import HostPages, host_page
from tests.e2e.steps import open_request
from tests.mail_sink import MailSink, text_of
from tests.support import ServerProcess, Site, create_site
from tests.test_mail import api, mail_env

LINK = re.compile(r"(http://\S+/api/widget/v1/email-confirmations/\S+)")


@pytest.fixture(scope="module")
def mailer(tmp_path_factory: pytest.TempPathFactory, sink: MailSink
           ) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("widget-mail") / "widget.db",
                            env=mail_env(sink))
    process.start()
    yield process
    process.stop()


def page_of(host_pages: HostPages, server: ServerProcess, site: Site) -> str:
    return host_pages.add(f"/mail-{uuid.uuid4().hex[:8]}", host_page(server, site))


def test_a_visitor_confirms_an_address_and_gets_the_next_reply_by_mail(
        page: Page, host_pages: HostPages, mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db, origin=host_pages.origin)
    url = page_of(host_pages, mailer, site)
    page.goto(url)
    widget = open_request(page, "The export is empty")
    to = f"ana-{uuid.uuid4().hex[:8]}@example.com"
    widget.get_by_role("button", name="Get replies by email").click()
    widget.get_by_label("Your email").fill(to)
    widget.get_by_role("button", name="Send me a link").click()
    # the hint, not the live region that announces the same words 50 ms later
    expect(widget.get_by_role("paragraph").filter(has_text=f"We sent a link to {to}.")
           ).to_be_visible()

    link = LINK.search(text_of(sink.wait_for(to)[0])[0]).group(1)  # type: ignore[union-attr]
    confirm = page.context.new_page()  # the visitor opens the mail's link and clicks
    confirm.goto(link)
    confirm.get_by_role("button", name="Confirm this address").click()
    expect(confirm.get_by_role("heading", name="Address confirmed")).to_be_visible()
    confirm.close()
    page.reload()
    widget = page.locator("help-widget")
    widget.get_by_role("button", name="Help").click()
    widget.get_by_role("button", name=re.compile("#1")).click()
    expect(widget.get_by_role("log")).to_contain_text("The export is empty")
    expect(widget.get_by_role("button", name="Get replies by email")).to_have_count(0)
    widget.get_by_role("button", name="Email me this conversation").click()
    expect(widget.get_by_role("paragraph").filter(has_text="We emailed you this conversation.")
           ).to_be_visible()
    transcript = sink.wait_for(to, 2)[1]
    assert transcript["Subject"] == "[#1] Transcript: The export is empty"

    page.close()  # the reply stays unread, so it is mailed
    with api(mailer, site) as client:
        client.post("/api/v1/tickets/1/messages", json={"body": "Fixed in 2.4"})
    assert "Fixed in 2.4" in text_of(sink.wait_for(to, 3)[2])[0]


def test_without_mail_the_widget_offers_none(page: Page, host_pages: HostPages,
                                             server: ServerProcess, widget_site: Site) -> None:
    page.goto(page_of(host_pages, server, widget_site))
    widget = open_request(page, "No mail here")
    expect(widget.get_by_role("heading", name="#1", exact=True)).to_be_visible()
    expect(widget.get_by_role("button", name="Get replies by email")).to_have_count(0)
    expect(widget.get_by_role("button", name="Email me this conversation")).to_have_count(0)
