"""The reply speed the widget shows: the median first response at this hour of the day, at
least the age of the oldest waiting ticket; coverage now or when it resumes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from widget_server.availability import coverage, usual_reply
from widget_server.policy import parse_policy

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)  # a Tuesday


def answered(hour: int, minutes: int, count: int = 5) -> list[tuple[datetime, datetime]]:
    """``count`` tickets opened at ``hour`` on earlier days, answered after ``minutes``."""
    return [(NOW.replace(hour=hour) - timedelta(days=day),
             NOW.replace(hour=hour) - timedelta(days=day) + timedelta(minutes=minutes))
            for day in range(1, count + 1)]


def test_this_hour_of_the_day_decides_when_it_has_enough_answers() -> None:
    samples = answered(10, 30) + answered(3, 600)
    assert usual_reply(samples, "UTC", NOW, None) == 30 * 60
    # at 03:30 there are answers of that hour too; at 18:30 none, so every hour counts
    assert usual_reply(samples, "UTC", NOW.replace(hour=3), None) == 600 * 60
    assert usual_reply(samples, "UTC", NOW.replace(hour=18), None) == (30 + 600) * 60 // 2
    assert usual_reply(answered(10, 30, count=4) + answered(3, 600, count=1), "UTC", NOW,
                       None) == 30 * 60  # too few at this hour: the median of all five


def test_a_queue_that_is_behind_shows_at_once() -> None:
    waiting_since = NOW - timedelta(hours=3)
    assert usual_reply(answered(10, 30), "UTC", NOW, waiting_since) == 3 * 3600
    assert usual_reply([], "UTC", NOW, None) is None


def test_coverage_now_or_when_it_resumes() -> None:
    office = parse_policy('[calendar]\ntimezone = "UTC"\ntue = ["09:00-10:00"]\n'
                          'wed = ["09:00-17:00"]\n[[severity]]\nkey = "normal"\n'
                          'label = "Normal"\nfirst_response = "1h"\n').calendar
    assert coverage(office, NOW) == (False, datetime(2026, 11, 25, 9, tzinfo=UTC))
    assert coverage(office, NOW.replace(hour=9)) == (True, None)
    assert coverage(parse_policy(
        '[[severity]]\nkey = "normal"\nlabel = "Normal"\nfirst_response = "1h"\n').calendar,
        NOW) == (True, None)
