"""The REST API under /api/v1, the app in process (docs/api.md)."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from tests.inprocess import InProcess
from tests.support import Api, Site, VisitorClient, run_cli
from widget_server.clock import parse_iso

pytestmark = pytest.mark.anyio

TWELVE_HOURS = timedelta(hours=12)


def query_db(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert "Traceback" not in response.text
    error: dict[str, Any] = response.json()["error"]
    assert re.fullmatch(r"[a-z][a-z0-9_]*", error["code"]), error
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture
async def site(inprocess: InProcess) -> Site:
    return await inprocess.create_site()


@pytest.fixture
async def api(inprocess: InProcess, site: Site) -> AsyncIterator[Api]:
    client = Api(inprocess, await inprocess.api_token(site))
    yield client
    await client.aclose()


async def open_tickets(inprocess: InProcess, site: Site, *bodies: str,
                       severity: str | None = None) -> list[dict[str, Any]]:
    """Open one request per body through the widget; return their acks."""
    visitor = await VisitorClient.connect(inprocess, site)
    acks = []
    extra = {"severity": severity} if severity else {}
    for body in bodies:
        ack, _ = await visitor.open_request(body, **extra)
        acks.append(ack)
    await visitor.close()
    return acks


def add_admin(site_db: Path) -> tuple[str, int]:
    """An agent made the documented way, with `widget-server init --admin-email`."""
    email = f"agent-{uuid.uuid4().hex[:8]}@example.com"
    out = run_cli("init", "--db", str(site_db), "--site-name", f"Agents {uuid.uuid4().hex[:8]}",
                  "--origin", "https://agents.test", "--admin-email", email).stdout
    assert f"admin created: {email}" in out
    (agent_id,) = query_db(site_db, "SELECT id FROM agents WHERE email = ?", (email,))[0]
    return email, int(agent_id)


# -- authentication


async def test_missing_token(inprocess: InProcess) -> None:
    async with inprocess.client() as client:
        assert_error(await client.get("/api/v1/tickets"), 401, "missing_token")
        assert_error(await client.get("/api/v1/tickets",
                                      headers={"Authorization": "Basic abc"}), 401, "missing_token")
        assert_error(await client.get("/api/v1/tickets", headers={"Authorization": "Bearer"}),
                     401, "missing_token")


async def test_wrong_token(inprocess: InProcess, site: Site) -> None:
    real = await inprocess.api_token(site)
    async with inprocess.client() as client:
        for wrong in ("wst_nope", real + "x", real[:-1]):
            response = await client.get("/api/v1/tickets",
                                        headers={"Authorization": f"Bearer {wrong}"})
            assert_error(response, 401, "invalid_token")
        ok = await client.get("/api/v1/tickets", headers={"Authorization": f"bearer {real}"})
        assert ok.status_code == 200, ok.text


async def test_a_token_sees_only_its_own_site(inprocess: InProcess) -> None:
    site_a, site_b = await inprocess.create_site(), await inprocess.create_site()
    await open_tickets(inprocess, site_b, "Site B's private problem")
    api_a = Api(inprocess, await inprocess.api_token(site_a))
    api_b = Api(inprocess, await inprocess.api_token(site_b))
    try:
        assert_error(await api_a.client.get("/api/v1/tickets/1"), 404, "ticket_not_found")
        assert_error(await api_a.client.patch("/api/v1/tickets/1", json={"status": "open"}),
                     404, "ticket_not_found")
        assert_error(await api_a.client.post("/api/v1/tickets/1/messages", json={"body": "hi"}),
                     404, "ticket_not_found")
        assert (await api_a.client.get("/api/v1/tickets")).json()["tickets"] == []
        theirs = await api_b.client.get("/api/v1/tickets/1")
        assert theirs.status_code == 200
        assert theirs.json()["ticket"]["subject"] == "Site B's private problem"
        assert theirs.json()["ticket"]["status"] == "new"  # site A's attempts changed nothing
    finally:
        await api_a.aclose()
        await api_b.aclose()


# -- listing


async def test_list_newest_first_with_filters(inprocess: InProcess, site: Site, api: Api) -> None:
    await open_tickets(inprocess, site, "one", "two")
    await open_tickets(inprocess, site, "three", severity="high")
    await open_tickets(inprocess, site, "four", severity="low")
    assert (await api.client.patch("/api/v1/tickets/2", json={"status": "pending"})).status_code \
        == 200

    listing = (await api.client.get("/api/v1/tickets")).json()
    assert [t["number"] for t in listing["tickets"]] == [4, 3, 2, 1]
    assert [t["subject"] for t in listing["tickets"]] == ["four", "three", "two", "one"]
    assert listing["next_before"] is None
    first = listing["tickets"][0]
    assert first["reference"] == "#4"
    assert first["severity"] == "low"
    assert isinstance(first["conversation"], str)

    async def numbers(**params: str) -> list[int]:
        response = await api.client.get("/api/v1/tickets", params=params)
        assert response.status_code == 200, response.text
        return [t["number"] for t in response.json()["tickets"]]

    assert await numbers(status="pending") == [2]
    assert await numbers(status="new") == [4, 3, 1]
    assert await numbers(status="closed") == []
    assert await numbers(severity="high") == [3]
    assert await numbers(severity="normal") == [2, 1]
    assert await numbers(severity="normal", status="new") == [1]


async def test_pagination(inprocess: InProcess, site: Site, api: Api) -> None:
    await open_tickets(inprocess, site, *(f"request {n}" for n in range(1, 6)))
    seen: list[int] = []
    pages = 0
    params: dict[str, Any] = {"limit": 2}
    while True:
        response = await api.client.get("/api/v1/tickets", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert len(page["tickets"]) <= 2
        seen.extend(t["number"] for t in page["tickets"])
        if page["next_before"] is None:
            break
        assert page["next_before"] == page["tickets"][-1]["number"]
        params = {"limit": 2, "before": page["next_before"]}
        assert pages < 10
    assert seen == [5, 4, 3, 2, 1]
    assert pages == 3

    before = (await api.client.get("/api/v1/tickets", params={"before": 3})).json()
    assert [t["number"] for t in before["tickets"]] == [2, 1]


@pytest.mark.parametrize(("params", "code"), [
    ({"status": "bogus"}, "invalid_status"),
    ({"status": "NEW"}, "invalid_status"),
    ({"severity": "x" * 41}, "invalid_severity"),  # any key a site's policy may define is fine
    ({"limit": "0"}, "invalid_limit"),
    ({"limit": "ten"}, "invalid_limit"),
    ({"before": "-3"}, "invalid_before"),
])
async def test_invalid_list_parameters(api: Api, params: dict[str, str], code: str) -> None:
    assert_error(await api.client.get("/api/v1/tickets", params=params), 422, code)


# -- one ticket


async def test_ticket_has_thread_with_internal_notes_and_events(
    inprocess: InProcess, site: Site, api: Api
) -> None:
    (ack,) = await open_tickets(inprocess, site, "The export button does nothing")
    await api.reply(1, "Customer is on the legacy plan", internal=True)
    await api.reply(1, "Which browser do you use?")

    response = await api.client.get("/api/v1/tickets/1")
    assert response.status_code == 200, response.text
    data = response.json()
    ticket = data["ticket"]
    assert ticket["number"] == 1 and ticket["reference"] == "#1"
    assert ticket["conversation"] == ack["conversation"]
    assert ticket["status"] == "open"
    assert ticket["visitor_id"] == query_db(
        inprocess.db, "SELECT visitor_id FROM conversations WHERE id = ?",
        (ack["conversation"],))[0][0]

    messages = data["messages"]
    assert [(m["author"]["type"], m["internal"], m["seq"]) for m in messages] == [
        ("visitor", False, 1), ("system", False, 2), ("agent", True, None), ("agent", False, 3)]
    assert messages[0]["body"] == "The export button does nothing"
    assert "#1" in messages[1]["body"]
    assert messages[2]["body"] == "Customer is on the legacy plan"

    types = [event["type"] for event in data["events"]]
    assert types[:2] == ["created", "acknowledged"]
    assert "internal_note" in types
    assert "first_response" in types
    assert {"type": "status_changed", "from": "new", "to": "open"} in [
        {"type": e["type"], **e["data"]} for e in data["events"] if e["type"] == "status_changed"]
    assert types.index("internal_note") < types.index("first_response")
    assert all(e["created_at"] for e in data["events"])


async def test_unknown_ticket_number(api: Api) -> None:
    assert_error(await api.client.get("/api/v1/tickets/4242"), 404, "ticket_not_found")
    assert_error(await api.client.get("/api/v1/tickets/0"), 404)


HUGE = 10**20  # beyond SQLite's signed 64-bit integers


@pytest.mark.parametrize("where", ["path", "before", "assignee"])
async def test_huge_integers_are_client_errors(
    inprocess: InProcess, site: Site, api: Api, where: str
) -> None:
    await open_tickets(inprocess, site, "Something")
    if where == "path":
        response = await api.client.get(f"/api/v1/tickets/{HUGE}")
    elif where == "before":
        response = await api.client.get("/api/v1/tickets", params={"before": str(HUGE)})
    else:
        response = await api.client.patch("/api/v1/tickets/1", json={"assignee": HUGE})
    assert response.status_code in {404, 422}, response.text
    assert_error(response, response.status_code)


# -- changing a ticket


async def test_patch_status_stage_severity_and_assignee(
    inprocess: InProcess, site: Site, api: Api
) -> None:
    (ack,) = await open_tickets(inprocess, site, "Charts are empty")
    email, agent_id = add_admin(inprocess.db)

    response = await api.client.patch("/api/v1/tickets/1", json={
        "status": "open", "stage": "replicated", "assignee": email})
    assert response.status_code == 200, response.text
    ticket = response.json()["ticket"]
    assert ticket["status"] == "open"
    assert ticket["stage"] == "replicated"
    assert ticket["stage_label"]
    assert ticket["assignee_id"] == agent_id

    response = await api.client.patch("/api/v1/tickets/1", json={"stage": "workaround",
                                                                 "status": "pending"})
    assert response.json()["ticket"]["stage"] == "workaround"
    assert response.json()["ticket"]["status"] == "pending"

    response = await api.client.patch("/api/v1/tickets/1", json={"assignee": None})
    assert response.json()["ticket"]["assignee_id"] is None
    response = await api.client.patch("/api/v1/tickets/1", json={"assignee": agent_id})
    assert response.json()["ticket"]["assignee_id"] == agent_id

    stored = (await api.client.get("/api/v1/tickets/1")).json()
    assert stored["ticket"]["assignee_id"] == agent_id
    assert stored["ticket"]["stage"] == "workaround"
    events = stored["events"]
    assert {"from": "new", "to": "open"} in [
        e["data"] for e in events if e["type"] == "status_changed"]
    assert {"from": None, "to": "replicated"} in [
        e["data"] for e in events if e["type"] == "stage_changed"]
    assert sum("assignee" in e["type"] for e in events) == 3
    assert ack["ticket"]["number"] == 1


async def test_severity_change_recomputes_the_due_time(
    inprocess: InProcess, site: Site, api: Api
) -> None:
    await open_tickets(inprocess, site, "Data looks wrong", severity="low")
    before = (await api.client.get("/api/v1/tickets/1")).json()["ticket"]
    created = parse_iso(before["created_at"])
    assert parse_iso(before["first_response_due"]) - created == TWELVE_HOURS

    for severity in ("critical", "normal"):
        response = await api.client.patch("/api/v1/tickets/1", json={"severity": severity})
        assert response.status_code == 200, response.text
        ticket = response.json()["ticket"]
        assert ticket["severity"] == severity
        assert ticket["created_at"] == before["created_at"]
        assert parse_iso(ticket["first_response_due"]) - created == TWELVE_HOURS

    events = (await api.client.get("/api/v1/tickets/1")).json()["events"]
    assert [e["data"] for e in events if e["type"] == "severity_changed"] == [
        {"from": "low", "to": "critical"}, {"from": "critical", "to": "normal"}]
    assert (await api.client.get("/api/v1/tickets", params={"severity": "normal"})
            ).json()["tickets"][0]["number"] == 1


@pytest.mark.parametrize(("body", "code"), [
    ({"priority": "high"}, "unknown_field"),
    ({"status": "open", "number": 7}, "unknown_field"),
    ({"severity": "urgent"}, "invalid_severity"),
    ({"severity": 3}, "invalid_severity"),
    ({"status": "reopened"}, "invalid_status"),
    ({"stage": "fixed"}, "invalid_stage"),
    ({"assignee": "nobody@nowhere.invalid"}, "invalid_assignee"),
    ({"assignee": 987654}, "invalid_assignee"),
    ({"assignee": True}, "invalid_assignee"),
    ({"assignee": ["x"]}, "invalid_assignee"),
])
async def test_invalid_patch(
    inprocess: InProcess, site: Site, api: Api, body: dict[str, Any], code: str
) -> None:
    await open_tickets(inprocess, site, "Something")
    assert_error(await api.client.patch("/api/v1/tickets/1", json=body), 422, code)
    ticket = (await api.client.get("/api/v1/tickets/1")).json()["ticket"]
    assert (ticket["status"], ticket["severity"], ticket["stage"], ticket["assignee_id"]) == (
        "new", "normal", None, None)


async def test_a_patch_with_one_bad_field_changes_nothing(
    inprocess: InProcess, site: Site, api: Api
) -> None:
    await open_tickets(inprocess, site, "Atomic please")
    response = await api.client.patch("/api/v1/tickets/1",
                                      json={"status": "pending", "severity": "urgent"})
    assert_error(response, 422, "invalid_severity")
    stored = (await api.client.get("/api/v1/tickets/1")).json()
    assert stored["ticket"]["status"] == "new"
    assert [e["type"] for e in stored["events"]] == ["created", "acknowledged"]


@pytest.mark.parametrize("content", [b"{", b"[]", b'"status"'])
async def test_patch_body_must_be_a_json_object(
    inprocess: InProcess, site: Site, api: Api, content: bytes
) -> None:
    await open_tickets(inprocess, site, "Something")
    response = await api.client.patch("/api/v1/tickets/1", content=content,
                                      headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_json")


# -- replying


async def test_reply_validation(inprocess: InProcess, site: Site, api: Api) -> None:
    await open_tickets(inprocess, site, "Something")
    url = "/api/v1/tickets/1/messages"
    assert_error(await api.client.post(url, json={}), 422)
    assert_error(await api.client.post(url, json={"internal": True}), 422)
    assert_error(await api.client.post(url, json={"body": None}), 422)
    assert_error(await api.client.post(url, json={"body": 12}), 422)
    assert_error(await api.client.post(url, json={"body": ""}), 422, "body_empty")
    assert_error(await api.client.post(url, json={"body": " \n\t "}), 422, "body_empty")
    assert_error(await api.client.post(url, json={"body": "x" * 5001}), 413, "body_too_long")
    assert_error(await api.client.post(url, json={"body": "ok", "internal": "yes"}), 422)
    thread = (await api.client.get("/api/v1/tickets/1")).json()["messages"]
    assert len(thread) == 2  # nothing was stored by the refused replies
    longest = await api.client.post(url, json={"body": "y" * 5000})
    assert longest.status_code == 201, longest.text
    assert longest.json()["message"]["body"] == "y" * 5000


async def test_first_public_reply_sets_first_response_and_opens(
    inprocess: InProcess, site: Site, api: Api
) -> None:
    await open_tickets(inprocess, site, "Login loops")
    note = await api.reply(1, "Looks like the SSO bug", internal=True)
    assert note["message"]["internal"] is True
    assert note["message"]["seq"] is None
    assert note["ticket"]["first_response_at"] is None
    assert note["ticket"]["status"] == "new"

    reply = await api.reply(1, "We are on it")
    assert reply["message"]["internal"] is False
    assert reply["message"]["seq"] == 3
    assert reply["message"]["author"]["type"] == "agent"
    first_response_at = reply["ticket"]["first_response_at"]
    assert first_response_at is not None
    assert reply["ticket"]["status"] == "open"

    later = await api.reply(1, "Still on it")
    assert later["ticket"]["first_response_at"] == first_response_at
    assert later["message"]["seq"] == 4
    events = (await api.client.get("/api/v1/tickets/1")).json()["events"]
    assert [e["type"] for e in events].count("first_response") == 1


# -- the error shape and the description


async def test_unknown_routes_answer_json_errors(inprocess: InProcess, api: Api) -> None:
    assert_error(await api.client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(await api.client.get("/api/v1/tickets/abc"), 404, "not_found")
    assert_error(await api.client.delete("/api/v1/tickets/1"), 405, "method_not_allowed")
    async with inprocess.client() as client:
        assert_error(await client.get("/no/such/page"), 404, "not_found")


def app_api_routes() -> list[tuple[str, set[str]]]:
    from widget_server.app import create_app

    found = []
    for route in create_app().routes:
        if isinstance(route, Route) and route.path.startswith("/api/v1/"):
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
            found.append((path, {m.lower() for m in (route.methods or set())} - {"head"}))
    return found


async def test_openapi_describes_every_api_route(inprocess: InProcess) -> None:
    async with inprocess.client() as client:
        response = await client.get("/api/v1/openapi.json")  # public: no token needed
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.1")
    assert spec["info"]["title"] and spec["info"]["version"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    routes = app_api_routes()
    assert len(routes) >= 4
    for path, methods in routes:
        if path == "/api/v1/openapi.json":
            continue  # the description itself; OpenAPI documents do not list themselves
        assert path in spec["paths"], path
        assert methods <= set(spec["paths"][path]), (path, methods)
        for method in methods:
            operation = spec["paths"][path][method]
            assert operation["responses"], (path, method)
            assert "401" in operation["responses"]
    for path in spec["paths"]:  # and it describes nothing that does not exist
        assert path in {p for p, _ in routes}, path
    refs = re.findall(r'"\$ref":\s*"#/components/schemas/(\w+)"', response.text)
    assert refs and set(refs) <= set(spec["components"]["schemas"])


async def test_errors_never_carry_a_stack_trace(inprocess: InProcess, site: Site,
                                                api: Api) -> None:
    await open_tickets(inprocess, site, "Something")
    attempts = [
        api.client.patch("/api/v1/tickets/1", content=b"\xff\xfe",
                         headers={"Content-Type": "application/json"}),
        api.client.patch("/api/v1/tickets/1", content=b'{"status": {"$gt": ""}}',
                         headers={"Content-Type": "application/json"}),
        api.client.post("/api/v1/tickets/1/messages", content=b"x" * 70_000),
        api.client.post("/api/v1/tickets/1/messages", json={"body": "\x00"}),
        api.client.get("/api/v1/tickets", params={"limit": "1e3"}),
        api.client.get("/api/v1/tickets", params={"status": "' OR 1=1 --"}),
    ]
    for attempt in attempts:
        response = await attempt
        assert "Traceback" not in response.text
        assert 'File "' not in response.text
        if response.status_code >= 400:
            assert_error(response, response.status_code)
            assert response.status_code < 500, response.text
