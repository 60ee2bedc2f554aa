"""A new request that follows up a closed ticket (`send` with `follow_up_of`): only the
visitor's own closed tickets, over the websocket and over HTTP."""

from __future__ import annotations

import pytest

from tests.support import ServerProcess, Site, VisitorClient, console_client, start_session

pytestmark = pytest.mark.anyio


async def close_ticket(server: ServerProcess, site: Site, number: int) -> None:
    async with server.client(headers={"Authorization": f"Bearer {site.api_token()}"}) as api:
        response = await api.patch(f"/api/v1/tickets/{number}", json={"status": "closed"})
        assert response.status_code == 200, response.text


async def test_only_the_visitors_own_closed_ticket_can_be_followed_up(
    server: ServerProcess, site: Site
) -> None:
    owner = await VisitorClient.connect(server, site)
    stranger = await VisitorClient.connect(server, site)
    try:
        ack, _ = await owner.open_request("The first problem")
        number = ack["ticket"]["number"]
        await owner.send("Not closed yet", follow_up_of=number)  # still open: refused
        refused = await owner.recv_type("error")
        assert refused["code"] == "follow_up_not_found"

        await close_ticket(server, site, number)
        await stranger.send("Not mine", follow_up_of=number)
        refused = await stranger.recv_type("error")
        assert refused["code"] == "follow_up_not_found"
        await stranger.send("No such number", follow_up_of=999_999)
        assert (await stranger.recv_type("error"))["code"] == "follow_up_not_found"

        follow_id = await owner.send("It is back", follow_up_of=number)
        ack = await owner.recv_type("ack")
        assert ack["client_msg_id"] == follow_id and ack["ticket"]["number"] == number + 1
        # a resend of the same message is the same answer, not a second link or ticket
        await owner.send("It is back", client_msg_id=follow_id, follow_up_of=number)
        again = await owner.recv_type("ack")
        assert again["ticket"]["number"] == number + 1
    finally:
        await owner.close()
        await stranger.close()

    # the console shows the link on both tickets
    console = await console_client(server, site)
    try:
        new = (await console.get(f"/console/tickets/{site.key}/{number + 1}")).text
        old = (await console.get(f"/console/tickets/{site.key}/{number}")).text
    finally:
        await console.aclose()
    assert f"A follow-up from the widget to the closed #{number}" in new
    assert f"Followed up from the widget after closing: #{number + 1}" in old


async def test_follow_up_over_http(server: ServerProcess, site: Site) -> None:
    session = await start_session(server, site)
    async with server.client(headers={"Origin": site.origin}) as http:
        def message(body: str, client_msg_id: str, **extra: object) -> dict[str, object]:
            return {"site": site.key, "token": session["token"], "conversation": None,
                    "client_msg_id": client_msg_id, "body": body, **extra}

        first = await http.post("/api/widget/v1/messages", json=message("Broken", "h-1"))
        number = first.json()["ack"]["ticket"]["number"]
        early = await http.post("/api/widget/v1/messages",
                                json=message("Again", "h-2", follow_up_of=number))
        assert early.status_code == 404 and early.json()["error"]["code"] == "follow_up_not_found"
        await close_ticket(server, site, number)
        later = await http.post("/api/widget/v1/messages",
                                json=message("Again", "h-3", follow_up_of=number))
        assert later.status_code == 200, later.text
        assert later.json()["ack"]["ticket"]["number"] == number + 1
