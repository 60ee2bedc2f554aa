"""HTTP as clients expect it, from a real server: same-origin widget calls, Allow on every
405, WWW-Authenticate on every bearer 401, the headers every response carries, HSTS only
over https, valid <time datetime> values and a favicon."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from tests.support import ServerProcess, Site, create_site, run_cli, start_session
from widget_server.app import create_app
from widget_server.config import DEMO_SITE_SETTING

pytestmark = pytest.mark.anyio

# https://html.spec.whatwg.org/#valid-global-date-and-time-string: at most 3 fraction digits
DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,3})?)?(Z|[+-]\d\d:\d\d)")
ARTICLE = "---\ntitle: Exporting data\nslug: exporting\n---\nUse the export button.\n"


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Site]]:
    """A server whose site allows the server's own origin, as the demo's does."""
    folder = tmp_path_factory.mktemp("own")
    process = ServerProcess(folder / "widget.db")
    site = create_site(process.db, origin=process.url)
    (folder / "articles").mkdir()
    (folder / "articles" / "exporting.md").write_text(ARTICLE)
    run_cli("articles", "import", "--db", str(process.db), "--site", site.key,
            str(folder / "articles"))
    with sqlite3.connect(process.db) as conn:
        conn.execute("INSERT INTO server_settings (key, value) VALUES (?, ?)",
                     (DEMO_SITE_SETTING, site.key))
    conn.close()
    process.start()
    yield process, site
    process.stop()


@pytest.fixture
async def client(own: tuple[ServerProcess, Site]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=own[0].url) as http:
        yield http


SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}


# -- same-origin widget calls


async def test_a_same_origin_get_without_origin_is_the_servers_own_origin(
    own: tuple[ServerProcess, Site], client: httpx.AsyncClient
) -> None:
    server, site = own
    search = await client.get("/api/widget/v1/articles",
                              params={"site": site.key, "q": "export"}, headers=SAME_ORIGIN)
    assert search.status_code == 200, search.text
    assert [a["slug"] for a in search.json()["articles"]] == ["exporting"]
    article = search.json()["articles"][0]["id"]
    shown = await client.get(f"/api/widget/v1/articles/{article}", params={"site": site.key},
                             headers=SAME_ORIGIN)
    assert shown.status_code == 200, shown.text
    listing = await client.get("/api/widget/v1/articles", params={"site": site.key},
                               headers=SAME_ORIGIN)
    assert listing.status_code == 200, listing.text
    # a browser without Fetch metadata: the Referer names one of the server's own pages
    by_referer = await client.get("/api/widget/v1/articles", params={"site": site.key},
                                  headers={"Referer": server.url + "/demo"})
    assert by_referer.status_code == 200, by_referer.text


async def test_access_and_security_answers_a_same_origin_get(
    own: tuple[ServerProcess, Site], client: httpx.AsyncClient
) -> None:
    server, site = own
    token = (await start_session(server, Site(site.key, server.url, site.db)))["token"]
    response = await client.get("/api/widget/v1/access-grants", params={"site": site.key},
                                headers={**SAME_ORIGIN, "Authorization": f"Bearer {token}"})
    # the origin passes; an anonymous visitor then may not grant access (not a 403 origin)
    assert response.json()["error"]["code"] == "verified_visitor_required", response.text


@pytest.mark.parametrize("headers", [
    {},  # curl, a server: no browser vouches for the page
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "none"},
    {"Referer": "https://evil.example/page"},
    {"Sec-Fetch-Site": "cross-site", "Referer": "SELF/demo"},
])
async def test_without_origin_only_a_same_origin_browser_call_passes(
    own: tuple[ServerProcess, Site], client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    server, site = own
    headers = {name: value.replace("SELF", server.url) for name, value in headers.items()}
    response = await client.get("/api/widget/v1/articles", params={"site": site.key},
                                headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "origin_not_allowed"


async def test_same_origin_is_not_an_origin_the_site_does_not_allow(
    server: ServerProcess,
) -> None:
    """The shared server's sites allow other origins: its own pages get nothing of them."""
    site = create_site(server.db)
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/api/widget/v1/articles", params={"site": site.key},
                                  headers=SAME_ORIGIN)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"


