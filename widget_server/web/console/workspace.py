"""The agent's working view: the queue beside the open ticket, and the team's availability.

``queue`` is the compact inbox (what needs work on the agent's sites, in inbox order) that
the ticket view shows in its left column and ``GET /console/queue`` serves alone, for the
script to swap in live and for narrow screens. ``POST /console/presence`` sets the signed-in
agent's availability (online or away) and tells the other agents of its sites live.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from widget_server.errors import Unprocessable
from widget_server.models import AgentSession
from widget_server.realtime.events import PresenceChanged, agents_channel
from widget_server.store.presence_queries import PRESENCE_STATES
from widget_server.web.console import present
from widget_server.web.console.auth import console_page, page
from widget_server.web.errors import runtime
from widget_server.web.forms import read_form

QUEUE_STATUSES = ("new", "open", "pending")
QUEUE_LIMIT = 50
PRESENCE_LABELS = {"online": "Online", "away": "Away"}
INTEGRATION_DOMAIN = "@integrations.invalid"  # API tokens' agents (api_tokens.py): not people


def _session(request: Request) -> AgentSession:
    session: AgentSession = request.state.session
    return session


async def queue(request: Request, current: tuple[str, int] | None = None
                ) -> list[dict[str, Any]]:
    """What needs work on the agent's sites, overdue first, as compact rows."""
    rt = runtime(request)
    agent = _session(request).agent
    site_ids = set(await rt.store.agent_site_ids(agent))
    sites = [site for site in await rt.store.list_sites() if site.id in site_ids]
    labels = {site.id: present.severity_labels(site) for site in sites}
    found = await rt.store.inbox(agent, [site.id for site in sites], statuses=QUEUE_STATUSES,
                                 limit=QUEUE_LIMIT)
    now = rt.clock.now()
    return [{
        "ticket": row.ticket,
        "url": f"/console/tickets/{row.site_key}/{row.ticket.number}",
        "severity": present.severity_label(row.ticket.severity,
                                           labels.get(row.ticket.site_id, {})),
        "due": present.response_due(row.ticket, now),
        "visitor": row.visitor_name or row.visitor_email or "Anonymous visitor",
        "unread": row.unread,
        "current": current == (row.site_key, row.ticket.number),
    } for row in found]


async def team(request: Request) -> list[dict[str, Any]]:
    """The active agents who share a site with the signed-in agent, with availability."""
    rt = runtime(request)
    me = _session(request).agent
    mine = set(await rt.store.agent_site_ids(me))
    members = [agent for agent, site_ids in await rt.store.list_agents()
               if agent.active and not agent.email.endswith(INTEGRATION_DOMAIN)
               and (agent.is_admin or me.is_admin or mine & set(site_ids))]
    presence = await rt.store.presence_of([agent.id for agent in members])
    return sorted(({"id": agent.id, "name": agent.name, "me": agent.id == me.id,
                    "status": presence[agent.id],
                    "label": PRESENCE_LABELS[presence[agent.id]]} for agent in members),
                  key=lambda member: (not member["me"], str(member["name"]).lower()))


@console_page
async def queue_page(request: Request) -> Response:
    return page(request, "console/queue.html", queue=await queue(request),
                team=await team(request))


def _back(target: str) -> str:
    """Only a console path of this server: never an open redirect."""
    if target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console"


@console_page
async def set_presence(request: Request) -> Response:
    rt = runtime(request)
    form = await read_form(request)
    status = form.get("status")
    if not isinstance(status, str) or status not in PRESENCE_STATES:
        raise Unprocessable("availability must be online or away", code="invalid_presence")
    agent = _session(request).agent
    await rt.store.set_presence(agent.id, status)
    event = PresenceChanged(agent.id, agent.name, status)
    for site_id in await rt.store.agent_site_ids(agent):
        rt.hub.publish(agents_channel(site_id), event)
    if request.headers.get("x-requested-with") == "console":  # the script: no page needed
        return Response(status_code=204)
    target = form.get("back")
    return RedirectResponse(_back(target if isinstance(target, str) else ""), 303)


routes: list[BaseRoute] = [
    Route("/console/queue", queue_page, methods=["GET"]),
    Route("/console/presence", set_presence, methods=["POST"]),
]
