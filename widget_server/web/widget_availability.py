"""GET /api/widget/v1/availability: support's hours and reply speed for the widget's note
(widget_server/availability.py computes it; docs/protocol.md describes it)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from widget_server.errors import NotFound, Unprocessable
from widget_server.web.cors import check_origin, preflight, with_cors
from widget_server.web.errors import runtime


async def availability(request: Request) -> Response:
    rt = runtime(request)
    key = request.query_params.get("site", "")
    if not 0 < len(key) <= 200:
        raise Unprocessable("site must be a site key", code="invalid_site")
    site = await rt.site(key)
    if site is None:
        raise NotFound("no site has this key", code="unknown_site")
    check_origin(request, site)
    found = await rt.availability.get(rt.store, site, rt.clock.now())
    return JSONResponse(found.json())


routes = [
    Route("/api/widget/v1/availability", with_cors(availability), methods=["GET"]),
    Route("/api/widget/v1/availability", preflight, methods=["OPTIONS"]),
]
