"""`widget-server visitor erase` against a running server: an erasure request deletes
everything of one visitor on one site, leaves tombstones, writes one audit record without the
visitor's details, and touches no other visitor or site (docs/privacy.md)."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    Api,
    ServerProcess,
    Site,
    VisitorClient,
    console_client,
    create_site,
    identity_secret,
    run_cli,
    start_session,
    user_hash,
)

ADA = f"u-{uuid.uuid4().hex[:8]}"  # unique: the session server is shared

pytestmark = pytest.mark.anyio


def query_db(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


def identified(site: Site, user_id: str, email: str) -> dict[str, Any]:
    return {"id": user_id, "name": "Ada Lovelace", "email": email,
            "hash": user_hash(identity_secret(site), user_id)}


async def connect_as(server: ServerProcess, site: Site, user: dict[str, Any]
                     ) -> VisitorClient:
    session = await start_session(server, site, user=user)
    return await VisitorClient.connect(server, site, session["token"])


def erase(db: Path, site: Site, *who: str, check: bool = False) -> Any:
    return run_cli("visitor", "erase", "--db", str(db), "--site", site.key, *who, check=check)


async def test_an_erasure_request_deletes_the_visitor_and_keeps_tombstones(
    server: ServerProcess,
) -> None:
    site, other_site = create_site(server.db), create_site(server.db)
    api, other_api = Api(server, site.api_token()), Api(server, other_site.api_token())
    try:
        ada = await connect_as(server, site, identified(site, ADA, "ada@example.com"))
        first, _ = await ada.open_request("My invoice from Ada Lovelace Ltd is wrong")
        await api.reply(first["ticket"]["number"], "Corrected, Ada")
        closed = await api.client.patch(f"/api/v1/tickets/{first['ticket']['number']}",
                                        json={"status": "closed"})
        assert closed.status_code == 200
        await ada.frames_until_pong()  # the reply and the ticket updates, live
        second, _ = await ada.open_request("And my export is empty")
        # the same user id on another site, and another visitor here: both untouched
        twin = await connect_as(server, other_site,
                                identified(other_site, ADA, "ada@example.com"))
        theirs = (await twin.open_request("Mine on the other site"))[0]["ticket"]["number"]
        bob = await VisitorClient.connect(server, site)
        bobs = (await bob.open_request("Bob's own request"))[0]["ticket"]["number"]
        numbers = [first["ticket"]["number"], second["ticket"]["number"]]

        unconfirmed = erase(server.db, site, "--user-id", ADA)
        assert unconfirmed.returncode == 1 and "add --yes" in unconfirmed.stderr
        assert "tickets " + ", ".join(f"#{n}" for n in numbers) in unconfirmed.stdout
        assert query_db(server.db, "SELECT COUNT(*) FROM visitors WHERE user_id = ?", (ADA,)
                        ) == [(2,)]  # nothing erased without confirmation

        done = erase(server.db, site, "--user-id", ADA, "--reference", "DSR-2026-7",
                     "--yes", check=True)
        assert "erased: 2 tickets kept as tombstones" in done.stdout
        assert "deleted 2 conversations, 5 messages, 1 visitors" in done.stdout

        # a tombstone for each ticket, also the one that was still open
        for number in numbers:
            body = (await api.client.get(f"/api/v1/tickets/{number}")).json()
            assert body["ticket"]["erased"] is True, body
            assert body["ticket"]["erased_reason"] == "erasure"
            assert body["ticket"]["status"] == "closed" and body["messages"] == []
            assert "Lovelace" not in str(body) and ADA not in str(body)
        # the erased visitor's open socket cannot write into the deleted conversation
        await ada.send("Still there?", conversation=second["conversation"])
        assert (await ada.recv_type("error"))["code"] == "conversation_not_found"
        await ada.close()
        # signing in again finds no history: a fresh start
        again = await start_session(server, site,
                                    user=identified(site, ADA, "ada@example.com"))
        assert again["tickets"] == []
        # nothing of her is left in this site's data, not in the audit record either
        (site_id,) = query_db(server.db, "SELECT id FROM sites WHERE key = ?", (site.key,))[0]
        dump = "\n".join(str(row) for sql in (
            "SELECT * FROM visitors WHERE site_id = ?",
            "SELECT * FROM conversations WHERE site_id = ?",
            "SELECT m.* FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " WHERE c.site_id = ?",
            "SELECT * FROM tickets WHERE site_id = ?",
            "SELECT e.* FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id"
            " WHERE t.site_id = ?",
            "SELECT * FROM privacy_audit WHERE site_id = ?",
        ) for row in query_db(server.db, sql, (site_id,)))
        for trace in ("Lovelace", "ada@example.com", ADA, "invoice", "Corrected",
                      ada.ready["visitor"]["id"]):  # derived from the user id: gone too
            assert trace not in dump
        assert "Bob's own request" in dump  # the other visitor is all there
        audit = query_db(server.db, "SELECT p.actor, p.subject, p.reference, p.counts"
                         " FROM privacy_audit p JOIN sites s ON s.id = p.site_id"
                         " WHERE s.key = ? AND p.action = 'erasure'", (site.key,))
        assert len(audit) == 1
        actor, subject, reference, counts = audit[0]
        assert (actor, subject, reference) == ("cli", "user_id", "DSR-2026-7")
        assert "ada@" not in counts and ADA not in counts and str(numbers[0]) in counts

        # the other site's twin and the other visitor keep everything
        for client, number in ((other_api, theirs), (api, bobs)):
            body = (await client.client.get(f"/api/v1/tickets/{number}")).json()
            assert body["ticket"]["erased"] is False and len(body["messages"]) == 2
        await api.reply(bobs, "Still serving Bob")
        assert (await bob.recv_type("message"))["body"] == "Still serving Bob"
        await bob.close()
        await twin.close()

        # the console shows the tombstone; erasing again finds nobody
        console = await console_client(server, site)
        try:
            page = await console.get(f"/console/tickets/{site.key}/{numbers[1]}")
            assert page.status_code == 200 and "erasure request" in page.text
            assert "Ada" not in page.text
            audit_page = await console.get(f"/console/admin/sites/{site.key}/privacy")
            assert "Erasure request" in audit_page.text and "DSR-2026-7" in audit_page.text
        finally:
            await console.aclose()
        missing = erase(server.db, site, "--user-id", ADA, "--yes")
        assert missing.returncode == 1 and "no visitor" in missing.stderr
        assert "Traceback" not in missing.stderr
    finally:
        await api.aclose()
        await other_api.aclose()


async def test_erasure_by_email_takes_every_visitor_with_it(server: ServerProcess) -> None:
    site = create_site(server.db)
    numbers = []
    for _ in range(2):  # two anonymous visitors who gave the same email in the Help Form way
        session = await start_session(server, site, user={"name": "Grace",
                                                          "email": "grace@example.com"})
        client = await VisitorClient.connect(server, site, session["token"])
        numbers.append((await client.open_request("Form request"))[0]["ticket"]["number"])
        await client.close()
    done = erase(server.db, site, "--email", "GRACE@example.com", "--yes", check=True)
    assert "matches 2 visitor(s)" in done.stdout and "2 visitors" in done.stdout
    assert query_db(server.db, "SELECT COUNT(*) FROM visitors WHERE email = ? AND site_id ="
                    " (SELECT id FROM sites WHERE key = ?)",
                    ("grace@example.com", site.key)) == [(0,)]


async def test_erasure_by_visitor_id_and_clear_failures(server: ServerProcess) -> None:
    site = create_site(server.db)
    client = await VisitorClient.connect(server, site)
    number = (await client.open_request())[0]["ticket"]["number"]
    visitor_id = client.ready["visitor"]["id"]
    await client.close()
    nobody = erase(server.db, site, "--visitor", "v_nobody", "--yes")
    assert nobody.returncode == 1 and "no visitor on" in nobody.stderr
    assert "nothing was erased" in nobody.stderr
    both = erase(server.db, site, "--visitor", visitor_id, "--email", "x@y.z")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    wrong_site = run_cli("visitor", "erase", "--db", str(server.db), "--site", "site_nope",
                         "--visitor", visitor_id, "--yes", check=False)
    assert wrong_site.returncode == 1 and "no site has the key" in wrong_site.stderr
    done = erase(server.db, site, "--visitor", visitor_id, "--yes", check=True)
    assert f"(#{number})" in done.stdout
