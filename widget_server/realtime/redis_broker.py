"""Events between nodes over Redis pub/sub (``WIDGET_REDIS_URL``).

One connection subscribes, the client's pool publishes (a pipeline per batch). A subscription
that drops is made again with backoff, and then every subscriber catches up from the database.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from widget_server.realtime.relay import RelayBroker
from widget_server.store import Store

CHANNEL = "widget-server:events"
PING_SECONDS = 5.0


class RedisBroker(RelayBroker):
    name = "Redis"

    def __init__(self, url: str, store: Store) -> None:
        super().__init__(store)
        self.client_name = f"widget-server-{self.node}"  # CLIENT LIST shows it (tests kill it)
        # no silent reconnects: a lost subscription must be noticed, to catch up after it
        self._client = redis.Redis.from_url(url, socket_connect_timeout=5,
                                            client_name=self.client_name,
                                            retry=Retry(NoBackoff(), 0))

    async def _connection(self) -> None:
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(CHANNEL)
            while True:  # listening once the server confirms: the catch-up reads after that
                confirmed = await pubsub.get_message(timeout=PING_SECONDS)
                if confirmed is not None and confirmed.get("type") == "subscribe":
                    break
            self._listening()
            sender = asyncio.get_running_loop().create_task(self._send_outbox())
            try:
                while not sender.done():
                    message = await pubsub.get_message(timeout=PING_SECONDS)
                    if message is None:
                        await pubsub.ping()  # a dead connection fails here, not silently
                    elif message.get("type") == "message":
                        data = message["data"]
                        self._received(data.decode() if isinstance(data, bytes) else data)
                sender.result()
            finally:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
        finally:
            await pubsub.aclose()

    async def _send(self, texts: list[str]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for text in texts:
                pipe.publish(CHANNEL, text)
            await pipe.execute()

    async def _close(self) -> None:
        await self._client.aclose()
