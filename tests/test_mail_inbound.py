"""Inbound mail against a real server subprocess: answers reach it by its SMTP receiver
(WIDGET_SMTP_LISTEN, sent with smtplib) and by POST /api/v1/inbound-email; its own mail
goes to a real SMTP sink on loopback (aiosmtpd)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import smtplib
import sqlite3
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.mail_sink import MailSink, wait_until
from tests.support import ServerProcess, Site, create_site, free_port, run_cli
from tests.test_mail import (
    address,
    api,
    mail_env,
    outbox,
    signed_user,
    submit_form,
    widget_request,
)
from widget_server.mail_inbound import parse_mail

REPLY_DOMAIN = "reply.acme.test"
MAX_BYTES = 100_000
QUOTED = """Yes, restarting the browser fixed the export.

Thanks,
Ada
--
Ada Lovelace, Analytical Engines Ltd

On Sun, Dec 6, 2026 at 9:00 PM Acme Support <support@acme.test> wrote:
> We received your request.
> We'll reply by tomorrow.
"""


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory, sink: MailSink
             ) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("inbound") / "widget.db", env=mail_env(
        sink, WIDGET_MAIL_REPLY_DOMAIN=REPLY_DOMAIN,
        WIDGET_SMTP_LISTEN=f"127.0.0.1:{free_port()}", WIDGET_MAIL_MAX_BYTES=str(MAX_BYTES)))
    process.start()
    yield process
    process.stop()


def smtp_port(server: ServerProcess) -> int:
    return int(server.env["WIDGET_SMTP_LISTEN"].rpartition(":")[2])


def request_by_form(server: ServerProcess, sink: MailSink, site: Site, to: str
                    ) -> EmailMessage:
    """A Help Form request from ``to``; its acknowledgement mail."""
    submit_form(server, site, to)
    ack, = sink.wait_for(to)
    return ack


def answer(ack: EmailMessage, sender: str, text: str = QUOTED, to: str | None = None,
           **headers: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"Ada <{sender}>"
    mail["To"] = to or ack["Reply-To"].addresses[0].addr_spec
    mail["Subject"] = "Re: " + str(ack["Subject"])
    mail["Message-ID"] = f"<answer-{uuid.uuid4().hex}@example.com>"
    mail["In-Reply-To"] = ack["Message-ID"]
    mail["References"] = ack["Message-ID"]
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(text)
    return mail


def send_smtp(server: ServerProcess, mail: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", smtp_port(server), timeout=20) as client:
        client.send_message(mail)


def db_rows(db: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def visitor_messages(server: ServerProcess, site: Site, number: int) -> list[str]:
    return [row["body"] for row in db_rows(
        server.db, "SELECT m.body FROM messages m JOIN tickets t"
        " ON t.conversation_id = m.conversation_id JOIN sites s ON s.id = t.site_id"
        " WHERE s.key = ? AND t.number = ? AND m.author_type = 'visitor' ORDER BY m.id",
        site.key, number)]


def console_cookie(server: ServerProcess, site: Site) -> str:
    """A console session of a new agent of ``site``."""
    email = f"agent-{uuid.uuid4().hex[:8]}@example.com"
    asyncio.run(server.add_agent(email, "pw-inbound-1-long", "agent", (site.key,)))
    with httpx.Client(base_url=server.url) as client:
        form = client.get("/console/login").text
        token = re.search(r'name="login_token" value="([^"]+)"', form)
        assert token
        client.post("/console/login", data={"email": email, "password": "pw-inbound-1-long",
                                             "login_token": token.group(1)})
        return str(client.cookies["widget_console"])


def test_answer_by_smtp_lands_in_the_ticket_without_quote_and_live_in_the_console(
        receiver: ServerProcess, sink: MailSink) -> None:
    site = create_site(receiver.db)
    ada = address("smtp")
    ack = request_by_form(receiver, sink, site, ada)
    cookie = console_cookie(receiver, site)
    with connect(f"ws://127.0.0.1:{receiver.port}/ws/console", origin=receiver.url,
                 additional_headers={"Cookie": f"widget_console={cookie}"}) as socket:
        assert json.loads(socket.recv(timeout=20))["type"] == "ready"
        reply = answer(ack, ada)
        send_smtp(receiver, reply)
        frame = json.loads(socket.recv(timeout=20))
        while frame["type"] != "message":
            frame = json.loads(socket.recv(timeout=20))
    assert frame["message"]["body"] == "Yes, restarting the browser fixed the export."
    assert frame["message"]["author"]["type"] == "visitor"
    assert visitor_messages(receiver, site, 1)[-1] == frame["message"]["body"]
    send_smtp(receiver, reply)  # the same mail again (a retry): stored once
    assert len(visitor_messages(receiver, site, 1)) == 2
    assert len(outbox(receiver.db, ada)) == 1  # the answer is not acknowledged


def test_answer_by_http_routed_by_in_reply_to_html_only(
        receiver: ServerProcess, sink: MailSink) -> None:
    site = create_site(receiver.db)
    ada = address("http")
    ack = request_by_form(receiver, sink, site, ada)
    mail = answer(ack, ada, to="support@acme.test")  # no r+ address: In-Reply-To names it
    mail.set_content("<p>Caf\u00e9 export works now!</p><blockquote>On Sun, Dec 6, 2026 at "
                     "9:00 PM Acme wrote:<br>old text</blockquote>", subtype="html",
                     charset="iso-8859-1")
    with api(receiver, site) as client:
        assert client.post("/api/v1/inbound-email", content=b"x").status_code == 422
        response = client.post("/api/v1/inbound-email", content=mail.as_bytes(),
                               headers={"Content-Type": "message/rfc822"})
        assert response.status_code == 202, response.text
        assert response.json() == {"outcome": "answer", "ticket": 1, "detail": ""}
        other = create_site(receiver.db)  # another site's token answers nothing of this one
        with api(receiver, other) as stranger:
            refused = stranger.post("/api/v1/inbound-email", content=mail.as_bytes())
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "recipient_refused"
    assert httpx.post(receiver.url + "/api/v1/inbound-email",
                      content=mail.as_bytes()).status_code == 401
    body = visitor_messages(receiver, site, 1)[-1]
    assert "Caf\u00e9 export works now!" in body and "old text" not in body


def test_forged_unknown_and_oversize_mail_is_refused_and_nothing_stored(
        receiver: ServerProcess, sink: MailSink) -> None:
    site = create_site(receiver.db)
    ada = address("forged")
    ack = request_by_form(receiver, sink, site, ada)
    genuine = ack["Reply-To"].addresses[0].addr_spec
    local, _, domain = genuine.partition("@")
    forged = local[:-1] + ("0" if local[-1] != "0" else "1") + "@" + domain
    for recipient in (forged, "r+garbage@" + REPLY_DOMAIN, "nobody@elsewhere.test"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send_smtp(receiver, answer(ack, ada, to=recipient))
        assert refused.value.recipients[recipient][0] == 550
    with pytest.raises(smtplib.SMTPResponseException) as too_big:
        send_smtp(receiver, answer(ack, ada, text="x" * (MAX_BYTES + 10)))
    assert too_big.value.smtp_code == 552
    with pytest.raises(smtplib.SMTPDataError) as stranger:  # the right address, another sender
        send_smtp(receiver, answer(ack, address("mallory")))
    assert stranger.value.smtp_code == 550
    with api(receiver, site) as client:
        response = client.post("/api/v1/inbound-email",
                               content=answer(ack, ada, to=forged).as_bytes())
    assert response.status_code == 422
    assert visitor_messages(receiver, site, 1) == ["The CSV export button does nothing."]


def close(server: ServerProcess, site: Site, number: int) -> None:
    with api(server, site) as client:
        response = client.patch(f"/api/v1/tickets/{number}", json={"status": "closed"})
        assert response.status_code == 200, response.text


def test_answer_to_a_closed_ticket_opens_a_linked_follow_up_that_is_acknowledged(
        receiver: ServerProcess, sink: MailSink) -> None:
    site = create_site(receiver.db)
    ada = address("closed")
    ack = request_by_form(receiver, sink, site, ada)
    close(receiver, site, 1)
    send_smtp(receiver, answer(ack, ada))
    follow_up, = db_rows(receiver.db, "SELECT t.*, o.number AS of_number FROM tickets t"
                         " JOIN tickets o ON o.id = t.follow_up_of_id"
                         " JOIN sites s ON s.id = t.site_id WHERE s.key = ?", site.key)
    assert (follow_up["number"], follow_up["of_number"]) == (2, 1)
    assert follow_up["subject"] == "Follow-up to #1"
    assert visitor_messages(receiver, site, 2) == [
        "Yes, restarting the browser fixed the export."]
    second = sink.wait_for(ada, 2)[1]
    assert second["Subject"].startswith("[#2] We received your request")


def test_automatic_answers_are_stored_but_never_answered(
        receiver: ServerProcess, sink: MailSink) -> None:
    site = create_site(receiver.db)
    ada = address("auto")
    ack = request_by_form(receiver, sink, site, ada)
    close(receiver, site, 1)
    send_smtp(receiver, answer(ack, ada, text="I am out of the office.",
                               Auto_Submitted="auto-replied"))
    close(receiver, site, 2)
    send_smtp(receiver, answer(ack, ada, text="Weekly digest", Precedence="bulk"))
    assert visitor_messages(receiver, site, 2) == ["I am out of the office."]
    assert visitor_messages(receiver, site, 3) == ["Weekly digest"]
    kinds = [row["kind"] for row in outbox(receiver.db, ada)]
    assert kinds == ["acknowledgement"]  # the follow-ups #2 and #3 got none


def dsn(failed: str) -> bytes:
    """A delivery status notification (RFC 3464) as a mail server sends it."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
        "To: support@acme.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour mail could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n--B--\r\n").encode()


