"""Request bodies, read only up to a cap: refused by Content-Length before a byte is read,
and cut as they arrive when streamed (chunked, or longer than declared); a body that stops
arriving ends the request (408) instead of holding it open.

``BodyLimit`` wraps the whole application, so every route that reads a body (JSON APIs,
console and Help Form posts, multipart) is capped at ``WIDGET_MAX_REQUEST_BYTES``;
``read_body`` applies a route's own, smaller cap (64 KiB for JSON) the same way.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from widget_server.errors import WidgetError
from widget_server.numbers import parse_int
from widget_server.web.responses import JSONResponse

JSON_LIMIT = 64 * 1024


class PayloadTooLarge(WidgetError):
    code = "payload_too_large"
    status = 413

    def __init__(self) -> None:
        super().__init__("the request body is too large")


def declared_length(scope: Scope) -> int | None:
    """The Content-Length header's value; None when absent or not a plain number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return parse_int(value.decode("latin-1"))
    return None


async def read_body(request: Request, limit: int) -> bytes:
    """The body of ``request``, or PayloadTooLarge as soon as it is known to pass ``limit``."""
    declared = declared_length(request.scope)
    if declared is not None and declared > limit:
        raise PayloadTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge
    return bytes(body)


class RequestTimeout(WidgetError):
    code = "request_timeout"
    status = 408

    def __init__(self) -> None:
        super().__init__("the request body stopped arriving")


class BodyLimit:
    """ASGI middleware: no request body beyond ``limit`` bytes reaches the application, and
    a body that stops arriving for ``timeout`` seconds (0: no limit) ends the request."""

    def __init__(self, app: ASGIApp, limit: int, timeout: float = 0.0,
                 own_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout or None
        self.own_limits = own_limits or {}  # path -> its cap (uploads check a smaller one)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.own_limits.get(scope.get("path", ""), self.limit)
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            # answered before the body is read; the connection closes, so none of it waits
            response = JSONResponse(
                {"error": {"code": PayloadTooLarge.code,
                           "message": "the request body is too large"}},
                status_code=413, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0
        cut = complete = False

        async def counted() -> Message:
            nonlocal received, cut, complete
            if complete:  # after the body, a wait for the disconnect may take any time
                return await receive()
            try:
                async with asyncio.timeout(self.timeout):
                    message = await receive()
            except TimeoutError:
                cut = True
                raise RequestTimeout from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > limit:
                    cut = True
                    raise PayloadTooLarge
            return message

        async def closing(message: Message) -> None:
            if cut and message["type"] == "http.response.start":  # the rest stays unread
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"connection", b"close")]}
            await send(message)

        await self.app(scope, counted, closing)
