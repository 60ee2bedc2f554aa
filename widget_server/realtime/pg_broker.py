"""Events between nodes over PostgreSQL LISTEN/NOTIFY, on one connection of its own.

The same connection listens and sends (``pg_notify`` over a batch, one round trip), and pings
the server when idle so a silently dead connection is noticed within ``PING_SECONDS``.
"""

from __future__ import annotations

import asyncio

import asyncpg

from widget_server.realtime.relay import RelayBroker
from widget_server.store import Store
from widget_server.store.pg_notify import CHANNEL, notify, ping

PING_SECONDS = 5.0


class PgBroker(RelayBroker):
    name = "PostgreSQL"

    def __init__(self, dsn: str, store: Store) -> None:
        super().__init__(store)
        self._dsn = dsn
        self._connection_now: asyncpg.Connection | None = None
        self.backend_pid: int | None = None  # of the listening connection (tests end it)
        self._lock = asyncio.Lock()  # one query at a time on the connection

    async def _connection(self) -> None:
        connection = await asyncpg.connect(self._dsn, command_timeout=30)
        self._connection_now = connection
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        try:
            self.backend_pid = pid = connection.get_server_pid()
            await connection.add_listener(  # our own NOTIFYs come back: dropped at once
                CHANNEL, lambda _c, sender, _channel, payload:
                    None if sender == pid else self._received(payload))
            self._listening()
            sender = asyncio.get_running_loop().create_task(self._send_outbox())
            try:
                while not sender.done() and not connection.is_closed():
                    done = await _first(sender, lost, PING_SECONDS)
                    if done is None and not sender.done():
                        await self._ping(connection)
                if sender.done():
                    sender.result()  # raises what failed the send
            finally:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
            raise ConnectionError("the LISTEN connection was closed")
        finally:
            self._connection_now = None
            connection.terminate()

    async def _ping(self, connection: asyncpg.Connection) -> None:
        async with self._lock:
            await ping(connection, PING_SECONDS)

    async def _send(self, texts: list[str]) -> None:
        connection = self._connection_now
        if connection is None:
            raise ConnectionError("not connected")
        async with self._lock:
            await notify(connection, texts)


async def _first(task: asyncio.Task[None], lost: asyncio.Event, timeout: float) -> str | None:
    """Wait until ``task`` ends or ``lost`` is set, at most ``timeout`` seconds."""
    waiter = asyncio.get_running_loop().create_task(lost.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if waiter in done:
        raise ConnectionError("the LISTEN connection was terminated")
    return "done" if task in done else None
