"""Wake-ups of new messages from another node read together, against a real store on both
backends: what each one stands for, and nothing another visitor may not see."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.pg import BACKENDS
from tests.store.helpers import plain, shop
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



async def test_the_messages_of_a_round_are_found_by_index_however_many_are_stored(
        store: Store, db: str) -> None:
    site = await shop(store)
    people = [Visitor(id="v_" + uuid.uuid4().hex[:24], site_id=site.id, user_id=None,
                      name=f"Visitor {n}", email=None, verified=False) for n in range(100)]
    conversations = [(await write(store, site, who, None, "Help")).message.conversation_id
                     for who in people]
    # a long history behind each conversation (the seqs past its acknowledgement)
    plain(db, "WITH RECURSIVE n (k) AS (SELECT 3 UNION ALL SELECT k + 1 FROM n WHERE k < 1000)"
              " INSERT INTO messages (conversation_id, seq, author_type, body, created_at)"
              " SELECT c.id, n.k, 'system', 'history', '2026-01-01T00:00:00.000Z'"
              " FROM conversations c, n")
    plain(db, "ANALYZE")  # the statistics of a database that has run a while
    sql, params = store._ranges_query(  # type: ignore[attr-defined]
        [(conversation, 998, 999) for conversation in conversations])
    explain = "EXPLAIN " if db.startswith("postgresql://") else "EXPLAIN QUERY PLAN "
    plan = "\n".join(str(row[-1]) for row in plain(db, explain + sql, params))
    assert "Seq Scan" not in plan and "SCAN messages" not in plan, plan
    assert "messages_conversation_id_seq_key" in plan or "sqlite_autoindex_messages" in plan
