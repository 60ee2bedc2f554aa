"""An attack corpus against a real server: the widget session and messages API, the websocket,
the REST API and the console sign-in. Every input gets a clear JSON error, error frame, close
code or error page (never a 500, a traceback or an HTML stack); nothing leaks across visitors
or sites; and the server keeps serving after every batch. Plus a hypothesis fuzz test of the
websocket frame decoder."""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from tests.inprocess import InProcess
from tests.support import (
    Api,
    ServerProcess,
    Site,
    VisitorClient,
    create_site,
    start_session,
    without_request_id,
)
from widget_server.clock import FakeClock
from widget_server.models import Visitor
from widget_server.realtime import protocol
from widget_server.visitor_tokens import VisitorTokens

pytestmark = pytest.mark.anyio

CORPUS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(document.cookie)",
    "<svg/onload=alert(1)>",
    "{{7*7}}{% raw %}",
    "' OR 1=1 --",
    '"; DROP TABLE tickets; --',
    "1; SELECT * FROM sites --",
    "' UNION SELECT identity_secret FROM sites --",
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "\u202egnp.exe",                        # right-to-left override
    "a\u200d\u200db\u200c",                 # zero-width joiners
    "\U0001F600\U0001F469\u200d\U0001F4BB",  # 4-byte emoji, with a ZWJ sequence
    "nul\u0000byte",
    "%00%0d%0aSet-Cookie: x=1",
    "\ufeff\ufffe\uffff",
    "A" * 5000,
]


def as_stored(text: str) -> str:
    """What the server keeps of a corpus text: all of it but its control characters (NUL),
    which are dropped at the edge (widget_server/text.py)."""
    return text.replace("\u0000", "")


# raw JSON bodies: lone surrogates only exist escaped, and deep nesting as text
LONE_SURROGATE = '"\\ud800"'
DEEP = "[" * 10_000 + "]" * 10_000
DEEP_WS = "[" * 7_000 + "]" * 7_000  # deep, yet under the 16 KiB websocket frame limit
STACK_SIGNS = ("Traceback", "File \"", "<html><head><title>500", "Internal Server Error")


def assert_clean(response: httpx.Response, statuses: tuple[int, ...] | None = None) -> None:
    assert response.status_code < 500, response.text[:500]
    if statuses is not None:
        assert response.status_code in statuses, response.text[:500]
    for sign in STACK_SIGNS:
        assert sign not in response.text, response.text[:500]


def assert_json_error(response: httpx.Response, *statuses: int) -> str:
    assert_clean(response, statuses or None)
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "request_id"}, body
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    code: str = body["error"]["code"]
    assert re.fullmatch(r"[a-z][a-z0-9_]*", code), code
    return code


async def assert_healthy(server: ServerProcess | InProcess) -> None:
    async with server.client() as client:
        health = await client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}


def raw_post(client: httpx.AsyncClient, path: str, content: str | bytes,
             origin: str) -> Any:
    return client.post(path, content=content, headers={"Origin": origin,
                                                       "Content-Type": "application/json"})


# -- the widget session and messages API


