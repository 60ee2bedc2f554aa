"""POST /api/widget/v1/session, the app in process; the expiry of a token at the websocket's
hello against a real server (docs/protocol.md)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from websockets.exceptions import ConnectionClosed

from tests.inprocess import InProcess
from tests.support import ServerProcess, Site, VisitorClient, create_site, start_session
from widget_server.visitor_tokens import SALT

pytestmark = pytest.mark.anyio

SESSION = "/api/widget/v1/session"


def query_db(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the server's database read-only, the way an operator would inspect it."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


def identity_secret(site: Site) -> str:
    (secret,) = query_db(site.db, "SELECT identity_secret FROM sites WHERE key = ?", (site.key,))[0]
    return str(secret)


def user_hash(site: Site, user_id: str) -> str:
    return hmac.new(identity_secret(site).encode(), user_id.encode(), hashlib.sha256).hexdigest()


async def post_session(inprocess: InProcess, body: Any = None, *, content: bytes | None = None,
                       origin: str | None = None) -> httpx.Response:
    headers = {"Origin": origin} if origin is not None else {}
    async with inprocess.client() as client:
        if content is not None:
            return await client.post(SESSION, content=content,
                                     headers={**headers, "Content-Type": "application/json"})
        return await client.post(SESSION, json=body, headers=headers)


@pytest.fixture
async def site(inprocess: InProcess) -> Site:
    return await inprocess.create_site()


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    assert "Traceback" not in response.text


async def test_good_call_returns_token_visitor_site_and_no_tickets(
    inprocess: InProcess, site: Site
) -> None:
    response = await post_session(inprocess, {"site": site.key, "token": None, "user": None},
                                  origin=site.origin)
    assert response.status_code == 200, response.text
    data = response.json()
    assert isinstance(data["token"], str) and len(data["token"]) > 20
    visitor = data["visitor"]
    assert visitor["verified"] is False
    assert isinstance(visitor["id"], str) and visitor["id"]
    assert visitor["name"] is None and visitor["email"] is None
    assert data["site"]["key"] == site.key
    severities = data["site"]["severities"]
    assert [s["key"] for s in severities] == ["critical", "high", "normal", "low"]
    assert all(s["first_response_hours"] == 12 for s in severities)
    assert all(s["label"] for s in severities)
    assert data["tickets"] == []
    assert response.headers.get("cache-control") == "no-store"


async def test_reusing_the_token_keeps_the_visitor(inprocess: InProcess, site: Site) -> None:
    first = await start_session(inprocess, site)
    again = await start_session(inprocess, site, token=first["token"])
    assert again["visitor"]["id"] == first["visitor"]["id"]
    other = await start_session(inprocess, site)
    assert other["visitor"]["id"] != first["visitor"]["id"]


async def test_page_views_store_nothing_until_the_first_message(
    inprocess: InProcess, site: Site
) -> None:
    session = await start_session(inprocess, site)
    visitor_id = session["visitor"]["id"]
    for _ in range(3):  # the visitor browses: every page load opens a session
        assert (await start_session(inprocess, site, token=session["token"]))["visitor"]["id"] \
            == visitor_id
    count = "SELECT COUNT(*) FROM visitors WHERE id = ?"
    assert query_db(inprocess.db, count, (visitor_id,)) == [(0,)]

    client = await VisitorClient.connect(inprocess, site, token=session["token"])
    assert query_db(inprocess.db, count, (visitor_id,)) == [(0,)]  # a hello stores nothing either
    ack, _ = await client.open_request("Where is my invoice?")
    await client.close()
    assert query_db(inprocess.db, count, (visitor_id,)) == [(1,)]

    again = await start_session(inprocess, site, token=session["token"])
    assert [t["conversation"] for t in again["tickets"]] == [ack["conversation"]]
    assert again["tickets"][0]["number"] == ack["ticket"]["number"]
    assert again["tickets"][0]["reference"] == ack["ticket"]["reference"]


async def test_wrong_origin_is_refused(inprocess: InProcess, site: Site) -> None:
    response = await post_session(inprocess, {"site": site.key}, origin="https://evil.test")
    assert_error(response, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in response.headers


async def test_missing_origin_is_refused(inprocess: InProcess, site: Site) -> None:
    response = await post_session(inprocess, {"site": site.key})
    assert_error(response, 403, "origin_not_allowed")


async def test_unknown_site_key(inprocess: InProcess, site: Site) -> None:
    response = await post_session(inprocess, {"site": "site_doesnotexist"}, origin=site.origin)
    assert_error(response, 404, "unknown_site")


async def test_non_json_body(inprocess: InProcess, site: Site) -> None:
    response = await post_session(inprocess, content=b"{not json", origin=site.origin)
    assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize("body", [b"[]", b'"site"', b"42", b"null", b""])
async def test_body_that_is_not_an_object(inprocess: InProcess, site: Site, body: bytes) -> None:
    response = await post_session(inprocess, content=body, origin=site.origin)
    assert_error(response, 400)


async def test_missing_site_key(inprocess: InProcess, site: Site) -> None:
    response = await post_session(inprocess, {"token": None}, origin=site.origin)
    assert_error(response, 422, "invalid_site")


@pytest.mark.parametrize("token", [
    "garbage",
    ".eJyrVkrOz83NzYlXslJKzklNLCoqVagFAGRNCMc.ZZZZZZ.forged-signature-forged-sig",
    "",
])
async def test_forged_token_starts_a_fresh_anonymous_visitor(
    inprocess: InProcess, site: Site, token: str
) -> None:
    first = await start_session(inprocess, site)
    forged = await start_session(inprocess, site, token=token)
    assert forged["visitor"]["id"] != first["visitor"]["id"]
    assert forged["visitor"]["verified"] is False
    assert forged["token"] != token


async def test_tampered_token_is_not_trusted(inprocess: InProcess, site: Site) -> None:
    first = await start_session(inprocess, site)
    token = first["token"]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    fresh = await start_session(inprocess, site, token=tampered)
    assert fresh["visitor"]["id"] != first["visitor"]["id"]


async def test_token_of_another_site_is_not_trusted(inprocess: InProcess, site: Site) -> None:
    other = await inprocess.create_site()
    theirs = await start_session(inprocess, other)
    mine = await start_session(inprocess, site, token=theirs["token"])
    assert mine["visitor"]["id"] != theirs["visitor"]["id"]


async def test_identified_user_with_the_right_hash_is_verified_on_every_device(
    inprocess: InProcess, site: Site
) -> None:
    user = {"id": "user-42", "name": "Ada", "email": "ada@example.com",
            "hash": user_hash(site, "user-42")}
    laptop = await start_session(inprocess, site, user=user)
    phone = await start_session(inprocess, site, user=user)  # no token: another device
    assert laptop["visitor"]["verified"] is True
    assert laptop["visitor"]["name"] == "Ada"
    assert laptop["visitor"]["email"] == "ada@example.com"
    assert phone["visitor"]["verified"] is True
    assert phone["visitor"]["id"] == laptop["visitor"]["id"]
    anonymous = await start_session(inprocess, site)
    assert anonymous["visitor"]["id"] != laptop["visitor"]["id"]


async def test_identified_user_sees_their_history_on_another_device(
    inprocess: InProcess, site: Site
) -> None:
    user = {"id": "user-history", "name": "Bo", "email": None,
            "hash": user_hash(site, "user-history")}
    laptop = await start_session(inprocess, site, user=user)
    client = await VisitorClient.connect(inprocess, site, token=laptop["token"])
    ack, _ = await client.open_request("Cannot change my plan")
    await client.close()
    phone = await start_session(inprocess, site, user=user)
    assert [t["conversation"] for t in phone["tickets"]] == [ack["conversation"]]


async def test_uppercase_hex_hash_is_accepted(inprocess: InProcess, site: Site) -> None:
    user = {"id": "user-upper", "hash": user_hash(site, "user-upper").upper()}
    session = await start_session(inprocess, site, user=user)
    assert session["visitor"]["verified"] is True


async def test_same_user_id_on_two_sites_is_two_visitors(inprocess: InProcess, site: Site) -> None:
    other = await inprocess.create_site()
    here = await start_session(inprocess, site,
                               user={"id": "u-1", "hash": user_hash(site, "u-1")})
    there = await start_session(inprocess, other,
                                user={"id": "u-1", "hash": user_hash(other, "u-1")})
    assert here["visitor"]["verified"] and there["visitor"]["verified"]
    assert here["visitor"]["id"] != there["visitor"]["id"]


@pytest.mark.parametrize("wrong", ["0" * 64, "not-hex", "other-site"])
async def test_wrong_hash_is_refused(inprocess: InProcess, site: Site, wrong: str) -> None:
    if wrong == "other-site":
        wrong = user_hash(await inprocess.create_site(), "user-7")  # a real hash, of another site
    response = await post_session(
        inprocess, {"site": site.key, "token": None, "user": {"id": "user-7", "hash": wrong}},
        origin=site.origin)
    assert_error(response, 403, "invalid_identity")


async def test_hash_of_another_user_id_is_refused(inprocess: InProcess, site: Site) -> None:
    response = await post_session(
        inprocess, {"site": site.key, "user": {"id": "admin", "hash": user_hash(site, "user-7")}},
        origin=site.origin)
    assert_error(response, 403, "invalid_identity")


async def test_unverified_details_never_claim_a_user_id(inprocess: InProcess, site: Site) -> None:
    verified = await start_session(
        inprocess, site, user={"id": "victim", "hash": user_hash(site, "victim")})
    claimed = await start_session(inprocess, site, user={"id": "victim", "name": "Mallory"})
    assert claimed["visitor"]["verified"] is False
    assert claimed["visitor"]["id"] != verified["visitor"]["id"]
    assert claimed["visitor"]["name"] == "Mallory"


async def test_preflight_from_an_allowed_origin(inprocess: InProcess, site: Site) -> None:
    async with inprocess.client() as client:
        response = await client.options(SESSION, headers={
            "Origin": site.origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
    assert response.status_code == 204, response.text
    assert response.headers["access-control-allow-origin"] == site.origin
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "content-type" in response.headers["access-control-allow-headers"].lower()
    assert "origin" in response.headers.get("vary", "").lower()


async def test_preflight_from_a_disallowed_origin(inprocess: InProcess, site: Site) -> None:
    async with inprocess.client() as client:
        response = await client.options(SESSION, headers={
            "Origin": "https://evil.test", "Access-Control-Request-Method": "POST"})
    assert_error(response, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in response.headers


async def test_post_answer_carries_cors_headers(inprocess: InProcess, site: Site) -> None:
    response = await post_session(inprocess, {"site": site.key}, origin=site.origin)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == site.origin
    assert "origin" in response.headers.get("vary", "").lower()


# -- an expired token, without waiting for it to expire


class _IssuedAnHourAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 3600


def mint_token(secret: str, site: Site, visitor_id: str, *, expired: bool) -> str:
    """A visitor token exactly as the server signs one, optionally issued an hour ago."""
    signer = _IssuedAnHourAgo if expired else TimestampSigner
    serializer = URLSafeTimedSerializer(secret, salt=SALT, signer=signer)
    payload = {"s": site.key, "v": visitor_id, "u": None, "n": None, "e": None, "ok": False,
               "i": None}
    return str(serializer.dumps(payload))


@pytest.fixture
def short_token_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, Site]]:
    db = tmp_path / "widget.db"
    site = create_site(db)
    # an empty WIDGET_SECRET_KEY counts as unset: the key is generated and kept in the database
    process = ServerProcess(db, env={"WIDGET_TOKEN_MAX_AGE": "1", "WIDGET_SECRET_KEY": ""})
    process.start()
    yield process, site
    process.stop()


async def hello_answer(server: ServerProcess, site: Site, token: str) -> tuple[dict[str, Any],
                                                                              int | None]:
    """The first frame the server answers a hello with, and the close code if it closed."""
    async with websockets.connect(server.ws_url, origin=site.origin) as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"type": "hello", "site": site.key, "token": token,
                                  "resume": {}}))
        frame: dict[str, Any] = json.loads(await ws.recv())
        if frame["type"] == "ready":
            return frame, None
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        return frame, ws.close_code


async def test_expired_token_is_refused_at_hello(
    short_token_server: tuple[ServerProcess, Site],
) -> None:
    server, site = short_token_server
    rows = query_db(server.db, "SELECT value FROM server_settings WHERE key = 'secret_key'")
    assert len(rows) == 1
    secret = str(rows[0][0])

    # the same minting, with a current timestamp, is accepted: so the refusal is the age
    fresh, closed = await hello_answer(server, site, mint_token(secret, site, "v_fresh",
                                                                expired=False))
    assert fresh["type"] == "ready" and closed is None
    assert fresh["visitor"]["id"] == "v_fresh"

    frame, close_code = await hello_answer(server, site, mint_token(secret, site, "v_old",
                                                                    expired=True))
    assert frame["type"] == "error", frame
    assert frame["code"] == "token_expired"
    assert close_code == 1008

    # the session endpoint answers an expired token with a fresh visitor, not an error
    renewed = await start_session(server, site, token=mint_token(secret, site, "v_old",
                                                                 expired=True))
    assert renewed["visitor"]["id"] != "v_old"
