"""Get replies by email, against a real server subprocess and a real SMTP sink: an address
a widget visitor typed gets the confirmation mail and nothing else until its link is
followed; then replies are mailed. Rate limits per address and per client address."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.mail_sink import MailSink, text_of, wait_until
from tests.support import (
    ServerProcess,
    Site,
    VisitorClient,
    create_site,
    run_cli,
    start_session,
)
from tests.test_mail import address, api, mail_env, outbox

LINK = re.compile(r"(http://\S+/api/widget/v1/email-confirmations/[A-Za-z0-9_.\-]+)")


@pytest.fixture(scope="module")
def mailer(tmp_path_factory: pytest.TempPathFactory, sink: MailSink
           ) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("confirm") / "widget.db",
                            env=mail_env(sink, WIDGET_MAIL_REPLY_DOMAIN="reply.acme.test",
                                         WIDGET_MAIL_CONFIRMATIONS_PER_ADDRESS_HOUR="2",
                                         WIDGET_MAIL_CONFIRMATIONS_PER_IP_HOUR="6"))
    process.start()
    yield process
    process.stop()


async def open_request(server: ServerProcess, site: Site) -> tuple[str, str]:
    """An anonymous visitor's new request: their token and its conversation id."""
    session = await start_session(server, site)
    visitor = await VisitorClient.connect(server, site, session["token"])
    try:
        ack, _ = await visitor.open_request()
    finally:
        await visitor.close()
    return session["token"], ack["conversation"]


def ask(server: ServerProcess, site: Site, token: str, conversation: str, email: str
        ) -> httpx.Response:
    return httpx.post(f"{server.url}/api/widget/v1/email-confirmations",
                      headers={"Origin": site.origin, "Authorization": f"Bearer {token}"},
                      json={"site": site.key, "conversation": conversation, "email": email})


def reply(server: ServerProcess, site: Site, body: str) -> None:
    with api(server, site) as client:
        assert client.post("/api/v1/tickets/1/messages", json={"body": body}).status_code == 201


@pytest.mark.anyio
async def test_a_typed_address_gets_only_the_confirmation_until_its_link_is_followed(
        mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db, name="Acme")
    to = address("typed")
    token, conversation = await open_request(mailer, site)
    before = await start_session(mailer, site, token=token)
    assert before["site"]["mail"] is True and before["visitor"]["mail_verified"] is False
    answer = ask(mailer, site, token, conversation, to)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"email": to, "status": "confirmation_sent"}
    mail, = sink.wait_for(to)
    assert mail["Subject"] == "[#1] Confirm your address to get replies by email"
    assert mail["Reply-To"] is None  # no way into the conversation before it is confirmed
    plain, rich = text_of(mail)
    link = LINK.search(plain).group(1)  # type: ignore[union-attr]
    assert f'href="{link}"' in rich
    reply(mailer, site, "Not mailed: the address is not confirmed yet")
    wait_until(lambda: [r["kind"] for r in outbox(mailer.db, to)] == ["confirm"]
               and outbox(mailer.db, to)[0]["state"] == "sent", "the confirmation sent")

    shown = httpx.get(link)  # what a mail scanner's prefetch does: nothing is recorded
    assert shown.status_code == 200 and "Confirm this address" in shown.text
    assert (await start_session(mailer, site, token=token))["visitor"]["mail_verified"] is False
    page = httpx.post(link)  # the person's click on the page's button
    assert page.status_code == 200 and f"will be mailed to {to}" in page.text
    after = await start_session(mailer, site, token=token)
    assert after["visitor"]["mail_verified"] is True
    reply(mailer, site, "Mailed: the address is confirmed")
    _, mailed = sink.wait_for(to, 2)
    body = text_of(mailed)[0]
    assert mailed["Subject"] == "[#1] New reply: Export to CSV fails"
    assert "Mailed: the address is confirmed" in body
    assert "Not mailed" in body  # still unread: replies not yet read are mailed together
    assert [r["kind"] for r in outbox(mailer.db, to)] == ["confirm", "reply"]


