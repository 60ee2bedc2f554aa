"""What the widget tells a visitor about support's hours and speed, from live data.

- ``open_now`` and ``opens_at``: the site's coverage calendar (policy.py, sla.py).
- ``reply_by``: when a request of the site's default severity sent now would be due.
- ``usual_reply_seconds``: the median time to a first response of the site's tickets opened
  in the last 28 days at this hour of the day (in the calendar's time zone), or at any hour
  when fewer than 5 were; raised to the age of the oldest ticket still waiting for one, so a
  queue that is behind shows now, not tomorrow. None without any answered ticket.
- ``waiting``: how many tickets wait for a first response.

Two small reads per site, at most once a minute: the answer is kept per site for 60 s.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from widget_server.clock import isoformat
from widget_server.models import Site
from widget_server.policy import policy_from_text
from widget_server.sla import Calendar, add_business_seconds
from widget_server.store import Store

KEEP_SECONDS = 60
WINDOW = timedelta(days=28)
MIN_SAMPLES = 5


@dataclass(frozen=True)
class Availability:
    open_now: bool
    opens_at: datetime | None
    reply_by: datetime
    usual_reply_seconds: int | None
    waiting: int

    def json(self) -> dict[str, Any]:
        return {"open_now": self.open_now,
                "opens_at": isoformat(self.opens_at) if self.opens_at else None,
                "reply_by": isoformat(self.reply_by),
                "usual_reply_seconds": self.usual_reply_seconds, "waiting": self.waiting}


def coverage(calendar: Calendar, now: datetime) -> tuple[bool, datetime | None]:
    """Whether support is covered now, and else when coverage begins again."""
    if calendar.always_open:
        return True, None
    begin, _ = next(calendar.intervals(now))
    return (True, None) if begin <= now else (False, begin)


def usual_reply(samples: list[tuple[datetime, datetime]], zone: str, now: datetime,
                oldest_waiting: datetime | None) -> int | None:
    """The median first-response time at this hour of the day (all hours when few), at
    least as long as the oldest waiting ticket has waited."""
    tz = ZoneInfo(zone)
    hour = now.astimezone(tz).hour
    at_hour = [answered - created for created, answered in samples
               if created.astimezone(tz).hour == hour]
    chosen = at_hour if len(at_hour) >= MIN_SAMPLES else [b - a for a, b in samples]
    if not chosen:
        return None
    typical = statistics.median(span.total_seconds() for span in chosen)
    behind = (now - oldest_waiting).total_seconds() if oldest_waiting else 0.0
    return round(max(typical, behind))


async def compute(store: Store, site: Site, now: datetime) -> Availability:
    policy = policy_from_text(site.policy)
    open_now, opens_at = coverage(policy.calendar, now)
    target = policy.severity(policy.default_severity).first_response
    reply_by = add_business_seconds(policy.calendar, now, target.total_seconds())
    samples = await store.first_responses(site.id, now - WINDOW)
    waiting, oldest = await store.waiting_queue(site.id)
    return Availability(open_now, opens_at, reply_by,
                        usual_reply(samples, policy.calendar.timezone, now, oldest), waiting)


class AvailabilityCache:
    """Each site's availability, computed at most once a minute."""

    def __init__(self) -> None:
        self._kept: dict[int, tuple[datetime, Availability]] = {}

    async def get(self, store: Store, site: Site, now: datetime) -> Availability:
        found = self._kept.get(site.id)
        if found and now - found[0] < timedelta(seconds=KEEP_SECONDS) and found[0] <= now:
            return found[1]
        value = await compute(store, site, now)
        if len(self._kept) > 10_000:  # many sites: start over rather than grow
            self._kept.clear()
        self._kept[site.id] = (now, value)
        return value
