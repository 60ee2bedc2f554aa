"""PostgreSQL and Redis for the tests that need them: skipped with a visible reason when a
service is absent, failed when WIDGET_REQUIRE_SERVICES=1 (CI starts both, see .ci/run)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

POSTGRES = os.environ.get("WIDGET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("WIDGET_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1",
                                       parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def require(name: str, url: str, default_port: int) -> str:
    if _reachable(url, default_port):
        return url
    if os.environ.get("WIDGET_REQUIRE_SERVICES") == "1":
        pytest.fail(f"WIDGET_REQUIRE_SERVICES=1 but {name} is not reachable at {url}")
    pytest.skip(f"{name} is not reachable at {url}; its tests are skipped")


def postgres_url() -> str:
    """The PostgreSQL database the tests may use (WIDGET_TEST_POSTGRES)."""
    return require("PostgreSQL", POSTGRES, 5432)


def redis_url() -> str:
    """The Redis the tests may use (WIDGET_TEST_REDIS)."""
    return require("Redis", REDIS, 6379)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextlib.contextmanager
def fresh_postgres() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    admin = postgres_url()
    name = "widget_test_" + uuid.uuid4().hex[:12]
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(admin, name)
    finally:
        asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
