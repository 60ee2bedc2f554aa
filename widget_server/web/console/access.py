"""Support access grants in the console: the grant status on a ticket, and the admins' audit
page (/console/admin/access) where each site's longest allowed grant is set.

Grants are made and revoked only by visitors in the widget; the console reads them.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from widget_server.access_grants import GRANT_MAX_CHOICES, duration_label
from widget_server.errors import Unprocessable
from widget_server.models import Site, VisitorProfile
from widget_server.numbers import parse_int
from widget_server.runtime import Runtime
from widget_server.web.console.auth import admin_page, chosen_site, page, site_for_agent
from widget_server.web.console.present import when
from widget_server.web.errors import runtime
from widget_server.web.forms import read_form

AUDIT_ROWS = 200
EVENT_LABELS = {"granted": "Granted", "revoked": "Revoked by the visitor",
                "expired": "Expired", "used": "Used by support"}


def max_label(hours: int) -> str:
    return "Grants off" if hours == 0 else f"Up to {duration_label(hours)}"


async def grant_status(rt: Runtime, site: Site, profile: VisitorProfile) -> dict[str, Any]:
    """What an agent needs on a ticket: may support act in this visitor's account now?"""
    if not profile.verified or profile.user_id is None:
        return {"text": "Not possible: the visitor is not verified", "active": []}
    now = rt.clock.now()
    grants = await rt.store.user_access_grants(site.id, profile.user_id, now, limit=20)
    active = [{"until": when(g.expires_at), "ticket": g.ticket_number, "reason": g.reason}
              for g in grants if g.active(now)]
    if active:
        return {"text": "Granted by the visitor", "active": active}
    return {"text": "No active grant" if grants else "Never granted", "active": []}


@admin_page
async def audit(request: Request) -> Response:
    rt = runtime(request)
    site, sites = await chosen_site(request)
    if request.method == "POST":
        form = await read_form(request)
        site = await site_for_agent(request, str(form.get("site", "")))
        hours = form.get("grant_max_hours")
        chosen = parse_int(hours)
        if chosen is None or chosen not in GRANT_MAX_CHOICES:
            raise Unprocessable("choose one of the offered durations", code="invalid_duration")
        await rt.store.set_grant_max_hours(site.id, chosen)
        return RedirectResponse(f"/console/admin/access?site={site.key}&done=saved", 303)
    await rt.store.expire_access_grants(rt.clock.now())
    events = await rt.store.grant_events(site.id, limit=AUDIT_ROWS)
    return page(request, "console/admin_access.html", site=site, sites=sites,
                notice="Saved." if request.query_params.get("done") == "saved" else None,
                choices=[(hours, max_label(hours)) for hours in GRANT_MAX_CHOICES],
                events=[{"event": event, "label": EVENT_LABELS.get(event.type, event.type),
                         "when": when(event.created_at)} for event in events])


routes = [Route("/console/admin/access", audit, methods=["GET", "POST"])]