def test_a_bounce_marks_the_address_and_later_replies_are_not_mailed(
        receiver: ServerProcess, sink: MailSink) -> None:
    site = create_site(receiver.db)
    ada = address("bounce")
    request_by_form(receiver, sink, site, ada)
    with smtplib.SMTP("127.0.0.1", smtp_port(receiver), timeout=20) as client:
        client.sendmail("", ["support@acme.test"], dsn(ada.upper()))
    bounce, = db_rows(receiver.db, "SELECT * FROM mail_bounces WHERE address = ?", ada)
    assert "5.1.1" in bounce["reason"]
    with api(receiver, site) as client:
        assert client.post("/api/v1/tickets/1/messages",
                           json={"body": "Try again?"}).status_code == 201
    wait_until(lambda: outbox(receiver.db, ada)[-1]["state"] == "skipped",
               "the reply mail skipped")
    assert outbox(receiver.db, ada)[-1]["last_error"] == "the address bounces"
    assert len(sink.to(ada)) == 1


def test_mail_to_a_support_address_opens_an_acknowledged_email_ticket(
        receiver: ServerProcess, sink: MailSink) -> None:
    site = create_site(receiver.db)
    support = f"help-{uuid.uuid4().hex[:8]}@acme.test"
    grace = address("grace")
    mail = EmailMessage()
    mail["From"] = f"Grace <{grace}>"
    mail["To"] = support.upper()
    mail["Subject"] = "Invoices are missing"
    mail["Message-ID"] = f"<new-{uuid.uuid4().hex}@example.com>"
    mail.set_content("The March invoices are missing.\n\n-- \nGrace, Navy\n")
    with pytest.raises(smtplib.SMTPRecipientsRefused):  # not a support address yet
        send_smtp(receiver, mail)
    run_cli("site", "set-support-address", "--db", str(receiver.db), "--site", site.key,
            "--address", support.upper())
    send_smtp(receiver, mail)
    send_smtp(receiver, mail)  # delivered twice: one request
    ticket, = db_rows(receiver.db, "SELECT t.* FROM tickets t JOIN sites s"
                      " ON s.id = t.site_id WHERE s.key = ?", site.key)
    assert (ticket["number"], ticket["channel"], ticket["subject"]) == (
        1, "email", "Invoices are missing")
    assert visitor_messages(receiver, site, 1) == ["The March invoices are missing."]
    ack, = sink.wait_for(grace)
    assert ack["Subject"] == "[#1] We received your request: Invoices are missing"
    send_smtp(receiver, answer(ack, grace, text="Also April's."))  # the answer comes back
    assert visitor_messages(receiver, site, 1)[-1] == "Also April's."

    del mail["Message-ID"]
    mail["Message-ID"] = f"<new-{uuid.uuid4().hex}@example.com>"
    with api(receiver, create_site(receiver.db)) as stranger:  # another site's token
        assert stranger.post("/api/v1/inbound-email",
                             content=mail.as_bytes()).status_code == 422
    with api(receiver, site) as client:
        response = client.post("/api/v1/inbound-email", content=mail.as_bytes())
    assert response.status_code == 202, response.text
    assert response.json()["outcome"] == "request" and response.json()["ticket"] == 2
    run_cli("site", "set-support-address", "--db", str(receiver.db), "--site", site.key,
            "--address", "off")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send_smtp(receiver, mail)


