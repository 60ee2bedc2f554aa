"""Bad input on /ws/widget: every case gets a clear error and the server keeps serving."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.pg import on_each_backend  # noqa: F401  (the module's server, on each backend)
from tests.support import ServerProcess, Site, VisitorClient, create_site, start_session

pytestmark = pytest.mark.anyio


@pytest.fixture
async def visitor(server: ServerProcess, site: Site) -> AsyncIterator[VisitorClient]:
    client = await VisitorClient.connect(server, site)
    yield client
    await client.close()
    # whatever the test did, the next visitor is served normally
    await assert_serves(server, site)


async def assert_serves(server: ServerProcess, site: Site) -> None:
    healthy = await VisitorClient.connect(server, site)
    ack, receipt = await healthy.open_request("Are you still there?")
    assert ack["seq"] == 1 and receipt["seq"] == 2
    await healthy.close()


async def raw_socket(server: ServerProcess, origin: str) -> Any:
    return await websockets.connect(server.ws_url, origin=origin)  # type: ignore[arg-type]


async def expect_refusal(ws: Any, code: str) -> None:
    """An error frame with ``code``, then a close with 1008."""
    frame = json.loads(await ws.recv())
    assert frame["type"] == "error" and frame["code"] == code, frame
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("this is not json", "invalid_json"),
        ('{"type": "send", "body": ', "invalid_json"),
        ("[1, 2, 3]", "invalid_frame"),
        ('{"no_type": true}', "invalid_frame"),
        ('{"type": 7}', "invalid_frame"),
        ('{"type": "subscribe_everything"}', "unknown_type"),
        ('{"type": "send", "conversation": null, "body": "hi"}', "invalid_frame"),
        ('{"type": "send", "conversation": null, "client_msg_id": 5, "body": "hi"}',
         "invalid_frame"),
        ('{"type": "send", "conversation": null, "client_msg_id": "a", "body": ["x"]}',
         "invalid_frame"),
        ('{"type": "read", "conversation": "cv_x", "seq": "three"}', "invalid_frame"),
        ('{"type": "typing"}', "invalid_frame"),
        ('{"type": "hello", "site": "x", "token": "y"}', "unexpected_hello"),
    ],
)
async def test_bad_frames_get_an_error_frame_and_the_socket_stays_usable(
    visitor: VisitorClient, raw: str, code: str
) -> None:
    assert visitor.ws is not None
    await visitor.ws.send(raw)
    error = await visitor.recv()
    assert error["type"] == "error"
    assert error["code"] == code
    assert error["message"]
    assert await visitor.frames_until_pong() == []


async def test_binary_frame_is_refused_with_an_error(visitor: VisitorClient) -> None:
    assert visitor.ws is not None
    await visitor.ws.send(b'{"type":"ping"}')
    assert (await visitor.recv())["code"] == "invalid_frame"


async def test_body_over_the_limit_is_refused_with_its_ref(visitor: VisitorClient) -> None:
    client_msg_id = await visitor.send("x" * 5001)
    error = await visitor.recv()
    assert (error["type"], error["code"], error["ref"]) == ("error", "body_too_long", client_msg_id)
    ack, _ = await visitor.open_request("x" * 5000)  # exactly at the limit is fine
    assert ack["seq"] == 1


async def test_empty_body_and_unknown_severity_are_refused(visitor: VisitorClient) -> None:
    await visitor.send("   \n ")
    assert (await visitor.recv())["code"] == "body_empty"
    await visitor.send("hello", severity="apocalyptic")
    assert (await visitor.recv())["code"] == "invalid_severity"


async def test_frame_over_sixteen_kib_closes_with_1009(
    server: ServerProcess, site: Site, visitor: VisitorClient
) -> None:
    assert visitor.ws is not None
    await visitor.ws.send(json.dumps({"type": "send", "conversation": None,
                                      "client_msg_id": "big", "body": "y" * 17000}))
    with pytest.raises(ConnectionClosed) as closed:
        await visitor.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_another_visitors_conversation_is_not_found(
    server: ServerProcess, site: Site, visitor: VisitorClient
) -> None:
    owner = await VisitorClient.connect(server, site)
    ack, _ = await owner.open_request("My private problem")
    stranger_conversation = ack["conversation"]

    client_msg_id = await visitor.send("let me in", conversation=stranger_conversation)
    error = await visitor.recv()
    assert (error["code"], error["ref"]) == ("conversation_not_found", client_msg_id)
    await visitor.send_frame({"type": "read", "conversation": stranger_conversation, "seq": 1})
    assert (await visitor.recv())["code"] == "conversation_not_found"
    await visitor.send_frame({"type": "typing", "conversation": stranger_conversation})
    assert (await visitor.recv())["code"] == "conversation_not_found"
    # nor does a resume of it replay anything
    again = await VisitorClient.connect(server, site, token=visitor.token,
                                        resume={stranger_conversation: 0})
    error = await again.recv()
    assert (error["code"], error["ref"]) == ("conversation_not_found", stranger_conversation)
    assert await again.frames_until_pong() == []
    await again.close()
    assert await owner.frames_until_pong() == []  # the owner saw nothing of it
    await owner.close()


async def test_first_frame_must_be_hello(server: ServerProcess, site: Site) -> None:
    ws = await raw_socket(server, site.origin)
    await ws.send(json.dumps({"type": "send", "conversation": None, "client_msg_id": "a",
                              "body": "hi"}))
    await expect_refusal(ws, "hello_required")
    await assert_serves(server, site)


async def test_invalid_json_before_hello_closes(server: ServerProcess, site: Site) -> None:
    ws = await raw_socket(server, site.origin)
    await ws.send("{{{")
    await expect_refusal(ws, "invalid_json")
    await assert_serves(server, site)


@pytest.mark.parametrize("token", ["forged", None, "", "eyJzIjoiZmFrZSJ9.AAAA.BBBB"])
async def test_forged_or_missing_token_is_refused(
    server: ServerProcess, site: Site, token: str | None
) -> None:
    ws = await raw_socket(server, site.origin)
    await ws.send(json.dumps({"type": "hello", "site": site.key, "token": token}))
    await expect_refusal(ws, "invalid_token")
    await assert_serves(server, site)


async def test_token_of_another_site_is_refused(server: ServerProcess, site: Site) -> None:
    other = create_site(server.db, origin=site.origin)
    other_token = (await start_session(server, other))["token"]
    ws = await raw_socket(server, site.origin)
    await ws.send(json.dumps({"type": "hello", "site": site.key, "token": other_token}))
    await expect_refusal(ws, "invalid_token")


async def test_unknown_site_key_is_refused(server: ServerProcess, site: Site) -> None:
    ws = await raw_socket(server, site.origin)
    await ws.send(json.dumps({"type": "hello", "site": "site_nope", "token": "x"}))
    await expect_refusal(ws, "unknown_site")
    await assert_serves(server, site)


async def test_origin_no_site_allows_is_refused_at_the_handshake(
    server: ServerProcess, site: Site
) -> None:
    for origin in ("https://evil.example", None):
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(server.ws_url, origin=origin)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
    await assert_serves(server, site)


async def test_hello_for_a_site_that_does_not_allow_the_origin_closes_1008(
    server: ServerProcess, site: Site
) -> None:
    other = create_site(server.db)  # allowed on its own origin only
    token = (await start_session(server, site))["token"]
    ws = await raw_socket(server, other.origin)
    await ws.send(json.dumps({"type": "hello", "site": site.key, "token": token}))
    await expect_refusal(ws, "origin_not_allowed")
    await assert_serves(server, site)


async def test_a_silent_socket_is_closed_after_the_hello_timeout(tmp_path: Any) -> None:
    process = ServerProcess(tmp_path / "widget.db", env={"WIDGET_HELLO_TIMEOUT": "0.3"})
    site = create_site(process.db)
    process.start()
    try:
        ws = await raw_socket(process, site.origin)
        await expect_refusal(ws, "hello_timeout")  # waits for the server, not a sleep of ours
        await assert_serves(process, site)
    finally:
        process.stop()
