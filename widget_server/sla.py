"""SLA arithmetic, and nothing else: business time over a coverage calendar.

Pure functions over aware datetimes. A calendar is either 24/7 (business time is real time)
or weekly opening hours in a time zone, minus holidays. Daylight-saving changes are handled by
building each opening interval from local wall-clock times with zoneinfo, so "09:00-17:00"
means that on every covered day, whatever the UTC offset is that day.

The clock of one ticket is kept as: ``consumed`` business seconds before the current running
segment, plus ``running_since`` (None while paused). ``due_at`` follows from the target.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 3660  # a calendar with no opening hours would otherwise never reach a due time


@dataclass(frozen=True)
class Calendar:
    """24/7 when ``hours`` is None; else opening intervals per weekday (0 = Monday)."""

    timezone: str = "UTC"
    hours: tuple[tuple[tuple[time, time], ...], ...] | None = None
    holidays: frozenset[date] = field(default_factory=frozenset)

    @property
    def always_open(self) -> bool:
        return self.hours is None

    def intervals(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Opening intervals in UTC that end after ``start``, in order, from its local day."""
        assert self.hours is not None
        zone = ZoneInfo(self.timezone)
        day = start.astimezone(zone).date()
        for _ in range(MAX_DAYS):
            if day not in self.holidays:
                for opens, closes in self.hours[day.weekday()]:
                    begin = datetime.combine(day, opens, zone).astimezone(UTC)
                    end = (datetime.combine(day + timedelta(days=1), time(0), zone)
                           if closes == time(0) else datetime.combine(day, closes, zone))
                    end = end.astimezone(UTC)
                    if end > start:
                        yield max(begin, start), end
            day += timedelta(days=1)
        raise ValueError("the calendar has no opening hours")


ALWAYS = Calendar()


def business_seconds(calendar: Calendar, start: datetime, end: datetime) -> float:
    """Covered seconds in [start, end)."""
    if end <= start:
        return 0.0
    if calendar.always_open:
        return (end - start).total_seconds()
    total = 0.0
    for begin, finish in calendar.intervals(start):
        if begin >= end:
            break
        total += (min(finish, end) - begin).total_seconds()
    return total


def add_business_seconds(calendar: Calendar, start: datetime, seconds: float) -> datetime:
    """The instant when ``seconds`` of covered time have passed since ``start``."""
    if calendar.always_open:
        return start + timedelta(seconds=seconds)
    remaining = seconds
    for begin, finish in calendar.intervals(start):
        span = (finish - begin).total_seconds()
        if remaining <= span:
            return begin + timedelta(seconds=remaining)
        remaining -= span
    raise AssertionError("unreachable: intervals() raises first")


@dataclass(frozen=True)
class Clock:
    """One ticket's SLA clock (first response, or next response after a reopen)."""

    kind: str  # "first_response" | "next_response"
    target_seconds: float
    consumed: float  # business seconds used before the current running segment
    running_since: datetime | None  # None while paused

    def consumed_at(self, calendar: Calendar, now: datetime) -> float:
        if self.running_since is None:
            return self.consumed
        return self.consumed + business_seconds(calendar, self.running_since, now)

    def due_at(self, calendar: Calendar) -> datetime | None:
        if self.running_since is None:
            return None
        left = max(0.0, self.target_seconds - self.consumed)
        return add_business_seconds(calendar, self.running_since, left)

    def pause(self, calendar: Calendar, now: datetime) -> Clock:
        if self.running_since is None:
            return self
        return Clock(self.kind, self.target_seconds, self.consumed_at(calendar, now), None)

    def resume(self, now: datetime) -> Clock:
        if self.running_since is not None:
            return self
        return Clock(self.kind, self.target_seconds, self.consumed, now)

    def retarget(self, target_seconds: float) -> Clock:
        """A severity change: same consumption since creation, new target."""
        return Clock(self.kind, target_seconds, self.consumed, self.running_since)

    def at_risk_at(self, calendar: Calendar, share: float = 0.8) -> datetime | None:
        if self.running_since is None:
            return None
        left = max(0.0, self.target_seconds * share - self.consumed)
        return add_business_seconds(calendar, self.running_since, left)


def start_clock(kind: str, target: timedelta, now: datetime) -> Clock:
    return Clock(kind, target.total_seconds(), 0.0, now)
