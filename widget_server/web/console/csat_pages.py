"""Satisfaction in the console: a ticket's rating, the CSAT report with its CSV, and the
per-site switch on the site admin page (rules and figures: ratings.py)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from widget_server import ratings as rules
from widget_server.clock import isoformat
from widget_server.errors import NotFound
from widget_server.models import Site, Ticket
from widget_server.numbers import parse_int
from widget_server.runtime import Runtime
from widget_server.web.console import present
from widget_server.web.console.auth import admin_page, chosen_site, console_page, page
from widget_server.web.errors import runtime
from widget_server.web.forms import read_form

DEFAULT_DAYS = 90
MAX_DAYS = 366
SHOWN_RATINGS = 100  # the page lists the newest; the CSV has them all


def _moment(moment: datetime) -> dict[str, str]:
    return {"iso": isoformat(moment), "text": present.when(moment)}


async def ticket_rating(rt: Runtime, ticket: Ticket) -> dict[str, Any] | None:
    """What the ticket page shows of the visitor's rating; None before one is given."""
    if ticket.rating is None:
        return None
    found = await rt.store.ticket_rating(ticket.id)
    if found is None:
        return None
    return {"score": found.score, "label": rules.SCORE_LABELS[found.score],
            "comment": found.comment,
            "channel": "by email" if found.channel == "email" else "in the widget",
            "created": _moment(found.created_at), "updated": _moment(found.updated_at),
            "changed": found.updated_at != found.created_at}


async def _chosen(request: Request) -> tuple[Site, list[Site], int, datetime]:
    site, sites = await chosen_site(request)
    days = parse_int(request.query_params.get("days", str(DEFAULT_DAYS)), 1, MAX_DAYS)
    days = DEFAULT_DAYS if days is None else days
    today = runtime(request).clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    return site, sites, days, today - timedelta(days=days - 1)


@console_page
async def report(request: Request) -> Response:
    site, sites, days, since = await _chosen(request)
    found = await runtime(request).store.rating_rows(site.id, since)
    return page(request, "console/csat.html", site=site, sites=sites, days=days,
                since=since.date(), summary=rules.summary(found), groups=rules.group(found),
                ratings=[{"row": row, "when": _moment(row.created_at)}
                         for row in found[:SHOWN_RATINGS]], more=len(found) > SHOWN_RATINGS)


@console_page
async def report_csv(request: Request) -> Response:
    site, _, _, since = await _chosen(request)
    out = io.StringIO()
    csv.writer(out).writerows(
        rules.csv_rows(await runtime(request).store.rating_rows(site.id, since)))
    filename = f"csat-{site.key}-{since.date().isoformat()}.csv"
    return Response(out.getvalue(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store"})


@admin_page
async def site_switch(request: Request) -> Response:
    """The site page's switch: ask for ratings in the widget and the solved mail, or not."""
    store = runtime(request).store
    site = await store.get_site_by_key(request.path_params["key"])
    if site is None:
        raise NotFound("no such site", code="site_not_found")
    enabled = (await read_form(request)).get("ratings") == "on"
    await store.set_ratings_enabled(site.id, enabled)
    return Response(status_code=303, headers={
        "Location": f"/console/admin/sites/{site.key}?done=ratings-saved"})


routes = [
    Route("/console/reports/csat", report, methods=["GET"]),
    Route("/console/reports/csat.csv", report_csv, methods=["GET"]),
    Route("/console/admin/sites/{key:str}/ratings", site_switch, methods=["POST"]),
]
