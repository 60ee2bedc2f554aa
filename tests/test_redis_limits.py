"""Abuse limits in Redis (WIDGET_REDIS_URL): one budget for every node, taken atomically."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.services import redis_url
from widget_server.abuse import Limits
from widget_server.config import Settings

pytestmark = pytest.mark.anyio


def node(**limits: int) -> Limits:
    return Limits(Settings(redis_url=redis_url(), **limits))


async def test_two_nodes_share_one_budget() -> None:
    first, second = node(messages_per_visitor_minute=3), node(messages_per_visitor_minute=3)
    visitor, address = f"v_{uuid.uuid4().hex}", "192.0.2.1"
    try:
        waits = [await first.send(visitor, new_request=False, address=address),
                 await second.send(visitor, new_request=False, address=address),
                 await first.send(visitor, new_request=False, address=address)]
        assert waits == [0.0, 0.0, 0.0]
        refused = await second.send(visitor, new_request=False, address=address)
        assert 19.0 < refused <= 20.0  # one every 60 / 3 s, on Redis's clock
        other = await first.send(f"v_{uuid.uuid4().hex}", new_request=False, address=address)
        assert other == 0.0  # another visitor's bucket
    finally:
        await first.close()
        await second.close()


async def test_concurrent_takes_from_many_nodes_never_overspend() -> None:
    nodes = [node(requests_per_ip_hour=10) for _ in range(4)]
    address = f"198.51.100.{uuid.uuid4().int % 250}-{uuid.uuid4().hex}"
    try:
        waits = await asyncio.gather(*[
            nodes[n % 4].send(f"v_{n}_{uuid.uuid4().hex}", new_request=True, address=address)
            for n in range(100)])
        assert waits.count(0.0) == 10
    finally:
        for limits in nodes:
            await limits.close()


async def test_the_keys_in_redis_never_hold_the_address() -> None:
    import redis.asyncio as redis

    limits = node(sessions_per_ip_hour=5)
    address = f"203.0.113.{uuid.uuid4().int % 250}"
    client = redis.Redis.from_url(redis_url())
    try:
        assert await limits.session(address) == 0.0
        keys = [key.decode() async for key in client.scan_iter("widget-server:limit:*")]
        assert keys and not any(address in key for key in keys)
    finally:
        await client.aclose()
        await limits.close()


async def test_an_unreachable_redis_allows() -> None:
    limits = Limits(Settings(redis_url="redis://127.0.0.1:1/0", messages_per_visitor_minute=1))
    try:
        assert [await limits.send("v_1", new_request=False, address="192.0.2.1")
                for _ in range(3)] == [0.0] * 3
    finally:
        await limits.close()