# -- 405 with the whole Allow


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: "1" if m.group(2) == ":int" else "x", path)


def _methods_by_path() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for route in create_app().routes:
        if isinstance(route, Route) and route.methods:
            found.setdefault(route.path, set()).update(route.methods)
    return found


async def test_every_405_allows_every_method_of_its_path(client: httpx.AsyncClient) -> None:
    table = _methods_by_path()
    assert table["/api/v1/tickets/{number:id}"] >= {"GET", "PATCH"}
    assert table["/help/new"] >= {"GET", "POST"}
    checked = 0
    for path, methods in table.items():
        wrong = next(m for m in ("DELETE", "PUT", "PATCH", "POST") if m not in methods)
        response = await client.request(wrong, _concrete(path))
        if response.status_code != 405:
            continue  # another route of a wider pattern took the path
        assert set(response.headers["allow"].split(", ")) == methods, (path, response.headers)
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize("path,allowed", [
    ("/api/v1/tickets/1", {"GET", "HEAD", "PATCH"}),
    ("/help/new", {"GET", "HEAD", "POST"}),
    ("/console/login", {"GET", "HEAD", "POST"}),
    ("/api/widget/v1/session", {"POST", "OPTIONS"}),
    ("/api/widget/v1/access-grants", {"GET", "HEAD", "POST", "OPTIONS"}),
])
async def test_the_reviews_405s(client: httpx.AsyncClient, path: str, allowed: set[str]
                                ) -> None:
    response = await client.request("PUT", path)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == allowed
    assert response.json()["error"]["code"] == "method_not_allowed"


# -- 401 with its challenge


