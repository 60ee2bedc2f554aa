"""The console's webhook page of a site (docs/webhooks.md), for admins: register and delete
endpoints (the secret is shown once, on the page that answers the registration), a banner
for each endpoint disabled after failing, "Enable again", "Send a test event", and the
delivery log (request body, status, time, answer) with "Resend".

Every POST is an ``admin_page`` one: signed in as an admin, from this server's own pages,
with the session's CSRF token. The page is forms only: no script of its own, under the
console's CSP.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from widget_server.clock import isoformat
from widget_server.errors import WidgetError
from widget_server.models import Site
from widget_server.store.webhook_records import Delivery, Endpoint
from widget_server.web.console import present
from widget_server.web.console.auth import admin_page, page, site_for_agent
from widget_server.web.errors import runtime
from widget_server.web.forms import read_form
from widget_server.webhooks import EVENTS, parse_events, parse_url

DELIVERIES_SHOWN = 50
STATES = {"pending": "Pending", "delivered": "Delivered", "failed": "Given up"}
NOTICES = {"deleted": "The webhook is deleted; nothing more goes to it.",
           "enabled": "The webhook is enabled again; new events go to it.",
           "test": "A test event is queued; it shows below once sent.",
           "resent": "The delivery is queued again; it shows below once sent."}


def _when(moment: datetime | None) -> dict[str, str] | None:
    return {"iso": isoformat(moment), "text": present.when(moment)} if moment else None


def _path(site: Site, rest: str = "") -> str:
    return f"/console/admin/sites/{site.key}/webhooks{rest}"


async def _page(request: Request, site: Site, status: int = 200,
                errors: dict[str, str] | None = None, values: dict[str, object] | None = None,
                created: tuple[Endpoint, str] | None = None) -> Response:
    store = runtime(request).store
    endpoints = await store.webhooks(site.id)
    urls = {endpoint.id: endpoint.url for endpoint in endpoints}
    deliveries: list[Delivery] = await store.webhook_deliveries(site.id, None, DELIVERIES_SHOWN)
    attempts = await store.webhook_attempts([d.id for d in deliveries])
    log = [{"delivery": d, "url": urls.get(d.endpoint_id, ""),
            "state": STATES.get(d.state, d.state), "created": _when(d.created_at),
            "delivered": _when(d.delivered_at),
            "next": _when(d.next_attempt_at) if d.state == "pending" else None,
            "attempts": [{"attempt": a, "at": _when(a.attempted_at)}
                         for a in attempts.get(d.id, [])]} for d in deliveries]
    return page(request, "console/admin_webhooks.html", status, site=site,
                endpoints=[{"endpoint": e, "disabled": _when(e.disabled_at)}
                           for e in endpoints],
                log=log, events=EVENTS, errors=errors or {}, values=values or {},
                created=created, notice=NOTICES.get(request.query_params.get("done", "")),
                allow_private=runtime(request).settings.webhook_allow_private)


@admin_page
async def webhooks_page(request: Request) -> Response:
    site = await site_for_agent(request, request.path_params["key"])
    if request.method == "GET":
        return await _page(request, site)
    form = await read_form(request)
    url, chosen = str(form.get("url", "")).strip(), list(map(str, form.getlist("events")))
    include_notes = form.get("include_notes") == "1"
    values: dict[str, object] = {"url": url, "events": chosen, "include_notes": include_notes}
    errors: dict[str, str] = {}
    rt = runtime(request)
    try:
        url = parse_url(url, rt.settings.webhook_allow_private)
    except WidgetError as exc:
        errors["url"] = exc.message
    try:
        events = parse_events(chosen)
    except WidgetError:
        errors["events"] = "Choose at least one event."
    if errors:
        return await _page(request, site, 422, errors, values)
    try:
        created = await rt.store.create_webhook(site.id, url, events, include_notes)
    except WidgetError as exc:  # too many endpoints
        return await _page(request, site, exc.status, {"url": exc.message}, values)
    return await _page(request, site, 201, created=created)


async def _act(request: Request, done: str) -> Response:
    site = await site_for_agent(request, request.path_params["key"])
    store = runtime(request).store
    if done == "resent":
        await store.resend_webhook_delivery(site.id, request.path_params["delivery_id"])
    elif done == "deleted":
        await store.delete_webhook(site.id, request.path_params["webhook_id"])
    elif done == "enabled":
        await store.enable_webhook(site.id, request.path_params["webhook_id"])
    else:
        await store.queue_webhook_test(site.id, request.path_params["webhook_id"])
    return RedirectResponse(_path(site, f"?done={done}"), 303)


@admin_page
async def delete(request: Request) -> Response:
    return await _act(request, "deleted")


@admin_page
async def enable(request: Request) -> Response:
    return await _act(request, "enabled")


@admin_page
async def send_test(request: Request) -> Response:
    return await _act(request, "test")


@admin_page
async def resend(request: Request) -> Response:
    return await _act(request, "resent")


BASE = "/console/admin/sites/{key:str}/webhooks"
routes: list[BaseRoute] = [
    Route(BASE, webhooks_page, methods=["GET", "POST"]),
    Route(BASE + "/{webhook_id:id}/delete", delete, methods=["POST"]),
    Route(BASE + "/{webhook_id:id}/enable", enable, methods=["POST"]),
    Route(BASE + "/{webhook_id:id}/test", send_test, methods=["POST"]),
    Route(BASE + "/deliveries/{delivery_id:id}/resend", resend, methods=["POST"]),
]
