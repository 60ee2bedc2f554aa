"""Admin pages of the console, the app in process: sites, agents, API tokens
(docs/console.md), and the sign-in throttling admins rely on. Each test has an app and
database of its own, so no sign-in throttle carries over from one test to another."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import html
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.inprocess import InProcess
from tests.support import run_cli
from widget_server.passwords import hash_password

pytestmark = pytest.mark.anyio

ADMIN_GETS = ["/console/admin/sites", "/console/admin/agents", "/console/admin/tokens"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def query_db(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


def agent_row(db: Path, email: str) -> tuple[Any, ...]:
    """id, role, tier, active and the sorted site ids of an agent."""
    agent_id, role, tier, active = query_db(
        db, "SELECT id, role, tier, active FROM agents WHERE email = ?", (email,))[0]
    sites = [row[0] for row in query_db(
        db, "SELECT site_id FROM agent_sites WHERE agent_id = ? ORDER BY site_id", (agent_id,))]
    return agent_id, role, tier, bool(active), sites


def site_id(db: Path, key: str) -> int:
    return int(query_db(db, "SELECT id FROM sites WHERE key = ?", (key,))[0][0])


def shown_once(response: httpx.Response) -> str:
    """The password or token on a result page, which must not be cached anywhere."""
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert "shown only this once" in response.text
    found = re.search(r'<code id="once-secret">([^<]+)</code>', response.text)
    assert found, response.text
    return html.unescape(found.group(1))


def field_error(response: httpx.Response, field_id: str) -> str:
    """The message shown next to a form field, which must point at it."""
    assert response.status_code == 422, response.text
    assert f'aria-describedby="{field_id}-error"' in response.text
    found = re.search(rf'<p class="field-error" id="{field_id}-error">([^<]+)</p>', response.text)
    assert found, response.text
    return html.unescape(found.group(1))


class Console:
    """One browser of an agent: cookies kept, the CSRF token read from each page."""

    def __init__(self, inprocess: InProcess) -> None:
        self.client = inprocess.client()
        self.csrf = ""

    async def sign_in(self, email: str, password: str) -> httpx.Response:
        form = await self.client.get("/console/login")
        token = re.search(r'name="login_token" value="([^"]+)"', form.text)
        assert token, form.text
        return await self.client.post("/console/login", data={
            "email": email, "password": password, "login_token": token.group(1),
            "next": "/console/admin/sites"})

    async def get(self, path: str) -> httpx.Response:
        response = await self.client.get(path)
        found = re.search(r'<body data-csrf="([^"]+)"', response.text)
        if found:
            self.csrf = found.group(1)
        return response

    async def post(self, path: str, data: dict[str, Any] | None = None,
                   csrf: bool = True) -> httpx.Response:
        data = dict(data or {})
        if csrf:
            data["csrf"] = self.csrf
        return await self.client.post(path, data=data)

    async def signed_in(self) -> bool:
        response = await self.client.get("/console/admin/sites")
        if response.status_code in {401, 303}:
            return False
        assert response.status_code in {200, 403}, response.text
        return True

    async def aclose(self) -> None:
        await self.client.aclose()


@contextlib.asynccontextmanager
async def console(inprocess: InProcess, email: str, password: str) -> AsyncIterator[Console]:
    browser = Console(inprocess)
    try:
        response = await browser.sign_in(email, password)
        assert response.status_code == 303, response.text
        await browser.get("/console/admin/sites")
        assert browser.csrf
        yield browser
    finally:
        await browser.aclose()


async def make_admin(inprocess: InProcess) -> tuple[str, str, str]:
    """An admin and the key of the site made with it, as `widget-server init --site-name
    NAME --origin ORIGIN --admin-email EMAIL --admin-password PASSWORD` makes them."""
    email, password = f"{unique('admin')}@x.test", unique("password")
    site = await inprocess.create_site(f"https://{unique('admin')}.test", unique("Admin site"))
    await inprocess.store.ensure_agent(email, email.split("@")[0], "admin", hash_password(password))
    return email, password, site.key


async def make_agent(inprocess: InProcess, *sites: str) -> tuple[str, str]:
    email, password = f"{unique('agent')}@x.test", unique("password")
    await inprocess.add_agent(email, password, "agent", sites)
    return email, password


async def add_site(admin: Console, name: str, origins: str) -> str:
    response = await admin.post("/console/admin/sites", {"name": name, "origins": origins})
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert re.fullmatch(r"/console/admin/sites/site_[\w-]+\?done=site-added", location)
    return location.rsplit("/", 1)[1].split("?")[0]


def identity(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


async def widget_session(inprocess: InProcess, key: str, origin: str,
                         user: dict[str, Any] | None = None) -> httpx.Response:
    async with inprocess.client() as client:
        return await client.post("/api/widget/v1/session", headers={"Origin": origin},
                                 json={"site": key, "token": None, "user": user})


# -- sites


async def test_admin_adds_a_site_and_edits_its_origins_and_tiers(inprocess: InProcess) -> None:
    email, password, _ = await make_admin(inprocess)
    async with console(inprocess, email, password) as admin:
        name = unique("Shop")
        key = await add_site(admin, name, "https://Shop.Example.test/\nhttp://localhost:3000")
        page = await admin.get(f"/console/admin/sites/{key}?done=site-added")
        assert page.status_code == 200
        assert "The site was added" in page.text
        normalised = "http://localhost:3000\nhttps://shop.example.test</textarea>"
        assert normalised in page.text
        listing = await admin.get("/console/admin/sites")
        assert name in listing.text and key in listing.text

        # a bad origin is refused next to the field, nothing changes
        bad = await admin.post(f"/console/admin/sites/{key}", {
            "name": name, "origins": "https://ok.test\nhttps://shop.test/path\nftp://x.test",
            "tiers": "First level\nSecond level"})
        message = field_error(bad, "site-origins")
        assert "https://shop.test/path" in message and "ftp://x.test" in message
        assert "https://shop.test/path" in bad.text  # the typed text is kept for correcting
        assert query_db(inprocess.db, "SELECT allowed_origins FROM sites WHERE key = ?",
                        (key,)) == [('["http://localhost:3000", "https://shop.example.test"]',)]
        for origins in ("", "https://user@x.test", "https://*.x.test", "https://x.test?q"):
            response = await admin.post(f"/console/admin/sites/{key}", {
                "name": name, "origins": origins, "tiers": "One"})
            field_error(response, "site-origins")

        # a valid edit: origins, name and three tiers
        saved = await admin.post(f"/console/admin/sites/{key}", {
            "name": name + " renamed", "origins": "https://new.example.test:443, https://b.test",
            "tiers": "Front desk\nProduct team\nEngineering"})
        assert saved.status_code == 303
        assert saved.headers["location"] == f"/console/admin/sites/{key}?done=site-saved"
        page = await admin.get(saved.headers["location"])
        assert "The site was saved" in page.text and name + " renamed" in page.text
        assert query_db(inprocess.db, "SELECT allowed_origins, tier_names FROM sites WHERE key = ?",
                        (key,)) == [('["https://b.test", "https://new.example.test"]',
                                     '["Front desk", "Product team", "Engineering"]')]
        assert (await widget_session(inprocess, key, "https://new.example.test")).status_code == 200
        assert (await widget_session(inprocess, key, "https://shop.example.test")).status_code \
            == 403

        agents = await admin.get("/console/admin/agents")  # tiers offered by their names
        assert "3 · Engineering" in agents.text

        no_tiers = await admin.post(f"/console/admin/sites/{key}", {
            "name": name, "origins": "https://b.test", "tiers": "  \n"})
        field_error(no_tiers, "site-tiers")
        taken = await admin.post("/console/admin/sites", {
            "name": name + " renamed", "origins": "https://c.test"})
        assert "Another site has this name" in field_error(taken, "site-name")
        unknown = await admin.get("/console/admin/sites/site_nope")
        assert unknown.status_code == 404


async def test_snippet_is_ready_to_copy(inprocess: InProcess) -> None:
    email, password, key = await make_admin(inprocess)
    async with console(inprocess, email, password) as admin:
        page = await admin.get(f"/console/admin/sites/{key}")
        found = re.search(r'<pre class="admin-code"><code id="embed-snippet">(.*?)</code></pre>',
                          page.text, re.DOTALL)
        assert found
        assert "<script" not in found.group(1)  # escaped in the page
        snippet = html.unescape(found.group(1))
        assert snippet == (
            "<script>window.HelpWidget=window.HelpWidget||function(){(HelpWidget.q=HelpWidget.q"
            "||[]).push(arguments)};</script>\n"
            f'<script async src="{inprocess.url}/widget.js" data-site="{key}"></script>')
        assert 'src="/console/static/console-admin.js"' in page.text
        script = await admin.client.get("/console/static/console-admin.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        style = await admin.client.get("/console/static/console-admin.css")
        assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
        csp = page.headers["content-security-policy"]
        assert "script-src 'nonce-" in csp and "unsafe-inline" not in csp
        assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None  # no inline scripts
        assert " style=" not in page.text and "<style" not in page.text


async def test_rotating_the_identity_secret_keeps_old_hashes_for_a_grace_period(
        inprocess: InProcess) -> None:
    email, password, _ = await make_admin(inprocess)
    async with console(inprocess, email, password) as admin:
        origin = f"https://{unique('rotate')}.test"
        key = await add_site(admin, unique("Rotate"), origin)

        async def secret() -> str:
            page = await admin.get(f"/console/admin/sites/{key}")
            found = re.search(r'<code id="identity-secret">([0-9a-f]+)</code>', page.text)
            assert found, page.text
            return found.group(1)

        old = await secret()
        user = {"id": "user-42", "name": "Ana", "email": "ana@x.test",
                "hash": identity(old, "user-42")}
        signed = await widget_session(inprocess, key, origin, user)
        assert signed.status_code == 200 and signed.json()["visitor"]["verified"] is True

        unconfirmed = await admin.post(f"/console/admin/sites/{key}/rotate-secret")
        assert "Tick the box" in field_error(unconfirmed, "rotate-confirm")
        assert await secret() == old

        rotated = await admin.post(f"/console/admin/sites/{key}/rotate-secret",
                                   {"confirm": "yes"})
        assert rotated.status_code == 303
        new = await secret()
        assert new != old and len(new) == 64
        page = await admin.get(f"/console/admin/sites/{key}")
        assert 'id="previous-secret"' in page.text and "still accepted until" in page.text
        graced = await widget_session(inprocess, key, origin, user)
        assert graced.status_code == 200 and graced.json()["visitor"]["verified"] is True
        run_cli("site", "rotate-secret", "--db", str(inprocess.db), "--site", key,
                "--grace-hours", "0")
        newest = await secret()
        refused = await widget_session(inprocess, key, origin, user)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "invalid_identity"
        assert 'id="previous-secret"' not in (await admin.get(f"/console/admin/sites/{key}")).text
        new = newest
        renewed = await widget_session(inprocess, key, origin, {**user, "hash": identity(new,
                                                                                         "user-42")})
        assert renewed.status_code == 200


# -- agents


async def test_admin_manages_an_agent(inprocess: InProcess) -> None:
    email, password, key = await make_admin(inprocess)
    async with console(inprocess, email, password) as admin:
        other = await add_site(admin, unique("Second"), f"https://{unique('second')}.test")
        first_id, second_id = site_id(inprocess.db, key), site_id(inprocess.db, other)
        new_email = f"{unique('new')}@x.test"
        added = await admin.post("/console/admin/agents", {
            "email": new_email, "name": "Nia", "role": "agent", "tier": "2",
            "sites": str(first_id)})
        first_password = shown_once(added)
        assert new_email in added.text
        agent_id, role, tier, active, sites = agent_row(inprocess.db, new_email)
        assert (role, tier, active, sites) == ("agent", 2, True, [first_id])
        listing = await admin.get("/console/admin/agents")
        assert new_email in listing.text and first_password not in listing.text

        again = await admin.post("/console/admin/agents", {
            "email": new_email.upper(), "role": "agent", "tier": "1"})
        assert "exists" in field_error(again, "new-email")
        for data, field in (({"email": "not-an-email", "role": "agent", "tier": "1"}, "email"),
                            ({"email": f"{unique('x')}@x.test", "role": "root", "tier": "1"},
                             "role"),
                            ({"email": f"{unique('x')}@x.test", "role": "agent", "tier": "0"},
                             "tier"),
                            ({"email": f"{unique('x')}@x.test", "role": "agent", "tier": "1",
                              "sites": "999999"}, "sites")):
            field_error(await admin.post("/console/admin/agents", data), f"new-{field}")

        async with console(inprocess, new_email, first_password) as nia:
            assert (await nia.client.get("/console/admin/sites")).status_code == 403

            changed = await admin.post(f"/console/admin/agents/{agent_id}", {
                "role": "agent", "tier": "1", "sites": [str(first_id), str(second_id)]})
            assert changed.status_code == 303
            assert agent_row(inprocess.db, new_email)[1:] == ("agent", 1, True,
                                                              [first_id, second_id])
            bad_tier = await admin.post(f"/console/admin/agents/{agent_id}", {
                "role": "agent", "tier": "99"})
            field_error(bad_tier, f"agent-{agent_id}-tier")

            reset = await admin.post(f"/console/admin/agents/{agent_id}/password")
            second_password = shown_once(reset)
            assert second_password != first_password
            stale = Console(inprocess)
            assert (await stale.sign_in(new_email, first_password)).status_code == 401
            await stale.aclose()
            assert not await nia.signed_in()  # a reset ends sessions of the old password
            assert (await nia.sign_in(new_email, second_password)).status_code == 303
            assert await nia.signed_in()
            disabled = await admin.post(f"/console/admin/agents/{agent_id}/active",
                                        {"active": "0"})
            assert disabled.status_code == 303
            assert agent_row(inprocess.db, new_email)[3] is False
            assert not await nia.signed_in()  # the existing session ends at once
            gone = await nia.client.get("/console")
            assert gone.status_code in {303, 401}
            if gone.status_code == 303:
                assert gone.headers["location"].startswith("/console/login")
            refused = Console(inprocess)
            assert (await refused.sign_in(new_email, second_password)).status_code == 401
            await refused.aclose()

        enabled = await admin.post(f"/console/admin/agents/{agent_id}/active", {"active": "1"})
        assert enabled.status_code == 303
        async with console(inprocess, new_email, second_password) as back:
            assert await back.signed_in()


async def test_admin_cannot_lock_themself_out(inprocess: InProcess) -> None:
    email, password, key = await make_admin(inprocess)
    async with console(inprocess, email, password) as admin:
        me = agent_row(inprocess.db, email)[0]
        refused = await admin.post(f"/console/admin/agents/{me}/active", {"active": "0"})
        assert "cannot disable yourself" in field_error(refused, f"agent-{me}-active")
        demoted = await admin.post(f"/console/admin/agents/{me}", {"role": "agent", "tier": "1"})
        assert "own admin role" in field_error(demoted, f"agent-{me}-role")
        assert agent_row(inprocess.db, email)[1:4] == ("admin", 1, True)
        assert await admin.signed_in()
        # another admin may be demoted and disabled
        other, _ = await make_agent(inprocess, key)
        other_id = agent_row(inprocess.db, other)[0]
        promoted = await admin.post(f"/console/admin/agents/{other_id}",
                                    {"role": "admin", "tier": "2"})
        assert promoted.status_code == 303
        assert agent_row(inprocess.db, other)[1:3] == ("admin", 2)
        assert (await admin.post(f"/console/admin/agents/{other_id}/active",
                                 {"active": "0"})).status_code == 303
        unknown = await admin.post("/console/admin/agents/999999", {"role": "agent",
                                                                    "tier": "1"})
        assert unknown.status_code == 404


# -- API tokens


async def test_admin_creates_and_revokes_an_api_token(inprocess: InProcess) -> None:
    email, password, key = await make_admin(inprocess)
    async with console(inprocess, email, password) as admin:
        me = agent_row(inprocess.db, email)[0]
        name = unique("CRM sync")
        created = await admin.post("/console/admin/tokens",
                                   {"name": name, "site": key, "agent": str(me)})
        token = shown_once(created)
        assert token.startswith("wst_")
        bearer = {"Authorization": f"Bearer {token}"}
        api = await admin.client.get("/api/v1/tickets", headers=bearer)
        assert api.status_code == 200, api.text

        listing = await admin.get("/console/admin/tokens")
        assert name in listing.text and token not in listing.text
        token_id = int(query_db(inprocess.db, "SELECT id FROM api_tokens WHERE name = ?",
                                (name,))[0][0])
        revoked = await admin.post(f"/console/admin/tokens/{token_id}/revoke")
        assert revoked.status_code == 303
        assert "The API token was revoked" in (await admin.get(revoked.headers["location"])).text
        api = await admin.client.get("/api/v1/tickets", headers=bearer)
        assert api.status_code == 401
        assert (await admin.post("/console/admin/tokens/999999/revoke")).status_code == 404

        stranger, _ = await make_agent(inprocess)  # works on no site: cannot act for this one
        stranger_id = agent_row(inprocess.db, stranger)[0]
        refused = await admin.post("/console/admin/tokens",
                                   {"name": "x", "site": key, "agent": str(stranger_id)})
        assert "does not work on that site" in field_error(refused, "token-agent")
        missing = await admin.post("/console/admin/tokens", {"name": "", "site": "site_nope",
                                                             "agent": "abc"})
        for field in ("token-name", "token-site", "token-agent"):
            field_error(missing, field)
        assert query_db(inprocess.db, "SELECT COUNT(*) FROM api_tokens WHERE name = 'x'") == [(0,)]


# -- who may do what


async def test_non_admin_agents_get_403_everywhere(inprocess: InProcess) -> None:
    _, _, key = await make_admin(inprocess)
    email, password = await make_agent(inprocess, key)
    agent_id = agent_row(inprocess.db, email)[0]
    async with console(inprocess, email, password) as agent:
        assert agent.csrf  # read from the 403 page, which is a console page too
        for path in [*ADMIN_GETS, f"/console/admin/sites/{key}"]:
            response = await agent.client.get(path)
            assert response.status_code == 403, path
            assert "only admins" in response.text
        posts = {
            "/console/admin/sites": {"name": unique("Evil"), "origins": "https://evil.test"},
            f"/console/admin/sites/{key}": {"name": "Evil", "origins": "https://evil.test",
                                           "tiers": "One"},
            f"/console/admin/sites/{key}/rotate-secret": {"confirm": "yes"},
            "/console/admin/agents": {"email": f"{unique('evil')}@x.test", "role": "admin",
                                      "tier": "1"},
            f"/console/admin/agents/{agent_id}": {"role": "admin", "tier": "1"},
            f"/console/admin/agents/{agent_id}/active": {"active": "1"},
            f"/console/admin/agents/{agent_id}/password": {},
            "/console/admin/tokens": {"name": "evil", "site": key, "agent": str(agent_id)},
            "/console/admin/tokens/1/revoke": {},
        }
        for path, data in posts.items():
            response = await agent.post(path, data)
            assert response.status_code == 403, path
        assert agent_row(inprocess.db, email)[1] == "agent"
        assert query_db(inprocess.db, "SELECT COUNT(*) FROM api_tokens WHERE name = 'evil'") \
            == [(0,)]


async def test_signed_out_visitors_are_sent_to_sign_in(inprocess: InProcess) -> None:
    async with inprocess.client() as client:
        for path in ADMIN_GETS:
            response = await client.get(path)
            assert response.status_code == 303
            assert response.headers["location"] == f"/console/login?next={path}"
        response = await client.post("/console/admin/sites", data={"name": "x"})
        assert response.status_code == 401


async def test_posts_without_the_csrf_token_are_refused(inprocess: InProcess) -> None:
    email, password, _ = await make_admin(inprocess)
    async with console(inprocess, email, password) as admin:
        name = unique("No csrf")
        for csrf in (None, "", "forged"):
            data = {"name": name, "origins": "https://nocsrf.test"}
            if csrf is not None:
                data["csrf"] = csrf
            response = await admin.post("/console/admin/sites", data, csrf=False)
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "csrf_failed"
        me = agent_row(inprocess.db, email)[0]
        response = await admin.post(f"/console/admin/agents/{me}/password", csrf=False)
        assert response.status_code == 403
        assert query_db(inprocess.db, "SELECT COUNT(*) FROM sites WHERE name = ?", (name,)) \
            == [(0,)]


async def test_html_in_names_is_shown_escaped(inprocess: InProcess) -> None:
    email, password, key = await make_admin(inprocess)
    evil = "<script>alert(1)</script>"
    async with console(inprocess, email, password) as admin:
        evil_key = await add_site(admin, f"{evil} {unique('site')}", "https://xss.test")
        added = await admin.post("/console/admin/agents", {
            "email": f"{unique('xss')}@x.test", "name": f'{evil}"><img src=x onerror=alert(2)>',
            "role": "agent", "tier": "1"})
        shown_once(added)
        me = agent_row(inprocess.db, email)[0]
        created = await admin.post("/console/admin/tokens",
                                   {"name": evil, "site": key, "agent": str(me)})
        shown_once(created)
        bad_origin = await admin.post(f"/console/admin/sites/{evil_key}", {
            "name": "x", "origins": evil, "tiers": evil})
        assert bad_origin.status_code == 422
        pages = [bad_origin, created, added]
        for path in [*ADMIN_GETS, f"/console/admin/sites/{evil_key}"]:
            pages.append(await admin.get(path))
        for page in pages:
            assert evil not in page.text, page.url
            assert "<img src=x" not in page.text
        for page in pages[3:]:
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


# -- sign-in throttling


async def test_login_throttling_slows_down_exponentially(inprocess: InProcess) -> None:
    _, _, key = await make_admin(inprocess)
    email, password = await make_agent(inprocess, key)
    browser = Console(inprocess)
    try:
        for _ in range(3):
            assert (await browser.sign_in(email, "wrong password")).status_code == 401
        locked = await browser.client.get("/console/login")  # the form itself stays open
        assert locked.status_code == 200
        token = re.search(r'name="login_token" value="([^"]+)"', locked.text)
        assert token
        fourth = await browser.client.post("/console/login", data={
            "email": email, "password": password, "login_token": token.group(1)})
        assert fourth.status_code == 429  # even with the right password
        wait = int(fourth.headers["retry-after"])
        assert 1 <= wait <= 2
        assert f"Try again in {wait} seconds" in html.unescape(fourth.text)
        assert "widget_console" not in fourth.cookies

        inprocess.clock.advance(wait + 0.1)  # the wait passes, without waiting
        token = re.search(r'name="login_token" value="([^"]+)"',
                          (await browser.client.get("/console/login")).text)
        assert token
        fifth = await browser.client.post("/console/login", data={
            "email": email, "password": "wrong again", "login_token": token.group(1)})
        assert fifth.status_code == 401
        sixth = await browser.client.post("/console/login", data={
            "email": email, "password": password, "login_token": token.group(1)})
        assert sixth.status_code == 429
        doubled = int(sixth.headers["retry-after"])
        assert doubled == 2  # the wait doubles with each further failure
        assert f"Try again in {doubled} seconds" in html.unescape(sixth.text)

        inprocess.clock.advance(doubled + 0.1)
        assert (await browser.sign_in(email, password)).status_code == 303  # clears the count
    finally:
        await browser.aclose()


async def test_admin_sets_a_sites_support_address(inprocess: InProcess) -> None:
    email, password, _ = await make_admin(inprocess)
    async with console(inprocess, email, password) as admin:
        name = unique("Mailed")
        key = await add_site(admin, name, "https://mailed.example.test")
        other = await add_site(admin, unique("Other"), "https://other.example.test")
        fields = {"name": name, "origins": "https://mailed.example.test", "tiers": "One"}
        saved = await admin.post(f"/console/admin/sites/{key}", {
            **fields, "support_address": "Help@Mailed.test"})
        assert saved.status_code == 303
        page = await admin.get(f"/console/admin/sites/{key}")
        assert 'value="help@mailed.test"' in page.text
        assert query_db(inprocess.db, "SELECT support_address FROM sites WHERE key = ?",
                        (key,)) == [("help@mailed.test",)]
        bad = await admin.post(f"/console/admin/sites/{key}", {
            **fields, "support_address": "not an address"})
        assert "like help@acme.test" in field_error(bad, "site-support-address")
        taken = await admin.post(f"/console/admin/sites/{other}", {
            "name": unique("Other"), "origins": "https://other.example.test", "tiers": "One",
            "support_address": "help@mailed.test"})
        assert "Another site" in field_error(taken, "site-support-address")
        cleared = await admin.post(f"/console/admin/sites/{key}", {
            **fields, "support_address": ""})
        assert cleared.status_code == 303
        assert query_db(inprocess.db, "SELECT support_address FROM sites WHERE key = ?",
                        (key,)) == [(None,)]
