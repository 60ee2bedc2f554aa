"""/ws/console: only signed-in agents, only from the console's own origin; live frames."""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.pg import on_each_backend  # noqa: F401  (the module's server, on each backend)
from tests.support import Api, ServerProcess, Site, VisitorClient, run_cli

pytestmark = pytest.mark.anyio


async def signed_in_cookie(server: ServerProcess, email: str, password: str) -> str:
    async with httpx.AsyncClient(base_url=server.url) as client:
        form = (await client.get("/console/login")).text
        token = re.search(r'name="login_token" value="([^"]+)"', form)
        assert token
        response = await client.post("/console/login", data={
            "email": email, "password": password, "login_token": token.group(1)})
        assert response.status_code == 303, response.text
        return str(client.cookies["widget_console"])


async def test_agent_socket_gets_visitor_messages_and_typing_and_refuses_strangers(
    server: ServerProcess, site: Site
) -> None:
    email = f"live-{uuid.uuid4().hex[:6]}@example.com"
    run_cli("agent", "add", "--db", str(server.db), "--email", email, "--password", "pw-live-1-ok",
            "--site", site.key)
    cookie = await signed_in_cookie(server, email, "pw-live-1-ok")
    url = f"ws://127.0.0.1:{server.port}/ws/console"
    headers = {"Cookie": f"widget_console={cookie}"}

    with pytest.raises(InvalidStatus) as refused:  # someone else's page using the cookie
        await websockets.connect(url, origin="https://evil.example",  # type: ignore[arg-type]
                                 additional_headers=headers)
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):  # no session
        await websockets.connect(url, origin=server.url)  # type: ignore[arg-type]

    agent = await websockets.connect(url, origin=server.url,  # type: ignore[arg-type]
                                     additional_headers=headers)
    assert json.loads(await agent.recv())["type"] == "ready"
    visitor = await VisitorClient.connect(server, site)
    ack, _ = await visitor.open_request("Live to the console")
    frames = [json.loads(await agent.recv()) for _ in range(2)]
    assert next(f["message"]["body"] for f in frames if f["type"] == "message") == \
        "Live to the console"
    await visitor.send_frame({"type": "typing", "conversation": ack["conversation"]})
    typing = json.loads(await agent.recv())
    assert typing == {"type": "typing", "site": site.key, "ticket": 1,
                      "author": {"type": "visitor", "name": None}}
    await agent.send(json.dumps({"type": "typing", "site": site.key, "ticket": 1}))
    seen = await visitor.recv_type("typing")
    assert seen["author"]["type"] == "agent"
    await agent.close()
    await visitor.close()


async def test_console_frames_carry_the_same_ticket_and_message_json_as_the_rest_api(
    server: ServerProcess, site: Site
) -> None:
    email = f"same-{uuid.uuid4().hex[:6]}@example.com"
    run_cli("agent", "add", "--db", str(server.db), "--email", email,
            "--password", "pw-same-1-long", "--site", site.key)
    cookie = await signed_in_cookie(server, email, "pw-same-1-long")
    agent = await websockets.connect(f"ws://127.0.0.1:{server.port}/ws/console",
                                     origin=server.url,  # type: ignore[arg-type]
                                     additional_headers={"Cookie": f"widget_console={cookie}"})
    visitor = await VisitorClient.connect(server, site)
    api = Api(server, site.api_token())
    try:
        assert json.loads(await agent.recv())["type"] == "ready"
        await visitor.open_request("Same JSON everywhere")
        while (message := json.loads(await agent.recv()))["type"] != "message":
            pass
        patched = await api.client.patch("/api/v1/tickets/1",
                                         json={"status": "open", "severity": "high"})
        assert patched.status_code == 200, patched.text
        while (frame := json.loads(await agent.recv()))["type"] != "ticket" or \
                frame["ticket"]["severity"] != "high":
            pass
        rest = (await api.client.get("/api/v1/tickets/1")).json()
    finally:
        await api.aclose()
        await agent.close()
        await visitor.close()
    assert rest["ticket"].pop("visitor_id")  # the one field only the REST detail adds
    assert frame["ticket"] == rest["ticket"] == patched.json()["ticket"]
    assert message["message"] == next(m for m in rest["messages"]
                                      if m["id"] == message["message"]["id"])
