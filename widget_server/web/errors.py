"""One JSON error shape everywhere: {"error": {"code": "snake_case", "message": "human text"}}."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match, Route

from widget_server.abuse import RateLimited
from widget_server.errors import WidgetError
from widget_server.logs import REQUEST_ID, redact
from widget_server.runtime import Runtime
from widget_server.text import multi_line
from widget_server.web.bearer import challenge
from widget_server.web.bodies import JSON_LIMIT, read_body
from widget_server.web.responses import JSONResponse

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 408: "request_timeout", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "invalid_input", 429: "rate_limited",
}


def json_error(status: int, code: str, message: str,
               headers: dict[str, str] | None = None) -> JSONResponse:
    """The error shape, with the request's id (web/request_log.py) when it has one: also in
    ``X-Request-Id`` here, since a 500 is sent past the middleware that adds it."""
    error = {"code": code, "message": message}
    request_id = REQUEST_ID.get()
    if request_id is not None:
        error["request_id"] = request_id
        headers = {**(headers or {}), "X-Request-Id": request_id}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def error_headers(exc: WidgetError) -> dict[str, str]:
    """A 429 says when to try again, in a header the widget may read cross-origin; a 401
    about a bearer token carries its challenge."""
    if isinstance(exc, RateLimited):
        return {"Retry-After": exc.retry_after, "Access-Control-Expose-Headers": "Retry-After"}
    return challenge(exc)


async def widget_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WidgetError)
    return json_error(exc.status, exc.code, exc.message, headers=error_headers(exc) or None)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return json_error(exc.status_code, code, str(exc.detail), headers=headers or None)


def allowed_methods(request: Request) -> str:
    """Every method some route of this path answers: Starlette's 405 names only the methods
    of the first route matching the path, and several routes share a path here."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods \
                and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


async def client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up before its request body was complete: ordinary, nothing to log
    above debug, and nobody to answer (uvicorn sends nothing on a closed connection)."""
    log.debug("client left during %s %s", request.method, redact(request.url.path))
    return Response(status_code=400)


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, redact(request.url.path))
    return json_error(500, "internal_error", "something went wrong on our side")


EXCEPTION_HANDLERS = {
    ClientDisconnect: client_gone,
    WidgetError: widget_error,
    HTTPException: http_error,
    Exception: server_error,
}


def runtime(request: Request) -> Runtime:
    value: Runtime = request.app.state.runtime
    return value


async def read_json_object(request: Request, limit: int = JSON_LIMIT) -> dict[str, object]:
    body = await read_body(request, limit)
    import json

    try:
        data = json.loads(body or b"null")
        # escaped lone surrogates ("\ud800") parse, but no UTF-8 text can hold them
        json.dumps(data, ensure_ascii=False).encode()
        data = _without_controls(data)  # as deep as the parse: inside the same guard
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        raise WidgetError("the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise WidgetError("the request body must be a JSON object", code="invalid_json")
    cleaned: dict[str, object] = data
    return cleaned


def _without_controls(value: Any) -> Any:
    """Every string of a JSON value (keys too) through ``multi_line``: no control character
    but line breaks and tabs gets past the edge; single-line fields lose those where they
    are read."""
    if isinstance(value, str):
        return multi_line(value)
    if isinstance(value, dict):
        return {multi_line(key): _without_controls(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_controls(item) for item in value]
    return value
