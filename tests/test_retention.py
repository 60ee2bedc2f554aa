"""Data retention end to end: a real server and the CLI whose clock is moved forward (the
test-only launcher tests/clocked.py), real SQLite, the REST API, the console and the widget's
websocket; the scheduler's job and the console pages with the app in process
(docs/privacy.md). Nothing sleeps a fixed time: the server job is awaited by polling the
condition it brings about."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clocked import TimeShift
from tests.inprocess import InProcess, in_process
from tests.support import (
    Api,
    ServerProcess,
    Site,
    VisitorClient,
    console_client,
    create_site,
    csrf_of,
    run_cli,
    start_session,
)

pytestmark = pytest.mark.anyio
DAY = 86400


def query_db(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture
def offset(tmp_path: Path) -> TimeShift:
    return TimeShift(tmp_path / "clock-offset")


@pytest.fixture
def clocked_server(tmp_path: Path, offset: TimeShift) -> Iterator[ServerProcess]:
    """A server of the test's own whose clock the test moves forward."""
    process = ServerProcess(tmp_path / "widget.db", launcher=offset.launcher,
                            # the visitor's token outlives the month the test skips
                            env={"WIDGET_TOKEN_MAX_AGE": str(90 * DAY)})
    yield process
    process.stop()


async def close_ticket(api: Api, number: int) -> None:
    response = await api.client.patch(f"/api/v1/tickets/{number}", json={"status": "closed"})
    assert response.status_code == 200, response.text


