"""In-memory token buckets keyed by a salted hash of the client address: limits without storing
who asked.

The salt is random per process and never leaves it, so the keys cannot be turned back into IP
addresses (not even by trying every IPv4 address against a leaked key); nothing is written to
disk, and buckets that have filled up again are dropped. ``Concurrency`` counts what is open
right now (websockets per address) under keys made the same way.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``capacity`` actions per ``period`` seconds per key, refilled continuously."""

    def __init__(self, capacity: int, period: float,
                 monotonic: Callable[[], float] = time.monotonic, max_keys: int = 50_000) -> None:
        self.capacity, self.period = capacity, period
        self._rate = capacity / period
        self._now = monotonic
        self._salt = secrets.token_bytes(32)
        self._buckets: dict[bytes, _Bucket] = {}
        self._max_keys = max_keys

    def key(self, *parts: str) -> bytes:
        """An opaque key for (client address, scope, ...), never the address itself."""
        return _salted(self._salt, parts)

    def take(self, key: bytes) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until one is available."""
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(self.capacity), now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self._rate

    def _prune(self, now: float) -> None:
        full = [key for key, bucket in self._buckets.items()
                if bucket.tokens + (now - bucket.updated) * self._rate >= self.capacity]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self._max_keys:  # still full of busy keys: start over
            self._buckets.clear()


class Concurrency:
    """At most ``limit`` things (open websockets) at once per key, keyed like RateLimiter."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._salt = secrets.token_bytes(32)
        self._open: dict[bytes, int] = {}

    def key(self, *parts: str) -> bytes:
        return _salted(self._salt, parts)

    def acquire(self, key: bytes) -> bool:
        """Count one more for ``key`` unless it is at the limit; then ``release`` it once."""
        count = self._open.get(key, 0)
        if count >= self.limit:
            return False
        self._open[key] = count + 1
        return True

    def release(self, key: bytes) -> None:
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:  # nothing open: forget the key, so the map only holds live clients
            self._open.pop(key, None)


def _salted(salt: bytes, parts: tuple[str, ...]) -> bytes:
    return hashlib.blake2b("\x00".join(parts).encode(), key=salt, digest_size=16).digest()


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
