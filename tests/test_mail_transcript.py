"""Transcripts by mail, against a real server subprocess and a real SMTP sink: asked for in
the widget and in the console, sent only to a conversation's verified address, showing the
public thread without internal notes, and limited per conversation."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import httpx
import pytest

from tests.mail_sink import MailSink, text_of, wait_until
from tests.support import ServerProcess, Site, VisitorClient, create_site, start_session
from tests.test_mail import address, api, mail_env, outbox, signed_user
from tests.web.test_console_pages import Console, add_agent, ticket_path

XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def mailer(tmp_path_factory: pytest.TempPathFactory, sink: MailSink
           ) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("transcript") / "widget.db",
                            env=mail_env(sink, WIDGET_MAIL_DELAY_SECONDS="3600",
                                         WIDGET_TRANSCRIPTS_PER_CONVERSATION_HOUR="2"))
    process.start()
    yield process
    process.stop()


async def conversation_with_a_note(server: ServerProcess, site: Site,
                                   user: dict[str, str] | None) -> tuple[str, str]:
    """A request with a public reply, an internal note and the visitor's answer: the
    visitor's token and the conversation id."""
    session = await start_session(server, site, user=user)
    visitor = await VisitorClient.connect(server, site, session["token"])
    try:
        ack, _ = await visitor.open_request(f"Export fails {XSS}")
        with api(server, site) as client:
            for body, internal in (("Which browser?", False), ("Note: VIP customer", True)):
                assert client.post("/api/v1/tickets/1/messages",
                                   json={"body": body, "internal": internal}).status_code == 201
        await visitor.send("Firefox 130", conversation=ack["conversation"])
        assert (await visitor.recv_type("ack"))["seq"] > 0
    finally:
        await visitor.close()
    return session["token"], ack["conversation"]


def ask(server: ServerProcess, site: Site, token: str, conversation: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/widget/v1/transcripts",
                      headers={"Origin": site.origin, "Authorization": f"Bearer {token}"},
                      json={"site": site.key, "conversation": conversation})


def transcripts(sink: MailSink, to: str, count: int) -> list[EmailMessage]:
    wait_until(lambda: len([m for m in sink.to(to) if "Transcript" in m["Subject"]]) >= count,
               f"{count} transcript(s) to {to}")
    return [m for m in sink.to(to) if "Transcript" in m["Subject"]]


@pytest.mark.anyio
async def test_the_widget_and_the_console_mail_the_public_thread_to_the_verified_address(
        mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db)
    to = address("transcript")
    token, conversation = await conversation_with_a_note(mailer, site, signed_user(site, to))
    answer = ask(mailer, site, token, conversation)
    assert answer.status_code == 202, answer.text
    mail, = transcripts(sink, to, 1)
    assert mail["Subject"] == f"[#1] Transcript: Export fails {XSS}"
    plain, rich = text_of(mail)
    assert plain.index(f"Export fails {XSS}") < plain.index("Which browser?") \
        < plain.index("Firefox 130")
    assert "Ada," in plain  # the visitor's messages under their name
    assert "VIP" not in plain and "VIP" not in rich
    assert XSS not in rich and "Export fails &lt;script&gt;" in rich

    console = Console(mailer)
    try:
        await console.sign_in(*add_agent(site))
        page = (await console.get(ticket_path(site, 1))).text
        assert f"Follow-ups are mailed to {to}" in page and "Mail transcript" in page
        done = await console.post(ticket_path(site, 1, "transcript"))
        shown = (await console.get(done.headers["location"])).text
        assert f"Transcript queued to {to}." in shown
        assert len(transcripts(sink, to, 2)) == 2
        refused = await console.post(ticket_path(site, 1, "transcript"), status=429)
        assert "several times this hour" in refused.text
    finally:
        await console.aclose()
    limited = ask(mailer, site, token, conversation)  # the same budget as the console's
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert [r["kind"] for r in outbox(mailer.db, to)
            if r["kind"] == "transcript"] == ["transcript", "transcript"]


@pytest.mark.anyio
async def test_no_transcript_goes_to_a_typed_address(mailer: ServerProcess) -> None:
    site = create_site(mailer.db)
    to = address("typed")
    token, conversation = await conversation_with_a_note(
        mailer, site, signed_user(site, to, sign_email=False))
    refused = ask(mailer, site, token, conversation)
    assert (refused.status_code, refused.json()["error"]["code"]) == \
        (409, "no_verified_address")
    other_token, _ = await conversation_with_a_note(mailer, site, None)  # another visitor
    theirs = ask(mailer, site, other_token, conversation)
    assert (theirs.status_code, theirs.json()["error"]["code"]) == \
        (404, "unknown_conversation")
    console = Console(mailer)
    try:
        await console.sign_in(*add_agent(site))
        page = (await console.get(ticket_path(site, 1))).text
        assert "No verified address" in page and "Mail transcript" not in page
        refused_page = await console.post(ticket_path(site, 1, "transcript"), status=409)
        assert "no verified email address" in refused_page.text
    finally:
        await console.aclose()
    assert outbox(mailer.db, to) == []
