from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ServerProcess, Site, create_site


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
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, for tests that kill or restart it."""
    process = ServerProcess(tmp_path / "widget.db")
    yield process
    process.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
