"""SLA arithmetic with fixed instants: 24/7, weekly hours, weekends, DST, holidays, pauses."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from widget_server.sla import ALWAYS, Calendar, add_business_seconds, business_seconds, start_clock

PRAGUE = ZoneInfo("Europe/Prague")
NINE_TO_FIVE = ((time(9), time(17)),)
WEEKDAYS_ONLY = (NINE_TO_FIVE,) * 5 + ((), ())
OFFICE = Calendar("Europe/Prague", WEEKDAYS_ONLY)
H = 3600


def at(*args: int, zone: ZoneInfo = PRAGUE) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


def test_always_open_due_is_exactly_twelve_hours_later() -> None:
    created = datetime(2026, 11, 26, 10, 30, 15, tzinfo=UTC)
    clock = start_clock("first_response", timedelta(hours=12), created)
    assert clock.due_at(ALWAYS) == created + timedelta(hours=12)


def test_friday_afternoon_request_rolls_over_the_weekend() -> None:
    created = at(2026, 11, 27, 15)  # a Friday, 2 h before closing
    due = add_business_seconds(OFFICE, created, 4 * H)
    assert due == at(2026, 11, 30, 11)  # Monday 11:00: 2 h Friday + 2 h Monday
    assert business_seconds(OFFICE, created, due) == 4 * H


def test_outside_hours_the_clock_starts_at_opening() -> None:
    assert add_business_seconds(OFFICE, at(2026, 11, 28, 23), 1 * H) == at(2026, 11, 30, 10)


def test_daylight_saving_change_in_prague_keeps_wall_clock_hours() -> None:
    # clocks go forward on Sunday 29 March 2026; Friday 16:00 + 3 business hours
    due = add_business_seconds(OFFICE, at(2026, 3, 27, 16), 3 * H)
    assert due == at(2026, 3, 30, 11)
    assert due.astimezone(PRAGUE).utcoffset() == timedelta(hours=2)  # summer time on Monday
    assert due.astimezone(UTC) == datetime(2026, 3, 30, 9, tzinfo=UTC)
    # and back on Sunday 25 October 2026
    autumn = add_business_seconds(OFFICE, at(2026, 10, 23, 16), 3 * H)
    assert autumn.astimezone(UTC) == datetime(2026, 10, 26, 10, tzinfo=UTC)


def test_a_holiday_is_skipped() -> None:
    with_holiday = Calendar("Europe/Prague", WEEKDAYS_ONLY, frozenset({date(2026, 12, 24)}))
    due = add_business_seconds(with_holiday, at(2026, 12, 23, 16), 2 * H)
    assert due == at(2026, 12, 25, 10)  # 1 h on the 23rd, nothing on the 24th


def test_pending_pauses_and_resuming_continues_where_it_stopped() -> None:
    created = datetime(2026, 11, 26, 8, tzinfo=UTC)
    clock = start_clock("first_response", timedelta(hours=12), created)
    paused = clock.pause(ALWAYS, created + timedelta(hours=5))
    assert paused.due_at(ALWAYS) is None
    assert paused.consumed_at(ALWAYS, created + timedelta(days=3)) == 5 * H
    resumed = paused.resume(created + timedelta(hours=30))
    assert resumed.due_at(ALWAYS) == created + timedelta(hours=37)


def test_severity_change_recomputes_from_creation() -> None:
    created = datetime(2026, 11, 26, 8, tzinfo=UTC)
    clock = start_clock("first_response", timedelta(hours=12), created)
    assert clock.retarget(4 * H).due_at(ALWAYS) == created + timedelta(hours=4)


def test_at_risk_is_at_eighty_percent() -> None:
    created = datetime(2026, 11, 26, 8, tzinfo=UTC)
    clock = start_clock("first_response", timedelta(hours=10), created)
    assert clock.at_risk_at(ALWAYS) == created + timedelta(hours=8)
