"""GET /console/help/metrics.json: the help centre's metrics for the console, as JSON.

Signed-in agents of the site only (the console session cookie). The console's metrics page
will draw from this; every number is defined in docs/help_centre.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from widget_server.articles import DEFLECTION_WINDOW, ArticleMetrics, SiteMetrics
from widget_server.clock import isoformat
from widget_server.errors import Unprocessable
from widget_server.numbers import parse_int
from widget_server.web.console.auth import console_page, site_for_agent
from widget_server.web.errors import runtime
from widget_server.web.responses import JSONResponse

MAX_DAYS = 366


def article_metrics_json(metrics: ArticleMetrics) -> dict[str, Any]:
    return {"id": metrics.id, "slug": metrics.slug, "title": metrics.title,
            "status": metrics.status, "views": metrics.views, "helpful": metrics.helpful,
            "not_helpful": metrics.not_helpful, "helpful_share": metrics.helpful_share,
            "reasons": metrics.reasons, "comments": metrics.comments}


def metrics_json(site_key: str, days: int, metrics: SiteMetrics) -> dict[str, Any]:
    return {
        "site": site_key,
        "days": days,
        "since": isoformat(metrics.since),
        "until": isoformat(metrics.until),
        "views": metrics.views,
        "searches": metrics.searches,
        "searches_without_results": metrics.searches_without_results,
        "top_queries_without_results": [{"query": query, "count": count}
                                        for query, count in metrics.top_queries_without_results],
        "deflection": {
            "rate": metrics.deflection_rate,
            "tracked": metrics.tracked_events,
            "deflected": metrics.deflected_events,
            "pending": metrics.pending_events,
            "window_minutes": int(DEFLECTION_WINDOW.total_seconds() // 60),
        },
        "articles": [article_metrics_json(article) for article in metrics.articles],
    }


async def metrics(request: Request) -> Response:
    site = await site_for_agent(request, request.query_params.get("site", ""))
    raw = request.query_params.get("days", "30")
    if parse_int(raw, 1, MAX_DAYS) is None:
        raise Unprocessable(f"days must be a number from 1 to {MAX_DAYS}", code="invalid_days")
    rt = runtime(request)
    days = parse_int(raw, 1, MAX_DAYS) or 30
    found = await rt.store.help_metrics(site.id, rt.clock.now() - timedelta(days=days))
    return JSONResponse(metrics_json(site.key, days, found),
                        headers={"Cache-Control": "no-store"})


routes = [Route("/console/help/metrics.json", console_page(metrics), methods=["GET"])]
