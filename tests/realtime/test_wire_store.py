"""Wake-ups of new messages from another node read together, against a real store on both
backends: what each one stands for, and nothing another visitor may not see."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.pg import BACKENDS
from tests.store.helpers import shop
from widget_server.models import PostResult, Site, Visitor
from widget_server.realtime import wire
from widget_server.realtime.events import MessagesAdded, agents_channel, visitor_channel
from widget_server.store.base import Store, VisitorPost

pytestmark = [pytest.mark.anyio,
              pytest.mark.parametrize("backend", BACKENDS, indirect=True)]


async def write(store: Store, site: Site, who: Visitor, conversation: str | None,
                body: str) -> PostResult:
    return await store.post_visitor_message(VisitorPost(
        visitor=who, conversation_id=conversation, client_msg_id=str(uuid.uuid4()),
        body=body, severity="normal", subject=None), datetime.now(UTC))


def wake(channel: str, conversation: str, low: int, high: int) -> dict[str, Any]:
    return {"n": "other", "c": channel, "k": "m", "v": conversation, "r": [low, high], "i": []}


async def test_new_messages_of_many_conversations_are_read_together(store: Store) -> None:
    site = await shop(store)
    people = [Visitor(id="v_" + uuid.uuid4().hex[:24], site_id=site.id, user_id=None,
                      name=f"Visitor {n}", email=None, verified=False) for n in range(3)]
    conversations = []
    for who in people:
        opened = await write(store, site, who, None, "Help")
        conversation = opened.message.conversation_id
        for n in range(3):  # seq 3, 4, 5 after the request and its acknowledgement
            await write(store, site, who, conversation, f"{who.name} line {n}")
        conversations.append(conversation)
    first, second, third = conversations
    bodies = [
        wake(agents_channel(site.id), first, 3, 4),
        wake(visitor_channel(people[1].id), second, 5, 5),
        wake(visitor_channel(people[0].id), third, 3, 5),  # another visitor's: nothing
        wake(agents_channel(site.id), third, 9, 9),  # no such message (yet)
        wake(agents_channel(site.id), "cv_missing", 3, 3),
        wake(agents_channel(site.id + 1), second, 3, 3),  # another site's consoles
    ]
    assert all(wire.batchable(body) for body in bodies)
    events = await wire.resolve_messages(store, bodies)
    assert [None if event is None else [m.body for m in event.messages]  # type: ignore[attr-defined]
            for event in events] == [
        ["Visitor 0 line 0", "Visitor 0 line 1"], ["Visitor 1 line 2"], None, None, None, None]
    event = events[0]
    assert isinstance(event, MessagesAdded)
    assert event.ticket == (await store.get_conversation(first)).ticket  # type: ignore[union-attr]
    # each one as resolve reads it alone
    for body, together in zip(bodies, events, strict=True):
        assert await wire.resolve(store, body) == together

