"""Retention and erasure in the SQLite store, on a real file with a clock moved by hand:
the boundary of the period, what is deleted and what stays as a tombstone, batches, the
lease, erasure, and the append-only triggers (docs/privacy.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.pg import BACKENDS
from tests.store.helpers import db_of, refused
from tests.store.helpers import plain as on_db
from widget_server.articles import make_source
from widget_server.clock import FakeClock
from widget_server.errors import Conflict, NotFound
from widget_server.models import Agent, Site, Ticket, Visitor
from widget_server.retention import run_retention
from widget_server.store.base import Store, TicketPatch, VisitorPost
from widget_server.store.privacy_records import ErasureSelector
from widget_server.store.sqlite import SQLiteStore

pytestmark = [pytest.mark.anyio,
              pytest.mark.parametrize("backend", BACKENDS, indirect=True)]
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
MS = timedelta(milliseconds=1)


def plain(store: Store, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return on_db(db_of(store), sql, params)


def count(store: Store, sql: str, params: tuple[Any, ...] = ()) -> int:
    return int(plain(store, sql, params)[0][0])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def site(store: Store) -> Site:
    return (await store.ensure_site("Shop", ["https://shop.test"]))[0]


@pytest.fixture
async def agent(store: Store) -> Agent:
    return (await store.ensure_agent("dana@example.com", "Dana", "agent", None))[0]


def visitor(site: Site, name: str, email: str | None = None, user_id: str | None = None
            ) -> Visitor:
    return Visitor(f"v_{name}_{site.id}", site.id, user_id, name.title(), email,
                   user_id is not None)


async def open_ticket(store: Store, who: Visitor, clock: FakeClock,
                      body: str = "The export button crashes") -> Ticket:
    result = await store.post_visitor_message(
        VisitorPost(who, None, f"m-{uuid.uuid4()}", body, None, None),
        clock.now())
    assert result.ticket is not None
    return result.ticket


async def close(store: Store, site: Site, agent: Agent, ticket: Ticket,
                clock: FakeClock) -> None:
    await store.post_agent_message(site.id, ticket.number, agent, "Fixed in 2.1", False,
                                   clock.now())
    await store.update_ticket(site.id, ticket.number, agent, TicketPatch(status="closed"),
                              clock.now())


async def get(store: Store, site: Site, number: int) -> Ticket:
    found = await store.get_ticket(site.id, number)
    assert found is not None
    return found[0]


async def test_the_period_is_exclusive_and_only_closed_tickets_expire(
    store: Store, site: Site, agent: Agent, clock: FakeClock
) -> None:
    ada, bob, cleo = visitor(site, "ada"), visitor(site, "bob"), visitor(site, "cleo")
    closed = await open_ticket(store, ada, clock, "Invoice for Ada Lovelace is wrong")
    stale_open = await open_ticket(store, bob, clock, "Nobody answered this one")
    await close(store, site, agent, closed, clock)
    clock.advance(10 * DAY)
    later = await open_ticket(store, ada, clock, "Second problem of Ada")
    await close(store, site, agent, later, clock)
    recent = await open_ticket(store, cleo, clock)
    await store.set_retention(site.id, 30, "cli")

    clock.set(T0 + 30 * DAY)  # exactly 30 days after the close: not older than the period
    report = await run_retention(store, clock, "cli")
    assert report.acted and not report.purged
    assert (await get(store, site, closed.number)).erased_at is None

    clock.advance(MS)
    report = await run_retention(store, clock, "cli")
    assert report.purged[site.id].tickets == (closed.number,)
    assert report.purged[site.id].conversations == 1
    assert report.purged[site.id].messages == 3  # the request, the receipt, the reply
    assert report.purged[site.id].visitors == 0  # Ada still has her later conversation
    tombstone = await get(store, site, closed.number)
    assert tombstone.erased_at == clock.now() and tombstone.erased_reason == "retention"
    assert tombstone.subject == "" and tombstone.status == "closed"
    assert tombstone.created_at == T0 and tombstone.closed_at == T0
    assert tombstone.first_response_at == T0
    assert await store.ticket_messages(tombstone) == []
    assert count(store, "SELECT COUNT(*) FROM conversations WHERE id = ?",
                 (closed.conversation_id,)) == 0
    # the open ticket is never deleted, however stale; the others are recent
    for number in (stale_open.number, later.number, recent.number):
        kept = await get(store, site, number)
        assert kept.erased_at is None and kept.subject
        assert await store.ticket_messages(kept)
    assert await store.stale_open_tickets(site.id, clock.now() - 30 * DAY) == 1
    # full-text search finds nothing of the deleted thread, and the rest still
    assert await store.search([site.id], "Lovelace") == []
    assert [hit.ticket.number for hit in await store.search([site.id], "Second")] == [
        later.number]

    clock.set(T0 + 40 * DAY + MS)  # now Ada's last conversation expires too: Ada goes
    report = await run_retention(store, clock, "cli")
    assert report.purged[site.id].tickets == (later.number,)
    assert report.purged[site.id].visitors == 1
    assert count(store, "SELECT COUNT(*) FROM visitors WHERE id = ?", (ada.id,)) == 0
    assert count(store, "SELECT COUNT(*) FROM visitors WHERE id = ?", (bob.id,)) == 1


async def test_a_recent_internal_note_or_reply_counts_as_activity(
    store: Store, site: Site, agent: Agent, clock: FakeClock
) -> None:
    ticket = await open_ticket(store, visitor(site, "ada"), clock)
    await close(store, site, agent, ticket, clock)
    await store.set_retention(site.id, 7, "cli")
    clock.advance(6 * DAY)
    await store.post_agent_message(site.id, ticket.number, agent, "Note to self", True,
                                   clock.now())  # an internal note moves no ticket date
    clock.advance(2 * DAY)
    assert not (await run_retention(store, clock, "cli")).purged
    clock.advance(5 * DAY + MS)
    assert (await run_retention(store, clock, "cli")).purged[site.id].tickets == (
        ticket.number,)


async def test_sites_without_a_period_keep_everything(
    store: Store, site: Site, agent: Agent, clock: FakeClock
) -> None:
    other = (await store.ensure_site("Forever", ["https://forever.test"]))[0]
    kept = await open_ticket(store, visitor(other, "zoe"), clock)
    await close(store, other, agent, kept, clock)
    gone = await open_ticket(store, visitor(site, "ada"), clock)
    await close(store, site, agent, gone, clock)
    await store.set_retention(site.id, 1, "cli")
    clock.advance(400 * DAY)
    report = await run_retention(store, clock, "cli")
    assert set(report.purged) == {site.id}
    assert (await get(store, other, kept.number)).erased_at is None
    assert len(await store.ticket_messages(await get(store, other, kept.number))) == 3


async def test_a_huge_purge_runs_in_bounded_batches_each_with_its_audit_record(
    store: Store, site: Site, agent: Agent, clock: FakeClock
) -> None:
    numbers = []
    for index in range(25):
        ticket = await open_ticket(store, visitor(site, f"v{index}"), clock)
        await close(store, site, agent, ticket, clock)
        numbers.append(ticket.number)
    await store.set_retention(site.id, 30, "cli")
    clock.advance(31 * DAY)
    writes_before = store.writer_stats["jobs"]
    report = await run_retention(store, clock, "scheduler", batch=10)
    assert report.batches == 3
    assert report.purged[site.id].tickets == tuple(numbers)
    assert report.purged[site.id].visitors == 25
    assert store.writer_stats["jobs"] - writes_before == 4  # three batches and the release
    audit = [entry for entry in await store.privacy_audit(site.id)
             if entry.action == "retention"]
    assert [len(entry.counts["tickets"]) for entry in audit] == [5, 10, 10]  # type: ignore[arg-type]
    assert {entry.actor for entry in audit} == {"scheduler"}
    assert count(store, "SELECT COUNT(*) FROM messages") == 0
    assert await store.search([site.id], "export") == []  # nor is anything left to find
    if isinstance(store, SQLiteStore):  # the FTS5 index holds nothing either
        assert count(store, "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH"
                            " 'export'") == 0


async def test_one_process_purges_at_a_time(
    store: Store, site: Site, agent: Agent, clock: FakeClock
) -> None:
    ticket = await open_ticket(store, visitor(site, "ada"), clock)
    await close(store, site, agent, ticket, clock)
    await store.set_retention(site.id, 1, "cli")
    clock.advance(2 * DAY)
    first = await store.retention_batch("node-a", clock.now(), timedelta(seconds=60), 0, "cli")
    assert first.acted  # node-a holds the lease now (a batch of 0 deletes nothing)
    busy = await run_retention(store, clock, "cli", holder="node-b")
    assert not busy.acted and not busy.purged
    await store.release_retention_lease("node-a", clock.now())
    done = await run_retention(store, clock, "cli", holder="node-b")
    assert done.acted and done.purged[site.id].tickets == (ticket.number,)


async def test_erasure_deletes_everything_of_the_visitor_and_keeps_tombstones(
    store: Store, site: Site, agent: Agent, clock: FakeClock
) -> None:
    ada = visitor(site, "ada", email="Ada@Example.com", user_id="user-7")
    other = visitor(site, "bob", email="bob@example.com")
    closed = await open_ticket(store, ada, clock, "Invoice for Ada Lovelace is wrong")
    await close(store, site, agent, closed, clock)
    open_one = await open_ticket(store, ada, clock, "Another problem")
    await store.move_tier(site.id, open_one.number, agent, +1, "Ada Lovelace's account is odd")
    untouched = await open_ticket(store, other, clock)
    article, _ = await store.upsert_article(site.id, make_source(
        "Exports", "exports", "General", "published", "How to export."))
    await store.add_visitor_comment(article.id, ada, "Thanks, Ada here")
    facts_before = (await store.report_rows([site.id], T0 - DAY))[0]

    preview = await store.erasure_preview(site.id, ErasureSelector("email", "ada@example.COM"))
    assert (preview.visitors, preview.conversations, preview.comments) == (1, 2, 1)
    assert preview.tickets == (closed.number, open_one.number)
    clock.advance(DAY)
    purged = await store.erase_visitor(site.id, ErasureSelector("email", "ada@example.COM"),
                                       "cli", reference="DSR-17")
    assert purged.tickets == (closed.number, open_one.number)
    assert (purged.conversations, purged.visitors, purged.comments) == (2, 1, 1)
    assert count(store, "SELECT COUNT(*) FROM visitors WHERE id = ?", (ada.id,)) == 0
    assert count(store, "SELECT COUNT(*) FROM article_comments") == 0
    assert count(store, "SELECT COUNT(*) FROM messages WHERE author_visitor_id = ?",
                 (ada.id,)) == 0
    erased_open = await get(store, site, open_one.number)
    assert erased_open.status == "closed" and erased_open.closed_at == clock.now()
    assert erased_open.sla_due is None and erased_open.erased_reason == "erasure"
    # the events stay (the SLA reports count them) but lose the visitor's id and the reason
    events = await store.ticket_events(erased_open)
    assert [e["type"] for e in events][-1] == "erased"
    assert events[-1]["data"] == {"by": "erasure", "status_before": "new"}
    assert all(e["actor"]["id"] is None for e in events  # type: ignore[index]
               if e["actor"]["type"] == "visitor")  # type: ignore[index]
    escalated = next(e for e in events if e["type"] == "escalated")
    assert escalated["data"] == {"from": 1, "to": 2}
    everything = "\n".join(str(row) for table in (
        "tickets", "ticket_events", "privacy_audit", "visitors", "conversations")
        for row in plain(store, f"SELECT * FROM {table}"))
    for trace in ("Lovelace", "ada@example", "Ada@Example", "user-7", ada.id, "Ada here"):
        assert trace not in everything
    audit = (await store.privacy_audit(site.id))[0]
    assert (audit.action, audit.actor, audit.subject, audit.reference) == (
        "erasure", "cli", "email", "DSR-17")
    assert audit.counts["tickets"] == [closed.number, open_one.number]
    # the other visitor and the reports are untouched
    assert len(await store.ticket_messages(await get(store, site, untouched.number))) == 2
    facts_after = (await store.report_rows([site.id], T0 - DAY))[0]
    assert [(f.severity, f.created_at, f.first_response_at, f.breached_first_response)
            for f in facts_after] == [
        (f.severity, f.created_at, f.first_response_at, f.breached_first_response)
        for f in facts_before]
    # a tombstone takes no further change
    with pytest.raises(Conflict) as refused:
        await store.post_agent_message(site.id, closed.number, agent, "hello?", False,
                                       clock.now())
    assert refused.value.code == "ticket_erased"
    with pytest.raises(Conflict):
        await store.update_ticket(site.id, open_one.number, agent,
                                  TicketPatch(status="open"), clock.now())
    with pytest.raises(Conflict):
        await store.merge_ticket(site.id, untouched.number, closed.number, agent)
    with pytest.raises(NotFound) as missing:
        await store.erase_visitor(site.id, ErasureSelector("user_id", "user-7"), "cli")
    assert missing.value.code == "visitor_not_found"


async def test_erasure_by_user_id_or_visitor_id_stays_on_its_site(
    store: Store, site: Site, agent: Agent, clock: FakeClock
) -> None:
    other_site = (await store.ensure_site("Other", ["https://other.test"]))[0]
    here = visitor(site, "ada", user_id="u1")
    there = visitor(other_site, "ada", user_id="u1")
    mine = await open_ticket(store, here, clock)
    theirs = await open_ticket(store, there, clock)
    with pytest.raises(NotFound):
        await store.erase_visitor(site.id, ErasureSelector("visitor", there.id), "cli")
    with pytest.raises(NotFound):  # the placeholder of tombstones is nobody
        await store.erase_visitor(site.id, ErasureSelector("visitor", f"v_erased_{site.id}"),
                                  "cli")
    await store.erase_visitor(site.id, ErasureSelector("user_id", "u1"), "admin", agent.id)
    assert (await get(store, site, mine.number)).erased_at is not None
    assert (await get(store, other_site, theirs.number)).erased_at is None
    assert (await store.privacy_audit(site.id))[0].agent_id == agent.id
    assert await store.privacy_audit(other_site.id) == []


async def test_the_audit_and_the_tombstones_are_protected_by_triggers(
    store: Store, site: Site, agent: Agent, clock: FakeClock
) -> None:
    erased = await open_ticket(store, visitor(site, "ada"), clock)
    live = await open_ticket(store, visitor(site, "bob"), clock)
    await store.erase_visitor(site.id, ErasureSelector("visitor", visitor(site, "ada").id),
                              "cli")
    forbidden = [
        "UPDATE privacy_audit SET subject = 'x'",
        "DELETE FROM privacy_audit",
        f"UPDATE tickets SET erased_at = NULL WHERE number = {erased.number}",
        f"UPDATE tickets SET subject = 'back' WHERE number = {erased.number}",
        # events of live tickets stay untouchable, and no event is ever deleted
        f"UPDATE ticket_events SET actor_id = NULL WHERE ticket_id = {live.id}",
        f"DELETE FROM ticket_events WHERE ticket_id = {erased.id}",
        # on a tombstone only the visitor's id and the reason may go, nothing else changes
        f"UPDATE ticket_events SET type = 'x' WHERE ticket_id = {erased.id}",
        f"UPDATE ticket_events SET data = '{{}}' WHERE ticket_id = {erased.id}"
        " AND type = 'created'",
    ]
    for sql in forbidden:
        with pytest.raises(refused()):
            plain(store, sql)


async def test_setting_the_period_is_audited_once_per_change(
    store: Store, site: Site, agent: Agent
) -> None:
    assert site.retention_days is None
    assert (await store.set_retention(site.id, 30, "admin", agent.id)).retention_days == 30
    await store.set_retention(site.id, 30, "cli")  # no change, no record
    assert (await store.set_retention(site.id, None, "cli")).retention_days is None
    audit = await store.privacy_audit(site.id)
    assert [(e.action, e.actor, e.subject, e.counts) for e in audit] == [
        ("retention_set", "cli", "off", {"from": 30, "to": None}),
        ("retention_set", "admin", "30 days", {"from": None, "to": 30}),
    ]
    assert audit[0].created_at == T0