async def test_session_endpoint_corpus(server: ServerProcess, site: Site) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        for text in CORPUS:
            unknown = await client.post("/api/widget/v1/session", json={"site": text},
                                        headers={"Origin": site.origin})
            assert assert_json_error(unknown, 404, 422) in {"unknown_site", "invalid_site"}
            stale = await client.post("/api/widget/v1/session",
                                      json={"site": site.key, "token": text},
                                      headers={"Origin": site.origin})
            assert_clean(stale, (200,))
            assert stale.json()["visitor"]["verified"] is False
            claimed = await client.post("/api/widget/v1/session", headers={"Origin": site.origin},
                                        json={"site": site.key, "user": {
                                            "id": text, "name": text[:200], "hash": text[:200]}})
            assert assert_json_error(claimed, 403, 422) in {"invalid_identity", "invalid_input"}
            named = await client.post("/api/widget/v1/session", headers={"Origin": site.origin},
                                      json={"site": site.key, "user": {"name": text[:200]}})
            assert_clean(named, (200,))
            assert named.json()["visitor"]["name"] in {as_stored(text[:200]).strip() or None}
            if text.isprintable():  # h11 itself refuses control characters in headers
                wrong_origin = await client.post(
                    "/api/widget/v1/session", json={"site": site.key},
                    headers={b"Origin": ("https://" + text[:50]).encode()})
                assert assert_json_error(wrong_origin, 403) == "origin_not_allowed"

        bodies = [
            (f'{{"site": {LONE_SURROGATE}}}', 400),
            (f'{{"site": "{site.key}", "user": {{"name": {LONE_SURROGATE}}}}}', 400),
            (DEEP, 400),
            (f'{{"site": {DEEP}}}', 400),
            ('{"site": "' + "x" * (1024 * 1024) + '"}', 413),
            ("{" * 10_000, 400),
            ("\x00\x01\x02", 400),
            ("null", 400),
            ("[]", 400),
        ]
        for body, status in bodies:
            response = await raw_post(client, "/api/widget/v1/session", body, site.origin)
            assert_json_error(response, status)
            assert response.headers.get("access-control-allow-origin") == site.origin
    await assert_healthy(server)


async def test_messages_endpoint_stores_hostile_text_verbatim_and_keeps_visitors_apart(
        server: ServerProcess, site: Site) -> None:
    mine = (await start_session(server, site))["token"]
    theirs = await VisitorClient.connect(server, site)
    their_ack, _ = await theirs.open_request("private: my card number is 4242")
    their_conversation = their_ack["conversation"]
    async with httpx.AsyncClient(base_url=server.url) as client:
        async def post(body: Any, conversation: str | None = None, token: Any = mine,
                       site_key: Any = site.key) -> httpx.Response:
            return await client.post("/api/widget/v1/messages", headers={"Origin": site.origin},
                                     json={"site": site_key, "token": token,
                                           "conversation": conversation,
                                           "client_msg_id": str(uuid.uuid4()), "body": body})

        first = await post(CORPUS[0])
        assert_clean(first, (200,))
        conversation = first.json()["ack"]["conversation"]
        for text in CORPUS:
            stored = await post(text, conversation)
            assert_clean(stored, (200,))
            bodies = [m["body"] for m in stored.json()["messages"]]
            # stored as given, but for control characters (dropped at the edge): no SQL, no
            # HTML, no path is interpreted
            assert as_stored(text) in bodies
        # another visitor's conversation: not found, and nothing of it comes back
        intrusion = await post("let me read this", their_conversation)
        assert assert_json_error(intrusion, 404) == "conversation_not_found"
        assert "4242" not in intrusion.text
        for token in ("", "forged.token.value", CORPUS[5], "x" * 5000, 12, None, ["a"]):
            refused = await post("hi", token=token)
            assert assert_json_error(refused, 401, 422) in {"invalid_token", "invalid_frame"}
        for body in (None, 7, ["x"], {"a": 1}, "", "x" * 200_000):
            bad = await post(body, conversation)
            assert_json_error(bad, 422, 413)
        raw = (f'{{"site": "{site.key}", "token": "{mine}", "conversation": null,'
               f' "client_msg_id": "s1", "body": {LONE_SURROGATE}}}')
        assert_json_error(await raw_post(client, "/api/widget/v1/messages", raw, site.origin),
                          400)
        assert_json_error(await raw_post(client, "/api/widget/v1/messages", DEEP, site.origin),
                          400)
    # the victim's own view has none of the intruder's messages
    frames = await theirs.frames_until_pong()
    assert not any(f.get("body") == "let me read this" for f in frames)
    await theirs.close()
    await assert_healthy(server)


