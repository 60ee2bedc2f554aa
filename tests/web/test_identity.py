"""Identity modes (`optional`, `required`) and secret rotation with a grace period, against a
real server (docs/identity.md)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.support import (
    ServerProcess,
    Site,
    VisitorClient,
    run_cli,
    start_session,
)
from tests.support import identity_secret as secret_of
from tests.support import user_hash as sign

pytestmark = pytest.mark.anyio


def set_mode(site: Site, mode: str) -> None:
    with sqlite3.connect(site.db) as conn:
        conn.execute("UPDATE sites SET identity_mode = ? WHERE key = ?", (mode, site.key))
    conn.close()


async def session(server: ServerProcess, site: Site, user: dict[str, Any] | None = None,
                  token: str | None = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as client:
        return await client.post("/api/widget/v1/session",
                                 json={"site": site.key, "token": token, "user": user},
                                 headers={"Origin": site.origin})


def user_of(site: Site, secret: str | None = None) -> dict[str, Any]:
    user_id = f"user-{uuid.uuid4().hex[:8]}"
    return {"id": user_id, "name": "Ana", "email": "ana@x.test",
            "hash": sign(secret or secret_of(site), user_id)}


def assert_identity_required(response: httpx.Response, site: Site) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "identity_required"
    assert response.headers["access-control-allow-origin"] == site.origin


async def test_optional_is_the_default_and_marks_anonymous_visitors_unverified(
        server: ServerProcess, site: Site) -> None:
    shown = run_cli("site", "show", "--db", str(server.db)).stdout
    block = shown.split(f"site key: {site.key}", 1)[1].split("site: ", 1)[0]
    assert "identity mode: optional" in block
    anonymous = await start_session(server, site)
    assert anonymous["visitor"]["verified"] is False
    client = await VisitorClient.connect(server, site, anonymous["token"])
    ack, _ = await client.open_request("Anonymous question")
    assert ack["type"] == "ack"
    await client.close()
    signed = await start_session(server, site, user=user_of(site))
    assert signed["visitor"]["verified"] is True


async def test_required_mode_refuses_unverified_visitors_everywhere(
        server: ServerProcess, site: Site) -> None:
    anonymous_token = (await start_session(server, site))["token"]  # issued while optional
    set_mode(site, "required")
    assert "identity mode: required" in run_cli("site", "show", "--db", str(server.db)).stdout

    assert_identity_required(await session(server, site), site)
    assert_identity_required(await session(server, site, token=anonymous_token), site)
    unsigned = {"id": "user-1", "name": "Ana"}
    assert_identity_required(await session(server, site, unsigned), site)
    forged = {"id": "user-1", "hash": sign("not-the-secret", "user-1")}
    assert_identity_required(await session(server, site, forged), site)

    async with httpx.AsyncClient(base_url=server.url) as client:
        posted = await client.post("/api/widget/v1/messages", headers={"Origin": site.origin},
                                   json={"site": site.key, "token": anonymous_token,
                                         "conversation": None, "client_msg_id": "m-1",
                                         "body": "let me in"})
        assert_identity_required(posted, site)

        form = await client.get("/help/new", params={"site": site.key})
        assert form.status_code == 200
        assert "inside the product" in form.text and "<form" not in form.text
        refused = await client.post("/help/new", data={
            "site": site.key, "name": "Ana", "email": "ana@x.test", "subject": "Hi",
            "description": "let me in", "form_token": "x", "client_msg_id": "y"})
        assert refused.status_code == 403 and "inside the product" in refused.text

    ws = await websockets.connect(server.ws_url, origin=site.origin)  # type: ignore[arg-type]
    await ws.send(json.dumps({"type": "hello", "site": site.key, "token": anonymous_token,
                              "resume": {}}))
    frame = json.loads(await ws.recv())
    assert frame["type"] == "error" and frame["code"] == "identity_required", frame
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    # a verified user gets in over every channel
    signed = await session(server, site, user_of(site))
    assert signed.status_code == 200 and signed.json()["visitor"]["verified"] is True
    token = signed.json()["token"]
    again = await session(server, site, token=token)  # a verified token alone is enough
    assert again.status_code == 200 and again.json()["visitor"]["verified"] is True
    tab = await VisitorClient.connect(server, site, token)
    ack, receipt = await tab.open_request("Signed-in question")
    assert ack["ticket"] is not None and receipt["author"]["type"] == "system"
    await tab.close()

    set_mode(site, "optional")
    assert (await session(server, site)).status_code == 200


async def test_admin_page_sets_the_identity_mode(server: ServerProcess, site: Site) -> None:
    from tests.support import console_client, csrf_of

    admin = await console_client(server, site)
    try:
        page = await admin.get(f"/console/admin/sites/{site.key}")
        assert 'name="identity_mode"' in page.text
        saved = await admin.post(f"/console/admin/sites/{site.key}", data={
            "csrf": csrf_of(page.text), "name": f"Identity {uuid.uuid4().hex[:6]}",
            "origins": site.origin, "tiers": "First\nSecond", "identity_mode": "required"})
        assert saved.status_code == 303, saved.text
        assert_identity_required(await session(server, site), site)
        bad = await admin.post(f"/console/admin/sites/{site.key}", data={
            "csrf": csrf_of(page.text), "name": f"Identity {uuid.uuid4().hex[:6]}",
            "origins": site.origin, "tiers": "First", "identity_mode": "everyone"})
        assert bad.status_code == 422
    finally:
        await admin.aclose()
        set_mode(site, "optional")


def _expire_previous_secret(db: Path, key: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE sites SET previous_secret_until = '2000-01-01T00:00:00+00:00'"
                     " WHERE key = ?", (key,))
    conn.close()


async def test_previous_secret_works_during_the_grace_period_only(
        server: ServerProcess, site: Site) -> None:
    old = secret_of(site)
    user = user_of(site, old)
    out = run_cli("site", "rotate-secret", "--db", str(server.db), "--site", site.key).stdout
    new = secret_of(site)
    assert new != old and f"identity secret: {new}" in out
    assert "previous secret accepted until:" in out

    graced = await session(server, site, user)
    assert graced.status_code == 200 and graced.json()["visitor"]["verified"] is True
    fresh = await session(server, site, {**user, "hash": sign(new, user["id"])})
    assert fresh.json()["visitor"]["id"] == graced.json()["visitor"]["id"]

    _expire_previous_secret(server.db, site.key)
    expired = await session(server, site, user)
    assert expired.status_code == 403 and expired.json()["error"]["code"] == "invalid_identity"
    assert (await session(server, site, {**user, "hash": sign(new, user["id"])})
            ).status_code == 200

    # --grace-hours 0: the previous secret is refused at once
    run_cli("site", "rotate-secret", "--db", str(server.db), "--site", site.key,
            "--grace-hours", "0")
    refused = await session(server, site, {**user, "hash": sign(new, user["id"])})
    assert refused.status_code == 403
    bad = run_cli("site", "rotate-secret", "--db", str(server.db), "--site", site.key,
                  "--grace-hours", "-1", check=False)
    assert bad.returncode == 2
