"""Outbound mail against a real server subprocess and a real SMTP server on loopback
(aiosmtpd): the Help Form acknowledgement, agent replies after the delay, batching, read
replies, internal notes, a solved ticket, a mail server that is down, refuses, or comes back
after the server was killed."""

from __future__ import annotations

import html
import re
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clocked import TimeShift
from tests.mail_sink import MailSink, text_of, wait_until
from tests.support import (
    ServerProcess,
    Site,
    VisitorClient,
    create_site,
    identity_secret,
    run_cli,
    start_session,
    user_hash,
)

XSS = "<script>alert(1)</script>"
FROM = "Acme Support <support@acme.test>"


def mail_env(sink: MailSink, **extra: str) -> dict[str, str]:
    return {"WIDGET_SMTP_URL": sink.url, "WIDGET_MAIL_FROM": FROM,
            "WIDGET_MAIL_DELAY_SECONDS": "1", **extra}


@pytest.fixture(scope="module")
def mailer(tmp_path_factory: pytest.TempPathFactory, sink: MailSink, shift: TimeShift
           ) -> Iterator[ServerProcess]:
    """A server that mails through the module's sink; ``shift`` moves its clock."""
    process = ServerProcess(tmp_path_factory.mktemp("mail") / "widget.db",
                            env=mail_env(sink, WIDGET_MAIL_REPLY_DOMAIN="reply.acme.test"),
                            launcher=shift.launcher)
    process.start()
    yield process
    process.stop()


def submit_form(server: ServerProcess, site: Site, email: str, subject: str = "Export fails"
                ) -> str:
    """A Help Form request; the private follow link it redirects to."""
    with httpx.Client(base_url=server.url) as browser:
        page = browser.get("/help/new", params={"site": site.key}).text
        fields = {name: html.unescape(re.search(
            rf'name="{name}" value="([^"]*)"', page).group(1))  # type: ignore[union-attr]
            for name in ("site", "form_token", "client_msg_id")}
        response = browser.post("/help/new", data={
            **fields, "name": "Ada", "email": email, "subject": subject,
            "description": "The CSV export button does nothing.", "severity": "high"})
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def outbox(db: Path, address: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(
            "SELECT * FROM mail_outbox WHERE to_address = ? ORDER BY id", (address,))]
    finally:
        conn.close()


def api(server: ServerProcess, site: Site) -> httpx.Client:
    return httpx.Client(base_url=server.url,
                        headers={"Authorization": f"Bearer {site.api_token()}"})


def address(tag: str) -> str:
    return f"{tag}-{re.sub('[^a-z0-9]', '', str(id(object())))}@example.com"


def test_help_form_request_is_acknowledged_by_mail(mailer: ServerProcess, sink: MailSink
                                                   ) -> None:
    site = create_site(mailer.db, name="Acme <Shop>")
    to = address("ack")
    follow = submit_form(mailer, site, to, subject=f"Export {XSS}")
    mail, = sink.wait_for(to)
    assert mail["From"].addresses[0].addr_spec == "support@acme.test"
    assert mail["From"].addresses[0].display_name == "Acme <Shop>"
    assert mail["Subject"] == f"[#1] We received your request: Export {XSS}"
    assert mail["Auto-Submitted"] == "auto-replied"
    assert re.fullmatch(r"<outbox-\d+\.[0-9a-f]{16}@acme\.test>", mail["Message-ID"])
    assert re.fullmatch(r"r\+cv_[0-9a-f]+\.[0-9a-f]{20}@reply\.acme\.test",
                        mail["Reply-To"].addresses[0].addr_spec)
    plain, rich = text_of(mail)
    link = mailer.url + follow
    assert "#1" in plain and "high severity" in plain and "We'll reply by" in plain
    assert link in plain and f'href="{link}"' in rich
    assert f"Export {XSS}" in plain  # text is text
    assert XSS not in rich and "Export &lt;script&gt;alert(1)&lt;/script&gt;" in rich
    assert httpx.get(link).status_code == 200  # the link opens the request
    assert "WIDGET_PUBLIC_URL is not set" in mailer.log_text()
    row, = outbox(mailer.db, to)
    assert (row["state"], row["attempts"], row["message_id"]) == ("sent", 1, mail["Message-ID"])


def test_agent_replies_within_the_delay_come_as_one_mail_without_notes(
        mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db)
    to = address("reply")
    submit_form(mailer, site, to)
    sink.wait_for(to)
    with api(mailer, site) as client:
        for body, internal in (("Looking into it", False), ("Note: legacy plan", True),
                               (f"Fixed {XSS}", False)):
            assert client.post("/api/v1/tickets/1/messages",
                               json={"body": body, "internal": internal}).status_code == 201
    _, mail = sink.wait_for(to, 2)
    wait_until(lambda: [r["state"] for r in outbox(mailer.db, to)] == ["sent", "sent"],
               "the reply mail settled")
    assert mail["Subject"] == "[#1] New reply: Export fails"
    assert mail["Auto-Submitted"] == "auto-generated"
    plain, rich = text_of(mail)
    assert "Looking into it" in plain and f"Fixed {XSS}" in plain
    assert "legacy plan" not in plain and "legacy plan" not in rich
    assert "Fixed &lt;script&gt;" in rich and XSS not in rich
    assert len(sink.to(to)) == 2  # the acknowledgement and one reply mail


