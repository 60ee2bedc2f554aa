"""A new request that follows up a closed ticket is linked to it by the job that opens it, in
the same transaction, on both backends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from tests.pg import BACKENDS
from tests.store.helpers import db_of, plain, shop
from widget_server.models import Visitor
from widget_server.store.base import Store, TicketPatch, VisitorPost

pytestmark = [pytest.mark.anyio,
              pytest.mark.parametrize("backend", BACKENDS, indirect=True)]


def links(store: Store) -> list[tuple[int, str, str]]:
    return [(row[0], row[1], row[2]) for row in plain(
        db_of(store), "SELECT t.number, e.type, e.data FROM ticket_events e"
        " JOIN tickets t ON t.id = e.ticket_id"
        " WHERE e.type IN ('follow_up_of', 'followed_up_by') ORDER BY t.number")]


async def test_a_follow_up_is_linked_in_the_transaction_that_opens_it(store: Store) -> None:
    site = await shop(store)
    agent, _ = await store.ensure_agent("agent@example.com", "Agent", "agent", None)
    who = Visitor(id="v_" + uuid.uuid4().hex[:24], site_id=site.id, user_id=None,
                  name="Visitor", email=None, verified=False)

    def post(body: str, key: str, follow_up_of: int | None = None) -> VisitorPost:
        return VisitorPost(visitor=who, conversation_id=None, client_msg_id=key, body=body,
                           severity="normal", subject=None, follow_up_of=follow_up_of,
                           follow_up_via="mail")

    first = await store.post_visitor_message(post("It broke", "k-1"), datetime.now(UTC))
    assert first.ticket is not None
    await store.update_ticket(site.id, first.ticket.number, agent,
                              TicketPatch(status="closed"), datetime.now(UTC))
    again = await store.post_visitor_message(post("It broke again", "k-2", 1),
                                             datetime.now(UTC))
    assert again.ticket is not None and again.ticket.number == 2
    expected = [(1, "followed_up_by", '{"number": 2, "via": "mail"}'),
                (2, "follow_up_of", '{"number": 1, "via": "mail"}')]
    assert links(store) == expected  # no second write: the post's own job linked them
    assert plain(db_of(store), "SELECT o.number FROM tickets t"
                 " JOIN tickets o ON o.id = t.follow_up_of_id") == [(1,)]
    resent = await store.post_visitor_message(post("It broke again", "k-2", 1),
                                              datetime.now(UTC))
    assert resent.duplicate and links(store) == expected  # a resend links nothing more