async def test_cross_site_tokens_and_origins_are_refused(server: ServerProcess,
                                                         site: Site) -> None:
    other = create_site(server.db)
    other_token = (await start_session(server, other))["token"]
    async with httpx.AsyncClient(base_url=server.url) as client:
        # a token of the other site is not trusted here: a fresh anonymous visitor instead
        reused = await client.post("/api/widget/v1/session", headers={"Origin": site.origin},
                                   json={"site": site.key, "token": other_token})
        assert_clean(reused, (200,))
        assert reused.json()["tickets"] == []
        posted = await client.post("/api/widget/v1/messages", headers={"Origin": site.origin},
                                   json={"site": site.key, "token": other_token,
                                         "conversation": None, "client_msg_id": "x-site",
                                         "body": "cross-site"})
        assert assert_json_error(posted, 401) == "invalid_token"
        # the other site's origin cannot call this site
        foreign = await client.post("/api/widget/v1/session", headers={"Origin": other.origin},
                                    json={"site": site.key})
        assert assert_json_error(foreign, 403) == "origin_not_allowed"
    await assert_healthy(server)


# -- the websocket


def expired_token(db_path: Any, site: Site) -> str:
    with sqlite3.connect(db_path) as conn:
        key = conn.execute(
            "SELECT value FROM server_settings WHERE key = 'secret_key'").fetchone()[0]
        site_id = conn.execute("SELECT id FROM sites WHERE key = ?", (site.key,)).fetchone()[0]
    conn.close()
    past = FakeClock(datetime.now(UTC) - timedelta(days=400))
    visitor = Visitor(id="v_" + "0" * 24, site_id=site_id, user_id=None, name=None, email=None,
                      verified=False)
    return VisitorTokens(str(key), clock=past).issue(visitor, site.key)


async def hello_refused(server: ServerProcess, origin: str, hello: str) -> tuple[str, int]:
    ws = await websockets.connect(server.ws_url, origin=origin)  # type: ignore[arg-type]
    await ws.send(hello)
    frame = json.loads(await ws.recv())
    assert frame["type"] == "error", frame
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None
    return str(frame["code"]), closed.value.rcvd.code


async def test_websocket_hello_corpus(server: ServerProcess, site: Site) -> None:
    other = create_site(server.db)
    other_token = (await start_session(server, other))["token"]
    good = (await start_session(server, site))["token"]

    def hello(**fields: Any) -> str:
        return json.dumps({"type": "hello", "site": site.key, "token": good, **fields})

    cases = [
        (hello(token="forged.token.value"), "invalid_token"),
        (hello(token=good[:-4] + "AAAA"), "invalid_token"),
        (hello(token=other_token), "invalid_token"),
        (hello(token=expired_token(server.db, site)), "token_expired"),
        (hello(site=other.key), "origin_not_allowed"),
        (hello(site="' OR 1=1 --"), "unknown_site"),
        (hello(site="../../etc/passwd"), "unknown_site"),
        (hello(token=None), "invalid_token"),
        (f'{{"type": "hello", "site": {LONE_SURROGATE}, "token": "x"}}', "invalid_json"),
        (DEEP_WS, "invalid_frame"),
        ('{"type": "hello", "site": ' + DEEP_WS + "}", "invalid_json"),
        ('{"type": "send"}', "invalid_frame"),
        ("not json", "invalid_json"),
        (json.dumps({"type": "ping"}), "hello_required"),
    ]
    for raw, code in cases:
        got, close = await hello_refused(server, site.origin, raw)
        assert (got, close) == (code, 1008), raw[:80]
    # an oversized first frame: closed with 1009 (message too big)
    ws = await websockets.connect(server.ws_url, origin=site.origin,  # type: ignore[arg-type]
                                  max_size=None)
    await ws.send(DEEP)
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    await assert_healthy(server)