def test_a_reply_read_before_the_delay_is_not_mailed(mailer: ServerProcess, sink: MailSink
                                                     ) -> None:
    site = create_site(mailer.db)
    to = address("read")
    follow = submit_form(mailer, site, to)
    sink.wait_for(to)
    with api(mailer, site) as client, httpx.Client(base_url=mailer.url) as browser:
        client.post("/api/v1/tickets/1/messages", json={"body": "Seen on the page"})
        assert "Seen on the page" in browser.get(follow).text  # the requester reads it
    wait_until(lambda: [r["state"] for r in outbox(mailer.db, to)] == ["sent", "skipped"],
               "the reply mail skipped")
    assert len(sink.to(to)) == 1


def test_solving_a_ticket_mails_once(mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db)
    to = address("solved")
    submit_form(mailer, site, to)
    sink.wait_for(to)
    with api(mailer, site) as client:
        for _ in range(2):  # solving a solved ticket again changes nothing
            assert client.patch("/api/v1/tickets/1",
                                json={"status": "solved"}).status_code == 200
    _, mail = sink.wait_for(to, 2)
    assert mail["Subject"] == "[#1] Solved: Export fails"
    wait_until(lambda: [r["state"] for r in outbox(mailer.db, to)] == ["sent", "sent"],
               "the solved mail settled")


def test_a_permanent_refusal_gives_up_with_the_reason(mailer: ServerProcess, sink: MailSink
                                                      ) -> None:
    site = create_site(mailer.db)
    to = address("refused")
    sink.refuse[to] = "550 5.1.1 No such mailbox"
    submit_form(mailer, site, to)
    wait_until(lambda: [r["state"] for r in outbox(mailer.db, to)] == ["failed"],
               "the mail given up")
    row, = outbox(mailer.db, to)
    assert row["attempts"] == 1 and "550" in row["last_error"]
    assert "No such mailbox" in row["last_error"]
    assert sink.to(to) == []
    listed = run_cli("mail", "outbox", "--db", str(mailer.db), "--site", site.key,
                     "--state", "failed").stdout.splitlines()
    assert listed[0].startswith(f"{row['id']} failed attempts=1 acknowledgement to={to} "
                                "ticket=#1 due=")
    assert listed[1] == "  last answer: 550 5.1.1 No such mailbox"
    assert run_cli("mail", "outbox", "--db", str(mailer.db), "--site", "nope",
                   check=False).returncode == 1


def test_a_temporary_refusal_is_retried_later_and_delivered_once(
        mailer: ServerProcess, sink: MailSink, shift: TimeShift) -> None:
    site = create_site(mailer.db)
    to = address("greylisted")
    sink.refuse[to] = "451 4.7.1 Greylisted, try again later"
    submit_form(mailer, site, to)
    wait_until(lambda: outbox(mailer.db, to)[0]["attempts"] == 1, "a refused attempt")
    row, = outbox(mailer.db, to)
    assert row["state"] == "queued" and "451" in row["last_error"]
    del sink.refuse[to]
    shift.advance(3 * 60)  # past the first retry's wait
    mail, = sink.wait_for(to)
    wait_until(lambda: outbox(mailer.db, to)[0]["state"] == "sent", "the mail sent")
    assert mail["Message-ID"] == row["message_id"] and outbox(mailer.db, to)[0]["attempts"] == 2


def test_without_a_mail_server_nothing_is_queued(server: ServerProcess, site: Site) -> None:
    to = address("off")
    submit_form(server, site, to)
    assert outbox(server.db, to) == []


def _attempted(db: Path, to: str) -> bool:
    rows = outbox(db, to)
    return len(rows) == 1 and rows[0]["attempts"] >= 1


def test_a_mail_server_down_then_back_gets_the_mail_exactly_once(tmp_path: Path) -> None:
    sink, shift = MailSink(), TimeShift(tmp_path / "offset")
    server = ServerProcess(tmp_path / "widget.db",
                           env=mail_env(sink, WIDGET_PUBLIC_URL="https://support.acme.test/"),
                           launcher=shift.launcher)
    try:
        server.start()
        site = create_site(server.db)
        to = address("down")
        submit_form(server, site, to)
        wait_until(lambda: _attempted(server.db, to), "a failed attempt")
        row, = outbox(server.db, to)
        assert row["state"] == "queued" and row["last_error"]
        sink.start()
        shift.advance(3 * 60)  # past the first retry's wait
        mail, = sink.wait_for(to)
        wait_until(lambda: outbox(server.db, to)[0]["state"] == "sent", "the mail sent")
        assert mail["Message-ID"] == row["message_id"]
        assert len(sink.to(to)) == 1
        assert "https://support.acme.test/help/requests/" in text_of(mail)[0]
    finally:
        server.stop()
        sink.stop()


