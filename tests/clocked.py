"""Test-only launcher: ``widget-server`` whose clock another process moves forward.

``python -m tests.clocked OFFSET_FILE serve --db ...`` (or any other command) runs the real
command line with ``FileClock(OFFSET_FILE)`` instead of the system clock, so a test can move
a real server's time (a grant expiring after 7 days, a retention period running out) without
waiting. Production code never reads a clock file; tests that need no separate process move
the in-process app's clock instead (tests/inprocess.py).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from widget_server.cli import main


class FileClock:
    """The system clock plus a number of seconds read from a file, re-read when it changes.
    A missing or unreadable file means no offset."""

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


class TimeShift:
    """Moves the clock of the servers and commands started with ``launcher``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds = 0.0
        path.write_text("0")

    @property
    def launcher(self) -> list[str]:
        """The command that stands in for ``python -m widget_server``."""
        return [sys.executable, "-m", "tests.clocked", str(self.path)]

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
        self.path.write_text(repr(self.seconds))


if __name__ == "__main__":
    sys.exit(main(sys.argv[2:], clock=FileClock(sys.argv[1])))
