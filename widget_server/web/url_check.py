"""No control character reaches the application through a URL.

A request's path and query are decoded (``%00``, ``%C2%85``, ``+``) before any route reads
them, and a value that would then hold NUL, a C0 or C1 control character, DEL or a line break
is refused with 400 ``invalid_url`` here, once, instead of in every route that reads a query
parameter or a path segment (search boxes, filters, slugs). Bodies are cleaned where they
are read (``text.py``); a URL has no legitimate use for these characters at all.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Receive, Scope, Send

from widget_server.text import has_control
from widget_server.web.responses import JSONResponse


class UrlCheck:
    """ASGI middleware: HTTP requests and websocket handshakes whose decoded path or query
    holds a control character are answered 400 (a handshake is refused with 403)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and _has_control(scope):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            response = JSONResponse(
                {"error": {"code": "invalid_url",
                           "message": "the URL holds a control character"}},
                status_code=400)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _has_control(scope: Scope) -> bool:
    query = scope.get("query_string", b"").decode("utf-8", "replace")
    return has_control(scope.get("path", "")) or (
        bool(query) and has_control(unquote_plus(query, errors="replace")))
