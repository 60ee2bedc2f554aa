"""Webhook endpoints over the REST API (docs/webhooks.md): ``/api/v1/webhooks``.

Only an API token of an admin manages the webhooks of the token's site; the secret is in
the answer that creates the endpoint and in no other answer.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from widget_server.clock import isoformat
from widget_server.errors import Forbidden, NotFound, Unprocessable
from widget_server.models import Agent
from widget_server.store.webhook_records import Endpoint
from widget_server.web.bearer import authenticate
from widget_server.web.errors import read_json_object, runtime
from widget_server.web.responses import JSONResponse
from widget_server.webhooks import parse_events, parse_url

MAX_ID = 2**63 - 1


def endpoint_json(endpoint: Endpoint) -> dict[str, Any]:
    return {"id": endpoint.id, "url": endpoint.url, "events": list(endpoint.events),
            "include_notes": endpoint.include_notes, "enabled": endpoint.enabled,
            "created_at": isoformat(endpoint.created_at),
            "disabled_at": isoformat(endpoint.disabled_at) if endpoint.disabled_at else None,
            "disabled_reason": endpoint.disabled_reason}


def require_admin(agent: Agent) -> None:
    if not agent.is_admin:
        raise Forbidden("only an admin's API token manages webhooks", code="admins_only")


async def create(request: Request) -> Response:
    site_id, agent = await authenticate(request)
    require_admin(agent)
    data = await read_json_object(request)
    unknown = set(data) - {"url", "events", "include_notes"}
    if unknown:
        raise Unprocessable(f"unknown fields: {', '.join(sorted(unknown))}", code="unknown_field")
    include_notes = data.get("include_notes", False)
    if not isinstance(include_notes, bool):
        raise Unprocessable("include_notes must be true or false", code="invalid_include_notes")
    rt = runtime(request)
    url = parse_url(data.get("url"), rt.settings.webhook_allow_private)
    events = parse_events(data.get("events"))
    made, secret = await rt.store.create_webhook(site_id, url, events, include_notes)
    return JSONResponse({"webhook": endpoint_json(made), "secret": secret}, status_code=201)


async def listing(request: Request) -> Response:
    site_id, agent = await authenticate(request)
    require_admin(agent)
    found = await runtime(request).store.webhooks(site_id)
    return JSONResponse({"webhooks": [endpoint_json(each) for each in found]})


async def delete(request: Request) -> Response:
    site_id, agent = await authenticate(request)
    require_admin(agent)
    webhook_id: int = request.path_params["webhook_id"]
    if webhook_id > MAX_ID:
        raise NotFound("this site has no webhook with this id", code="webhook_not_found")
    await runtime(request).store.delete_webhook(site_id, webhook_id)
    return Response(status_code=204)


routes = [
    Route("/api/v1/webhooks", create, methods=["POST"]),
    Route("/api/v1/webhooks", listing, methods=["GET"]),
    Route("/api/v1/webhooks/{webhook_id:id}", delete, methods=["DELETE"]),
]