def test_a_mail_queued_before_a_kill_is_sent_once_after_the_restart(tmp_path: Path) -> None:
    sink, shift = MailSink(), TimeShift(tmp_path / "offset")
    server = ServerProcess(tmp_path / "widget.db", env=mail_env(sink), launcher=shift.launcher)
    try:
        server.start()
        site = create_site(server.db)
        to = address("killed")
        submit_form(server, site, to)
        wait_until(lambda: _attempted(server.db, to), "a failed attempt")
        server.kill()
        message_id = outbox(server.db, to)[0]["message_id"]
        sink.start()
        server.start()
        shift.advance(3 * 60)
        mail, = sink.wait_for(to)
        wait_until(lambda: outbox(server.db, to)[0]["state"] == "sent", "the mail sent")
        assert mail["Message-ID"] == message_id
        assert len(sink.to(to)) == 1
    finally:
        server.stop()
        sink.stop()


def signed_user(site: Site, email: str, sign_email: bool = True) -> dict[str, str]:
    secret = identity_secret(site)
    user = {"id": "u-42", "name": "Ada", "email": email, "hash": user_hash(secret, "u-42")}
    if sign_email:
        user["email_hash"] = user_hash(secret, email)
    return user


async def widget_request(server: ServerProcess, site: Site, user: dict[str, str]
                         ) -> VisitorClient:
    session = await start_session(server, site, user=user)
    visitor = await VisitorClient.connect(server, site, session["token"])
    await visitor.open_request()
    return visitor


@pytest.mark.anyio
async def test_a_widget_visitor_whose_address_the_host_signed_gets_unread_replies(
        mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db)
    to = address("signed")
    visitor = await widget_request(mailer, site, signed_user(site, to))
    try:
        assert outbox(mailer.db, to) == []  # the widget showed the acknowledgement itself
        with api(mailer, site) as client:
            client.post("/api/v1/tickets/1/messages", json={"body": "Try the new export"})
        mail, = sink.wait_for(to)
        assert "Try the new export" in text_of(mail)[0]
        assert mail["Subject"] == "[#1] New reply: Export to CSV fails"
    finally:
        await visitor.close()


@pytest.mark.anyio
async def test_a_reply_read_in_the_widget_is_not_mailed(mailer: ServerProcess, sink: MailSink
                                                       ) -> None:
    site = create_site(mailer.db)
    to = address("widget-read")
    visitor = await widget_request(mailer, site, signed_user(site, to))
    try:
        with api(mailer, site) as client:
            client.post("/api/v1/tickets/1/messages", json={"body": "Seen in the widget"})
        shown = await visitor.recv_type("message")
        assert shown["body"] == "Seen in the widget"
        await visitor.send_frame({"type": "read", "conversation": shown["conversation"],
                                  "seq": shown["seq"]})
        wait_until(lambda: [r["state"] for r in outbox(mailer.db, to)] == ["skipped"],
                   "the reply mail skipped")
        assert sink.to(to) == []
    finally:
        await visitor.close()


@pytest.mark.anyio
async def test_an_address_the_host_did_not_sign_is_never_mailed(mailer: ServerProcess) -> None:
    site = create_site(mailer.db)
    to = address("typed")
    visitor = await widget_request(mailer, site, signed_user(site, to, sign_email=False))
    try:
        with api(mailer, site) as client:
            client.post("/api/v1/tickets/1/messages", json={"body": "Not by mail"})
        assert outbox(mailer.db, to) == []  # queued in the reply's transaction, if at all
    finally:
        await visitor.close()
    forged = {**signed_user(site, to), "email_hash": user_hash(identity_secret(site), "x@y")}
    async with httpx.AsyncClient(base_url=mailer.url) as client:
        response = await client.post("/api/widget/v1/session", headers={"Origin": site.origin},
                                     json={"site": site.key, "user": forged})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_identity"


def test_a_graceful_stop_lets_the_mail_being_sent_finish(tmp_path: Path) -> None:
    """Stopped while the mail server is taking a mail, the server waits for its answer and
    records it, so the restart does not send the mail again."""
    sink = MailSink().start()
    server = ServerProcess(tmp_path / "widget.db",
                           env={**mail_env(sink), "WIDGET_LOG_LEVEL": "info"})
    try:
        server.start()
        site = create_site(server.db)
        to = address("stopping")
        sink.hold = True
        submit_form(server, site, to)
        wait_until(lambda: sink.held, "the mail arriving at the mail server")
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        wait_until(lambda: "Waiting for application shutdown" in server.log_text(),
                   "the server shutting down")
        sink.hold = False  # the mail server accepts the mail now
        server.process.wait(timeout=30)  # uvicorn ends by re-raising SIGTERM
        assert outbox(server.db, to)[0]["state"] == "sent"
        assert len(sink.to(to)) == 1
    finally:
        server.stop()
        sink.stop()
