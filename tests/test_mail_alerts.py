"""Mail alerts to agents, against a real server subprocess and a real SMTP sink: a visitor's
reply on an agent's ticket is mailed to them by default, and not once they turn it off on
the console's Email alerts page; a new ticket only to agents who asked for it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from tests.clocked import TimeShift
from tests.mail_sink import MailSink, text_of, wait_until
from tests.support import ServerProcess, VisitorClient, create_site, run_cli, start_session
from tests.test_mail import api, mail_env, outbox
from tests.web.test_console_pages import Console, add_agent, ticket_path

XSS = "<script>alert(1)</script>"
ALERTS_PAGE = "/console/email-alerts"


@pytest.fixture(scope="module")
def mailer(tmp_path_factory: pytest.TempPathFactory, sink: MailSink
           ) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("alerts") / "widget.db",
                            env=mail_env(sink, WIDGET_MAIL_DELAY_SECONDS="3600"))
    process.start()
    yield process
    process.stop()


def alerts_to(server: ServerProcess, email: str) -> list[str]:
    return [row["headers"] for row in outbox(server.db, email) if row["kind"] == "alert"]


@pytest.mark.anyio
async def test_a_visitor_reply_on_my_ticket_is_mailed_until_i_turn_it_off(
        mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db, name="Acme")
    email, password = add_agent(site)
    console = Console(mailer)
    await console.sign_in(email, password)
    session = await start_session(mailer, site)
    visitor = await VisitorClient.connect(mailer, site, session["token"])
    try:
        ack, _ = await visitor.open_request("Export to CSV fails")
        assert alerts_to(mailer, email) == []  # new tickets are off by default
        with api(mailer, site) as client:
            assert client.patch("/api/v1/tickets/1",
                                json={"assignee": email}).status_code == 200
        await visitor.send(f"Still broken {XSS}", conversation=ack["conversation"])
        await visitor.recv_type("ack")
        mail, = sink.wait_for(email)
        assert mail["Subject"] == "[#1] The visitor replied: Export to CSV fails"
        assert mail["Reply-To"] is None  # an agent's answer by mail would speak as the visitor
        plain, rich = text_of(mail)
        assert "Visitor, " in plain and f"Still broken {XSS}" in plain
        assert "Still broken &lt;script&gt;" in rich
        assert f"{mailer.url}{ticket_path(site, 1)}" in plain

        page = (await console.get(ALERTS_PAGE)).text
        assert 'name="visitor_reply" value="1" checked' in page
        assert 'name="new_ticket" value="1">' in page
        saved = await console.post(ALERTS_PAGE, {"new_ticket": "1", "sla_at_risk": "1"})
        assert "Saved." in (await console.get(saved.headers["location"])).text

        await visitor.send("Any news?", conversation=ack["conversation"])
        await visitor.recv_type("ack")
        assert len(alerts_to(mailer, email)) == 1  # queued with the message, if at all
        await visitor.open_request("Another problem")
        assert len(alerts_to(mailer, email)) == 2  # the new ticket, now wanted
        new, = [m for m in sink.wait_for(email, 2) if "New ticket" in m["Subject"]]
        assert new["Subject"] == "[#2] New ticket: Another problem"
    finally:
        await visitor.close()
        await console.aclose()


@pytest.mark.anyio
async def test_without_a_mail_server_the_page_says_so_and_nothing_is_queued(
        server: ServerProcess) -> None:
    site = create_site(server.db)
    console = Console(server)
    try:
        await console.sign_in(*add_agent(site))
        assert "This server sends no mail" in (await console.get(ALERTS_PAGE)).text
    finally:
        await console.aclose()


@pytest.fixture(scope="module")
def clocked_mailer(tmp_path_factory: pytest.TempPathFactory, sink: MailSink,
                   shift: TimeShift) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("alerts-clocked") / "widget.db",
                            env=mail_env(sink, WIDGET_MAIL_DELAY_SECONDS="3600"),
                            launcher=shift.launcher)
    process.start()
    yield process
    process.stop()


def breached(server: ServerProcess) -> bool:
    conn = sqlite3.connect(f"file:{server.db}?mode=ro", uri=True)
    try:
        return bool(conn.execute("SELECT sla_breached_at FROM tickets").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.anyio
async def test_sla_at_risk_is_mailed_to_the_assignee_and_breached_only_when_chosen(
        clocked_mailer: ServerProcess, sink: MailSink, shift: TimeShift) -> None:
    server = clocked_mailer
    site = create_site(server.db)
    email, _ = add_agent(site)
    visitor = await VisitorClient.connect(server, site)
    try:
        await visitor.open_request("Login page is down", severity="normal")
    finally:
        await visitor.close()
    with api(server, site) as client:
        assert client.patch("/api/v1/tickets/1", json={"assignee": email}).status_code == 200
        shift.advance(10 * 3600)  # past 80 % of the 12 h first-response target
        client.post("/api/v1/tickets/1/messages", json={"body": "poke", "internal": True})
        mail, = sink.wait_for(email)
        assert mail["Subject"] == "[#1] SLA at risk: Login page is down"
        shift.advance(3 * 3600)  # past the target
        client.post("/api/v1/tickets/1/messages", json={"body": "poke", "internal": True})
    wait_until(lambda: breached(server), "the breach marked")
    assert len(alerts_to(server, email)) == 1  # breaches are off by default


@pytest.mark.anyio
async def test_an_escalation_is_mailed_to_the_agents_of_the_new_tier_who_chose_it(
        mailer: ServerProcess, sink: MailSink) -> None:
    site = create_site(mailer.db)
    first, first_password = add_agent(site)
    second, second_password = add_agent(site)
    run_cli("agent", "add", "--db", str(site.db), "--email", second, "--tier", "2")
    other, other_password = add_agent(site)  # tier 1, like the ticket was: not told
    visitor = await VisitorClient.connect(mailer, site)
    try:
        await visitor.open_request("Data looks corrupted")
    finally:
        await visitor.close()
    consoles = [Console(mailer) for _ in range(3)]
    try:
        for console, who in zip(consoles, ((second, second_password), (other, other_password),
                                           (first, first_password)), strict=True):
            await console.sign_in(*who)
            await console.post(ALERTS_PAGE, {"escalated": "1"})
        await consoles[2].post(ticket_path(site, 1, "escalate"), {"reason": "needs an expert"})
    finally:
        for console in consoles:
            await console.aclose()
    mail, = sink.wait_for(second)
    assert mail["Subject"] == "[#1] Escalated to your tier: Data looks corrupted"
    assert alerts_to(mailer, first) == [] and alerts_to(mailer, other) == []
