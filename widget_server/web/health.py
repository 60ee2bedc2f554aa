from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from widget_server.web.errors import runtime
from widget_server.web.responses import JSONResponse


async def healthz(request: Request) -> JSONResponse:
    try:
        healthy = await runtime(request).store.ping()
    except Exception:
        healthy = False
    if not healthy:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


routes = [Route("/healthz", healthz, methods=["GET", "HEAD"])]
