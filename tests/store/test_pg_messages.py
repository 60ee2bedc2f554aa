"""A visitor's message in a conversation on PostgreSQL: one statement when it changes nothing
else, the shared job in every other case, and the same answers either way."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from tests.store.helpers import db_of, plain, shop
from widget_server.errors import Conflict, Forbidden, NotFound
from widget_server.models import Agent, AttachmentInfo, PostResult, Site, Uploader, Visitor
from widget_server.store.base import Store, TicketPatch, VisitorPost
from widget_server.store.pg_messages import QuickPosts

pytestmark = [pytest.mark.anyio,
              pytest.mark.parametrize("backend", ["postgresql"], indirect=True)]


def someone(site: Site, name: str | None = "Visitor", verified: bool = False) -> Visitor:
    return Visitor(id="v_" + uuid.uuid4().hex[:24], site_id=site.id, user_id=None, name=name,
                   email=None, verified=verified)


def post(who: Visitor, conversation_id: str | None, body: str = "More detail",
         client_msg_id: str | None = None) -> VisitorPost:
    return VisitorPost(visitor=who, conversation_id=conversation_id,
                       client_msg_id=client_msg_id or str(uuid.uuid4()), body=body,
                       severity="normal", subject=None)


async def opened(store: Store, who: Visitor) -> PostResult:
    return await store.post_visitor_message(post(who, None, "Help"), datetime.now(UTC))


def quick(store: Store) -> int:
    return int(store.writer_stats["quick_posts"])


async def test_a_plain_message_is_one_statement_and_reads_back_as_stored(store: Store) -> None:
    site = await shop(store)
    who = someone(site)
    first = await opened(store, who)
    conversation = first.message.conversation_id
    before = quick(store)
    sent = [await store.post_visitor_message(post(who, conversation, f"line {n}"),
                                             datetime.now(UTC)) for n in range(3)]
    assert quick(store) - before == 3
    assert [result.message.seq for result in sent] == [3, 4, 5]  # after the receipt's 2
    assert all(not result.duplicate and not result.ticket_changed for result in sent)
    assert sent[-1].ticket == (await store.get_ticket(site.id, 1))[0]  # type: ignore[index]
    stored = await store.messages_after(conversation, 2)
    assert [(m.id, m.seq, m.body, m.author, m.created_at, m.client_msg_id) for m in stored] == [
        (r.message.id, r.message.seq, r.message.body, r.message.author, r.message.created_at,
         r.message.client_msg_id) for r in sent]
    assert plain(db_of(store), "SELECT last_seq FROM conversations WHERE id = ?",
                 (conversation,)) == [(5,)]


async def test_a_resend_is_answered_by_the_job_with_the_first_message(store: Store) -> None:
    site = await shop(store)
    who = someone(site)
    conversation = (await opened(store, who)).message.conversation_id
    once = await store.post_visitor_message(post(who, conversation, client_msg_id="m-1"),
                                            datetime.now(UTC))
    before = quick(store)
    again = await store.post_visitor_message(post(who, conversation, client_msg_id="m-1"),
                                             datetime.now(UTC))
    assert quick(store) == before
    assert again.duplicate and again.message.id == once.message.id


async def test_a_new_name_and_a_reopening_message_go_through_the_job(store: Store) -> None:
    site = await shop(store)
    who = someone(site, name=None)
    conversation = (await opened(store, who)).message.conversation_id
    before = quick(store)
    renamed = Visitor(id=who.id, site_id=site.id, user_id=None, name="Dana", email=None,
                      verified=False)
    await store.post_visitor_message(post(renamed, conversation), datetime.now(UTC))
    assert quick(store) == before
    assert plain(db_of(store), "SELECT name FROM visitors WHERE id = ?", (who.id,)) == [
        ("Dana",)]
    plain(db_of(store), "UPDATE tickets SET status = 'pending' WHERE conversation_id = ?",
          (conversation,))
    reopened = await store.post_visitor_message(post(renamed, conversation), datetime.now(UTC))
    assert quick(store) == before
    assert reopened.ticket_changed and reopened.ticket is not None
    assert reopened.ticket.status == "open"


async def test_refusals_are_the_jobs_own(store: Store) -> None:
    site = await shop(store)
    who = someone(site)
    conversation = (await opened(store, who)).message.conversation_id
    before = quick(store)
    with pytest.raises(NotFound):  # another visitor's conversation
        await store.post_visitor_message(post(someone(site), conversation), datetime.now(UTC))
    plain(db_of(store), "UPDATE sites SET identity_mode = 'required' WHERE id = ?", (site.id,))
    with pytest.raises(Forbidden):
        await store.post_visitor_message(post(who, conversation), datetime.now(UTC))
    plain(db_of(store), "UPDATE sites SET identity_mode = 'optional' WHERE id = ?", (site.id,))
    plain(db_of(store), "UPDATE tickets SET status = 'closed' WHERE conversation_id = ?",
          (conversation,))
    with pytest.raises(Conflict):
        await store.post_visitor_message(post(who, conversation), datetime.now(UTC))
    assert quick(store) == before
    assert plain(db_of(store), "SELECT count(*) FROM messages WHERE conversation_id = ?",
                 (conversation,)) == [(2,)]


async def test_an_assigned_ticket_goes_through_the_job_while_mail_alerts_are_on(
        store: Store) -> None:
    site = await shop(store)
    who = someone(site)
    conversation = (await opened(store, who)).message.conversation_id
    agent, _ = await store.ensure_agent("alex@shop.test", "Alex", "admin", None)
    plain(db_of(store), "UPDATE tickets SET assignee_id = ? WHERE conversation_id = ?",
          (agent.id, conversation))
    pool = store._ready()  # type: ignore[attr-defined]
    alerting, silent = QuickPosts(pool, alerts_on=True), QuickPosts(pool, alerts_on=False)
    assert await alerting.post(post(who, conversation), datetime.now(UTC)) is None
    stored = await silent.post(post(who, conversation), datetime.now(UTC))
    assert stored is not None and stored.message.seq == 3


async def test_a_site_with_a_webhook_for_messages_goes_through_the_job(store: Store) -> None:
    site = await shop(store)
    who = someone(site)
    conversation = (await opened(store, who)).message.conversation_id
    await store.create_webhook(site.id, "https://hooks.shop.test/in",  # type: ignore[attr-defined]
                               ("message.created",))
    before = quick(store)
    await store.post_visitor_message(post(who, conversation), datetime.now(UTC))
    assert quick(store) == before
    assert plain(db_of(store), "SELECT count(*) FROM webhook_deliveries") == [(1,)]


async def test_racing_messages_in_one_conversation_get_every_seq_once(store: Store) -> None:
    site = await shop(store)
    who = someone(site)
    conversation = (await opened(store, who)).message.conversation_id
    results = await asyncio.gather(*(
        store.post_visitor_message(post(who, conversation, f"burst {n}"), datetime.now(UTC))
        for n in range(40)))
    assert sorted(result.message.seq for result in results) == list(range(3, 43))
    stored = {m.seq: m.body for m in await store.messages_after(conversation, 2)}
    assert stored == {result.message.seq: result.message.body for result in results}


async def test_messages_racing_for_one_upload_attach_it_once(store: Store) -> None:
    """New requests run at READ COMMITTED, follow-ups at REPEATABLE READ: any of them may
    read the upload unsent; one claims it, the others are refused and store nothing."""
    site = await shop(store)
    who = someone(site)
    conversation = (await opened(store, who)).message.conversation_id
    upload = AttachmentInfo("at_" + uuid.uuid4().hex, "log.txt", 4, "text/plain")
    await store.add_attachment(upload, Uploader(site.id, visitor_id=who.id),  # type: ignore[attr-defined]
                               "key-1")
    racing = [VisitorPost(visitor=who, conversation_id=None if n % 2 else conversation,
                          client_msg_id=str(uuid.uuid4()), body=f"Message {n}",
                          severity="normal", subject=None, attachments=(upload.id,))
              for n in range(8)]
    outcomes = await asyncio.gather(*(store.post_visitor_message(one, datetime.now(UTC))
                                      for one in racing), return_exceptions=True)
    sent = [outcome for outcome in outcomes if isinstance(outcome, PostResult)]
    assert len(sent) == 1 and sent[0].message.attachments[0].id == upload.id
    assert all(isinstance(outcome, Conflict) for outcome in outcomes if outcome not in sent)
    assert plain(db_of(store), "SELECT count(*) FROM messages WHERE attachments IS NOT NULL"
                 ) == [(1,)]
    assert plain(db_of(store), "SELECT message_id FROM attachments") == [
        (sent[0].message.id,)]


async def test_messages_of_many_conversations_share_statements(store: Store) -> None:
    site = await shop(store)
    people = [someone(site) for _ in range(30)]
    conversations = [(await opened(store, who)).message.conversation_id for who in people]
    before = dict(store.writer_stats)
    resend = post(people[0], conversations[0], client_msg_id="again")
    await store.post_visitor_message(resend, datetime.now(UTC))
    results = await asyncio.gather(*(
        store.post_visitor_message(post(who, conversation, f"from {who.id}"),
                                   datetime.now(UTC))
        for who, conversation in zip(people, conversations, strict=True)),
        store.post_visitor_message(resend, datetime.now(UTC)))
    after = store.writer_stats
    # the 30 and the first "again"; its resend is the job's (a duplicate)
    assert after["quick_posts"] - before["quick_posts"] == 31
    assert after["batches"] - before["batches"] < 31  # fewer statements than messages
    assert results[-1].duplicate
    for who, conversation, result in zip(people, conversations, results[:-1], strict=True):
        assert result.message.body == f"from {who.id}"
        assert [m.body for m in await store.messages_after(conversation, 2)][-1] == \
            f"from {who.id}"


async def test_one_message_sent_twice_at_once_in_a_batch_is_stored_once(
        store: Store) -> None:
    """The same client_msg_id in two of the visitor's conversations in one batch: the unique
    key refuses the statement, and each message's job answers (one stored, one resend)."""
    site = await shop(store)
    who = someone(site)
    first = (await opened(store, who)).message.conversation_id
    second = (await opened(store, who)).message.conversation_id
    results = await asyncio.gather(*(
        store.post_visitor_message(post(who, conversation, client_msg_id="twice"),
                                   datetime.now(UTC)) for conversation in (first, second)))
    assert sorted(result.duplicate for result in results) == [False, True]
    assert results[0].message.id == results[1].message.id
    assert plain(db_of(store), "SELECT count(*) FROM messages WHERE client_msg_id = 'twice'"
                 ) == [(1,)]



