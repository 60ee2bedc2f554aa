"""Console pages for agents: the inbox, full-text search and saved replies.

The ticket view and its actions live in ``ticket_view.py``; its routes are included here.
Every page is server-rendered with autoescape under the nonce CSP of ``auth.page``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from widget_server.errors import NotFound, Unprocessable, WidgetError
from widget_server.models import AgentSession, InboxRow, SavedReply, Site
from widget_server.numbers import parse_int
from widget_server.runtime import Runtime
from widget_server.text import one_line
from widget_server.tickets import STATUSES
from widget_server.web.console import present, ticket_view, workspace
from widget_server.web.console.auth import console_page, page, site_for_agent
from widget_server.web.console.ticket_view import ticket_url
from widget_server.web.errors import runtime
from widget_server.web.forms import read_form

OPEN_STATUSES = ("new", "open", "pending")
ASSIGNEES = ("anyone", "me", "unassigned")
SLA_STATES = ("breached", "due_soon")
PREVIEW_CHARS = 140
SEARCH_MAX_CHARS = 200
SHORTCUT = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
TITLE_MAX_CHARS = 200


async def agent_sites(request: Request) -> list[Site]:
    """The sites the signed-in agent works on (admins: all of them)."""
    rt = runtime(request)
    session: AgentSession = request.state.session
    site_ids = set(await rt.store.agent_site_ids(session.agent))
    return [site for site in await rt.store.list_sites() if site.id in site_ids]


# -- inbox
@dataclass(frozen=True)
class InboxFilters:
    status: str = ""  # "" = new, open and pending; "all"; or one status
    severity: str = ""
    assignee: str = "anyone"
    site: str = ""
    sla: str = ""
    tier: int | None = None

    @classmethod
    def parse(cls, params: QueryParams, severities: tuple[str, ...]) -> InboxFilters:
        """Unknown values fall back to the default instead of failing the whole inbox."""

        def pick(name: str, allowed: tuple[str, ...], default: str = "") -> str:
            value = params.get(name, default)
            return value if value in allowed else default

        tier = params.get("tier", "")
        return cls(status=pick("status", ("all", *STATUSES)),
                   severity=pick("severity", severities),
                   assignee=pick("assignee", ASSIGNEES, "anyone"),
                   site=params.get("site", "")[:100],
                   sla=pick("sla", SLA_STATES),
                   tier=parse_int(tier, 1, 99))

    @property
    def statuses(self) -> tuple[str, ...]:
        if self.status == "all":
            return STATUSES
        return (self.status,) if self.status else OPEN_STATUSES


def inbox_row(row: InboxRow, rt: Runtime, severities: dict[str, str]) -> dict[str, Any]:
    ticket = row.ticket
    visitor = row.visitor_name or row.visitor_email or "Anonymous visitor"
    preview = (row.last_body or "").strip().replace("\n", " ")
    if len(preview) > PREVIEW_CHARS:
        preview = preview[: PREVIEW_CHARS - 1].rstrip() + "…"
    return {
        "ticket": ticket,
        "url": ticket_url(row.site_key, ticket.number),
        "site_name": row.site_name,
        "visitor": visitor,
        "visitor_email": row.visitor_email if row.visitor_name else None,
        "severity": present.severity_label(ticket.severity, severities),
        "status": present.status_label(ticket.status),
        "due": present.response_due(ticket, rt.clock.now()),
        "preview": preview,
        "preview_author": {"visitor": "Visitor", "agent": "Agent",
                           "system": "System"}.get(row.last_author or "", ""),
        "unread": row.unread,
    }


@console_page
async def inbox(request: Request) -> Response:
    rt = runtime(request)
    session: AgentSession = request.state.session
    sites = await agent_sites(request)
    labels = {site.id: present.severity_labels(site) for site in sites}
    filters = InboxFilters.parse(request.query_params,
                                 tuple(present.severity_labels(*sites)))
    chosen = [(await site_for_agent(request, filters.site))] if filters.site else sites
    found = await rt.store.inbox(
        session.agent, [site.id for site in chosen], statuses=filters.statuses,
        severity=filters.severity or None,
        assignee=None if filters.assignee == "anyone" else filters.assignee,
        sla=filters.sla or None, tier=filters.tier)
    rows = [inbox_row(row, rt, labels.get(row.ticket.site_id, {})) for row in found]
    tiers = max((len(site.tier_names) for site in chosen), default=2)
    tier_names = [present.tier_name(chosen[0].tier_names if chosen else (), n)
                  for n in range(1, tiers + 1)]
    return page(request, "console/inbox.html", rows=rows, filters=filters, sites=sites,
                statuses=[(key, present.status_label(key)) for key in STATUSES],
                severities=list(present.severity_labels(*chosen).items()),
                tier_names=tier_names, unread=sum(1 for row in rows if row["unread"]),
                many_sites=len(sites) > 1, team=await workspace.team(request))


# -- search
@console_page
async def search(request: Request) -> Response:
    rt = runtime(request)
    query = request.query_params.get("q", "").strip()[:SEARCH_MAX_CHARS]
    sites = await agent_sites(request)
    names = {site.id: site.name for site in sites}
    hits = await rt.store.search([site.id for site in sites], query) if query else []
    results = [{"ticket": hit.ticket, "url": ticket_url(hit.site_key, hit.ticket.number),
                "site_name": names.get(hit.ticket.site_id, hit.site_key),
                "status": present.status_label(hit.ticket.status),
                "parts": present.highlight(hit.snippet)} for hit in hits]
    return page(request, "console/search.html", query=query, results=results,
                many_sites=len(sites) > 1)


# -- saved replies
def _form_text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


async def _replies_page(request: Request, *, status: int = 200, error: str | None = None,
                        draft: dict[str, Any] | None = None) -> Response:
    rt = runtime(request)
    sites = await agent_sites(request)
    replies = await rt.store.saved_replies([site.id for site in sites])
    names = {site.id: site.name for site in sites}
    if draft is None:
        draft = {"id": None, "site_id": sites[0].id if sites else None, "shortcut": "",
                 "title": "", "body": ""}
        edit = request.query_params.get("edit", "")
        chosen = next((r for r in replies if r.id == parse_int(edit)), None)
        if chosen is not None:
            draft = {"id": chosen.id, "site_id": chosen.site_id, "shortcut": chosen.shortcut,
                     "title": chosen.title, "body": chosen.body}
    return page(request, "console/saved_replies.html", status, replies=replies, names=names,
                sites=sites, draft=draft, error=error, many_sites=len(sites) > 1)


async def _own_reply(request: Request, raw_id: str) -> SavedReply:
    sites = await agent_sites(request)
    replies = await runtime(request).store.saved_replies([site.id for site in sites])
    found = next((r for r in replies if r.id == parse_int(raw_id)), None)
    if found is None:
        raise NotFound("no such saved reply", code="saved_reply_not_found")
    return found


@console_page
async def saved_replies(request: Request) -> Response:
    if request.method == "GET":
        return await _replies_page(request)
    rt = runtime(request)
    form = await read_form(request)
    if _form_text(form, "action") == "delete":
        reply = await _own_reply(request, _form_text(form, "id"))
        await rt.store.delete_reply(reply.site_id, reply.id)
        return RedirectResponse("/console/saved-replies", 303)
    reply_id = _form_text(form, "id")
    draft: dict[str, Any] = {
        "id": parse_int(reply_id, 1),
        "site_id": None, "shortcut": one_line(_form_text(form, "shortcut")).lstrip("/"),
        "title": one_line(_form_text(form, "title")), "body": _form_text(form, "body")}
    try:
        if draft["id"] is not None:  # an edit stays on the reply's own site
            site_id = (await _own_reply(request, reply_id)).site_id
        else:
            site_id = (await site_for_agent(request, _form_text(form, "site"))).id
        draft["site_id"] = site_id
        if not SHORTCUT.match(draft["shortcut"]):
            raise Unprocessable("a shortcut is 1 to 40 letters, digits, - or _",
                                code="invalid_shortcut")
        if not draft["title"] or len(draft["title"]) > TITLE_MAX_CHARS:
            raise Unprocessable(f"a title needs 1 to {TITLE_MAX_CHARS} characters",
                                code="invalid_title")
        rt.messaging.check_body(draft["body"])
        await rt.store.save_reply(site_id, draft["shortcut"], draft["title"], draft["body"],
                                  draft["id"])
    except WidgetError as exc:
        if exc.status in {401, 403, 404}:
            raise
        return await _replies_page(request, status=exc.status, error=exc.message, draft=draft)
    return RedirectResponse("/console/saved-replies", 303)


routes: list[BaseRoute] = [
    Route("/console", inbox, methods=["GET"]),
    Route("/console/search", search, methods=["GET"]),
    Route("/console/saved-replies", saved_replies, methods=["GET", "POST"]),
    *ticket_view.routes,
]