@pytest.mark.anyio
async def test_a_forged_or_altered_link_confirms_nothing(mailer: ServerProcess,
                                                         sink: MailSink) -> None:
    site = create_site(mailer.db)
    to = address("forged")
    token, conversation = await open_request(mailer, site)
    assert ask(mailer, site, token, conversation, to).status_code == 202
    link = LINK.search(text_of(sink.wait_for(to)[0])[0]).group(1)  # type: ignore[union-attr]
    altered = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")
    for answer in (httpx.get(altered), httpx.post(altered)):
        assert answer.status_code == 400 and "does not work" in answer.text
    assert (await start_session(mailer, site, token=token))["visitor"]["mail_verified"] is False


@pytest.mark.anyio
async def test_bad_requests_get_clear_errors(mailer: ServerProcess) -> None:
    site = create_site(mailer.db)
    token, conversation = await open_request(mailer, site)
    _, other = await open_request(mailer, site)

    def code(response: httpx.Response) -> tuple[int, str]:
        error: dict[str, Any] = response.json()["error"]
        return response.status_code, error["code"]

    assert code(ask(mailer, site, token, conversation, "not an address")) == \
        (422, "invalid_email")
    assert code(ask(mailer, site, token, other, address("theirs"))) == \
        (404, "unknown_conversation")
    assert code(ask(mailer, site, "forged", conversation, address("x"))) == \
        (401, "invalid_token")
    assert outbox(mailer.db, "not an address") == []


@pytest.mark.anyio
async def test_confirmations_are_rate_limited_per_address_and_per_client_address(
        tmp_path_factory: pytest.TempPathFactory, sink: MailSink) -> None:
    server = ServerProcess(tmp_path_factory.mktemp("limits") / "widget.db",
                           env=mail_env(sink, WIDGET_MAIL_CONFIRMATIONS_PER_ADDRESS_HOUR="2",
                                        WIDGET_MAIL_CONFIRMATIONS_PER_IP_HOUR="4"))
    server.start()
    try:
        site = create_site(server.db)
        token, conversation = await open_request(server, site)
        victim = address("victim")
        assert [ask(server, site, token, conversation, victim).status_code
                for _ in range(3)] == [202, 202, 429]
        other_token, other = await open_request(server, site)  # a fresh visitor: same limit
        refused = ask(server, site, other_token, other, victim)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert refused.json()["error"]["code"] == "rate_limited"
        assert [ask(server, site, token, conversation, f"many-{n}@example.com").status_code
                for n in range(3)] == [202, 202, 429]  # 4 per client address in all
        sink.wait_for(victim, 2)
        assert len(outbox(server.db, victim)) == 2
    finally:
        server.stop()


@pytest.mark.anyio
async def test_without_a_mail_server_the_widget_is_offered_no_mail(server: ServerProcess
                                                                   ) -> None:
    site = create_site(server.db)
    token, conversation = await open_request(server, site)
    session = await start_session(server, site, token=token)
    assert session["site"]["mail"] is False and session["visitor"]["mail_verified"] is False
    refused = ask(server, site, token, conversation, address("off"))
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "mail_off")


@pytest.mark.anyio
async def test_erasing_by_email_finds_a_visitor_by_their_confirmed_address(
        mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db)
    to = address("erase")
    token, conversation = await open_request(mailer, site)  # typed no name, no email
    assert ask(mailer, site, token, conversation, to).status_code == 202
    link = LINK.search(text_of(sink.wait_for(to)[0])[0]).group(1)  # type: ignore[union-attr]
    assert httpx.post(link).status_code == 200
    erased = run_cli("visitor", "erase", "--db", str(mailer.db), "--site", site.key,
                     "--email", to.upper(), "--yes")
    assert "matches 1 visitor(s)" in erased.stdout and "1 visitors" in erased.stdout
    assert outbox(mailer.db, to) == []  # the confirmation went with the conversation
