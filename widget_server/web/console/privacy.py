"""Console pages of data retention (docs/privacy.md): a site's retention period with its
privacy audit, for admins, and the tombstone an erased ticket shows to agents.

POSTs carry the session's CSRF token like every admin form (``admin_page``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from widget_server.clock import isoformat
from widget_server.models import AgentSession, Site, Ticket
from widget_server.retention import RetentionError, parse_days
from widget_server.store.privacy_records import describe_days
from widget_server.web.console import present
from widget_server.web.console.auth import admin_page, page, site_for_agent
from widget_server.web.errors import runtime
from widget_server.web.forms import read_form

ACTIONS = {"retention": "Retention run", "erasure": "Erasure request",
           "retention_set": "Retention period set"}
ACTORS = {"cli": "command line", "scheduler": "retention job", "admin": "admin"}
REASONS = {"retention": "the site's retention period",
           "erasure": "an erasure request of the visitor"}


def _counts(action: str, counts: dict[str, object]) -> str:
    if action == "retention_set":
        before = counts.get("from")
        return f"was {describe_days(before if isinstance(before, int) else None)}"
    tickets = counts.get("tickets")
    numbers = [f"#{n}" for n in tickets] if isinstance(tickets, list) else []
    shown = ", ".join(numbers[:10]) + (f" and {len(numbers) - 10} more"
                                       if len(numbers) > 10 else "")
    return (f"{len(numbers)} tickets kept as tombstones{f' ({shown})' if shown else ''}; "
            f"{counts.get('conversations', 0)} conversations, {counts.get('messages', 0)} "
            f"messages, {counts.get('visitors', 0)} visitors, "
            f"{counts.get('comments', 0)} article comments deleted")


async def _page(request: Request, site: Site, status: int = 200,
                error: str | None = None, value: str | None = None) -> Response:
    rt = runtime(request)
    names = {agent.id: agent.name for agent, _ in await rt.store.list_agents()}
    audit = [{"entry": entry, "action": ACTIONS.get(entry.action, entry.action),
              "actor": (names.get(entry.agent_id, "an admin") if entry.agent_id is not None
                        else ACTORS.get(entry.actor, entry.actor)),
              "iso": isoformat(entry.created_at), "when": present.when(entry.created_at),
              "what": _counts(entry.action, entry.counts)}
             for entry in await rt.store.privacy_audit(site.id)]
    days = "" if site.retention_days is None else str(site.retention_days)
    return page(request, "console/admin_privacy.html", status, site=site, audit=audit,
                error=error, days=days if value is None else value,
                period=describe_days(site.retention_days),
                saved=request.query_params.get("saved") == "1")


@admin_page
async def privacy_page(request: Request) -> Response:
    site = await site_for_agent(request, request.path_params["key"])
    if request.method != "POST":
        return await _page(request, site)
    form = await read_form(request)
    raw = form.get("days")
    text = raw.strip() if isinstance(raw, str) else ""
    try:
        days = parse_days(text)
    except RetentionError as exc:
        return await _page(request, site, 422, str(exc).capitalize() + ".", text)
    session: AgentSession = request.state.session
    await runtime(request).store.set_retention(site.id, days, "admin", session.agent.id)
    return RedirectResponse(f"/console/admin/sites/{site.key}/privacy?saved=1", 303)


async def tombstone_page(request: Request, site: Site, ticket: Ticket, status: int = 200,
                         error: str | None = None) -> Response:
    """What is left of an erased ticket: its number, status, severity and dates."""
    rt = runtime(request)
    names = {str(agent.id): agent.name for agent, _ in await rt.store.list_agents()}
    timeline = present.timeline(await rt.store.ticket_events(ticket), names, site,
                                "The visitor")
    dates = [("Created", ticket.created_at), ("First response", ticket.first_response_at),
             ("Solved", ticket.solved_at), ("Closed", ticket.closed_at),
             ("Last change", ticket.updated_at), ("Erased", ticket.erased_at)]
    return page(request, "console/ticket_erased.html", status, site=site, ticket=ticket,
                error=error, timeline=timeline,
                reason=REASONS.get(ticket.erased_reason or "", "a privacy rule"),
                status_label=present.status_label(ticket.status),
                severity_label=present.severity_label(ticket.severity,
                                                      present.severity_labels(site)),
                dates=[(label, isoformat(moment), present.when(moment))
                       for label, moment in dates if moment is not None])


routes: list[BaseRoute] = [
    Route("/console/admin/sites/{key:str}/privacy", privacy_page, methods=["GET", "POST"]),
]
