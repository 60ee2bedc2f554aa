"""The mail outbox in a real store, SQLite and PostgreSQL: what is queued, in the transaction
of its cause, and what a claim finds still unread when a reply mail falls due."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.pg import BACKENDS
from tests.store.helpers import plain, refused, shop
from widget_server.models import Agent, Site, Visitor
from widget_server.store.base import Store, TicketPatch, VisitorPost
from widget_server.store.mail_records import MailPlan
from widget_server.store.pg import PgStore
from widget_server.store.privacy_records import ErasureSelector
from widget_server.store.sqlite import SQLiteStore

pytestmark = [pytest.mark.anyio,
              pytest.mark.parametrize("backend", BACKENDS, indirect=True)]

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DELAY = timedelta(seconds=120)
LEASE = timedelta(minutes=5)


@pytest.fixture
async def mail_store(db: str) -> AsyncIterator[Store]:
    plan = MailPlan("acme.test", DELAY)
    opened: Store = (PgStore(db, mail_plan=plan) if db.startswith("postgresql://")
                     else SQLiteStore(db, mail_plan=plan))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def request(store: Store, site: Site, mail_to: str | None) -> tuple[Visitor, str]:
    visitor = Visitor(id="v_" + uuid.uuid4().hex[:24], site_id=site.id, user_id=None,
                      name="Ada", email=mail_to, verified=False)
    result = await store.post_visitor_message(VisitorPost(
        visitor=visitor, conversation_id=None, client_msg_id=str(uuid.uuid4()),
        body="Export fails", severity="normal", subject=None, channel="form",
        mail_to=mail_to), START)
    return visitor, result.message.conversation_id


async def acknowledged(store: Store) -> None:
    """The acknowledgement sent: out of the way of the claims a test looks at."""
    ack, = await store.claim_mail(START, LEASE, 10)
    await store.mail_sent(ack.id, START)


async def agent(store: Store) -> Agent:
    found, _ = await store.ensure_agent("agent@acme.test", "Grace", "admin", None)
    return found


async def test_a_request_from_a_verified_address_queues_its_acknowledgement(
        mail_store: Store, db: str) -> None:
    site = await shop(mail_store)
    _, conversation = await request(mail_store, site, "ada@example.com")
    await request(mail_store, site, None)  # an address nobody verified: nothing
    mail, = await mail_store.outbox(site.id)
    assert (mail.kind, mail.to_address, mail.conversation_id, mail.ticket_number) == \
        ("acknowledgement", "ada@example.com", conversation, 1)
    assert mail.message_id.startswith(f"<outbox-{mail.id}.") and mail.send_after == START
    assert plain(db, "SELECT mail_to FROM conversations WHERE id = ?",
                 (conversation,)) == [("ada@example.com",)]


async def test_replies_wait_for_the_delay_and_one_mail_shows_every_unread_one(
        mail_store: Store) -> None:
    site, grace = await shop(mail_store), await agent(mail_store)
    await request(mail_store, site, "ada@example.com")
    await acknowledged(mail_store)
    for body, internal in (("First", False), ("A note", True), ("Second", False)):
        await mail_store.post_agent_message(site.id, 1, grace, body, internal, START)
    replies = [m for m in await mail_store.outbox(site.id) if m.kind == "reply"]
    assert len(replies) == 1 and replies[0].send_after == START + DELAY
    assert await mail_store.claim_mail(START + DELAY - timedelta(seconds=1), LEASE, 10) == []
    claimed, = await mail_store.claim_mail(START + DELAY, LEASE, 10)
    assert claimed.context is not None
    assert [m.body for m in claimed.context.messages] == ["First", "Second"]
    assert claimed.context.reference == "#1" and claimed.context.visitor_name == "Ada"


async def test_a_reply_read_in_the_widget_is_skipped_and_later_ones_still_mailed(
        mail_store: Store) -> None:
    site, grace = await shop(mail_store), await agent(mail_store)
    visitor, conversation = await request(mail_store, site, "ada@example.com")
    await acknowledged(mail_store)
    change = await mail_store.post_agent_message(site.id, 1, grace, "Read it", False, START)
    await mail_store.mark_read(visitor.id, conversation, change.messages[0].seq)
    assert await mail_store.claim_mail(START + DELAY, LEASE, 10) == []
    assert [m.state for m in await mail_store.outbox(site.id)] == ["skipped", "sent"]
    later = START + DELAY * 2
    await mail_store.post_agent_message(site.id, 1, grace, "Unread", False, later)
    claimed, = await mail_store.claim_mail(later + DELAY, LEASE, 10)
    assert claimed.context is not None
    assert [m.body for m in claimed.context.messages] == ["Unread"]


async def test_a_composed_reply_mail_is_not_repeated_by_the_next(
        mail_store: Store) -> None:
    site, grace = await shop(mail_store), await agent(mail_store)
    await request(mail_store, site, "ada@example.com")
    await acknowledged(mail_store)
    await mail_store.post_agent_message(site.id, 1, grace, "One", False, START)
    first, = await mail_store.claim_mail(START + DELAY, LEASE, 10)
    assert first.context is not None
    await mail_store.mail_composed(first.id, "s", "t", "h", {}, first.context.messages[-1].seq)
    await mail_store.post_agent_message(site.id, 1, grace, "Two", False, START + DELAY)
    second, = await mail_store.claim_mail(START + DELAY * 2, LEASE, 10)
    assert second.context is not None and [m.body for m in second.context.messages] == ["Two"]


async def test_solved_queues_one_mail_and_a_lease_hides_a_claimed_mail(
        mail_store: Store) -> None:
    site, grace = await shop(mail_store), await agent(mail_store)
    await request(mail_store, site, "ada@example.com")
    ack, = await mail_store.claim_mail(START, LEASE, 10)
    for _ in range(2):
        await mail_store.update_ticket(site.id, 1, grace, TicketPatch(status="solved"), START)
    assert [m.kind for m in await mail_store.outbox(site.id)] == ["solved", "acknowledgement"]
    claimed = await mail_store.claim_mail(START + DELAY, LEASE, 10)
    assert [m.kind for m in claimed] == ["solved"]  # the acknowledgement is leased
    await mail_store.mail_failed_attempt(ack.id, "451 later", START + timedelta(minutes=2))
    again, = await mail_store.claim_mail(START + timedelta(minutes=2), LEASE, 10)
    assert (again.id, again.attempts, again.last_error) == (ack.id, 1, "451 later")


async def test_erasing_a_visitor_deletes_their_mails(mail_store: Store, db: str
                                                     ) -> None:
    site = await shop(mail_store)
    visitor, _ = await request(mail_store, site, "ada@example.com")
    await request(mail_store, site, "bo@example.com")
    await mail_store.erase_visitor(site.id, ErasureSelector("visitor", visitor.id), "cli")
    assert [m.to_address for m in await mail_store.outbox(site.id)] == ["bo@example.com"]
    assert plain(db, "SELECT COUNT(*) FROM mail_outbox WHERE to_address = ?",
                 ("ada@example.com",)) == [(0,)]


async def test_a_solved_mail_is_dropped_when_the_ticket_is_reopened_first(
        mail_store: Store) -> None:
    site, grace = await shop(mail_store), await agent(mail_store)
    await request(mail_store, site, "ada@example.com")
    await acknowledged(mail_store)
    await mail_store.update_ticket(site.id, 1, grace, TicketPatch(status="solved"), START)
    await mail_store.update_ticket(site.id, 1, grace, TicketPatch(status="open"), START)
    assert await mail_store.claim_mail(START + DELAY, LEASE, 10) == []
    assert [m.state for m in await mail_store.outbox(site.id)] == ["skipped", "sent"]


async def test_a_test_mail_is_queued_composed_and_requeued_only_when_failed(
        mail_store: Store, db: str) -> None:
    site = await shop(mail_store)
    mail_id = await mail_store.queue_test_mail(site.id, "ops@example.com", "Test", "text",
                                               "<p>html</p>", {"X-Site-Name": "Shop"})
    mail, = await mail_store.outbox(site.id)
    assert (mail.id, mail.kind, mail.subject, mail.conversation_id) == (
        mail_id, "test", "Test", None)
    assert not await mail_store.retry_mail(mail_id, [site.id])  # queued, not failed
    await mail_store.mail_failed_attempt(mail_id, "550 no", None)
    assert not await mail_store.retry_mail(mail_id, [site.id + 1])  # another site's admin
    assert await mail_store.retry_mail(mail_id, [site.id])
    mail, = await mail_store.outbox(site.id)
    assert (mail.state, mail.attempts, mail.last_error) == ("queued", 1, "550 no")
    with pytest.raises(refused()):  # the CHECK still refuses unknown kinds
        plain(db, "INSERT INTO mail_outbox (site_id, to_address, kind, message_id,"
              " send_after, next_attempt_at, created_at) VALUES (1, 'a@b.c', 'bogus', 'x',"
              " '', '', '')")
    if not db.startswith("postgresql://"):  # the table's definition was edited in place
        assert plain(db, "PRAGMA integrity_check") == [("ok",)]
