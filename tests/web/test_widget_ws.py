"""The widget websocket protocol v1 against a real server (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.pg import on_each_backend  # noqa: F401  (the module's server, on each backend)
from tests.support import Api, ServerProcess, Site, VisitorClient, create_site, start_session

pytestmark = pytest.mark.anyio


async def test_send_is_acknowledged_then_receipt_names_the_reference(
    server: ServerProcess, site: Site
) -> None:
    visitor = await VisitorClient.connect(server, site)
    assert visitor.ready["conversations"] == []
    client_msg_id = await visitor.send("The export button does nothing", severity="high")
    ack = await visitor.recv()
    assert ack["type"] == "ack"
    assert ack["client_msg_id"] == client_msg_id
    assert ack["seq"] == 1
    assert ack["ticket"]["number"] == 1
    assert ack["ticket"]["reference"] == "#1"
    assert ack["ticket"]["severity"] == "high"
    assert ack["ticket"]["status"] == "new"
    receipt = await visitor.recv()
    assert receipt["type"] == "message"
    assert receipt["seq"] == 2
    assert receipt["conversation"] == ack["conversation"]
    assert receipt["author"]["type"] == "system"
    assert "#1" in receipt["body"]
    assert "high severity" in receipt["body"]
    await visitor.close()


async def test_first_response_due_is_twelve_hours_after_creation(
    server: ServerProcess, site: Site
) -> None:
    from widget_server.clock import parse_iso

    visitor = await VisitorClient.connect(server, site)
    ack, receipt = await visitor.open_request()
    ticket = ack["ticket"]
    due, created = parse_iso(ticket["first_response_due"]), parse_iso(ticket["created_at"])
    assert (due - created).total_seconds() == 12 * 3600
    assert due.strftime("%H:%M UTC") in receipt["body"]
    await visitor.close()


async def test_resending_a_client_msg_id_stores_once_and_acks_identically(
    server: ServerProcess, site: Site
) -> None:
    visitor = await VisitorClient.connect(server, site)
    ack, _ = await visitor.open_request()
    conversation = ack["conversation"]
    client_msg_id = str(uuid.uuid4())
    acks = []
    for _ in range(3):
        await visitor.send("Still broken", conversation=conversation, client_msg_id=client_msg_id)
        acks.append(await visitor.recv_type("ack"))
    assert acks[0] == acks[1] == acks[2]
    assert acks[0]["seq"] == 3
    token = site.api_token()
    api = Api(server, token)
    thread = (await api.client.get("/api/v1/tickets/1")).json()["messages"]
    assert [m["body"] for m in thread].count("Still broken") == 1
    await api.aclose()
    await visitor.close()


async def test_new_request_resent_after_lost_ack_opens_one_ticket(
    server: ServerProcess, site: Site
) -> None:
    session = await start_session(server, site)
    first = await VisitorClient.connect(server, site, token=session["token"])
    client_msg_id = await first.send("Please help, login loops", conversation=None)
    lost_ack = await first.recv_type("ack")
    await first.close()  # the ack "never arrived": the widget resends after reconnecting

    second = await VisitorClient.connect(server, site, token=session["token"])
    await second.send("Please help, login loops", conversation=None, client_msg_id=client_msg_id)
    ack = await second.recv_type("ack")
    assert ack == lost_ack
    # the client learned of the conversation only now, so it also gets what follows the ack
    receipt = await second.recv_type("message")
    assert receipt["seq"] == 2 and receipt["author"]["type"] == "system"
    api = Api(server, site.api_token())
    listing = (await api.client.get("/api/v1/tickets")).json()["tickets"]
    assert [t["number"] for t in listing] == [1]
    await api.aclose()
    await second.close()


async def test_agent_reply_arrives_live_and_internal_note_never_does(
    server: ServerProcess, site: Site
) -> None:
    visitor = await VisitorClient.connect(server, site)
    ack, _ = await visitor.open_request()
    api = Api(server, site.api_token())
    await api.reply(1, "Secret: customer is on the legacy plan", internal=True)
    await api.reply(1, "Thanks! Which browser do you use?")
    message = await visitor.recv_type("message")
    assert message["body"] == "Thanks! Which browser do you use?"
    assert message["author"]["type"] == "agent"
    assert message["seq"] == 3  # internal notes take no seq: a gap always means a loss
    ticket = await visitor.recv_type("ticket")
    assert ticket["ticket"]["status"] == "open"
    assert ticket["ticket"]["first_response_at"] is not None

    replay = await VisitorClient.connect(server, site, token=visitor.token,
                                         resume={ack["conversation"]: 0})
    bodies = [(await replay.recv_type("message"))["body"] for _ in range(3)]
    assert bodies[2] == "Thanks! Which browser do you use?"
    assert all("Secret" not in body for body in bodies)
    await api.aclose()
    await visitor.close()
    await replay.close()


async def test_messages_posted_while_disconnected_are_replayed_in_order(
    server: ServerProcess, site: Site
) -> None:
    visitor = await VisitorClient.connect(server, site)
    ack, receipt = await visitor.open_request()
    conversation = ack["conversation"]
    await visitor.close()

    api = Api(server, site.api_token())
    for n in range(1, 21):
        await api.reply(1, f"update {n}")
    again = await VisitorClient.connect(server, site, token=visitor.token,
                                        resume={conversation: receipt["seq"]})
    assert again.ready["conversations"][0]["last_seq"] == 22
    seqs, bodies = [], []
    while len(seqs) < 20:
        frame = await again.recv_type("message")
        seqs.append(frame["seq"])
        bodies.append(frame["body"])
    assert seqs == list(range(3, 23))
    assert bodies == [f"update {n}" for n in range(1, 21)]
    assert await again.frames_until_pong() == []  # nothing replayed twice
    await api.aclose()
    await again.close()


async def test_replies_racing_a_resume_arrive_once_and_in_order(
    server: ServerProcess, site: Site
) -> None:
    visitor = await VisitorClient.connect(server, site)
    ack, _ = await visitor.open_request()
    await visitor.close()
    api = Api(server, site.api_token())

    async def reply_many() -> None:
        for n in range(30):
            await api.reply(1, f"r{n}")

    replier = asyncio.create_task(reply_many())
    again = await VisitorClient.connect(server, site, token=visitor.token,
                                        resume={ack["conversation"]: 2})
    await replier
    seqs = [(await again.recv_type("message"))["seq"] for _ in range(30)]
    assert seqs == list(range(3, 33))
    assert [f for f in await again.frames_until_pong() if f["type"] == "message"] == []
    await api.aclose()
    await again.close()


async def test_other_tabs_of_the_visitor_see_new_requests_and_messages(
    server: ServerProcess, site: Site
) -> None:
    session = await start_session(server, site)
    tab_a = await VisitorClient.connect(server, site, token=session["token"])
    tab_b = await VisitorClient.connect(server, site, token=session["token"])
    ack, _ = await tab_a.open_request("Printing is blank")
    ticket = await tab_b.recv()
    assert ticket["type"] == "ticket" and ticket["conversation"] == ack["conversation"]
    first, second = await tab_b.recv(), await tab_b.recv()
    assert (first["seq"], first["body"]) == (1, "Printing is blank")
    assert first["client_msg_id"] == ack["client_msg_id"]
    assert second["seq"] == 2
    await tab_a.close()
    await tab_b.close()


async def test_visitor_write_reopens_a_solved_ticket(server: ServerProcess, site: Site) -> None:
    visitor = await VisitorClient.connect(server, site)
    ack, _ = await visitor.open_request()
    api = Api(server, site.api_token())
    response = await api.client.patch("/api/v1/tickets/1", json={"status": "solved"})
    assert response.status_code == 200
    assert (await visitor.recv_type("ticket"))["ticket"]["status"] == "solved"
    await visitor.send("It broke again", conversation=ack["conversation"])
    assert (await visitor.recv_type("ack"))["ticket"]["status"] == "open"
    await api.aclose()
    await visitor.close()


async def test_fifty_visitors_opening_requests_at_once_get_numbers_one_to_fifty(
    server: ServerProcess,
) -> None:
    site = create_site(server.db)
    visitors = await asyncio.gather(*(VisitorClient.connect(server, site) for _ in range(50)))
    for visitor in visitors:  # all sends go out before any ack is read
        await visitor.send("Concurrent request")
    acks = await asyncio.gather(*(visitor.recv_type("ack") for visitor in visitors))
    assert sorted(ack["ticket"]["number"] for ack in acks) == list(range(1, 51))
    await asyncio.gather(*(visitor.close() for visitor in visitors))


async def test_typing_read_and_ping(server: ServerProcess, site: Site) -> None:
    visitor = await VisitorClient.connect(server, site)
    ack, _ = await visitor.open_request()
    await visitor.send_frame({"type": "typing", "conversation": ack["conversation"]})
    await visitor.send_frame({"type": "read", "conversation": ack["conversation"], "seq": 2})
    await visitor.send_frame({"type": "ping"})
    assert await visitor.recv() == {"type": "pong"}  # typing and read need no answer
    await visitor.close()


async def test_per_message_compression_is_off(server: ServerProcess, site: Site) -> None:
    visitor = await VisitorClient.connect(server, site)  # the client offers permessage-deflate
    assert visitor.ws is not None and visitor.ws.response is not None
    assert "Sec-WebSocket-Extensions" not in visitor.ws.response.headers
    await visitor.close()


def test_frames_are_plain_json_objects_with_a_type() -> None:
    from widget_server.realtime import protocol

    frame = protocol.error_frame("invalid_frame", "bad", ref="x")
    assert json.loads(protocol.encode(frame)) == {
        "type": "error", "code": "invalid_frame", "message": "bad", "ref": "x"}


async def test_lost_ack_resend_after_live_messages_sends_each_message_once(
    server: ServerProcess, site: Site
) -> None:
    session = await start_session(server, site)
    first = await VisitorClient.connect(server, site, token=session["token"])
    client_msg_id = await first.send("Opening words")
    await first.recv_type("ack")
    await first.close()  # the ack is "lost"
    api = Api(server, site.api_token())
    await api.reply(1, "reply 3")
    await api.reply(1, "reply 4")
    again = await VisitorClient.connect(server, site, token=session["token"])  # resumes nothing
    await api.reply(1, "reply 5")
    live = await again.recv_type("message")
    assert live["seq"] == 5
    await again.send("Opening words", client_msg_id=client_msg_id)
    ack = await again.recv_type("ack")
    assert ack["seq"] == 1
    rest = [f for f in await again.frames_until_pong() if f["type"] == "message"]
    assert [f["seq"] for f in rest] == [2, 3, 4]
    await api.aclose()
    await again.close()