async def one_request(store: Store) -> tuple[Site, Agent, Visitor, str, int]:
    """A site, an agent, and a visitor's request: its conversation and ticket number."""
    site = await shop(store)
    agent, _ = await store.ensure_agent("agent@example.com", "Agent", "agent", None)
    who = someone(site)
    first = await opened(store, who)
    assert first.ticket is not None
    return site, agent, who, first.message.conversation_id, first.ticket.number


async def test_agents_replies_racing_each_other_and_visitors_store_each_once(
        store: Store) -> None:
    """A reply locks its ticket as it reads it and takes the seq where it stands: racing
    replies wait for each other instead of being refused and run again, the first response
    and the reopening are recorded once, and with visitors' messages in the race too every
    message is stored once with a seq of its own."""
    site, agent, who, conversation, number = await one_request(store)
    now = datetime.now(UTC)
    retries = store.writer_stats["retries"]
    await asyncio.gather(*(
        store.post_agent_message(site.id, number, agent, f"reply {n}", n % 4 == 3, now)
        for n in range(16)))
    assert store.writer_stats["retries"] == retries  # none refused: each waited its turn
    events = plain(db_of(store), "SELECT type, COUNT(*) FROM ticket_events"
                   " WHERE type IN ('first_response', 'internal_note', 'status_changed')"
                   " GROUP BY type ORDER BY type")
    assert events == [("first_response", 1), ("internal_note", 4), ("status_changed", 1)]
    ticket, _ = await store.get_ticket(site.id, number)  # type: ignore[misc]
    assert ticket.status == "open" and ticket.first_response_at is not None

    racing = []
    for n in range(12):
        racing.append(store.post_agent_message(site.id, number, agent, f"more {n}", False, now))
        racing.append(store.post_visitor_message(post(who, conversation, f"also {n}"), now))
    await asyncio.gather(*racing)
    public = await store.messages_after(conversation, 2)
    assert sorted(m.seq for m in public) == list(range(3, 3 + 12 + 24))
    assert sorted(m.body for m in public) == sorted(
        [f"reply {n}" for n in range(16) if n % 4 != 3]
        + [f"more {n}" for n in range(12)] + [f"also {n}" for n in range(12)])


