"""Token buckets in Redis, shared by every server process (``WIDGET_REDIS_URL``).

The same buckets as ``rate_limit.RateLimiter`` (a burst of ``capacity``, then an even refill
over ``period``), each taken atomically by one Lua script on Redis's own clock, so nodes
whose clocks differ still agree. Keys are salted hashes like the in-process ones; the salt is
random, made once and kept in Redis (``SALT_KEY``), so every node derives the same keys and
no key can be turned back into an address without it. A bucket's key expires once it would
be full again. When Redis cannot be reached, the check allows (a warning is logged): a
broken limit store must not stop people from writing to support.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time

log = logging.getLogger(__name__)

SALT_KEY = "widget-server:limits:salt"
PREFIX = "widget-server:limit:"
WARN_EVERY = 60.0

# KEYS[1] the bucket; ARGV capacity, refill per second. Returns the wait in seconds as text
# (Redis would truncate a Lua number to an integer).
TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(stored[1]) or capacity
local updated = tonumber(stored[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisBuckets:
    """The connection and salt the shared buckets of one process use."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis  # only with WIDGET_REDIS_URL: the 'redis' extra

        self._errors = (redis.RedisError, OSError)
        self._client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._script = self._client.register_script(TAKE)
        self._salt: bytes | None = None
        self._warned = -WARN_EVERY

    async def _salted(self, parts: tuple[str, ...]) -> str:
        if self._salt is None:
            await self._client.set(SALT_KEY, secrets.token_hex(32), nx=True)
            stored = await self._client.get(SALT_KEY)
            if stored is None:  # expired or deleted a moment ago: the next check sets it
                raise OSError("the salt of the limits is missing")
            self._salt = bytes.fromhex(stored.decode() if isinstance(stored, bytes) else stored)
        return hashlib.blake2b("\x00".join(parts).encode(), key=self._salt,
                               digest_size=16).hexdigest()

    async def take(self, capacity: int, period: float, parts: tuple[str, ...]) -> float:
        """Spend one token of the bucket of ``parts``: 0.0 when allowed, else the wait."""
        try:
            key = PREFIX + await self._salted(parts)
            wait = await self._script(keys=[key], args=[capacity, capacity / period])
        except self._errors as error:
            now = time.monotonic()
            if now - self._warned >= WARN_EVERY:
                self._warned = now
                log.warning("abuse limits allow everything: Redis is unreachable (%s)", error)
            return 0.0
        return float(wait.decode() if isinstance(wait, bytes) else wait)

    async def close(self) -> None:
        await self._client.aclose()
