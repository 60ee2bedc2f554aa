"""PostgreSQL for the tests: a database made for this test run, and a fresh copy of it for
each test that needs one, dropped at the end.

The server is ``WIDGET_TEST_POSTGRES`` (default: user postgres, database test on
127.0.0.1:5432). When it cannot be reached the PostgreSQL tests skip, saying why, unless
``WIDGET_REQUIRE_SERVICES=1`` (CI), which makes them fail instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

import pytest

ADMIN_URL = os.environ.get("WIDGET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]  # for pytest.mark.parametrize("backend", ..., indirect)
# the backend of every other test's store and server: WIDGET_TEST_BACKEND=postgresql runs any
# suite on PostgreSQL
DEFAULT_BACKEND = os.environ.get("WIDGET_TEST_BACKEND", "sqlite")


def service_missing(reason: str) -> NoReturn:
    """Skip with the reason, or fail when the run requires its services."""
    if os.environ.get("WIDGET_REQUIRE_SERVICES") == "1":
        pytest.fail(f"WIDGET_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def database_url(name: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def _admin(sql: str) -> Any:
    """One statement on the admin database, on a thread with a loop of its own (callers may
    be inside a running loop)."""
    async def run() -> Any:
        import asyncpg

        conn = await asyncpg.connect(ADMIN_URL, timeout=5)
        try:
            return await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


def _migrate(url: str) -> None:
    async def run() -> None:
        from widget_server.store.pg import PgStore

        store = PgStore(url)
        await store.open()
        await store.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, run()).result()


class PgServer:
    """The run's template database (migrated once) and the copies made of it."""

    def __init__(self) -> None:
        self.prefix = f"widget_{uuid.uuid4().hex[:10]}"
        self.template: str | None = None
        self.made: list[str] = []
        self.error: str | None = None

    def fresh(self) -> str:
        """The URL of a new, migrated, empty database."""
        if self.error is not None:
            service_missing(self.error)
        if self.template is None:
            try:
                import asyncpg  # noqa: F401
            except ImportError:
                self.error = "asyncpg is not installed (pip install '.[test]')"
                service_missing(self.error)
            template = f"{self.prefix}_template"
            try:
                _admin(f"CREATE DATABASE {template}")
            except (OSError, Exception) as exc:  # refused, timed out, bad credentials
                self.error = f"PostgreSQL at {ADMIN_URL} is not reachable ({exc})"
                service_missing(self.error)
            self.made.append(template)
            _migrate(database_url(template))
            self.template = template
        name = f"{self.prefix}_{len(self.made)}"
        _admin(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        self.made.append(name)
        return database_url(name)

    def drop_all(self) -> None:
        for name in reversed(self.made):
            _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.made.clear()


@pytest.fixture(scope="module", params=BACKENDS, name="server")
def on_each_backend(request: pytest.FixtureRequest) -> Any:
    """A module's ``server``, once on each backend: ``from tests.pg import on_each_backend``
    in a module whose tests take ``server`` runs each of them on SQLite, then PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_served")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = PgServer()
    yield server
    if server.made:
        server.drop_all()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh PostgreSQL database of the test's own."""
    return pg_server.fresh()