async def test_replies_racing_messages_that_reopen_their_ticket_never_deadlock(
        store: Store) -> None:
    """A visitor's message that reopens a ticket locks the ticket before the conversation,
    as an agent's reply does: the two never wait for each other in a cycle, which
    PostgreSQL would break only after its deadlock_timeout (1 s) by failing one of them."""
    site, agent, who, conversation, number = await one_request(store)
    for round_ in range(10):
        await store.update_ticket(site.id, number, agent, TicketPatch(status="pending"),
                                  datetime.now(UTC))
        await asyncio.gather(
            *(store.post_agent_message(site.id, number, agent, f"reply {round_}.{n}", False,
                                       datetime.now(UTC)) for n in range(3)),
            *(store.post_visitor_message(post(who, conversation, f"back {round_}.{n}"),
                                         datetime.now(UTC)) for n in range(3)))
    assert store.writer_stats["deadlocks"] == 0
    ticket, _ = await store.get_ticket(site.id, number)  # type: ignore[misc]
    assert ticket.status == "open"  # each round's first visitor message reopened it
    reopened = plain(db_of(store), "SELECT COUNT(*) FROM ticket_events WHERE type ="
                     " 'status_changed' AND data LIKE '%\"to\": \"open\"%'")
    assert reopened == [(10,)]  # once a round, by its first visitor's message
