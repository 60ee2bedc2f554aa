"""SLA reports against figures computed by hand on a seeded data set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from widget_server.clock import FakeClock
from widget_server.models import Site, Visitor
from widget_server.realtime.hub import Hub
from widget_server.reports import build_report, percentile
from widget_server.scheduler import SlaScheduler
from widget_server.store.base import TicketPatch, VisitorPost
from widget_server.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([10.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert percentile([10.0, 1.0, 3.0, 2.0], 0.9) == 10.0
    assert percentile([5.0], 0.9) == 5.0


@pytest.fixture
async def seeded(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStore, Site, FakeClock]]:
    clock = FakeClock(T0)
    store = SQLiteStore(str(tmp_path / "r.db"), clock=clock)
    await store.open()
    site = (await store.ensure_site("Reports", ["https://r.test"]))[0]
    agent = (await store.ensure_agent("r@example.com", "R", "agent", None))[0]
    plan = [("a", "normal", 1), ("b", "normal", 2), ("c", "high", 3), ("d", "high", 10),
            ("e", "normal", None)]
    numbers = {}
    for name, severity, _ in plan:
        visitor = Visitor(f"v_{name}", site.id, None, None, None, False)
        result = await store.post_visitor_message(
            VisitorPost(visitor, None, name, "help", severity, None), clock.now())
        assert result.ticket is not None
        numbers[name] = result.ticket.number
    for name, _, hours in sorted(plan, key=lambda item: item[2] or 99):
        if hours is None:
            continue
        clock.set(T0 + hours * H)  # replies land exactly `hours` after creation
        await store.post_agent_message(site.id, numbers[name], agent, "reply", False,
                                       clock.now())
    clock.set(T0 + 12 * H)
    await SlaScheduler(store, Hub(), clock).run_once()  # e breaches at its due instant
    await store.update_ticket(site.id, numbers["a"], agent, TicketPatch(status="solved"),
                              clock.now())
    clock.advance(timedelta(days=1))
    await store.update_ticket(site.id, numbers["b"], agent, TicketPatch(status="solved"),
                              clock.now())
    yield store, site, clock
    await store.close()


async def test_report_matches_hand_computed_figures(
    seeded: tuple[SQLiteStore, Site, FakeClock]
) -> None:
    store, site, clock = seeded
    report = await build_report(store, clock.now(), site.id, days=7)
    assert report.until == date(2026, 11, 3) and report.since == date(2026, 10, 28)
    assert report.tickets == 5
    assert report.first_response_p50_s == 2 * 3600  # of 1, 2, 3 and 10 hours
    assert report.first_response_p90_s == 10 * 3600
    assert report.breaches == {"critical": 0, "high": 0, "normal": 1, "low": 0}
    assert report.breach_rate == {"critical": None, "high": 0.0, "normal": 1 / 3, "low": None}
    assert report.opened_per_day[date(2026, 11, 2)] == 5
    assert sum(report.opened_per_day.values()) == 5
    assert report.solved_per_day[date(2026, 11, 2)] == 1
    assert report.solved_per_day[date(2026, 11, 3)] == 1
    assert report.backlog == {"solved": 2, "open": 2, "new": 1}
    assert report.as_json()["first_response"] == {"p50_seconds": 7200.0, "p90_seconds": 36000.0}
