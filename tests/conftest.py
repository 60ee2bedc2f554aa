from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.clocked import TimeShift
from tests.inprocess import InProcess, in_process
from tests.mail_sink import MailSink
from tests.pg import DEFAULT_BACKEND, PgServer, pg_server  # noqa: F401  (a fixture)
from tests.support import ServerProcess, Site, create_site
from widget_server.clock import Clock, SystemClock
from widget_server.store.base import Store
from widget_server.store.sqlite import SQLiteStore


@pytest.fixture(scope="session")
def sqlite_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server on SQLite for the session; tests isolate themselves with their own
    site."""
    db = tmp_path_factory.mktemp("server") / "widget.db"
    process = ServerProcess(db).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def postgresql_served(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
                      ) -> Iterator[ServerProcess]:
    """One real server on PostgreSQL for the session (a database of its own)."""
    databases: PgServer = request.getfixturevalue("pg_server")
    url = databases.fresh()
    process = ServerProcess(url, log=tmp_path_factory.mktemp("pg-server") / "widget.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest) -> ServerProcess:
    """The session's server: on the default backend (SQLite, or ``WIDGET_TEST_BACKEND``),
    unless a module asks for each backend (``on_each_backend``, tests/pg.py)."""
    found: ServerProcess = request.getfixturevalue(f"{DEFAULT_BACKEND}_served")
    return found


@pytest.fixture
def site(server: ServerProcess) -> Site:
    return create_site(server.db)


@pytest.fixture
async def inprocess(tmp_path: Path, backend: str, request: pytest.FixtureRequest
                    ) -> AsyncIterator[InProcess]:
    """The app in this process, on a database of the test's own (its own sites, agents and
    sign-in throttle); ``inprocess.clock.advance(...)`` moves its time (tests/inprocess.py)."""
    where = (request.getfixturevalue("db") if backend == "postgresql"
             else tmp_path / "widget.db")
    async with in_process(where) as running:
        yield running


@pytest.fixture
def fresh_server(tmp_path: Path, backend: str, request: pytest.FixtureRequest
                 ) -> Iterator[ServerProcess]:
    """A server of the test's own, for tests that kill or restart it: on SQLite, or on a
    fresh PostgreSQL database where the module parametrises ``backend``."""
    if backend == "postgresql":
        server: PgServer = request.getfixturevalue("pg_server")
        process = ServerProcess(server.fresh(), log=tmp_path / "widget.log")
    else:
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
def backend(request: pytest.FixtureRequest) -> str:
    """The store's backend: SQLite (or ``WIDGET_TEST_BACKEND``), unless a module parametrises
    it over ``BACKENDS`` (``pytest.mark.parametrize("backend", BACKENDS, indirect=True)``)."""
    return str(getattr(request, "param", DEFAULT_BACKEND))


@pytest.fixture
def db(backend: str, db_path: Path, request: pytest.FixtureRequest) -> str:
    """The test's own database: ``db_path`` on SQLite, a fresh database on PostgreSQL
    (tests/pg.py); ``tests.store.helpers.plain`` queries either."""
    if backend == "postgresql":
        server: PgServer = request.getfixturevalue("pg_server")
        return server.fresh()
    return str(db_path)


@pytest.fixture
async def store(db: str, clock: Clock) -> AsyncIterator[Store]:
    """A real store on a database of the test's own, for tests without a server: SQLite,
    or each backend where the module asks for ``BACKENDS``."""
    opened: Store
    if db.startswith("postgresql://"):
        from widget_server.store.pg import PgStore

        opened = PgStore(db, clock=clock)
    else:
        opened = SQLiteStore(db, clock=clock)
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