async def test_websocket_frame_corpus_and_isolation(server: ServerProcess, site: Site) -> None:
    victim = await VisitorClient.connect(server, site)
    victim_ack, _ = await victim.open_request("victim secret 9911")
    victim_conversation = victim_ack["conversation"]
    other = create_site(server.db)
    outsider = await VisitorClient.connect(server, other)
    outsider_ack, _ = await outsider.open_request("other site secret 7733")

    attacker = await VisitorClient.connect(server, site)
    ack, _ = await attacker.open_request(CORPUS[0])
    mine = ack["conversation"]
    for text in CORPUS:
        ref = await attacker.send(text, mine)
        frame = await attacker.recv_type("ack", "error")
        assert frame["type"] == "ack" and frame["client_msg_id"] == ref, frame
    replay = VisitorClient(server, site, attacker.token)
    await replay.open({mine: 0})
    replayed = [f.get("body") for f in await replay.frames_until_pong()]
    assert all(as_stored(text) in replayed for text in CORPUS)  # stored and sent back
    await replay.close()
    malformed = [
        "not json", "", "[]", "null", '"string"', '{"type": 5}', '{"type": "nope"}',
        f'{{"type": "send", "conversation": null, "client_msg_id": "a", "body": {LONE_SURROGATE}}}',
        DEEP_WS, '{"type": "read", "conversation": "x", "seq": ' + DEEP_WS + "}",
        '{"type": "read", "conversation": "x", "seq": -1}',
        json.dumps({"type": "hello", "site": site.key, "token": attacker.token}),
        json.dumps({"type": "send", "conversation": "x" * 65, "client_msg_id": "a",
                    "body": "hi"}),
    ]
    for raw in malformed:
        assert attacker.ws is not None
        await attacker.ws.send(raw)
        frame = await attacker.recv()
        assert frame["type"] == "error" and re.fullmatch(r"[a-z_]+", frame["code"]), frame
    assert attacker.ws is not None
    await attacker.ws.send(b"\x00\xff binary")
    assert (await attacker.recv())["code"] == "invalid_frame"

    for foreign in (victim_conversation, outsider_ack["conversation"]):
        await attacker.send("intrusion", foreign)
        refused = await attacker.recv_type("error", "ack")
        assert refused["type"] == "error" and refused["code"] == "conversation_not_found"
        await attacker.send_frame({"type": "typing", "conversation": foreign})
        assert (await attacker.recv_type("error"))["code"] == "conversation_not_found"
        await attacker.send_frame({"type": "read", "conversation": foreign, "seq": 1})
        assert (await attacker.recv_type("error"))["code"] == "conversation_not_found"
    await attacker.close()

    # resuming someone else's conversation replays nothing of it
    spy = VisitorClient(server, site, attacker.token)
    await spy.open({victim_conversation: 0, outsider_ack["conversation"]: 0})
    frames = await spy.frames_until_pong()
    text = json.dumps(frames)
    assert "9911" not in text and "7733" not in text
    assert {f["code"] for f in frames if f["type"] == "error"} == {"conversation_not_found"}
    await spy.close()

    for client, secret in ((victim, "intrusion"), (outsider, "intrusion")):
        assert secret not in json.dumps(await client.frames_until_pong())
        await client.close()
    await assert_healthy(server)


# -- the REST API


async def test_rest_api_corpus_and_site_isolation(server: ServerProcess, site: Site) -> None:
    other = create_site(server.db)
    visitor = await VisitorClient.connect(server, other)
    their_ack, _ = await visitor.open_request("other site's private ticket 5511")
    their_number = their_ack["ticket"]["number"]
    await visitor.close()
    api = Api(server, site.api_token())
    try:
        for path in (f"/api/v1/tickets/{their_number}",
                     f"/api/v1/tickets/{their_number}/messages"):
            response = await (api.client.get(path) if path.endswith(str(their_number))
                              else api.client.post(path, json={"body": "hi"}))
            assert assert_json_error(response, 404) == "ticket_not_found"
            assert "5511" not in without_request_id(response)
        listed = await api.client.get("/api/v1/tickets")
        assert_clean(listed, (200,))
        assert "5511" not in without_request_id(listed)
        patched = await api.client.patch(f"/api/v1/tickets/{their_number}",
                                         json={"status": "closed"})
        assert assert_json_error(patched, 404) == "ticket_not_found"

        for text in CORPUS:
            for query in ({"status": text}, {"severity": text}, {"q": text}):
                found = await api.client.get("/api/v1/tickets", params=query)
                assert_clean(found, (200, 400, 422))
                assert "5511" not in without_request_id(found)
            if text.isprintable():  # httpx refuses control characters in URLs
                traversal = await api.client.get(f"/api/v1/tickets/{text[:100]}")
                assert_clean(traversal, (400, 404, 405, 422))  # 400: a control once decoded
                assert traversal.headers["content-type"].startswith("application/json")
        for body in (LONE_SURROGATE, DEEP, f'{{"body": {DEEP}}}', "x" * 100,
                     '{"body": "' + "y" * (1024 * 1024) + '"}'):
            sent = await api.client.post(f"/api/v1/tickets/{their_number}/messages",
                                         content=body,
                                         headers={"Content-Type": "application/json"})
            assert_json_error(sent, 400, 404, 413)
        for header in ({}, {"Authorization": "Bearer forged"},
                       {"Authorization": "Bearer ' OR 1=1 --"},
                       {"Authorization": "Basic YWRtaW46YWRtaW4="}):
            async with httpx.AsyncClient(base_url=server.url, headers=header) as anonymous:
                denied = await anonymous.get("/api/v1/tickets")
            assert assert_json_error(denied, 401)
    finally:
        await api.aclose()
    await assert_healthy(server)


