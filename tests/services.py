"""Redis and the PostgreSQL admin database for the tests that need them: skipped with a
visible reason when absent, failed when WIDGET_REQUIRE_SERVICES=1 (tests/pg.py)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from tests.pg import ADMIN_URL, service_missing

REDIS = os.environ.get("WIDGET_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1",
                                       parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def postgres_url() -> str:
    """The PostgreSQL admin database (WIDGET_TEST_POSTGRES), e.g. for a broker's channel."""
    if not _reachable(ADMIN_URL, 5432):
        service_missing(f"PostgreSQL is not reachable at {ADMIN_URL}")
    return ADMIN_URL


def redis_url() -> str:
    """The Redis the tests may use (WIDGET_TEST_REDIS)."""
    if not _reachable(REDIS, 6379):
        service_missing(f"Redis is not reachable at {REDIS}")
    try:
        import redis  # noqa: F401
    except ImportError:
        service_missing("redis is not installed (pip install '.[test]')")
    return REDIS
