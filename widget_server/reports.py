"""SLA reports: first-response times, breach rates, flow per day, backlog. Pure arithmetic over
plain rows, so the console, the CSV export and /api/v1/reports/sla show the same figures.

Definitions (docs/reports.md repeats them):
- first-response time: from a ticket's creation to its first public agent reply, wall-clock
  time, for tickets created in the period that have had that reply;
- p50 / p90: nearest-rank percentiles of those times;
- breach rate of a severity: the share of its tickets created in the period whose
  first-response clock was marked breached (by the scheduler, at the due instant);
- opened per day: tickets created that UTC day; solved per day: changes to `solved` that day;
- backlog: tickets by status now.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from widget_server.models import Site
from widget_server.policy import policy_from_text


@dataclass(frozen=True)
class TicketFacts:
    severity: str
    status: str
    created_at: datetime
    first_response_at: datetime | None
    breached_first_response: bool


@dataclass(frozen=True)
class SlaReport:
    since: date
    until: date  # inclusive
    tickets: int
    first_response_p50_s: float | None
    first_response_p90_s: float | None
    breach_rate: dict[str, float | None]  # per severity
    breaches: dict[str, int]
    opened_per_day: dict[date, int]
    solved_per_day: dict[date, int]
    backlog: dict[str, int]

    def as_json(self) -> dict[str, object]:
        return {
            "since": self.since.isoformat(), "until": self.until.isoformat(),
            "tickets": self.tickets,
            "first_response": {"p50_seconds": self.first_response_p50_s,
                               "p90_seconds": self.first_response_p90_s},
            "breach_rate": self.breach_rate, "breaches": self.breaches,
            "opened_per_day": {day.isoformat(): n for day, n in self.opened_per_day.items()},
            "solved_per_day": {day.isoformat(): n for day, n in self.solved_per_day.items()},
            "backlog": self.backlog,
        }


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least ``share`` of values <= it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def build(facts: list[TicketFacts], solved_on: list[datetime], backlog: dict[str, int],
          severities: tuple[str, ...], since: date, until: date) -> SlaReport:
    days = [since + timedelta(days=n) for n in range((until - since).days + 1)]
    in_period = [f for f in facts if since <= f.created_at.date() <= until]
    times = [(f.first_response_at - f.created_at).total_seconds()
             for f in in_period if f.first_response_at is not None]
    per_severity = Counter(f.severity for f in in_period)
    breaches = Counter(f.severity for f in in_period if f.breached_first_response)
    opened = Counter(f.created_at.date() for f in in_period)
    solved = Counter(moment.date() for moment in solved_on if since <= moment.date() <= until)
    return SlaReport(
        since=since, until=until, tickets=len(in_period),
        first_response_p50_s=percentile(times, 0.5),
        first_response_p90_s=percentile(times, 0.9),
        breach_rate={key: (breaches[key] / per_severity[key] if per_severity[key] else None)
                     for key in severities},
        breaches={key: breaches[key] for key in severities},
        opened_per_day={day: opened[day] for day in days},
        solved_per_day={day: solved[day] for day in days},
        backlog=backlog,
    )


async def build_report(store: ReportSource, now: datetime, site_id: int, days: int) -> SlaReport:
    """The report of one site over the ``days`` UTC days ending today."""
    until = now.astimezone(UTC).date()
    since = until - timedelta(days=days - 1)
    site = await store.get_site(site_id)
    facts, solved, backlog = await store.report_rows(
        [site_id], datetime.combine(since, time(0), UTC))
    severities = policy_from_text(site.policy if site else None).keys
    return build(facts, solved, backlog, severities, since, until)


class ReportSource(Protocol):
    async def get_site(self, site_id: int) -> Site | None: ...
    async def report_rows(self, site_ids: list[int], since: datetime) -> tuple[
            list[TicketFacts], list[datetime], dict[str, int]]: ...
