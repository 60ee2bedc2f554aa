"""An injectable clock: domain code asks it for the time so tests can move time by hand."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, moment: datetime) -> None:
        self._now = moment


class OffsetClock:
    """The system clock plus a number of seconds read from a file, re-read when it changes.

    For end-to-end tests and drills only (``WIDGET_CLOCK_OFFSET_FILE``): another process moves
    a running server's time forward (a grant expiring after 7 days, a retention period) without
    anyone waiting. A missing or unreadable file means no offset.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._offset = timedelta(0)

    def now(self) -> datetime:
        try:
            info = os.stat(self.path)
        except OSError:
            self._stamp, self._offset = None, timedelta(0)
        else:
            stamp = (info.st_mtime_ns, info.st_size)
            if stamp != self._stamp:
                self._stamp, self._offset = stamp, self._read()
        return datetime.now(UTC) + self._offset

    def _read(self) -> timedelta:
        try:
            with open(self.path, encoding="utf-8") as file:
                return timedelta(seconds=float(file.read().strip() or 0))
        except (OSError, ValueError):
            return timedelta(0)


def clock_for(offset_file: str | None) -> Clock:
    return OffsetClock(offset_file) if offset_file else SystemClock()


@lru_cache(maxsize=64)  # one write formats the same few instants many times
def isoformat(moment: datetime) -> str:
    """UTC ISO 8601 with millisecond precision and a Z suffix, as every frame carries it."""
    if moment.tzinfo is not UTC:  # the clock's instants are UTC already: no new object
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
