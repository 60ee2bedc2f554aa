"""Every credential is checked against the current state when it is used, not only when it
was made: API tokens, console sessions and their live socket, visitor tokens, Help Form
follow links; and the sign-in throttle and sign-in form hold against bursts and other sites.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.clocked import TimeShift
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

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


def set_mode(site: Site, mode: str) -> None:
    with sqlite3.connect(site.db) as conn:
        conn.execute("UPDATE sites SET identity_mode = ? WHERE key = ?", (mode, site.key))
    conn.close()


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        found = conn.execute(sql, params).fetchall()
    conn.close()
    return found


def add_agent(server: ServerProcess, *sites: Site, role: str = "agent") -> str:
    email = f"agent-{uuid.uuid4().hex[:8]}@example.com"
    run_cli("agent", "add", "--db", str(server.db), "--email", email, "--password", PASSWORD,
            "--role", role, *[arg for site in sites for arg in ("--site", site.key)])
    return email


def login_token(page: str) -> str:
    found = re.search(r'name="login_token" value="([^"]+)"', page)
    assert found, "the sign-in form carries a login token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD,
                  **headers: str) -> httpx.Response:
    token = login_token((await client.get("/console/login")).text)
    return await client.post("/console/login", headers=headers, data={
        "email": email, "password": password, "login_token": token})


def api_token(server: ServerProcess, site: Site, email: str) -> str:
    return run_cli("token", "create", "--db", str(server.db), "--name", "crm", "--site",
                   site.key, "--agent", email).stdout.strip()


async def api_get(server: ServerProcess, token: str, path: str = "/api/v1/tickets"
                  ) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as client:
        return await client.get(path, headers={"Authorization": f"Bearer {token}"})


# -- sign-in: the throttle under a burst ----------------------------------------------------


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory, shift: TimeShift
            ) -> Iterator[ServerProcess]:
    """A server behind a trusted proxy (each test a client address of its own) whose clock
    the tests may set."""
    env = {"WIDGET_TRUSTED_PROXIES": "127.0.0.1", "WIDGET_LOGIN_FREE_FAILURES": "3"}
    process = ServerProcess(tmp_path_factory.mktemp("authz") / "widget.db", env=env,
                            launcher=shift.launcher).start()
    yield process
    process.stop()


async def burst(server: ServerProcess, address: str, attempts: list[tuple[str, str]]
                ) -> list[httpx.Response]:
    """Sign-in attempts sent at once, each from a browser of its own at ``address``."""
    clients = [httpx.AsyncClient(base_url=server.url, headers={"X-Forwarded-For": address})
               for _ in attempts]
    try:
        tokens = await asyncio.gather(*[
            client.get("/console/login") for client in clients])
        return list(await asyncio.gather(*[
            client.post("/console/login", data={"email": email, "password": password,
                                                "login_token": login_token(page.text)})
            for client, page, (email, password) in zip(clients, tokens, attempts,
                                                       strict=True)]))
    finally:
        for client in clients:
            await client.aclose()


async def test_a_burst_of_sign_ins_gets_no_more_checks_than_one_by_one(
    proxied: ServerProcess, shift: TimeShift
) -> None:
    site = create_site(proxied.db)
    email, address = add_agent(proxied, site), next(_addresses)
    answers = await burst(proxied, address, [(email, f"wrong-{n}") for n in range(15)])
    statuses = sorted(response.status_code for response in answers)
    # the first three failures are free (WIDGET_LOGIN_FREE_FAILURES=3); each attempt is
    # counted before its password is checked, so the others of the burst wait
    assert statuses == [401] * 3 + [429] * 12, statuses
    # the right password after the limit is refused too. The server's clock is set back an
    # hour so that the 1 s wait after the third failure cannot run out on a slow machine.
    shift.advance(-3600)
    try:
        async with httpx.AsyncClient(base_url=proxied.url,
                                     headers={"X-Forwarded-For": next(_addresses)}) as client:
            refused = await sign_in(client, email)
            assert refused.status_code == 429, refused.text
            assert "widget_console" not in client.cookies
    finally:
        shift.advance(3600)


async def test_a_burst_from_one_address_over_many_accounts_is_throttled_too(
    proxied: ServerProcess
) -> None:
    site = create_site(proxied.db)
    emails = [add_agent(proxied, site) for _ in range(2)]
    answers = await burst(proxied, next(_addresses),
                          [(f"guess-{n}@example.com", "wrong") for n in range(12)]
                          + [(email, PASSWORD) for email in emails])
    checked = [response for response in answers if response.status_code != 429]
    assert len(checked) <= 3, [response.status_code for response in answers]


# -- sign-in: login CSRF ---------------------------------------------------------------------


async def test_a_sign_in_form_token_works_only_in_the_browser_it_was_given_to(
    server: ServerProcess, site: Site
) -> None:
    email = add_agent(server, site)
    async with httpx.AsyncClient(base_url=server.url) as attacker, \
            httpx.AsyncClient(base_url=server.url) as victim:
        token = login_token((await attacker.get("/console/login")).text)
        # the attacker's own valid token, posted from the victim's browser (login CSRF)
        forged = await victim.post("/console/login", data={
            "email": email, "password": PASSWORD, "login_token": token})
        assert forged.status_code == 403, forged.text
        assert "not opened in this browser" in forged.text
        assert "widget_console" not in victim.cookies
        # the form it gets back works in that browser
        retried = await victim.post("/console/login", data={
            "email": email, "password": PASSWORD, "login_token": login_token(forged.text)})
        assert retried.status_code == 303, retried.text


async def test_a_sign_in_form_expires(proxied: ServerProcess, shift: TimeShift) -> None:
    site = create_site(proxied.db)
    email = add_agent(proxied, site)
    async with httpx.AsyncClient(base_url=proxied.url,
                                 headers={"X-Forwarded-For": next(_addresses)}) as client:
        token = login_token((await client.get("/console/login")).text)
        shift.advance(3601)
        late = await client.post("/console/login", data={
            "email": email, "password": PASSWORD, "login_token": token})
        assert late.status_code == 403, late.text
        assert "expired" in late.text
        assert "widget_console" not in client.cookies


async def test_a_sign_in_or_console_post_from_another_origin_is_refused(
    server: ServerProcess, site: Site
) -> None:
    email = add_agent(server, site)
    async with httpx.AsyncClient(base_url=server.url) as client:
        for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                        {"Referer": "https://evil.example/login.html"}):
            refused = await sign_in(client, email, **headers)
            assert refused.status_code == 403, refused.text
            assert "did not come from this server" in refused.text
            assert "widget_console" not in client.cookies
        signed_in = await sign_in(client, email, Origin=server.url)
        assert signed_in.status_code == 303, signed_in.text
        inbox = (await client.get("/console")).text
        csrf = re.search(r'data-csrf="([^"]+)"', inbox)
        assert csrf
        # a console form posted from another site, even with the session's own CSRF token
        foreign = await client.post("/console/saved-replies", headers={
            "Origin": "https://evil.example"}, data={"csrf": csrf.group(1)})
        assert foreign.status_code == 403, foreign.text
        assert foreign.json()["error"]["code"] == "cross_origin"
        own = await client.post("/console/logout", headers={"Origin": server.url},
                                data={"csrf": csrf.group(1)})
        assert own.status_code == 303, own.text


# -- API tokens: the agent must still work on the token's site ------------------------------


async def test_an_api_token_ends_when_its_agent_leaves_the_site_or_an_admin_is_demoted(
    server: ServerProcess, site: Site
) -> None:
    other = create_site(server.db)
    email = add_agent(server, site, other)
    token = api_token(server, site, email)
    assert (await api_get(server, token)).status_code == 200
    run_cli("agent", "add", "--db", str(server.db), "--email", email, "--site", other.key)
    gone = await api_get(server, token)
    assert gone.status_code == 401, gone.text
    assert gone.json()["error"]["code"] == "invalid_token"

    admin = add_agent(server, role="admin")  # an admin works on every site
    admin_token = api_token(server, site, admin)
    assert (await api_get(server, admin_token)).status_code == 200
    run_cli("agent", "add", "--db", str(server.db), "--email", admin, "--role", "agent")
    assert (await api_get(server, admin_token)).status_code == 401
    run_cli("agent", "add", "--db", str(server.db), "--email", admin, "--site", site.key)
    assert (await api_get(server, admin_token)).status_code == 200  # a member again


async def test_a_token_is_made_only_for_an_agent_of_its_site(
    server: ServerProcess, site: Site
) -> None:
    stranger = add_agent(server, create_site(server.db))
    made = run_cli("token", "create", "--db", str(server.db), "--name", "x", "--site",
                   site.key, "--agent", stranger, check=False)
    assert made.returncode == 1
    assert "does not work on the site" in made.stderr
    # a token for an integration (no --agent) gets an agent of its own, on its site
    assert (await api_get(server, site.api_token("integration"))).status_code == 200


# -- assignment: only agents of the ticket's site; no oracle for other sites' agents ---------


async def test_only_an_agent_of_the_tickets_site_can_be_assigned_and_others_look_unknown(
    server: ServerProcess, site: Site
) -> None:
    visitor = await VisitorClient.connect(server, site)
    await visitor.open_request("Assign me")
    await visitor.close()
    token = site.api_token()
    elsewhere = add_agent(server, create_site(server.db))
    elsewhere_id = query(server.db, "SELECT id FROM agents WHERE email = ?", (elsewhere,))[0][0]
    member = add_agent(server, site)
    answers = []
    async with httpx.AsyncClient(base_url=server.url,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        for assignee in (elsewhere, f"nobody-{uuid.uuid4().hex[:6]}@example.com",
                         elsewhere_id, 2**62):
            response = await client.patch("/api/v1/tickets/1", json={"assignee": assignee})
            assert response.status_code == 422, response.text
            answers.append({**response.json()["error"], "request_id": None})
        assert all(answer == answers[0] for answer in answers), answers
        assert answers[0]["code"] == "invalid_assignee"  # the id differs by request only
        ok = await client.patch("/api/v1/tickets/1", json={"assignee": member})
        assert ok.status_code == 200, ok.text
        assert ok.json()["ticket"]["assignee_id"] is not None


# -- identity mode: checked when a message is written ----------------------------------------


async def test_required_mode_closes_help_form_links_and_open_sockets_made_before(
    server: ServerProcess, site: Site
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as browser:
        page = (await browser.get("/help/new", params={"site": site.key})).text
        fields = {name: re.search(rf'name="{name}" value="([^"]*)"', page).group(1)  # type: ignore[union-attr]
                  for name in ("site", "form_token", "client_msg_id")}
        made = await browser.post("/help/new", data={
            **fields, "name": "Ada", "email": "ada@example.com", "subject": "Export",
            "description": "The export fails.", "severity": "normal"})
        assert made.status_code == 303, made.text
        link = made.headers["location"]
        socket = await VisitorClient.connect(server, site)
        set_mode(site, "required")
        shown = await browser.get(link)
        assert shown.status_code == 403
        assert "signed-in users" in shown.text
        reply = await browser.post(link, data={"client_msg_id": str(uuid.uuid4()),
                                               "body": "Still there?"})
        assert reply.status_code == 403
    try:
        await socket.send("written after the switch")
        refused = await socket.recv_type("error", "ack")
    finally:
        await socket.close()  # the server closes its end; an unclosed client socket warns
    assert refused["code"] == "identity_required", refused
    stored = query(server.db, "SELECT COUNT(*) FROM messages WHERE body IN (?, ?)",
                   ("Still there?", "written after the switch"))
    assert stored == [(0,)]


async def test_help_home_lists_no_required_mode_site(server: ServerProcess) -> None:
    public, private = create_site(server.db), create_site(server.db)
    set_mode(private, "required")
    async with httpx.AsyncClient(base_url=server.url) as browser:
        for path in ("/help", "/help/new", "/help/search"):
            response = await browser.get(path)
            assert response.status_code == 200, (path, response.text[:500])
            assert public.key in response.text, (path, response.text[:2000])
            assert private.key not in response.text, path
        # reachable by its key, as from inside its product
        assert (await browser.get("/help", params={"site": private.key})).status_code == 200


# -- erasure: an old visitor token speaks for nobody -----------------------------------------


async def test_an_erased_visitors_old_token_opens_and_writes_nothing(
    server: ServerProcess, site: Site
) -> None:
    old = await start_session(server, site, user={"name": "Erin Erased",
                                                  "email": "erin@example.com"})
    visitor = await VisitorClient.connect(server, site, old["token"])
    await visitor.open_request("Please forget me")
    erased = run_cli("visitor", "erase", "--db", str(server.db), "--site", site.key,
                     "--visitor", old["visitor"]["id"], "--yes")
    assert erased.returncode == 0, erased.stderr
    await visitor.send("a new request on the socket opened before")
    refused = await visitor.recv_type("error", "ack")
    assert refused["code"] == "invalid_token", refused
    await visitor.close()
    async with httpx.AsyncClient(base_url=server.url) as client:
        posted = await client.post("/api/widget/v1/messages", headers={"Origin": site.origin},
                                   json={"site": site.key, "token": old["token"],
                                         "conversation": None, "body": "again",
                                         "client_msg_id": str(uuid.uuid4())})
        assert posted.status_code == 401, posted.text
        renewed = await client.post("/api/widget/v1/session", headers={"Origin": site.origin},
                                    json={"site": site.key, "token": old["token"]})
    assert renewed.status_code == 200
    assert renewed.json()["visitor"]["id"] != old["visitor"]["id"]  # a stranger now
    assert renewed.json()["visitor"]["name"] is None
    async with websockets.connect(server.ws_url, origin=site.origin) as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"type": "hello", "site": site.key, "token": old["token"]}))
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert hello["type"] == "error" and hello["code"] == "invalid_token", hello
    assert query(server.db, "SELECT COUNT(*) FROM visitors WHERE name = ?",
                 ("Erin Erased",)) == [(0,)]


async def test_an_erased_user_comes_back_only_with_a_fresh_identity(
    server: ServerProcess, site: Site
) -> None:
    user_id = f"user-{uuid.uuid4().hex[:8]}"
    user = {"id": user_id, "name": "Uma", "hash": user_hash(identity_secret(site), user_id)}
    old = await start_session(server, site, user=user)
    before = await VisitorClient.connect(server, site, old["token"])
    await before.open_request("Forget me")
    await before.close()
    run_cli("visitor", "erase", "--db", str(server.db), "--site", site.key, "--user-id",
            user_id, "--yes")
    async with httpx.AsyncClient(base_url=server.url) as client:
        posted = await client.post("/api/widget/v1/messages", headers={"Origin": site.origin},
                                   json={"site": site.key, "token": old["token"],
                                         "conversation": None, "body": "old token",
                                         "client_msg_id": str(uuid.uuid4())})
    assert posted.status_code == 401, posted.text
    fresh = await start_session(server, site, user=user)  # the host signs the user in again
    assert fresh["visitor"]["id"] == old["visitor"]["id"]
    visitor = await VisitorClient.connect(server, site, fresh["token"])
    ack, _ = await visitor.open_request("Hello again")
    assert ack["ticket"]["number"] >= 1
    await visitor.close()


# -- the console's live socket follows the agent's sites -------------------------------------


async def test_the_live_socket_stops_when_the_agent_leaves_a_site(
    server: ServerProcess, site: Site
) -> None:
    other = create_site(server.db)
    email = add_agent(server, site, other)
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await sign_in(client, email)).status_code == 303
        cookie = client.cookies["widget_console"]
    agent = await websockets.connect(
        f"ws://127.0.0.1:{server.port}/ws/console", origin=server.url,  # type: ignore[arg-type]
        additional_headers={"Cookie": f"widget_console={cookie}"})
    assert json.loads(await agent.recv())["type"] == "ready"
    run_cli("agent", "add", "--db", str(server.db), "--email", email, "--site", site.key)
    visitor = await VisitorClient.connect(server, other)
    await visitor.open_request("Not for agents who left")
    await visitor.close()
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            frame = json.loads(await asyncio.wait_for(agent.recv(), 10))
            assert frame.get("site") != other.key, frame
    assert agent.close_code == 1008
    assert agent.close_reason == "sites changed"
