"""Every HTTP request gets an id, a metric and (with ``WIDGET_LOG_FORMAT=json``) a log line.

The id is the client's ``X-Request-Id`` when that is a short token (a proxy in front, such as
nginx's ``$request_id``, then ties its log to ours), else a fresh random one. It goes back on
every answer as ``X-Request-Id``, into JSON error bodies (web/errors.py) and into every log
record made while the request is served (log_format.py reads it from a context variable).

Requests are counted by method, route *template* (``/api/v1/tickets/{number}``, never the
number itself) and status; a path no route matches counts as ``unmatched``, so scanning
for random paths cannot grow the number of series.
"""

from __future__ import annotations

import logging
import re
import secrets
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from widget_server import metrics
from widget_server.logs import REQUEST_ID, SITE_ID, redact

_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
access_log = logging.getLogger("widget_server.access")


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = bytes(value).decode("latin-1")
            if _CLIENT_ID.fullmatch(text):
                return text
            break
    return secrets.token_hex(8)


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class RequestLog:
    def __init__(self, app: ASGIApp, log_lines: bool = False) -> None:
        self.app = app
        self.log_lines = log_lines  # the JSON access line replaces uvicorn's

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        REQUEST_ID.set(request_id)
        SITE_ID.set(None)
        if scope["type"] == "websocket":  # its log records carry the id; no metric per socket
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = [500]  # what a crash before the answer started means

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                MutableHeaders(scope=message).setdefault("X-Request-Id", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            took = time.perf_counter() - began
            route = route_template(scope)
            metrics.HTTP_REQUESTS.labels(scope["method"], route, str(status[0])).inc()
            metrics.HTTP_SECONDS.labels(route).observe(took)
            if self.log_lines:
                access_log.info(
                    "%s %s %d", scope["method"], redact(scope["path"]), status[0],
                    extra={"route": route, "status": status[0], "method": scope["method"],
                           "path": redact(scope["path"]), "duration_ms": round(took * 1000, 2),
                           "site": SITE_ID.get()})
