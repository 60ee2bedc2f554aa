"""CORS for the widget API, and the origin a widget call comes from.

The widget API is cross-origin by nature (the host page calls us), so it answers CORS for
origins some site allows, and each call checks that its origin is allowed for the site it
names. A page this server serves itself (the demo, the help centre) calls same-origin, and
browsers send no ``Origin`` on a same-origin GET: such a request counts as coming from the
server's own origin, which a site then has to allow like any other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from widget_server.errors import Forbidden, WidgetError
from widget_server.models import Site
from widget_server.origins import parse_origin
from widget_server.realtime.protocol import FrameError
from widget_server.web.errors import error_headers, json_error, runtime

Endpoint = Callable[[Request], Awaitable[Response]]
ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = "Content-Type, Authorization"
MAX_AGE = "600"


def cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Max-Age": MAX_AGE,
        "Vary": "Origin",
    }


def own_origin(request: Request) -> str | None:
    """The origin a browser reached this server at: its Host, with the scheme of
    ``WIDGET_PUBLIC_URL`` when that names this host (behind a TLS proxy the request itself
    may look like http), else the request's own scheme; normalised."""
    try:
        here = parse_origin(f"{request.url.scheme}://{request.url.netloc}")
        public = runtime(request).settings.public_url
        if public:
            parts = urlsplit(public)
            published = parse_origin(f"{parts.scheme}://{parts.netloc}")
            if published.partition("://")[2] == here.partition("://")[2]:  # host and port
                return published
        return here
    except ValueError:
        return None


def _same_origin(request: Request, own: str) -> bool:
    """A browser's request from a page of this origin: Fetch metadata says so, or (for a
    browser without it) the Referer is one of our own pages."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    referer = request.headers.get("referer")
    if not referer:
        return False
    parts = urlsplit(referer)
    try:
        return parse_origin(f"{parts.scheme}://{parts.netloc}") == own
    except ValueError:
        return False


def request_origin(request: Request) -> str | None:
    """The origin of the page that made the call: its ``Origin`` header, or this server's
    own origin for a same-origin request that carries none; None when unknown."""
    origin = request.headers.get("origin")
    if origin is not None:
        return origin
    own = own_origin(request)
    return own if own is not None and _same_origin(request, own) else None


def check_origin(request: Request, site: Site) -> None:
    """Raise 403 ``origin_not_allowed`` unless the calling page's origin is the site's."""
    if not site.allows(request_origin(request)):
        raise Forbidden("this origin is not allowed for the site", code="origin_not_allowed")


def with_cors(handler: Endpoint) -> Endpoint:
    """CORS headers for origins some site allows, on answers and on errors alike, so the
    widget can read why a call failed."""

    async def endpoint(request: Request) -> Response:
        origin = request.headers.get("origin")
        allowed = origin is not None and await runtime(request).origin_allowed_anywhere(origin)
        headers = cors_headers(origin) if allowed and origin else {}
        try:
            response = await handler(request)
        except FrameError as error:
            return json_error(422, error.code, error.message, headers=headers)
        except WidgetError as exc:
            return json_error(exc.status, exc.code, exc.message,
                              headers={**headers, **error_headers(exc)})
        response.headers.update(headers)
        return response

    return endpoint


async def preflight(request: Request) -> Response:
    origin = request.headers.get("origin")
    if not await runtime(request).origin_allowed_anywhere(origin):
        return json_error(403, "origin_not_allowed", "this origin is not allowed by any site")
    assert origin is not None
    return Response(status_code=204, headers=cors_headers(origin))
