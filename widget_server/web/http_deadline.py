"""uvicorn's HTTP protocol with a deadline for a request's headers.

uvicorn closes a keep-alive connection that stays quiet after a response, but never one
that connects and sends nothing, or a request line and part of the headers, and then waits
(a half-open or deliberately slow client, each holding a socket and a file descriptor for
good). Here a connection has ``seconds`` to complete a request's headers, counted from when
it connects or from the first byte after a response, and is closed when it has not; no
trickle of bytes moves the deadline. Bodies that stall are ``web/bodies.py``'s part.

Only the asyncio ``Protocol`` methods are overridden; whether a request is in progress is
read from the connection's current request-response ``cycle`` and its ``response_complete``,
which both of uvicorn's HTTP protocols keep. Those are not uvicorn's public API, so: a
protocol without them never closes a connection (the deadline is off, never wrong);
``WIDGET_HTTP_TIMEOUT=0`` turns it off; ``pyproject.toml`` caps uvicorn at the releases
tested; and ``.ci/run`` runs ``tests/web/test_bounded_input.py`` against the oldest and the
newest uvicorn too.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

Base: type[Any] = H11Protocol
if importlib.util.find_spec("httptools") is not None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    Base = HttpToolsProtocol


def header_deadline_protocol(seconds: float) -> type[asyncio.Protocol]:
    """The HTTP protocol class to give uvicorn (``http=``); ``seconds`` 0 keeps uvicorn's."""

    class HeaderDeadline(Base):  # type: ignore[misc]
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._watch()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _between_requests(self) -> bool:
            transport = getattr(self, "transport", None)
            if transport is None or transport.get_protocol() is not self:
                return False  # upgraded: the websocket protocol owns the connection now
            if not hasattr(self, "cycle"):
                return False  # a uvicorn that keeps no cycle: never close on a guess
            cycle = self.cycle
            return cycle is None or bool(getattr(cycle, "response_complete", False))

        def _watch(self) -> None:
            if not self._between_requests():
                self._disarm()  # the application has the request: its own limits apply
            elif self._deadline is None and seconds > 0:
                self._deadline = asyncio.get_running_loop().call_later(seconds, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if self._between_requests() and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadline
