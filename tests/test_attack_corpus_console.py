"""The attack corpus, continued: support access grants (the widget's and the host's endpoints)
and the console's ticket routes. Same rules as tests/test_attack_corpus.py: a clear error for
every input, nothing across users or sites, hostile text shown as text, and the server keeps
serving."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support import (
    ServerProcess,
    Site,
    VisitorClient,
    console_client,
    create_site,
    csrf_of,
    identity_secret,
    start_session,
    user_hash,
    without_request_id,
)
from tests.test_attack_corpus import (
    CORPUS,
    DEEP,
    LONE_SURROGATE,
    as_stored,
    assert_clean,
    assert_healthy,
    assert_json_error,
)

pytestmark = pytest.mark.anyio
WIDGET = "/api/widget/v1/access-grants"
HOST = "/api/v1/access-grants"


async def verified(server: ServerProcess, site: Site) -> tuple[str, str]:
    user_id = f"user-{uuid.uuid4().hex[:8]}"
    session = await start_session(server, site, user={
        "id": user_id, "hash": user_hash(identity_secret(site), user_id)})
    return session["token"], user_id


async def test_grant_endpoints_corpus_and_isolation(server: ServerProcess, site: Site) -> None:
    token, user_id = await verified(server, site)
    other_token, other_user = await verified(server, site)
    headers = {"Origin": site.origin, "Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url) as client:
        theirs = await client.post(WIDGET, json={"site": site.key, "hours": 24, "reason": "x"},
                                   headers={**headers, "Authorization": f"Bearer {other_token}"})
        assert theirs.status_code == 201
        their_id = theirs.json()["grant"]["id"]
        for text in CORPUS:
            for body in ({"site": text, "hours": 1}, {"site": site.key, "hours": text},
                         {"site": site.key, "hours": 1, "ticket": text},
                         {"site": site.key, "hours": 1, "reason": text[:500]},
                         {"site": site.key, "hours": [1], "reason": {"a": text}}):
                response = await client.post(WIDGET, json=body, headers=headers)
                assert_clean(response, (201, 403, 404, 409, 422))
                if response.status_code == 201:  # stored verbatim, as JSON text
                    assert response.json()["grant"]["reason"] == \
                        (as_stored(text[:500]).strip() or None)
                else:
                    assert_json_error(response)
            if text.isprintable():
                revoke = await client.post(f"{WIDGET}/{text[:100]}/revoke",
                                           json={"site": site.key}, headers=headers)
                assert_clean(revoke, (400, 404, 405))
            forged = await client.get(WIDGET, params={"site": site.key}, headers={
                "Origin": site.origin, "Authorization": f"Bearer {text[:200]}"
                if text.isprintable() else "Bearer x"})
            assert assert_json_error(forged, 401, 403) in {"invalid_token", "token_expired"}
        for raw in (LONE_SURROGATE, DEEP, "x" * 100, '{"site": "' + "y" * 70_000 + '"}'):
            response = await client.post(WIDGET, content=raw, headers={
                **headers, "Content-Type": "application/json"})
            assert_json_error(response, 400, 404, 413, 422)
        stolen = await client.post(f"{WIDGET}/{their_id}/revoke", json={"site": site.key},
                                   headers=headers)
        assert assert_json_error(stolen, 404) == "grant_not_found"
        mine = (await client.get(WIDGET, params={"site": site.key}, headers=headers)).json()
        assert their_id not in str(mine) and other_user not in str(mine)
        assert all(event["grant"] != their_id for event in mine["events"])

        api = {"Authorization": f"Bearer {site.api_token()}"}
        other_api = {"Authorization": f"Bearer {create_site(server.db).api_token()}"}
        for text in CORPUS:
            status = await client.get(HOST, params={"user_id": text[:200]}, headers=api)
            assert_clean(status, (200, 400, 422))
            if status.status_code == 200:
                assert status.json()["active"] is False
            if text.isprintable():
                one = await client.get(f"{HOST}/{text[:100]}", headers=api)
                assert_clean(one, (400, 404))
            used = await client.post(f"{HOST}/{their_id}/events", headers=other_api,
                                     json={"action": text[:200]})
            assert assert_json_error(used, 404, 422) in {"grant_not_found", "invalid_action"}
            recorded = await client.post(f"{HOST}/{their_id}/events", headers=api,
                                         json={"action": text[:200] or "x", "detail": text})
            assert_clean(recorded, (201, 422))
        across = await client.get(HOST, params={"user_id": other_user}, headers=other_api)
        assert across.json()["active"] is False
        assert (await client.get(HOST, params={"user_id": other_user},
                                 headers=api)).json()["active"] is True
        for header in ({}, {"Authorization": "Bearer forged"},
                       {"Authorization": f"Bearer {token}"}):  # a visitor token is no API token
            denied = await client.get(HOST, params={"user_id": user_id}, headers=header)
            assert assert_json_error(denied, 401)
    await assert_healthy(server)


async def test_console_ticket_routes_corpus_and_isolation(server: ServerProcess,
                                                          site: Site) -> None:
    visitor = await VisitorClient.connect(server, site)
    ack, _ = await visitor.open_request("Console corpus ticket")
    number = ack["ticket"]["number"]
    other = create_site(server.db)
    stranger = await VisitorClient.connect(server, other)
    their_ack, _ = await stranger.open_request("other site's secret 7731")
    their_number = their_ack["ticket"]["number"]
    agent = await console_client(server, site, role="agent")
    try:
        page = await agent.get(f"/console/tickets/{site.key}/{number}")
        assert page.status_code == 200
        csrf = csrf_of(page.text)
        foreign = await agent.get(f"/console/tickets/{other.key}/{their_number}")
        assert foreign.status_code == 403 and "7731" not in without_request_id(foreign)
        stolen = await agent.post(f"/console/tickets/{other.key}/{their_number}/reply",
                                  data={"csrf": csrf, "body": "hijack"})
        assert stolen.status_code == 403
        for path in (f"/console/tickets/{site.key}/{2**70}",
                     f"/console/tickets/{site.key}/-1", f"/console/tickets/{site.key}/x",
                     f"/console/tickets/{site.key}/{number}/../../admin/agents",
                     f"/console/tickets/{site.key}%2F..%2F{other.key}/{their_number}"):
            response = await agent.get(path)
            assert_clean(response, (403, 404))
            assert "7731" not in without_request_id(response)
        for text in CORPUS:
            for action, form in (("reply", {"body": text}), ("note", {"body": text}),
                                 ("update", {"status": text, "severity": text,
                                             "assignee": text, "stage": text}),
                                 ("merge", {"into": text}), ("split", {"messages": text}),
                                 ("escalate", {"reason": text}), (text[:50], {})):
                if not action.isprintable() or "/" in action or not action.strip():
                    continue
                response = await agent.post(f"/console/tickets/{site.key}/{number}/{action}",
                                            data={"csrf": csrf, **form})
                assert_clean(response, (303, 400, 403, 404, 405, 409, 413, 422))
                assert "<script>alert(1)</script>" not in response.text
            no_csrf = await agent.post(f"/console/tickets/{site.key}/{number}/reply",
                                       data={"body": text})
            assert no_csrf.status_code == 403
        shown = await agent.get(f"/console/tickets/{site.key}/{number}")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text
        assert "<script>alert(1)</script>" not in shown.text
        nested: dict[str, Any] = {"content": DEEP, "headers": {
            "Content-Type": "application/json", "X-CSRF-Token": csrf}}
        assert_clean(await agent.post(f"/console/tickets/{site.key}/{number}/reply", **nested))
        huge = await agent.post(f"/console/tickets/{site.key}/{number}/reply",
                                data={"csrf": csrf, "body": "z" * 200_000})
        assert_clean(huge, (303, 413, 422))
    finally:
        await agent.aclose()
        await visitor.close()
        await stranger.close()
    await assert_healthy(server)
