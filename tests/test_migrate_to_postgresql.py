"""`widget-server migrate --from PATH.db --to postgresql://...`: a SQLite installation made
through the real server and CLI (tickets, messages, notes, articles, mail) is copied into an
empty PostgreSQL database, which PgStore then serves with the same tickets, threads and
search results; a target that holds data is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pg import PgServer, _admin, database_url
from tests.support import Api, ServerProcess, VisitorClient, create_site, run_cli
from tests.web.test_help_centre import article_file
from widget_server.config import Settings
from widget_server.store import Store, open_store

pytestmark = pytest.mark.anyio


async def snapshot(store: Store, site_key: str) -> dict[str, object]:
    site = await store.get_site_by_key(site_key)
    assert site is not None
    tickets = await store.list_tickets(site.id, limit=100)
    threads, mails = {}, {}
    for ticket in tickets:
        threads[ticket.number] = [(m.seq, m.author.type, m.body, m.internal)
                                  for m in await store.ticket_messages(ticket)]
        mails[ticket.number] = sorted(
            (mail.kind, mail.to_address, mail.state)
            for mail in await store.conversation_mail(ticket.conversation_id))
    hits = await store.search([site.id], "invoice")
    articles = await store.search_articles(site.id, "password")
    return {
        "tickets": [(t.number, t.subject, t.status, t.severity, t.reference) for t in tickets],
        "threads": threads,
        "search": sorted(hit.ticket.number for hit in hits),  # snippets: each backend's own
        "articles": sorted(hit.slug for hit in articles),
        "mails": mails,
    }


async def read(db: str, site_key: str) -> dict[str, object]:
    store = open_store(Settings(db=db))
    await store.open()
    try:
        return await snapshot(store, site_key)
    finally:
        await store.close()


@pytest.fixture
def empty_pg(pg_server: PgServer) -> str:
    """A new database without even the schema: migrate creates it."""
    pg_server.fresh()  # skips, or fails, without PostgreSQL
    name = f"{pg_server.prefix}_empty_{len(pg_server.made)}"
    _admin(f"CREATE DATABASE {name}")
    pg_server.made.append(name)
    return database_url(name)


async def test_a_sqlite_installation_moves_to_postgresql(
        tmp_path: Path, empty_pg: str) -> None:
    db = tmp_path / "widget.db"
    mail = {"WIDGET_SMTP_URL": "smtp://127.0.0.1:9", "WIDGET_MAIL_FROM": "Help <help@shop.test>",
            "WIDGET_MAIL_DELAY_SECONDS": "0"}
    server = ServerProcess(db, env=mail).start()
    try:
        site = create_site(db)
        folder = tmp_path / "articles"
        article_file(folder, "reset-password", "Reset your password", "Forgot the password?")
        article_file(folder, "billing", "Billing", "Invoices are mailed monthly.")
        run_cli("articles", "import", "--db", str(db), "--site", site.key, str(folder))
        api = Api(server, site.api_token())
        visitors = []
        for n in range(3):
            visitor = await VisitorClient.connect(server, site)
            visitors.append(visitor)
            ack, _ = await visitor.open_request(f"Request {n}: the invoice is wrong")
            number = ack["ticket"]["number"]
            await api.reply(number, f"Answer {n}")
            await api.reply(number, f"note {n}", internal=True)
            async with server.client() as client:  # "Get replies by email": a mail queued
                asked = await client.post("/api/widget/v1/email-confirmations", json={
                    "site": site.key, "token": visitor.token,
                    "conversation": ack["conversation"], "email": f"v{n}@example.com"},
                    headers={"Origin": site.origin})
                assert asked.status_code == 202, asked.text
        for visitor in visitors:
            await visitor.close()
        await api.aclose()
    finally:
        server.stop()
    before = await read(str(db), site.key)
    assert len(before["tickets"]) == 3  # type: ignore[arg-type]
    assert before["search"] and before["articles"]
    assert all(before["mails"].values())  # type: ignore[attr-defined]

    result = run_cli("migrate", "--from", str(db), "--to", empty_pg)
    assert "every count matches" in result.stdout
    assert "messages: " in result.stdout and "articles: " in result.stdout
    assert await read(empty_pg, site.key) == before

    # new rows continue after the copied ids and numbers
    server = ServerProcess(empty_pg, log=tmp_path / "pg.log").start()
    try:
        visitor = await VisitorClient.connect(server, site)
        ack, _ = await visitor.open_request("After the move")
        assert ack["ticket"]["number"] == 4
        await visitor.close()
    finally:
        server.stop()

    again = run_cli("migrate", "--from", str(db), "--to", empty_pg, check=False)
    assert again.returncode == 1 and "not empty" in again.stderr


def test_a_missing_file_or_a_wrong_url_is_a_clear_error(tmp_path: Path) -> None:
    missing = run_cli("migrate", "--from", str(tmp_path / "none.db"), "--to",
                      "postgresql://postgres@127.0.0.1/none", check=False)
    assert missing.returncode == 1 and "no SQLite file" in missing.stderr
    db = tmp_path / "widget.db"
    create_site(db)
    wrong = run_cli("migrate", "--from", str(db), "--to", str(tmp_path / "other.db"),
                    check=False)
    assert wrong.returncode == 1 and "postgresql://" in wrong.stderr
