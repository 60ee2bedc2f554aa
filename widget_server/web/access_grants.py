"""Support access grants over HTTP: the widget's endpoints and the host backend's.

The widget (a verified visitor, by visitor token) grants, lists and revokes under
/api/widget/v1/access-grants. The host backend (bearer API token of the site) asks whether
support may act in a user's account with GET /api/v1/access-grants?user_id=ID and records
what support did with POST /api/v1/access-grants/{id}/events. Visitor tokens travel in the
Authorization header or the JSON body, never in a URL.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from widget_server.access_grants import (
    DURATIONS_HOURS,
    MAX_ACTION,
    MAX_DETAIL,
    duration_label,
    event_json,
    grant_json,
    optional_text,
    parse_grant_request,
    status_json,
)
from widget_server.errors import Forbidden, NotFound, Unauthorized, Unprocessable
from widget_server.models import Site, Visitor
from widget_server.web.bearer import authenticate, bearer_token
from widget_server.web.cors import check_origin, preflight, with_cors
from widget_server.web.errors import read_json_object, runtime
from widget_server.web.responses import JSONResponse
from widget_server.web.session import identity_required

MAX_USER_ID = 200
MAX_GRANT_ID = 64


async def _visitor(request: Request, data: dict[str, object]) -> tuple[Site, Visitor]:
    """The site and the verified visitor a widget call speaks for."""
    rt = runtime(request)
    site_key = data.get("site", request.query_params.get("site"))
    site = await rt.site(site_key) if isinstance(site_key, str) else None
    if site is None:
        raise NotFound("no site has this key", code="unknown_site")
    check_origin(request, site)
    token = bearer_token(request) or data.get("token")
    if not isinstance(token, str) or not token:
        raise Unauthorized("a visitor token is required", code="invalid_token")
    visitor = await rt.token_visitor(token, site)
    if not visitor.verified or visitor.user_id is None:
        if site.identity_required:
            raise identity_required()
        raise Forbidden("only signed-in users of the site's product can grant support access",
                        code="verified_visitor_required")
    return site, visitor


def _grant_id(request: Request) -> str:
    grant_id: str = request.path_params["grant_id"]
    if len(grant_id) > MAX_GRANT_ID:
        raise NotFound("no such grant", code="grant_not_found")
    return grant_id


async def _overview(request: Request, site: Site, visitor: Visitor) -> dict[str, Any]:
    rt = runtime(request)
    assert visitor.user_id is not None
    now = rt.clock.now()
    grants = await rt.store.user_access_grants(site.id, visitor.user_id, now)
    events = await rt.store.grant_events(site.id, user_id=visitor.user_id)
    return {
        "max_hours": site.grant_max_hours,
        "choices": [{"hours": hours, "label": duration_label(hours)}
                    for hours in DURATIONS_HOURS if hours <= site.grant_max_hours],
        "grants": [grant_json(grant, now) for grant in grants if grant.active(now)],
        "events": [event_json(event) for event in events],
    }


async def widget_list(request: Request) -> Response:
    site, visitor = await _visitor(request, {})
    return JSONResponse(await _overview(request, site, visitor),
                        headers={"Cache-Control": "no-store"})


async def widget_grant(request: Request) -> Response:
    data = await read_json_object(request)
    site, visitor = await _visitor(request, data)
    assert visitor.user_id is not None
    rt = runtime(request)
    grant = await rt.store.create_access_grant(
        site.id, visitor.user_id, visitor.id, parse_grant_request(data, site.grant_max_hours),
        rt.clock.now())
    return JSONResponse({"grant": grant_json(grant, rt.clock.now()),
                         **await _overview(request, site, visitor)}, status_code=201)


async def widget_revoke(request: Request) -> Response:
    data = await read_json_object(request)
    site, visitor = await _visitor(request, data)
    assert visitor.user_id is not None
    rt = runtime(request)
    grant = await rt.store.revoke_access_grant(site.id, visitor.user_id, _grant_id(request),
                                               rt.clock.now())
    return JSONResponse({"grant": grant_json(grant, rt.clock.now()),
                         **await _overview(request, site, visitor)})


async def host_status(request: Request) -> Response:
    """Whether support may act in this user's account right now."""
    site_id, _ = await authenticate(request)
    user_id = request.query_params.get("user_id", "")
    if not user_id or len(user_id) > MAX_USER_ID:
        raise Unprocessable("user_id must be your product's user id", code="invalid_user_id")
    rt = runtime(request)
    now = rt.clock.now()
    grants = await rt.store.user_access_grants(site_id, user_id, now)
    return JSONResponse(status_json(user_id, grants, now), headers={"Cache-Control": "no-store"})


async def host_grant(request: Request) -> Response:
    """One grant with its whole audit trail."""
    site_id, _ = await authenticate(request)
    rt = runtime(request)
    await rt.store.expire_access_grants(rt.clock.now())
    grant = await rt.store.access_grant(site_id, _grant_id(request))
    if grant is None:
        raise NotFound("no grant has this id on this site", code="grant_not_found")
    events = await rt.store.grant_events(site_id, grant_id=grant.id)
    return JSONResponse({"grant": grant_json(grant, rt.clock.now()),
                         "events": [event_json(event) for event in events]},
                        headers={"Cache-Control": "no-store"})


async def host_record_use(request: Request) -> Response:
    """Record what support did in the user's account under an active grant."""
    site_id, agent = await authenticate(request)
    data = await read_json_object(request)
    action = optional_text(data, "action", MAX_ACTION)
    if action is None:
        raise Unprocessable("action must say what support did", code="invalid_action")
    detail = optional_text(data, "detail", MAX_DETAIL)
    actor = optional_text(data, "actor", MAX_ACTION) or agent.name
    rt = runtime(request)
    event = await rt.store.record_grant_use(site_id, _grant_id(request), actor, action, detail,
                                            rt.clock.now())
    return JSONResponse({"event": event_json(event)}, status_code=201)


routes = [
    Route("/api/widget/v1/access-grants", with_cors(widget_list), methods=["GET"]),
    Route("/api/widget/v1/access-grants", with_cors(widget_grant), methods=["POST"]),
    Route("/api/widget/v1/access-grants", preflight, methods=["OPTIONS"]),
    Route("/api/widget/v1/access-grants/{grant_id}/revoke", with_cors(widget_revoke),
          methods=["POST"]),
    Route("/api/widget/v1/access-grants/{grant_id}/revoke", preflight, methods=["OPTIONS"]),
    Route("/api/v1/access-grants", host_status, methods=["GET"]),
    Route("/api/v1/access-grants/{grant_id}", host_grant, methods=["GET"]),
    Route("/api/v1/access-grants/{grant_id}/events", host_record_use, methods=["POST"]),
]
