"""Headers every HTTP response carries, whichever route answered it.

- ``X-Content-Type-Options: nosniff`` everywhere: a browser never guesses a type we did not
  send (an uploaded-looking JSON body read as HTML, a widget file read as something else).
- ``Cache-Control: no-store`` on JSON that says nothing else: JSON answers speak for a token,
  a visitor or a signed-in agent, and no shared or browser cache may keep them. Routes that
  mean something else (the help search's ``no-cache``) say so themselves.
- ``Referrer-Policy`` where a route set none, so our URLs do not leave with links.
- ``Strict-Transport-Security`` when the operator turns it on (``WIDGET_HSTS_SECONDS``) and
  the request came over https, directly or through a trusted proxy's ``X-Forwarded-Proto``
  (uvicorn believes that header only from ``WIDGET_TRUSTED_PROXIES``). Over plain http the
  header would mean nothing (RFC 6797 8.1), and a proxy not trusted could fake the scheme.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REFERRER_POLICY = "strict-origin-when-cross-origin"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, hsts_seconds: int = 0) -> None:
        self.app = app
        self.hsts = f"max-age={hsts_seconds}" if hsts_seconds > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hsts = self.hsts if scope.get("scheme") == "https" else None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", REFERRER_POLICY)
                if headers.get("content-type", "").startswith("application/json"):
                    headers.setdefault("Cache-Control", "no-store")
                if hsts is not None:
                    headers.setdefault("Strict-Transport-Security", hsts)
            await send(message)

        await self.app(scope, receive, send_with_headers)
