"""Server frames: the ack a visitor's message gets, encoded with its ticket's cached JSON."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from widget_server.models import Author, Message, Ticket
from widget_server.realtime import protocol

NOW = datetime(2026, 11, 27, 17, 30, 5, 123000, tzinfo=UTC)


def ticket(**changes: object) -> Ticket:
    base = Ticket(id=7, site_id=1, number=42, reference="#42", conversation_id="c_1",
                  subject='Export "CSV" fails \u2013 \u00e9', severity="normal", status="open",
                  stage=None, channel="widget", assignee_id=None, first_response_due=NOW,
                  first_response_at=None, created_at=NOW, updated_at=NOW)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def message(seq: int) -> Message:
    return Message(id=100 + seq, conversation_id="c_1", seq=seq,
                   author=Author(type="visitor", name="Ann", id="v_1"), body="Hello",
                   internal=False, created_at=NOW, client_msg_id=f"m{seq}")


def test_the_ack_text_is_the_ack_frame_encoded() -> None:
    opened = ticket()
    for ticket_now in (opened, opened, None):  # the second time from the cache
        text = protocol.ack_text(message(3), ticket_now)
        assert text == protocol.encode(protocol.ack_frame(message(3), ticket_now))
    assert json.loads(protocol.ack_text(message(3), opened))["ticket"]["subject"] == (
        'Export "CSV" fails \u2013 \u00e9')


def test_an_ack_never_carries_an_earlier_version_of_its_ticket() -> None:
    opened = ticket()
    assert json.loads(protocol.ack_text(message(1), opened))["ticket"]["status"] == "open"
    solved = ticket(status="solved")  # the same ticket, a new record
    assert json.loads(protocol.ack_text(message(2), solved))["ticket"]["status"] == "solved"
    assert json.loads(protocol.ack_text(message(3), opened))["ticket"]["status"] == "open"


def test_ticket_json_hands_out_copies() -> None:
    opened = ticket()
    protocol.ticket_json(opened)["status"] = "changed by a caller"
    assert protocol.ticket_json(opened)["status"] == "open"
    assert json.loads(protocol.ack_text(message(1), opened))["ticket"]["status"] == "open"
