"""A webhook delivery's one HTTP request, over httpcore to an address checked beforehand.

Apart from webhook_sender.py so that httpcore loads with the first delivery, not with every
server that never sends one.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore

from widget_server.webhooks import CONNECT_TIMEOUT, TOTAL_TIMEOUT

READ_BYTES = 4096  # of an answer's body; the rest is not read


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to one address decided beforehand, whatever host the URL names: TLS,
    certificate checks and the Host header still use the URL's host."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_tcp(self.address, port, timeout=timeout,
                                             local_address=local_address,
                                             socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise OSError("webhooks never go to a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def post(url: str, headers: dict[str, str], body: bytes, address: str,
               tls: ssl.SSLContext) -> tuple[int, str]:
    """POST once to ``address`` (TLS, SNI and Host still the URL's host), without following
    redirects; the status and an excerpt of the answer."""
    timeouts = {"connect": CONNECT_TIMEOUT, "read": TOTAL_TIMEOUT, "write": TOTAL_TIMEOUT,
                "pool": TOTAL_TIMEOUT}
    pool = httpcore.AsyncConnectionPool(ssl_context=tls, max_connections=1,
                                        network_backend=PinnedBackend(address))
    try:
        async with pool, pool.stream("POST", url, headers=list(headers.items()),
                                     content=body, extensions={"timeout": timeouts}) as response:
            read = b""
            async for chunk in response.aiter_stream():
                read += chunk
                if len(read) >= READ_BYTES:
                    break
            return response.status, read[:READ_BYTES].decode("utf-8", "replace")
    except httpcore.TimeoutException as exc:
        raise TimeoutError(str(exc)) from exc
