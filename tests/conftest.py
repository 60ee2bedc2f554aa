from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.clocked import TimeShift
from tests.inprocess import InProcess, in_process
from tests.mail_sink import MailSink
from tests.support import ServerProcess, Site, create_site
from widget_server.clock import Clock, SystemClock
from widget_server.store.sqlite import SQLiteStore


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server for the session; tests isolate themselves with their own site."""
    db = tmp_path_factory.mktemp("server") / "widget.db"
    process = ServerProcess(db).start()
    yield process
    process.stop()


@pytest.fixture
def site(server: ServerProcess) -> Site:
    return create_site(server.db)


@pytest.fixture
async def inprocess(tmp_path: Path) -> AsyncIterator[InProcess]:
    """The app in this process, on a database of the test's own (its own sites, agents and
    sign-in throttle); ``inprocess.clock.advance(...)`` moves its time (tests/inprocess.py)."""
    async with in_process(tmp_path / "widget.db") as running:
        yield running


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, for tests that kill or restart it."""
    process = ServerProcess(tmp_path / "widget.db")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def shift(tmp_path_factory: pytest.TempPathFactory) -> TimeShift:
    """Moves the clock of the module's ``clocked`` server forward."""
    return TimeShift(tmp_path_factory.mktemp("clock") / "offset")


@pytest.fixture(scope="module")
def clocked(tmp_path_factory: pytest.TempPathFactory, shift: TimeShift
            ) -> Iterator[ServerProcess]:
    """A server of the test module's own whose clock only ever moves forward."""
    process = ServerProcess(tmp_path_factory.mktemp("clocked") / "widget.db",
                            launcher=shift.launcher)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def clock() -> Clock:
    """The store's clock; modules that move time override it with a FakeClock."""
    return SystemClock()


@pytest.fixture
async def store(db_path: Path, clock: Clock) -> AsyncIterator[SQLiteStore]:
    """A real SQLite store on a file of the test's own, for tests without a server."""
    opened = SQLiteStore(str(db_path), clock=clock)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def sink() -> Iterator[MailSink]:
    """An SMTP server on loopback that keeps what it is sent (tests/mail_sink.py), one per
    test module."""
    running = MailSink().start()
    yield running
    running.stop()