async def test_every_bearer_401_carries_a_challenge(
    own: tuple[ServerProcess, Site], client: httpx.AsyncClient
) -> None:
    server, site = own
    missing = await client.get("/api/v1/tickets")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="widget-server"'
    calls = [
        client.get("/api/v1/tickets", headers={"Authorization": "Bearer wst_nope"}),
        client.get("/api/v1/tickets/1", headers={"Authorization": "Bearer wst_nope"}),
        client.get("/api/v1/reports/sla", headers={"Authorization": "Bearer wst_nope"}),
        client.get("/api/v1/access-grants", params={"user_id": "u"},
                   headers={"Authorization": "Bearer wst_nope"}),
        client.get("/api/widget/v1/access-grants", params={"site": site.key},
                   headers={"Origin": server.url, "Authorization": "Bearer forged"}),
        client.post("/api/widget/v1/messages", headers={"Origin": server.url},
                    json={"site": site.key, "token": "forged", "client_msg_id": "m1",
                          "body": "hi"}),
        client.post("/api/widget/v1/messages", headers={"Origin": server.url},
                    json={"site": site.key, "client_msg_id": "m1", "body": "hi"}),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == \
            'Bearer realm="widget-server", error="invalid_token"', response.request.url


# -- headers on every response


async def test_nosniff_on_every_kind_of_response(
    own: tuple[ServerProcess, Site], client: httpx.AsyncClient
) -> None:
    server, site = own
    loader = await client.get("/widget.js")
    version = re.search(r'version: "([0-9a-f]{12})"', loader.text)
    assert version
    paths = ["/widget.js", f"/widget/{version.group(1)}/panel.js", "/widget/help.css",
             "/console/static/console.js", "/favicon.ico", "/demo", "/healthz", "/help",
             f"/help/new?site={site.key}", "/console/login", "/api/v1/openapi.json",
             "/api/v1/tickets", "/nowhere", "/widget/nothing.js"]
    for path in paths:
        response = await client.get(path)
        assert response.headers.get("x-content-type-options") == "nosniff", path
    preflight = await client.options("/api/widget/v1/session", headers={
        "Origin": server.url, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["x-content-type-options"] == "nosniff"


async def test_authenticated_json_is_never_stored(
    own: tuple[ServerProcess, Site], client: httpx.AsyncClient
) -> None:
    server, site = own
    api = {"Authorization": f"Bearer {site.api_token()}"}
    token = (await start_session(server, Site(site.key, server.url, site.db)))["token"]
    answers = [
        await client.get("/api/v1/tickets", headers=api),
        await client.get("/api/v1/reports/sla", headers=api),
        await client.get("/api/v1/access-grants", params={"user_id": "u1"}, headers=api),
        await client.get("/api/v1/tickets/999", headers=api),
        await client.post("/api/widget/v1/messages", headers={"Origin": server.url}, json={
            "site": site.key, "token": token, "client_msg_id": str(uuid.uuid4()),
            "body": "hello"}),
    ]
    for response in answers:
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["cache-control"] == "no-store", response.request.url


async def test_the_demo_runs_under_a_strict_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/demo")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert re.search(r"script-src 'self' 'sha256-[A-Za-z0-9+/=]+'", policy)
    assert response.headers["referrer-policy"] == "same-origin"


@pytest.mark.parametrize("env,forwarded,sent", [
    ({"WIDGET_HSTS_SECONDS": "600", "WIDGET_TRUSTED_PROXIES": "127.0.0.1"}, "https", True),
    ({"WIDGET_HSTS_SECONDS": "600", "WIDGET_TRUSTED_PROXIES": "127.0.0.1"}, "http", False),
    ({"WIDGET_HSTS_SECONDS": "600", "WIDGET_TRUSTED_PROXIES": "127.0.0.1"}, None, False),
    ({"WIDGET_HSTS_SECONDS": "600"}, "https", False),  # a proxy not trusted: not believed
    ({"WIDGET_TRUSTED_PROXIES": "127.0.0.1"}, "https", False),  # off by default
])
async def test_hsts_only_over_https_when_turned_on(
    tmp_path: Path, env: dict[str, str], forwarded: str | None, sent: bool
) -> None:
    server = ServerProcess(tmp_path / "widget.db", env=env).start()
    try:
        headers = {"X-Forwarded-Proto": forwarded} if forwarded else {}
        async with httpx.AsyncClient(base_url=server.url) as http:
            for path in ("/healthz", "/help", "/api/v1/tickets"):
                response = await http.get(path, headers=headers)
                assert response.headers.get("strict-transport-security") == \
                    ("max-age=600" if sent else None), path
    finally:
        server.stop()


# -- pages


async def test_time_elements_carry_valid_html_datetimes(
    own: tuple[ServerProcess, Site], client: httpx.AsyncClient
) -> None:
    _, site = own
    page = await client.get("/help/articles/exporting", params={"site": site.key})
    assert page.status_code == 200
    values = re.findall(r'<time[^>]* datetime="([^"]*)"', page.text)
    assert values
    for value in values:
        assert DATETIME.fullmatch(value), value


async def test_a_favicon_is_served_and_linked(
    own: tuple[ServerProcess, Site], client: httpx.AsyncClient
) -> None:
    _, site = own
    icon = await client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert "max-age" in icon.headers["cache-control"]
    assert icon.content.startswith(b"<svg")
    for path in ("/help", f"/help/new?site={site.key}", "/console/login"):
        page = await client.get(path)
        assert '<link rel="icon" href="/favicon.ico"' in page.text, path


async def test_behind_a_tls_proxy_the_own_origin_has_the_public_scheme(tmp_path: Path) -> None:
    """The proxy speaks http to us; the browser's page is on https (WIDGET_PUBLIC_URL)."""
    server = ServerProcess(tmp_path / "widget.db")
    public = server.url.replace("http://", "https://")
    server.env["WIDGET_PUBLIC_URL"] = public
    site = create_site(server.db, origin=public)
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            response = await http.get("/api/widget/v1/articles", params={"site": site.key},
                                      headers=SAME_ORIGIN)
        assert response.status_code == 200, response.text
    finally:
        server.stop()
