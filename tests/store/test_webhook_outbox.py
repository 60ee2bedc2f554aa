"""The webhook outbox in a real SQLite store, sent by the real sender to a real HTTP receiver
on loopback, on a clock the test moves: what each write job queues, in its transaction;
the order per ticket; the backoff, giving up and disabling; the stats for metrics."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from tests.store.helpers import plain, shop
from tests.webhook_receiver import Receiver
from widget_server.access_grants import GrantRequest
from widget_server.clock import FakeClock
from widget_server.errors import Unprocessable
from widget_server.models import Agent, Site, Visitor
from widget_server.store.base import TicketPatch, VisitorPost
from widget_server.store.privacy_records import ErasureSelector
from widget_server.store.sqlite import SQLiteStore
from widget_server.store.webhook_records import Attempt
from widget_server.webhook_sender import WebhookSender
from widget_server.webhooks import EVENTS, GIVE_UP_AFTER

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
async def store(db_path: Path, clock: FakeClock) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(str(db_path), clock=clock)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def sender(store: SQLiteStore, clock: FakeClock) -> WebhookSender:
    return WebhookSender(store, clock, allow_private=True, console_url="http://console.test")


async def request(store: SQLiteStore, site: Site, body: str = "Export fails",
                  user_id: str | None = None) -> tuple[Visitor, str, int]:
    visitor = Visitor(id="v_" + uuid.uuid4().hex[:24], site_id=site.id, user_id=user_id,
                      name="Ada", email=None, verified=True)
    result = await store.post_visitor_message(VisitorPost(
        visitor=visitor, conversation_id=None, client_msg_id=str(uuid.uuid4()), body=body,
        severity="normal", subject=None), START)
    assert result.ticket is not None
    return visitor, result.message.conversation_id, result.ticket.number


async def admin(store: SQLiteStore) -> Agent:
    found, _ = await store.ensure_agent("admin@acme.test", "Grace", "admin", None)
    return found


def queued(db: Path) -> list[tuple[str, str | None, dict[str, object]]]:
    return [(row[0], row[1], json.loads(row[2])) for row in plain(
        db, "SELECT event_type, ordering_key, payload FROM webhook_deliveries ORDER BY id")]


async def test_nothing_is_queued_while_the_site_has_no_endpoint(
        store: SQLiteStore, db_path: Path) -> None:
    site = await shop(store)
    other = (await store.ensure_site("Other", ["https://other.test"]))[0]
    await store.create_webhook(other.id, "https://hooks.example.com/x", EVENTS)
    await request(store, site)
    assert queued(db_path) == []
    assert await store.webhook_outbox_stats() == (0, 0)


async def test_each_write_job_queues_its_events_in_its_transaction(
        store: SQLiteStore, db_path: Path, clock: FakeClock) -> None:
    site = await shop(store)
    everything, secret = await store.create_webhook(site.id, "https://a.example.com/h", EVENTS)
    assert secret.startswith("whsec_")
    await store.create_webhook(site.id, "https://b.example.com/h", ("message.created",),
                               include_notes=True)
    visitor, conversation, number = await request(store, site)
    grace = await admin(store)
    await store.post_visitor_message(VisitorPost(
        visitor=visitor, conversation_id=conversation, client_msg_id="second",
        body="Still broken", severity=None, subject=None), START)
    await store.post_agent_message(site.id, number, grace, "On it", False, START)
    await store.post_agent_message(site.id, number, grace, "Looks like #12", True, START)
    await store.update_ticket(site.id, number, grace,
                              TicketPatch(status="pending", severity="high", assignee_id=grace.id),
                              START)
    with pytest.raises(Unprocessable):  # rolled back: nothing of it is queued
        await store.update_ticket(site.id, number, grace, TicketPatch(status="nonsense"), START)
    found = queued(db_path)
    to_a = [(t, k) for t, k, _ in found]
    assert [t for t, _ in to_a] == [
        "ticket.created", "message.created", "message.created",  # visitor's first (a, b)
        "message.created", "message.created",  # the follow-up, to a and b
        "message.created", "message.created", "ticket.updated",  # the reply: new -> open
        "message.created",  # the note: only b asked for notes
        "ticket.updated"]
    found_ticket = await store.get_ticket(site.id, number)
    assert found_ticket is not None
    assert {k for _, k in to_a} == {f"ticket:{found_ticket[0].id}"}
    created = found[0][2]
    assert created["type"] == "ticket.created" and created["version"] == 1
    data = created["data"]
    assert isinstance(data, dict) and data["site"] == site.key
    assert data["ticket"]["number"] == number and data["ticket"]["status"] == "new"
    note = found[8][2]["data"]
    assert isinstance(note, dict) and note["message"]["internal"] is True
    updated = found[-1][2]["data"]
    assert isinstance(updated, dict)
    assert updated["changes"] == {"status": {"from": "open", "to": "pending"},
                                  "severity": {"from": "normal", "to": "high"},
                                  "assignee": {"from": None, "to": grace.id}}
    assert everything.id in {row[0] for row in plain(
        db_path, "SELECT endpoint_id FROM webhook_deliveries")}
    assert await store.webhook_outbox_stats() == (len(found), 0)


async def test_sla_marks_and_access_grants_are_told(store: SQLiteStore, db_path: Path,
                                                    clock: FakeClock) -> None:
    site = await shop(store)
    await store.create_webhook(site.id, "https://a.example.com/h", EVENTS)
    visitor, _, number = await request(store, site, user_id="u-ada")
    grant = await store.create_access_grant(site.id, "u-ada", visitor.id,
                                            GrantRequest(hours=1, ticket_number=number,
                                                         reason="debugging"), START)
    await store.record_grant_use(site.id, grant.id, "crm", "viewed", None, START)
    await store.revoke_access_grant(site.id, "u-ada", grant.id, START)
    later = START + timedelta(days=30)
    await store.sla_sweep("test", later, timedelta(minutes=1))
    types = [t for t, _, _ in queued(db_path)]
    assert types[2:] == ["access_grant.created", "access_grant.used", "access_grant.revoked",
                         "ticket.sla_at_risk", "ticket.sla_breached"]
    grant_events = [p for t, _, p in queued(db_path) if t.startswith("access_grant")]
    assert {json.dumps(p["data"]["grant"]["id"]) for p in grant_events} == {  # type: ignore[index]
        json.dumps(grant.id)}


async def test_a_ticket_s_events_arrive_in_order_after_a_failure(
        store: SQLiteStore, clock: FakeClock, receiver: Receiver) -> None:
    site = await shop(store)
    _, secret = await store.create_webhook(site.id, receiver.url(), EVENTS)
    grace = await admin(store)
    _, _, number = await request(store, site)
    for text in ("one", "two", "three"):
        await store.post_agent_message(site.id, number, grace, text, False, START)
    receiver.answers.append((500, {}))  # the first delivery fails once
    running = sender(store, clock)
    assert await running.run_once() == 1  # only the ticket's first event is due
    assert len(receiver.received) == 1
    assert await running.run_once() == 0  # the rest wait behind it, in backoff
    clock.advance(timedelta(seconds=31))
    while await running.run_once():
        pass
    types = [r.json["type"] for r in receiver.received]
    assert types == ["ticket.created", "ticket.created", "message.created",
                     "message.created", "ticket.updated", "message.created", "message.created"]
    first, retried = receiver.received[:2]
    assert first.webhook_id == retried.webhook_id and first.body == retried.body
    bodies = [r.json["data"]["message"]["body"] for r in receiver.received
              if r.json["type"] == "message.created"]
    assert bodies == ["Export fails", "one", "two", "three"]
    hook = Webhook(secret)
    for each in receiver.received:  # the timestamp is the fake clock's: check the signature
        at = datetime.fromtimestamp(int(each.headers["webhook-timestamp"]), UTC)
        assert each.headers["webhook-signature"] == hook.sign(each.webhook_id, at, each.body)
    assert await store.webhook_outbox_stats() == (0, 0)


async def test_backoff_gives_up_after_three_days_and_disables_the_endpoint(
        store: SQLiteStore, clock: FakeClock, receiver: Receiver, db_path: Path) -> None:
    site = await shop(store)
    endpoint, _ = await store.create_webhook(site.id, receiver.url(), ("ticket.created",))
    await request(store, site)
    receiver.answers.extend([(503, {})] * 100)
    running = sender(store, clock)
    waits = []
    while await store.webhooks_due(clock.now()) or (await store.webhooks(site.id))[0].enabled:
        due = plain(db_path, "SELECT next_attempt_at, state FROM webhook_deliveries")[0]
        if due[1] != "pending":
            break
        moment = datetime.fromisoformat(due[0].replace("Z", "+00:00"))
        waits.append(moment - clock.now())
        clock.set(max(moment, clock.now()))
        assert await running.run_once() == 1
    assert waits[1:4] == [timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2)]
    assert max(waits) == timedelta(hours=12)
    assert clock.now() - START <= GIVE_UP_AFTER
    (state, attempts), = plain(db_path, "SELECT state, attempts FROM webhook_deliveries")
    assert state == "failed" and attempts == len(receiver.received) == len(waits)
    disabled = (await store.webhooks(site.id))[0]
    assert disabled.id == endpoint.id and not disabled.enabled
    assert disabled.disabled_reason and "HTTP 503" in disabled.disabled_reason
    assert await store.webhook_outbox_stats() == (0, 1)
    await request(store, site)  # a disabled endpoint is told nothing
    assert await store.webhook_outbox_stats() == (0, 1)
    await store.enable_webhook(site.id, endpoint.id)
    await request(store, site)
    assert await store.webhook_outbox_stats() == (1, 1)


async def test_an_erasure_forgets_the_deliveries_of_the_visitor_s_tickets(
        store: SQLiteStore, db_path: Path) -> None:
    site = await shop(store)
    await store.create_webhook(site.id, "https://a.example.com/h", EVENTS)
    visitor, _, _ = await request(store, site, "My card number is 4111", "u-ada")
    await store.create_access_grant(site.id, "u-ada", visitor.id,
                                    GrantRequest(hours=1, ticket_number=None, reason=None),
                                    START)
    assert any("4111" in json.dumps(p) for _, _, p in queued(db_path))
    await store.erase_visitor(site.id, ErasureSelector("user_id", "u-ada"), "cli")
    assert not [p for _, _, p in queued(db_path) if "4111" in json.dumps(p)]
    assert [t for t, _, _ in queued(db_path)] == ["access_grant.created",
                                                  "access_grant.revoked"]


async def test_an_endpoint_deleted_while_its_delivery_is_sent_leaves_nothing(
        store: SQLiteStore, clock: FakeClock, db_path: Path) -> None:
    site = await shop(store)
    endpoint, _ = await store.create_webhook(site.id, "https://a.example.com/h", EVENTS)
    await request(store, site)
    claimed = await store.claim_webhooks(clock.now(), timedelta(minutes=1), 10)
    assert {c.delivery.event_type for c in claimed} == {"ticket.created"}
    await store.delete_webhook(site.id, endpoint.id)
    attempt = Attempt(delivery_id=claimed[0].delivery.id, attempted_at=clock.now(),
                      status=200, error=None, response="ok", duration_ms=3)
    assert await store.record_webhook_attempt(attempt, "http://console.test") == "gone"
    assert plain(db_path, "SELECT count(*) FROM webhook_attempts") == [(0,)]
    assert await store.webhook_outbox_stats() == (0, 0)


async def test_settled_deliveries_are_pruned_after_their_time(
        store: SQLiteStore, clock: FakeClock, receiver: Receiver, db_path: Path) -> None:
    site = await shop(store)
    await store.create_webhook(site.id, receiver.url(), ("ticket.created",))
    await request(store, site)
    receiver.answers.append((503, {}))
    await request(store, site)  # the second: delivered after the first
    running = sender(store, clock)
    assert await running.run_once() == 2  # two tickets: both heads; one fails
    assert await store.prune_webhook_log(clock.now() + timedelta(days=1)) == 1
    assert plain(db_path, "SELECT state, attempts FROM webhook_deliveries") == [("pending", 1)]
    assert plain(db_path, "SELECT count(*) FROM webhook_attempts") == [(1,)]


async def test_a_rating_and_its_change_are_queued_with_the_comment(
        store: SQLiteStore, db_path: Path, clock: FakeClock) -> None:
    site = await shop(store)
    await store.create_webhook(site.id, "https://crm.test/hooks",
                               ("rating.created", "rating.updated"))
    visitor, conversation, number = await request(store, site)
    await store.update_ticket(site.id, number, await admin(store), TicketPatch(status="solved"),
                              START)
    await store.rate_ticket(site.id, visitor.id, conversation, 2, "Slow", False, "widget",
                            START)
    await store.rate_ticket(site.id, visitor.id, conversation, 4, None, True, "email", START)
    found = [(kind, payload["data"]) for kind, _, payload in queued(db_path)]
    assert [kind for kind, _ in found] == ["rating.created", "rating.updated"]
    assert found[0][1]["rating"] == {"score": 2, "from": None, "channel": "widget",
                                     "comment": "Slow"}
    assert found[1][1]["rating"]["from"] == 2 and found[1][1]["rating"]["score"] == 4
    assert found[1][1]["ticket"]["number"] == number
