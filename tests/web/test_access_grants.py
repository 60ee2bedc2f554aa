"""Support access grants, the app in process (docs/access_grants.md): a verified visitor
grants, the host backend checks and records use, the visitor revokes, grants expire when the
app's clock is moved, and nobody reaches another user's or another site's grants."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcess
from tests.support import (
    Site,
    VisitorClient,
    console_client,
    csrf_of,
    identity_secret,
    run_cli,
    start_session,
    user_hash,
)

pytestmark = pytest.mark.anyio
WIDGET = "/api/widget/v1/access-grants"
HOST = "/api/v1/access-grants"


@pytest.fixture
async def grant_site(inprocess: InProcess) -> Site:
    return await inprocess.create_site()


@pytest.fixture
async def http(inprocess: InProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with inprocess.client() as client:
        yield client


class Visitor:
    """A signed-in user of the host product, talking to the widget endpoints."""

    def __init__(self, http: httpx.AsyncClient, site: Site, token: str, user_id: str) -> None:
        self.http, self.site, self.token, self.user_id = http, site, token, user_id

    @classmethod
    async def verified(cls, server: InProcess, http: httpx.AsyncClient, site: Site,
                       name: str = "Ana") -> Visitor:
        user_id = f"user-{uuid.uuid4().hex[:8]}"
        session = await start_session(server, site, user={
            "id": user_id, "name": name, "hash": user_hash(identity_secret(site), user_id)})
        assert session["visitor"]["verified"] is True
        return cls(http, site, session["token"], user_id)

    @property
    def headers(self) -> dict[str, str]:
        return {"Origin": self.site.origin, "Authorization": f"Bearer {self.token}"}

    async def overview(self) -> httpx.Response:
        return await self.http.get(WIDGET, params={"site": self.site.key},
                                   headers=self.headers)

    async def grant(self, **body: Any) -> httpx.Response:
        return await self.http.post(WIDGET, json={"site": self.site.key, **body},
                                    headers=self.headers)

    async def revoke(self, grant_id: str) -> httpx.Response:
        return await self.http.post(f"{WIDGET}/{grant_id}/revoke", json={"site": self.site.key},
                                    headers=self.headers)


async def bearer(server: InProcess, site: Site) -> dict[str, str]:
    return {"Authorization": f"Bearer {await server.api_token(site)}"}


def set_grant_max(site: Site, hours: int) -> None:
    with sqlite3.connect(site.db) as conn:
        conn.execute("UPDATE sites SET grant_max_hours = ? WHERE key = ?", (hours, site.key))
    conn.close()


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


async def test_grant_check_use_and_revoke(inprocess: InProcess, http: httpx.AsyncClient,
                                          grant_site: Site) -> None:
    ana = await Visitor.verified(inprocess, http, grant_site)
    client = await VisitorClient.connect(inprocess, grant_site, ana.token)
    ack, _ = await client.open_request("I cannot export my invoices")
    await client.close()
    number = ack["ticket"]["number"]
    host = await bearer(inprocess, grant_site)

    assert (await http.get(HOST, params={"user_id": ana.user_id})).status_code == 401
    before = (await http.get(HOST, params={"user_id": ana.user_id}, headers=host)).json()
    assert before["active"] is False and before["scope"] is None

    granted = await ana.grant(hours=24, ticket=number, reason="Look at my export settings")
    assert granted.status_code == 201, granted.text
    grant = granted.json()["grant"]
    assert grant["ticket"] == number and grant["reason"] == "Look at my export settings"
    assert grant["scope"] == "account" and grant["state"] == "active"
    assert granted.headers["access-control-allow-origin"] == grant_site.origin

    status = (await http.get(HOST, params={"user_id": ana.user_id}, headers=host)).json()
    assert status["active"] is True and status["scope"] == "account"
    assert status["expires_at"] == grant["expires_at"] and status["grant_id"] == grant["id"]

    used = await http.post(f"{HOST}/{grant['id']}/events", headers=host,
                           json={"action": "Opened the export settings", "actor": "Sam"})
    assert used.status_code == 201, used.text
    seen = (await ana.overview()).json()
    assert [e["type"] for e in seen["events"]] == ["used", "granted"]
    assert seen["events"][0]["action"] == "Opened the export settings"
    assert seen["events"][0]["actor"] == {"type": "api", "name": "Sam"}
    assert [g["id"] for g in seen["grants"]] == [grant["id"]]

    revoked = await ana.revoke(grant["id"])
    assert revoked.status_code == 200 and revoked.json()["grant"]["state"] == "revoked"
    status = (await http.get(HOST, params={"user_id": ana.user_id}, headers=host)).json()
    assert status["active"] is False and status["grants"] == []
    late = await http.post(f"{HOST}/{grant['id']}/events", headers=host,
                           json={"action": "Changed a setting"})
    assert late.status_code == 409 and error_code(late) == "grant_not_active"
    audit = (await http.get(f"{HOST}/{grant['id']}", headers=host)).json()
    assert [e["type"] for e in audit["events"]] == ["revoked", "used", "granted"]
    again = await ana.revoke(grant["id"])  # revoking twice changes nothing
    assert again.status_code == 200
    assert len((await ana.overview()).json()["events"]) == 3


async def test_grants_expire_by_themselves(inprocess: InProcess, http: httpx.AsyncClient,
                                           grant_site: Site) -> None:
    ana = await Visitor.verified(inprocess, http, grant_site)
    short = (await ana.grant(hours=1)).json()["grant"]
    week = (await ana.grant(hours=168, reason="Billing migration")).json()["grant"]
    host = await bearer(inprocess, grant_site)
    status = (await http.get(HOST, params={"user_id": ana.user_id}, headers=host)).json()
    assert status["expires_at"] == week["expires_at"] and len(status["grants"]) == 2

    inprocess.clock.advance(3601)
    status = (await http.get(HOST, params={"user_id": ana.user_id}, headers=host)).json()
    assert [g["id"] for g in status["grants"]] == [week["id"]]
    refused = await http.post(f"{HOST}/{short['id']}/events", headers=host,
                              json={"action": "Looked around"})
    assert refused.status_code == 409
    events = (await ana.overview()).json()["events"]
    expired = [e for e in events if e["type"] == "expired"]
    assert len(expired) == 1 and expired[0]["grant"] == short["id"]
    assert expired[0]["created_at"] == short["expires_at"]  # when it ended, not when noticed
    assert expired[0]["actor"]["type"] == "system"

    inprocess.clock.advance(7 * 24 * 3600)
    status = (await http.get(HOST, params={"user_id": ana.user_id}, headers=host)).json()
    assert status["active"] is False
    events = (await ana.overview()).json()["events"]
    assert sorted(e["grant"] for e in events if e["type"] == "expired") == sorted(
        [short["id"], week["id"]])


async def test_the_site_sets_the_longest_grant(inprocess: InProcess, http: httpx.AsyncClient,
                                               grant_site: Site) -> None:
    ana = await Visitor.verified(inprocess, http, grant_site)
    choices = (await ana.overview()).json()["choices"]
    assert [c["label"] for c in choices] == ["1 hour", "24 hours", "7 days"]
    set_grant_max(grant_site, 24)
    assert [c["hours"] for c in (await ana.overview()).json()["choices"]] == [1, 24]
    too_long = await ana.grant(hours=168)
    assert too_long.status_code == 422 and error_code(too_long) == "duration_not_allowed"
    for hours in (2, "24", True, None, 24.5):
        odd = await ana.grant(hours=hours)
        assert odd.status_code == 422 and error_code(odd) == "invalid_duration", hours
    set_grant_max(grant_site, 0)
    off = await ana.grant(hours=1)
    assert off.status_code == 403 and error_code(off) == "grants_disabled"
    assert (await ana.overview()).json()["choices"] == []


async def test_anonymous_visitors_cannot_grant(inprocess: InProcess, http: httpx.AsyncClient,
                                               grant_site: Site) -> None:
    anonymous = await start_session(inprocess, grant_site)
    headers = {"Origin": grant_site.origin, "Authorization": f"Bearer {anonymous['token']}"}
    for response in (
        await http.get(WIDGET, params={"site": grant_site.key}, headers=headers),
        await http.post(WIDGET, json={"site": grant_site.key, "hours": 1}, headers=headers),
    ):
        assert response.status_code == 403
        assert error_code(response) == "verified_visitor_required"
        assert response.headers["access-control-allow-origin"] == grant_site.origin
    claimed = await start_session(inprocess, grant_site,
                                  user={"id": "user-1", "name": "Mallory"})  # no hash
    headers["Authorization"] = f"Bearer {claimed['token']}"
    response = await http.post(WIDGET, json={"site": grant_site.key, "hours": 1},
                               headers=headers)
    assert response.status_code == 403
    no_token = await http.post(WIDGET, json={"site": grant_site.key, "hours": 1},
                               headers={"Origin": grant_site.origin})
    assert no_token.status_code == 401
    forged = await http.post(WIDGET, json={"site": grant_site.key, "hours": 1}, headers={
        "Origin": grant_site.origin, "Authorization": "Bearer x.y.z"})
    assert forged.status_code == 401 and error_code(forged) == "invalid_token"
    foreign = await http.post(WIDGET, json={"site": grant_site.key, "hours": 1}, headers={
        "Origin": "https://evil.test", "Authorization": f"Bearer {anonymous['token']}"})
    assert foreign.status_code == 403 and error_code(foreign) == "origin_not_allowed"
    assert "access-control-allow-origin" not in foreign.headers


async def test_nobody_reaches_another_users_or_sites_grants(
        inprocess: InProcess, http: httpx.AsyncClient, grant_site: Site) -> None:
    ana = await Visitor.verified(inprocess, http, grant_site)
    bob = await Visitor.verified(inprocess, http, grant_site, name="Bob")
    client = await VisitorClient.connect(inprocess, grant_site, bob.token)
    ack, _ = await client.open_request("Bob's ticket")
    await client.close()
    stolen = await ana.grant(hours=1, ticket=ack["ticket"]["number"])
    assert stolen.status_code == 404 and error_code(stolen) == "ticket_not_found"
    grant = (await ana.grant(hours=1)).json()["grant"]
    assert (await bob.revoke(grant["id"])).status_code == 404
    assert (await bob.overview()).json()["events"] == []

    other = await inprocess.create_site()
    other_host = await bearer(inprocess, other)
    status = (await http.get(HOST, params={"user_id": ana.user_id}, headers=other_host)).json()
    assert status["active"] is False
    assert (await http.get(f"{HOST}/{grant['id']}", headers=other_host)).status_code == 404
    use = await http.post(f"{HOST}/{grant['id']}/events", headers=other_host,
                          json={"action": "Snooping"})
    assert use.status_code == 404 and error_code(use) == "grant_not_found"
    # a token of one site presented on another site's widget endpoint
    cross = await http.get(WIDGET, params={"site": other.key}, headers={
        "Origin": other.origin, "Authorization": f"Bearer {ana.token}"})
    assert cross.status_code == 401
    ana_status = (await http.get(HOST, params={"user_id": ana.user_id},
                                 headers=await bearer(inprocess, grant_site))).json()
    assert ana_status["active"] is True


@pytest.mark.parametrize("body", [
    {}, {"action": ""}, {"action": 5}, {"action": "x" * 201},
    {"action": "ok", "detail": "y" * 2001}, {"action": "ok", "actor": ["Sam"]},
])
async def test_recording_a_use_needs_a_clear_action(
        inprocess: InProcess, http: httpx.AsyncClient, grant_site: Site,
        body: dict[str, Any]) -> None:
    ana = await Visitor.verified(inprocess, http, grant_site)
    grant = (await ana.grant(hours=1)).json()["grant"]
    response = await http.post(f"{HOST}/{grant['id']}/events", json=body,
                               headers=await bearer(inprocess, grant_site))
    assert response.status_code == 422, response.text
    assert (await ana.overview()).json()["events"][0]["type"] == "granted"


async def test_host_check_rejects_bad_user_ids(inprocess: InProcess, http: httpx.AsyncClient,
                                               grant_site: Site) -> None:
    host = await bearer(inprocess, grant_site)
    for params in ({}, {"user_id": ""}, {"user_id": "u" * 201}):
        response = await http.get(HOST, params=params, headers=host)
        assert response.status_code == 422 and error_code(response) == "invalid_user_id"
    long_id = await http.get(f"{HOST}/{'g' * 500}", headers=host)
    assert long_id.status_code == 404



def test_visitor_tokens_never_go_in_urls() -> None:
    """The widget sends its token in a header or a body: a URL would end up in logs."""
    source = (Path(__file__).parents[2] / "widget_static" / "access.js").read_text()
    assert "token=" not in source and "Authorization" in source


async def test_console_shows_grant_status_and_the_audit_to_admins(
        inprocess: InProcess, http: httpx.AsyncClient, grant_site: Site) -> None:
    ana = await Visitor.verified(inprocess, http, grant_site, name="Ana")
    client = await VisitorClient.connect(inprocess, grant_site, ana.token)
    ack, _ = await client.open_request("Please look at my account")
    await client.close()
    number = ack["ticket"]["number"]
    ticket_page = f"/console/tickets/{grant_site.key}/{number}"
    agent = await console_client(inprocess, grant_site, role="agent")
    admin = await console_client(inprocess, grant_site, role="admin")
    try:
        assert "Never granted" in (await agent.get(ticket_page)).text
        reason = "<script>alert(1)</script> billing"
        grant = (await ana.grant(hours=24, ticket=number, reason=reason)).json()["grant"]
        shown = (await agent.get(ticket_page)).text
        assert "Granted by the visitor" in shown and f"for #{number}" in shown
        assert "&lt;script&gt;alert(1)&lt;/script&gt; billing" in shown and reason not in shown
        await http.post(f"{HOST}/{grant['id']}/events", headers=await bearer(inprocess, grant_site),
                        json={"action": "<b>Reset</b> the export"})
        await ana.revoke(grant["id"])
        assert "No active grant" in (await agent.get(ticket_page)).text

        audit_page = f"/console/admin/access?site={grant_site.key}"
        assert (await agent.get(audit_page)).status_code == 403
        audit = await admin.get(audit_page)
        assert audit.status_code == 200
        for text in ("Granted", "Used by support", "Revoked by the visitor", ana.user_id,
                     "&lt;b&gt;Reset&lt;/b&gt; the export", grant["id"]):
            assert text in audit.text, text
        assert "<b>Reset</b>" not in audit.text

        form = {"site": grant_site.key, "grant_max_hours": "1"}
        assert (await admin.post("/console/admin/access", data=form)).status_code == 403
        saved = await admin.post("/console/admin/access",
                                 data={**form, "csrf": csrf_of(audit.text)})
        assert saved.status_code == 303
        assert [c["hours"] for c in (await ana.overview()).json()["choices"]] == [1]
        odd = await admin.post("/console/admin/access", data={
            **form, "grant_max_hours": "48", "csrf": csrf_of(audit.text)})
        assert odd.status_code == 422
    finally:
        await agent.aclose()
        await admin.aclose()


async def test_unverified_visitors_tickets_say_access_is_not_possible(
        inprocess: InProcess, grant_site: Site) -> None:
    client = await VisitorClient.connect(inprocess, grant_site)
    ack, _ = await client.open_request("Anonymous")
    await client.close()
    agent = await console_client(inprocess, grant_site, role="agent")
    try:
        page = await agent.get(f"/console/tickets/{grant_site.key}/{ack['ticket']['number']}")
        assert "Not possible: the visitor is not verified" in page.text
    finally:
        await agent.aclose()


async def test_an_erasure_request_revokes_the_users_grants(
        inprocess: InProcess, http: httpx.AsyncClient, grant_site: Site) -> None:
    writer = await Visitor.verified(inprocess, http, grant_site)
    client = await VisitorClient.connect(inprocess, grant_site, writer.token)
    await client.open_request("Erase me later")
    await client.close()
    silent = await Visitor.verified(inprocess, http, grant_site)  # granted, never wrote
    keeper = await Visitor.verified(inprocess, http, grant_site)
    for visitor in (writer, silent, keeper):
        assert (await visitor.grant(hours=24, reason="help me")).status_code == 201
    host = await bearer(inprocess, grant_site)
    for visitor, revoked in ((writer, 1), (silent, 1)):
        erased = run_cli("visitor", "erase", "--db", str(inprocess.db), "--site", grant_site.key,
                         "--user-id", visitor.user_id, "--yes")
        assert f"revoked {revoked} support access grants" in erased.stdout, erased.stdout
        status = (await http.get(HOST, params={"user_id": visitor.user_id},
                                 headers=host)).json()
        assert status["active"] is False
        grant_id = (await http.get(HOST, params={"user_id": keeper.user_id},
                                   headers=host)).json()["grant_id"]
        assert grant_id is not None
    kept = (await http.get(HOST, params={"user_id": keeper.user_id}, headers=host)).json()
    assert kept["active"] is True
    again = run_cli("visitor", "erase", "--db", str(inprocess.db), "--site", grant_site.key,
                    "--user-id", silent.user_id, "--yes", check=False)
    assert again.returncode == 1  # nothing left to erase or revoke