# -- the console sign-in


async def test_console_login_corpus(inprocess: InProcess) -> None:
    # an app of its own: the failed sign-ins below throttle the client address they come from
    async with inprocess.client() as client:
        form = (await client.get("/console/login")).text
        token = re.search(r'name="login_token" value="([^"]+)"', form)
        assert token
        for text in CORPUS[:12]:
            response = await client.post("/console/login", data={
                "email": text, "password": text, "login_token": token.group(1)})
            assert_clean(response, (200, 400, 401, 403, 422, 429))
            assert "<script>alert(1)</script>" not in response.text
            assert response.headers.get("location") is None  # never signed in
        sneaky = await client.post("/console/login", content=b"email=%00&password=" + b"a" * 10,
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert_clean(sneaky)
        nested = await client.post("/console/login", content=DEEP,
                                   headers={"Content-Type": "application/json"})
        assert_clean(nested)
        assert (await client.get("/console", follow_redirects=False)).status_code in (302, 303,
                                                                                      307)
    await assert_healthy(inprocess)


# -- a fuzz test of the frame decoder


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children,
                                                                      max_size=4),
    max_leaves=20,
)
frame_like = st.fixed_dictionaries(
    {"type": st.sampled_from([*sorted(protocol.CLIENT_TYPES), "nope"])},
    optional={"site": json_values | st.text(min_size=1, max_size=10),
              "token": json_values, "conversation": st.none() | st.text(max_size=70),
              "client_msg_id": st.text(max_size=110), "body": st.text(max_size=50),
              "seq": st.integers(), "resume": st.dictionaries(st.text(max_size=70),
                                                              st.integers(), max_size=3)},
)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.one_of(st.text(), st.binary(), json_values.map(json.dumps),
                 frame_like.map(json.dumps)))
def test_decoder_raises_only_frame_errors(raw: str | bytes) -> None:
    try:
        frame = protocol.decode(raw)
    except protocol.FrameError as error:
        assert error.code in {"invalid_json", "invalid_frame", "unknown_type"}
        return
    assert type(frame).__name__.lower() in protocol.CLIENT_TYPES
    # a decoded frame round-trips: encoded again it decodes to an equal frame of the same type
    again = protocol.decode(protocol.encode(
        {"type": type(frame).__name__.lower(),
         **{f: getattr(frame, f) for f in frame.__struct_fields__}}))
    assert type(again) is type(frame) and again == frame


@settings(max_examples=50, deadline=None, database=None)
@given(st.integers(min_value=1, max_value=20_000), st.sampled_from(["[", "{\"a\":"]))
def test_decoder_survives_deep_nesting(depth: int, opener: str) -> None:
    for raw in (opener * depth, '{"type": "ping", "x": ' + opener * depth):
        with pytest.raises(protocol.FrameError):
            protocol.decode(raw)
