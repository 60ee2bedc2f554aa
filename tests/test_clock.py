"""Instants as every frame and stored row carries them: UTC, milliseconds, a Z suffix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from widget_server.clock import isoformat, parse_iso


def test_isoformat_is_utc_with_milliseconds_and_z() -> None:
    assert isoformat(datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=UTC)) == (
        "2026-01-02T03:04:05.678Z")  # truncated, as stored
    assert isoformat(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"


def test_isoformat_converts_other_offsets_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert isoformat(datetime(2026, 1, 2, 0, 30, tzinfo=paris)) == "2026-01-01T23:30:00.000Z"
    zero = timezone(timedelta(0), "zero")  # UTC's offset, not UTC's object
    assert isoformat(datetime(2026, 1, 2, tzinfo=zero)) == "2026-01-02T00:00:00.000Z"


def test_parse_iso_reads_what_isoformat_writes() -> None:
    moment = datetime(2026, 11, 27, 17, 30, 5, 123000, tzinfo=UTC)
    assert parse_iso(isoformat(moment)) == moment