KOI8_ANSWER = ("Привет, всё работает.\n\n"
               "On Sun, Dec 6, 2026 at 9:00 PM Acme <s@acme.test> wrote:\n> старый текст\n")


def test_parsing_decodes_charsets_prefers_plain_text_and_reads_loop_headers() -> None:
    raw = (
        "From: =?utf-8?q?Jos=C3=A9?= <Jose@Example.test>\r\nTo: r+cv_1.ab@reply.acme.test\r\n"
        "Subject: =?iso-8859-1?q?R=E9ponse?=\r\nPrecedence: list\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="A"\r\n\r\n'
        "--A\r\nContent-Type: text/plain; charset=koi8-r\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(KOI8_ANSWER.encode("koi8-r")).decode() + "\r\n"
        "--A\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>HTML part</p>\r\n--A--\r\n"
    ).encode()
    mail = parse_mail(raw)
    assert (mail.sender, mail.sender_name, mail.subject) == ("jose@example.test", "José",
                                                             "Réponse")
    assert mail.text == "Привет, всё работает."
    assert mail.automatic and not mail.failed
    plain = parse_mail(b"From: a@b.test\r\nAuto-Submitted: no\r\n\r\nHello\r\n")
    assert plain.text == "Hello" and not plain.automatic


@pytest.mark.anyio
async def test_an_answer_to_a_reply_mail_reaches_the_widget_live(
        receiver: ServerProcess, sink: MailSink) -> None:
    site = create_site(receiver.db)
    bo = address("widget")
    visitor = await widget_request(receiver, site, signed_user(site, bo))
    try:
        with api(receiver, site) as client:
            client.post("/api/v1/tickets/1/messages", json={"body": "Try the new export"})
        reply, = sink.wait_for(bo)
        send_smtp(receiver, answer(reply, bo, text="It works, thanks!\n\nOn Sun, Dec 6, 2026 "
                                   "at 9:00 PM Acme <support@acme.test> wrote:\n> Try it\n"))
        body = ""
        while body != "It works, thanks!":  # the agent's reply comes first
            body = (await visitor.recv_type("message"))["body"]
    finally:
        await visitor.close()
