"""``GET /metrics``: the Prometheus text format, for a bearer token or allowed addresses.

Off (404) until ``WIDGET_METRICS_TOKEN`` or ``WIDGET_METRICS_ALLOW`` is set: the numbers
say how busy a help desk is, which is nobody else's business.
"""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from widget_server import metrics
from widget_server.client_address import address_in, client_address
from widget_server.errors import Forbidden, NotFound, Unauthorized
from widget_server.web.bearer import bearer_token
from widget_server.web.errors import runtime


async def metrics_page(request: Request) -> Response:
    rt = runtime(request)
    settings = rt.settings
    if settings.metrics_token is None and not settings.metrics_allow:
        raise NotFound("metrics are off: set WIDGET_METRICS_TOKEN or WIDGET_METRICS_ALLOW")
    token = bearer_token(request)
    if token is not None and settings.metrics_token is not None \
            and hmac.compare_digest(token.encode(), settings.metrics_token.encode()):
        pass
    elif not address_in(client_address(request, settings.trusted_proxies),
                        settings.metrics_allow):
        if settings.metrics_token is None:
            raise Forbidden("this address may not read the metrics", code="forbidden")
        raise Unauthorized("the metrics need WIDGET_METRICS_TOKEN as a bearer token",
                           code="invalid_token" if token else "missing_token")
    store = rt.store
    body = await metrics.render({"mail": store.mail_outbox_stats,
                                 "webhook": store.webhook_outbox_stats}, store.writer_stats)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics_page, methods=["GET"])]