async def test_a_closed_conversation_expires_after_the_period_and_leaves_a_tombstone(
    clocked_server: ServerProcess, offset: TimeShift
) -> None:
    db = clocked_server.db
    site = create_site(db)
    keep_forever = create_site(db)
    run_cli("site", "set-retention", "--db", str(db), "--site", site.key, "--days", "30")
    server = clocked_server.start()
    api, other_api = Api(server, site.api_token()), Api(server, keep_forever.api_token())
    console: httpx.AsyncClient | None = None
    try:
        # a visitor's request, answered and closed: this one will expire
        old_visitor = await VisitorClient.connect(server, site)
        ack, _ = await old_visitor.open_request("Invoice of Ada Lovelace shows the wrong VAT")
        expiring, conversation = ack["ticket"]["number"], ack["conversation"]
        await api.reply(expiring, "Fixed in release 2.1, sorry Ada")
        await close_ticket(api, expiring)
        seq = (await old_visitor.recv_type("message"))["seq"]
        await old_visitor.close()
        # another visitor's request stays open: open tickets never expire
        waiting = await VisitorClient.connect(server, site)
        stale_open = (await waiting.open_request("Still broken for me"))[0]["ticket"]["number"]
        await waiting.close()
        # the same age on a site without a period: kept
        elsewhere = await VisitorClient.connect(server, keep_forever)
        kept = (await elsewhere.open_request("Old but kept"))[0]["ticket"]["number"]
        await close_ticket(other_api, kept)
        await elsewhere.close()

        console = await console_client(server, site)
        before = await console.get(f"/console/search?q=Lovelace&site={site.key}")
        assert f"{site.key}/{expiring}\"" in before.text  # found while it exists

        offset.advance(31 * DAY)  # a month later, on the server and in the CLI
        recent_client = await VisitorClient.connect(server, site)
        recent = (await recent_client.open_request("A new problem"))[0]["ticket"]["number"]
        await recent_client.close()

        ran = run_cli("retention", "run", "--db", str(db), launcher=offset.launcher)
        assert f"30 days: 1 tickets kept as tombstones (#{expiring}); deleted 1 " \
               "conversations, 3 messages, 1 visitors" in ran.stdout
        assert "kept 1 tickets that are not closed" in ran.stdout
        assert f"{keep_forever.key}): retention off, nothing deleted" in ran.stdout

        # REST: the tombstone, never a 500; nothing of the conversation
        response = await api.client.get(f"/api/v1/tickets/{expiring}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["messages"] == []
        tombstone = body["ticket"]
        assert tombstone["erased"] is True and tombstone["erased_reason"] == "retention"
        assert (tombstone["number"], tombstone["status"]) == (expiring, "closed")
        assert tombstone["subject"] == "" and tombstone["visitor_id"] is None
        assert tombstone["conversation"] is None
        assert tombstone["created_at"] and tombstone["closed_at"] and tombstone["erased_at"]
        assert "Lovelace" not in response.text and "Ada" not in response.text
        listed = (await api.client.get("/api/v1/tickets?status=closed")).json()["tickets"]
        assert [t["erased"] for t in listed if t["number"] == expiring] == [True]
        refused = await api.client.post(f"/api/v1/tickets/{expiring}/messages",
                                        json={"body": "Hello?"})
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "ticket_erased"
        refused = await api.client.patch(f"/api/v1/tickets/{expiring}", json={"status": "open"})
        assert refused.json()["error"]["code"] == "ticket_erased"

        # the others are intact
        for client, number in ((api, stale_open), (api, recent), (other_api, kept)):
            found = (await client.client.get(f"/api/v1/tickets/{number}")).json()
            assert found["ticket"]["erased"] is False and found["messages"], found

        # the widget: the visitor's old token resumes nothing and lists nothing
        resumed = await VisitorClient.connect(server, site, old_visitor.token,
                                              resume={conversation: seq})
        assert resumed.ready["conversations"] == []
        error = await resumed.recv_type("error")
        assert (error["code"], error["ref"]) == ("conversation_not_found", conversation)
        await resumed.send("Anyone?", conversation=conversation)
        assert (await resumed.recv_type("error"))["code"] == "conversation_not_found"
        await resumed.close()
        assert (await start_session(server, site, old_visitor.token))["tickets"] == []

        # the console (a new sign-in: a month passed): a tombstone page, no search hit, and
        # the audit record
        await console.aclose()
        console = await console_client(server, site)
        page = await console.get(f"/console/tickets/{site.key}/{expiring}")
        assert page.status_code == 200
        assert 'id="tombstone"' in page.text and "retention period" in page.text
        assert "Lovelace" not in page.text and "release 2.1" not in page.text
        inbox = await console.get(f"/console?status=closed&site={site.key}")
        assert inbox.status_code == 200 and "Erased request" in inbox.text
        found = await console.get(f"/console/search?q=Lovelace&site={site.key}")
        assert found.status_code == 200 and f"{site.key}/{expiring}\"" not in found.text
        reply = await console.post(f"/console/tickets/{site.key}/{expiring}/reply",
                                   data={"body": "hi", "csrf": csrf_of(page.text)})
        assert reply.status_code == 409 and "was erased" in reply.text
        audit = await console.get(f"/console/admin/sites/{site.key}/privacy")
        assert "Retention run" in audit.text and f"#{expiring}" in audit.text
        rows = query_db(db, "SELECT action, actor FROM privacy_audit p JOIN sites s"
                        " ON s.id = p.site_id WHERE s.key = ? ORDER BY p.id", (site.key,))
        assert rows == [("retention_set", "cli"), ("retention", "cli")]
    finally:
        await api.aclose()
        await other_api.aclose()
        if console is not None:
            await console.aclose()


async def test_the_server_runs_the_job_by_itself(tmp_path: Path) -> None:
    db = tmp_path / "widget.db"
    site = create_site(db)
    run_cli("site", "set-retention", "--db", str(db), "--site", site.key, "--days", "7")
    async with in_process(db, env={"WIDGET_RETENTION_INTERVAL": "0.2"}) as server:
        await server_runs_the_job(server, site, db)


async def server_runs_the_job(server: InProcess, site: Site, db: Path) -> None:
    api = Api(server, await server.api_token(site))
    try:
        visitor = await VisitorClient.connect(server, site)
        number = (await visitor.open_request())[0]["ticket"]["number"]
        await visitor.close()
        await close_ticket(api, number)
        server.clock.advance(8 * DAY)
        deadline = time.monotonic() + 30
        while True:  # polling the condition the job brings about, not sleeping a fixed time
            ticket = (await api.client.get(f"/api/v1/tickets/{number}")).json()["ticket"]
            if ticket["erased"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)  # between two checks of the condition
        assert ticket["erased"], "the server's retention job did not run"
        assert query_db(db, "SELECT actor FROM privacy_audit WHERE action = 'retention'") == [
            ("scheduler",)]
    finally:
        await api.aclose()


async def test_admins_set_the_period_in_the_console(inprocess: InProcess) -> None:
    server, site = inprocess, await inprocess.create_site()
    admin = await console_client(server, site, role="admin")
    agent = await console_client(server, site, role="agent")
    path = f"/console/admin/sites/{site.key}/privacy"
    try:
        page = await admin.get(path)
        assert page.status_code == 200 and 'id="retention-period">off<' in page.text
        csrf = csrf_of(page.text)
        assert (await admin.post(path, data={"days": "30"})).status_code == 403  # no CSRF
        bad = await admin.post(path, data={"days": "0", "csrf": csrf})
        assert bad.status_code == 422 and "between 1 and 36500 days" in bad.text
        saved = await admin.post(path, data={"days": "30", "csrf": csrf})
        assert saved.status_code == 303
        page = await admin.get(path)
        assert 'id="retention-period">30 days<' in page.text
        assert "Retention period set" in page.text
        site_page = await admin.get(f"/console/admin/sites/{site.key}")
        assert "(30 days)" in site_page.text
        off = await admin.post(path, data={"days": "off", "csrf": csrf})
        assert off.status_code == 303
        assert 'id="retention-period">off<' in (await admin.get(path)).text
        denied = await agent.get(path)
        assert denied.status_code == 403
        denied = await agent.post(path, data={"days": "1", "csrf": csrf_of(
            (await agent.get("/console")).text)})
        assert denied.status_code == 403
    finally:
        await admin.aclose()
        await agent.aclose()
    shown = query_db(server.db, "SELECT p.subject, p.agent_id IS NOT NULL FROM privacy_audit p"
                     " JOIN sites s ON s.id = p.site_id WHERE s.key = ? ORDER BY p.id",
                     (site.key,))
    assert shown == [("30 days", 1), ("off", 1)]


def test_set_retention_on_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "widget.db"
    site = create_site(db)
    out = run_cli("site", "set-retention", "--db", str(db), "--days", "90").stdout
    assert "90 days" in out
    bad = run_cli("site", "set-retention", "--db", str(db), "--days", "soon", check=False)
    assert bad.returncode == 2 and "whole number of days" in bad.stderr
    unknown = run_cli("site", "set-retention", "--db", str(db), "--site", "nope", "--days",
                      "off", check=False)
    assert unknown.returncode == 1 and "no site has the key nope" in unknown.stderr
    assert "off" in run_cli("site", "set-retention", "--db", str(db), "--site", site.key,
                            "--days", "off").stdout
    assert "retention off" in run_cli("retention", "run", "--db", str(db)).stdout


async def test_the_retention_page_escapes_what_it_shows(inprocess: InProcess) -> None:
    server = inprocess
    site = await server.create_site(name="<b>Shop</b>")
    client = await VisitorClient.connect(server, site)
    await client.open_request()
    await client.close()
    run_cli("visitor", "erase", "--db", str(server.db), "--site", site.key, "--visitor",
            client.ready["visitor"]["id"], "--reference", "<script>alert(1)</script>", "--yes")
    admin = await console_client(server, site)
    try:
        page = await admin.get(f"/console/admin/sites/{site.key}/privacy")
        assert page.status_code == 200 and "Erasure request" in page.text
        assert "<b>Shop</b>" not in page.text and "&lt;b&gt;Shop&lt;/b&gt;" in page.text
        assert "<script>alert(1)" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    finally:
        await admin.aclose()
