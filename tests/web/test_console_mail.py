"""The console's mail pages (docs/console.md, docs/email.md) against a real server that
mails through a real SMTP server on loopback (tests/mail_sink.py): the ticket's "Mail"
section, the admin outbox with its failures and "Retry", the test mail, the site's sender
name, who may use them, and what the pages say with mail off (the app in process)."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.inprocess import InProcess
from tests.mail_sink import MailSink, wait_until
from tests.support import (
    ServerProcess,
    Site,
    console_client,
    create_site,
    csrf_of,
    with_store,
)
from tests.test_mail import address, mail_env, outbox, submit_form

pytestmark = pytest.mark.anyio
MARKUP = "<b>gone</b>"


@pytest.fixture(scope="module")
def mailer(tmp_path_factory: pytest.TempPathFactory, sink: MailSink) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("console-mail") / "widget.db",
                            env=mail_env(sink))
    process.start()
    yield process
    process.stop()


async def page_of(client: httpx.AsyncClient, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.text


def row_of(page: str, element_id: str) -> str:
    found = re.search(rf'<(?:tr|li) id="{element_id}"[^>]*>(.*?)</(?:tr|li)>', page, re.S)
    assert found, page
    return found.group(1)


async def test_the_ticket_lists_its_acknowledgement_and_its_state(
        mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db)
    to = address("ticket")
    submit_form(mailer, site, to)
    sink.wait_for(to)
    row, = outbox(mailer.db, to)
    wait_until(lambda: outbox(mailer.db, to)[0]["state"] == "sent", "the mail recorded sent")
    agent = await console_client(mailer, site, role="agent")
    async with contextlib.aclosing(agent):
        ticket = await page_of(agent, f"/console/tickets/{site.key}/1")
    section = ticket[ticket.index('id="ticket-mail"'):]
    item = row_of(section, f"ticket-mail-{row['id']}")
    assert "Acknowledgement" in item and to in item
    assert '<span class="mail-state">Sent</span>' in item
    assert "sent <time" in item and "1 attempt" in item


async def test_a_failed_mail_shows_its_reason_and_retry_delivers_it(
        mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db)
    to = address("failed")
    sink.refuse[to] = f"550 5.1.1 Mailbox {MARKUP}"
    submit_form(mailer, site, to)
    wait_until(lambda: outbox(mailer.db, to)[0]["state"] == "failed", "the mail given up")
    mail_id = outbox(mailer.db, to)[0]["id"]
    admin = await console_client(mailer, site)
    async with contextlib.aclosing(admin):
        listing = await page_of(admin, "/console/admin/mail?state=failed")
        item = row_of(listing, f"mail-{mail_id}")
        assert "Failed" in item and "550 5.1.1 Mailbox &lt;b&gt;gone&lt;/b&gt;" in item
        assert MARKUP not in listing  # what a mail server answers is text
        assert f'action="/console/admin/mail/{mail_id}/retry"' in item
        ticket = await page_of(admin, f"/console/tickets/{site.key}/1")
        assert "Last answer: 550 5.1.1 Mailbox &lt;b&gt;gone&lt;/b&gt;" in ticket
        sent = await page_of(admin, "/console/admin/mail?state=sent")
        assert f'id="mail-{mail_id}"' not in sent

        del sink.refuse[to]
        response = await admin.post(f"/console/admin/mail/{mail_id}/retry",
                                    data={"csrf": csrf_of(listing)})
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/console/admin/mail?done=retried"
        sink.wait_for(to)
        wait_until(lambda: outbox(mailer.db, to)[0]["state"] == "sent", "the retry sent")
        assert outbox(mailer.db, to)[0]["attempts"] == 2
        again = await admin.post(f"/console/admin/mail/{mail_id}/retry",
                                 data={"csrf": csrf_of(listing)})
        assert again.status_code == 404  # only a failed mail is retried
    assert len(sink.to(to)) == 1


async def test_a_test_mail_arrives_from_the_sites_sender_name(
        mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db, name="Acme Shop")
    admin = await console_client(mailer, site)
    async with contextlib.aclosing(admin):
        site_page = await page_of(admin, f"/console/admin/sites/{site.key}")
        assert 'id="site-sender-name"' in site_page and 'id="mail-off"' not in site_page
        saved = await admin.post(f"/console/admin/sites/{site.key}/mail", data={
            "csrf": csrf_of(site_page), "sender_name": "Acme  Helpdesk"})
        assert saved.status_code == 303, saved.text
        assert 'value="Acme Helpdesk"' in await page_of(admin, saved.headers["location"])
        too_long = await admin.post(f"/console/admin/sites/{site.key}/mail", data={
            "csrf": csrf_of(site_page), "sender_name": "x" * 101})
        assert too_long.status_code == 422 and 'id="site-sender-name-error"' in too_long.text

        to = address("test")
        queued = await admin.post("/console/admin/mail/test", data={
            "csrf": csrf_of(site_page), "site": site.key, "to": to})
        assert queued.status_code == 303, queued.text
        mail, = sink.wait_for(to)
        assert mail["Subject"] == "Test mail from Acme Shop"
        assert mail["From"].addresses[0].display_name == "Acme Helpdesk"
        assert mail["From"].addresses[0].addr_spec == "support@acme.test"
        row, = outbox(mailer.db, to)
        assert (row["kind"], row["conversation_id"]) == ("test", None)
        wait_until(lambda: outbox(mailer.db, to)[0]["state"] == "sent", "the test mail sent")
        listing = await page_of(admin, "/console/admin/mail")
        assert "Test mail" in row_of(listing, f"mail-{row['id']}")

        bad = await admin.post("/console/admin/mail/test", data={
            "csrf": csrf_of(site_page), "site": site.key, "to": "not an address"})
        assert bad.status_code == 422 and 'id="test-to-error"' in bad.text

    customer = address("customer")
    submit_form(mailer, site, customer)
    acknowledgement, = sink.wait_for(customer)
    assert acknowledgement["From"].addresses[0].display_name == "Acme Helpdesk"


async def test_mail_to_an_address_that_bounces_shows_as_bouncing(
        mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db)
    to = address("bounced")
    submit_form(mailer, site, to)
    sink.wait_for(to)
    wait_until(lambda: outbox(mailer.db, to)[0]["state"] == "sent", "the mail recorded sent")
    mail_id = outbox(mailer.db, to)[0]["id"]
    # what the inbound receiver records from a delivery status notification
    with_store(mailer.db, lambda store: store.mark_bouncing(to, f"5.1.1 {MARKUP} unknown"))
    admin = await console_client(mailer, site)
    async with contextlib.aclosing(admin):
        ticket = await page_of(admin, f"/console/tickets/{site.key}/1")
        item = row_of(ticket, f"ticket-mail-{mail_id}")
        assert '<span class="mail-state">Bouncing</span>' in item
        listing = await page_of(admin, "/console/admin/mail")
        assert '<td class="mail-state">Bouncing</td>' in row_of(listing, f"mail-{mail_id}")
        bounces = listing[listing.index('id="bounces"'):]
        assert to in bounces and "5.1.1 &lt;b&gt;gone&lt;/b&gt; unknown" in bounces
        assert MARKUP not in listing


async def test_agents_who_are_not_admins_get_403(mailer: ServerProcess, sink: MailSink
                                                 ) -> None:
    site = create_site(mailer.db)
    agent = await console_client(mailer, site, role="agent")
    async with contextlib.aclosing(agent):
        inbox = await page_of(agent, "/console")
        assert 'href="/console/admin/mail"' not in inbox
        csrf = csrf_of(inbox)
        assert (await agent.get("/console/admin/mail")).status_code == 403
        for path, data in (("/console/admin/mail/1/retry", {}),
                           ("/console/admin/mail/test", {"site": site.key,
                                                         "to": "x@example.com"}),
                           (f"/console/admin/sites/{site.key}/mail", {"sender_name": "X"})):
            response = await agent.post(path, data={"csrf": csrf, **data})
            assert response.status_code == 403, (path, response.text)
    assert outbox(mailer.db, "x@example.com") == []


async def test_posts_without_the_token_or_from_another_site_are_refused(
        mailer: ServerProcess, sink: MailSink) -> None:
    site: Site = create_site(mailer.db)
    to = address("forged")
    admin = await console_client(mailer, site)
    async with contextlib.aclosing(admin):
        listing = await page_of(admin, "/console/admin/mail")
        assert 'href="/console/admin/mail"' in listing  # in the admin navigation
        no_token = await admin.post("/console/admin/mail/test",
                                    data={"site": site.key, "to": to})
        assert no_token.status_code == 403 and "csrf_failed" in no_token.text
        cross = await admin.post("/console/admin/mail/test",
                                 data={"csrf": csrf_of(listing), "site": site.key, "to": to},
                                 headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403 and "cross_origin" in cross.text
        renamed = await admin.post(f"/console/admin/sites/{site.key}/mail",
                                   data={"sender_name": "Evil"})
        assert renamed.status_code == 403
    assert outbox(mailer.db, to) == []


async def help_form(client: httpx.AsyncClient, site: Site, email: str) -> None:
    page = await page_of(client, f"/help/new?site={site.key}")
    fields = {name: html.unescape(value) for name, value in re.findall(
        r'name="(site|form_token|client_msg_id)" value="([^"]*)"', page)}
    response = await client.post("/help/new", data={
        **fields, "name": "Ada", "email": email, "subject": "Export fails",
        "description": "The CSV export button does nothing.", "severity": "high"})
    assert response.status_code == 303, response.text


async def test_with_mail_off_the_pages_say_so(inprocess: InProcess) -> None:
    site = await inprocess.create_site()
    admin = await console_client(inprocess, site)
    async with contextlib.aclosing(admin):
        async with inprocess.client() as visitor:
            await help_form(visitor, site, "ana@example.com")
        ticket = await page_of(admin, f"/console/tickets/{site.key}/1")
        section = ticket[ticket.index('id="ticket-mail"'):]
        assert "Mail is off: WIDGET_SMTP_URL is not set" in section
        listing = await page_of(admin, "/console/admin/mail")
        assert "Mail is off: WIDGET_SMTP_URL is not set" in html.unescape(listing)
        assert 'id="mail-off"' in await page_of(admin, "/console/admin/sites")
        assert 'id="mail-off"' in await page_of(admin, f"/console/admin/sites/{site.key}")
        refused = await admin.post("/console/admin/mail/test", data={
            "csrf": csrf_of(listing), "site": site.key, "to": "ana@example.com"})
        assert refused.status_code == 422
        assert "Mail is off" in refused.text
        retry = await admin.post("/console/admin/mail/1/retry", data={"csrf": csrf_of(listing)})
        assert retry.status_code == 422 and 'id="retry-error"' in retry.text
    assert outbox(inprocess.db, "ana@example.com") == []
