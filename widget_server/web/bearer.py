"""Bearer credentials: reading ``Authorization: Bearer TOKEN`` and the challenge of a 401.

Two kinds of bearer token reach us: API tokens on the REST API (``/api/v1``) and visitor
tokens on the widget API. Every 401 about either carries ``WWW-Authenticate: Bearer``
(RFC 6750), with ``error="invalid_token"`` when a token was sent but cannot be used.
"""

from __future__ import annotations

from starlette.requests import Request

from widget_server.api_tokens import hash_api_token
from widget_server.errors import Unauthorized, WidgetError
from widget_server.logs import note_site
from widget_server.models import Agent
from widget_server.runtime import Runtime

REALM = "widget-server"
MISSING = "missing_token"


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, None without one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def challenge(exc: WidgetError) -> dict[str, str]:
    """The ``WWW-Authenticate`` header of a 401 about a bearer token."""
    if not isinstance(exc, Unauthorized):
        return {}
    if exc.code == MISSING:  # no credentials at all: no error code (RFC 6750 3.1)
        return {"WWW-Authenticate": f'Bearer realm="{REALM}"'}
    return {"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'}


async def authenticate(request: Request) -> tuple[int, Agent]:
    """The site id and agent the request's API token acts for."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("send an API token as 'Authorization: Bearer TOKEN'", code=MISSING)
    rt: Runtime = request.app.state.runtime
    found = await rt.store.find_api_agent(hash_api_token(token))
    if found is None or not found[1].active:
        raise Unauthorized("this API token is not valid", code="invalid_token")
    note_site(found[0])
    return found
