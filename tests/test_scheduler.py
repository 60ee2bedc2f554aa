"""SLA clocks end to end on a real SQLite store with a fake clock: no sleeping anywhere."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from widget_server import metrics
from widget_server.clock import FakeClock
from widget_server.models import Agent, Site, Visitor
from widget_server.realtime.hub import Hub
from widget_server.scheduler import LEASE, SlaScheduler
from widget_server.store.base import TicketPatch, VisitorPost
from widget_server.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # a Thursday
H = timedelta(hours=1)

OFFICE_POLICY = """
[calendar]
timezone = "Europe/Prague"
mon = ["09:00-17:00"]
tue = ["09:00-17:00"]
wed = ["09:00-17:00"]
thu = ["09:00-17:00"]
fri = ["09:00-17:00"]
holidays = ["2026-12-24"]

[[severity]]
key = "urgent"
label = "Urgent"
first_response = "2h"

[[severity]]
key = "normal"
label = "Normal"
first_response = "8h"
next_response = "4h"
"""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def site(store: SQLiteStore) -> Site:
    return (await store.ensure_site("SLA", ["https://sla.test"]))[0]


@pytest.fixture
async def agent(store: SQLiteStore) -> Agent:
    return (await store.ensure_agent("sla@example.com", "Sam", "agent", None))[0]


async def open_ticket(store: SQLiteStore, site: Site, clock: FakeClock, severity: str | None = None,
                      name: str = "v1") -> int:
    visitor = Visitor(f"v_{name}", site.id, None, None, None, False)
    result = await store.post_visitor_message(
        VisitorPost(visitor, None, f"m-{name}", "Help", severity, None), clock.now())
    assert result.ticket is not None
    return result.ticket.number


def events(store: SQLiteStore, kind: str) -> list[dict[str, object]]:
    with sqlite3.connect(f"file:{store.path}?mode=ro", uri=True) as conn:
        found = conn.execute("SELECT data FROM ticket_events WHERE type = ? ORDER BY id",
                             (kind,)).fetchall()
    return [json.loads(row[0]) for row in found]


async def ticket(store: SQLiteStore, site: Site, number: int):  # type: ignore[no-untyped-def]
    found = await store.get_ticket(site.id, number)
    assert found is not None
    return found[0]


async def test_breach_is_flagged_at_the_due_instant_and_not_a_second_before(
    store: SQLiteStore, site: Site, clock: FakeClock
) -> None:
    number = await open_ticket(store, site, clock)
    scheduler = SlaScheduler(store, Hub(), clock)
    assert (await ticket(store, site, number)).first_response_due == T0 + 12 * H
    def breaches() -> float:  # what /metrics shows as widget_sla_marks_total
        return metrics.REGISTRY.get_sample_value("widget_sla_marks_total",
                                                 {"mark": "breached"}) or 0.0

    breached_before = breaches()
    clock.advance(12 * H - timedelta(seconds=1))
    result = await scheduler.run_once()
    assert result.acted and result.next_wake == T0 + 12 * H
    assert not (await ticket(store, site, number)).breached
    assert len(events(store, "sla_at_risk")) == 1  # 80 % of 12 h passed at 9 h 36 min
    assert result.marks == ("sla_at_risk",)
    clock.advance(timedelta(seconds=1))
    assert (await scheduler.run_once()).marks == ("sla_breached",)
    assert (await ticket(store, site, number)).breached
    assert (await scheduler.run_once()).marks == ()
    assert breaches() == breached_before + 1
    assert events(store, "sla_breached") == [
        {"due": "2026-11-26T20:00:00.000Z", "clock": "first_response"}]


async def test_pending_pauses_and_resuming_continues(
    store: SQLiteStore, site: Site, agent: Agent, clock: FakeClock
) -> None:
    number = await open_ticket(store, site, clock)
    scheduler = SlaScheduler(store, Hub(), clock)
    clock.advance(5 * H)
    await store.update_ticket(site.id, number, agent, TicketPatch(status="pending"), clock.now())
    paused = await ticket(store, site, number)
    assert paused.sla_due is None and paused.sla_paused
    clock.advance(25 * H)  # 30 h after creation: long past 12 h, but paused
    await scheduler.run_once()
    assert not (await ticket(store, site, number)).breached
    await store.update_ticket(site.id, number, agent, TicketPatch(status="open"), clock.now())
    assert (await ticket(store, site, number)).sla_due == T0 + 37 * H


async def test_solving_stops_the_clock_and_a_reopen_starts_a_next_response_clock(
    store: SQLiteStore, site: Site, agent: Agent, clock: FakeClock
) -> None:
    number = await open_ticket(store, site, clock)
    scheduler = SlaScheduler(store, Hub(), clock)
    clock.advance(2 * H)
    await store.post_agent_message(site.id, number, agent, "Fixed!", False, clock.now())
    await store.update_ticket(site.id, number, agent, TicketPatch(status="solved"), clock.now())
    clock.advance(40 * H)  # long after any target
    visitor = Visitor("v_v1", site.id, None, None, None, False)
    found = await ticket(store, site, number)
    await store.post_visitor_message(
        VisitorPost(visitor, found.conversation_id, "m-again", "Broken again", None, None),
        clock.now())
    reopened = await ticket(store, site, number)
    assert reopened.status == "open" and reopened.sla_kind == "next_response"
    assert reopened.sla_due == clock.now() + 12 * H and not reopened.breached
    await scheduler.run_once()
    assert not (await ticket(store, site, number)).breached  # never an instant breach


async def test_severity_change_recomputes_and_calendar_rolls_over_weekend_and_holiday(
    store: SQLiteStore, site: Site, agent: Agent, clock: FakeClock
) -> None:
    await store.set_site_policy(site.id, OFFICE_POLICY)
    clock.advance(timedelta(days=1, hours=7))  # Friday 27 Nov, 15:00 UTC = 16:00 Prague
    number = await open_ticket(store, site, clock)
    # 1 h on Friday, 7 h on Monday 30 Nov from 09:00 Prague (08:00 UTC)
    assert (await ticket(store, site, number)).sla_due == datetime(2026, 11, 30, 15, tzinfo=UTC)
    await store.update_ticket(site.id, number, agent, TicketPatch(severity="urgent"),
                              clock.now())
    assert (await ticket(store, site, number)).sla_due == datetime(2026, 11, 30, 9, tzinfo=UTC)
    clock.advance(timedelta(days=26))  # Wednesday 23 Dec, 16:00 Prague
    late = await open_ticket(store, site, clock, "urgent", name="v2")
    # 1 h on the 23rd; the 24th is a holiday; 1 h on the 25th from 09:00 Prague
    assert (await ticket(store, site, late)).sla_due == datetime(2026, 12, 25, 9, tzinfo=UTC)


async def test_a_restarted_scheduler_marks_nothing_twice_and_racing_ones_mark_once(
    store: SQLiteStore, site: Site, clock: FakeClock
) -> None:
    for n in range(5):
        await open_ticket(store, site, clock, name=f"r{n}")
    clock.advance(13 * H)
    first, second = SlaScheduler(store, Hub(), clock), SlaScheduler(store, Hub(), clock)
    outcomes = await asyncio.gather(first.run_once(), second.run_once())
    assert sorted(outcome.acted for outcome in outcomes) == [False, True]
    assert len(events(store, "sla_breached")) == 5
    clock.advance(LEASE)  # the first holder "died"; a restarted one takes over
    restarted = SlaScheduler(store, Hub(), clock)
    assert (await restarted.run_once()).acted
    assert len(events(store, "sla_breached")) == 5
    assert len(events(store, "sla_at_risk")) == 5


async def test_solved_tickets_close_after_seven_days(
    store: SQLiteStore, site: Site, agent: Agent, clock: FakeClock
) -> None:
    number = await open_ticket(store, site, clock)
    await store.update_ticket(site.id, number, agent, TicketPatch(status="solved"), clock.now())
    scheduler = SlaScheduler(store, Hub(), clock)
    clock.advance(timedelta(days=7) - timedelta(seconds=1))
    result = await scheduler.run_once()
    assert (await ticket(store, site, number)).status == "solved"
    assert result.next_wake == T0 + timedelta(days=7)
    clock.advance(timedelta(seconds=1))
    await scheduler.run_once()
    assert (await ticket(store, site, number)).status == "closed"
    assert events(store, "auto_closed") == [{"after_days": 7}]
