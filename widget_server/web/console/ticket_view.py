"""The console's ticket view and its actions: reply, internal note, triage, split, merge,
escalate and return.

Every route first checks that the signed-in agent works on the ticket's site
(``site_for_agent``: 403 otherwise, by URL and for every POST). Actions go through
``Messaging`` (commit first, then announce live) and answer 303 back to a ticket page;
a refused action renders the ticket again with the message and the agent's draft.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from widget_server.abuse import enforce
from widget_server.clock import isoformat
from widget_server.errors import NotFound, Unprocessable, WidgetError
from widget_server.models import Agent, AgentSession, Site, Ticket
from widget_server.numbers import parse_int
from widget_server.store import TicketPatch
from widget_server.text import one_line
from widget_server.tickets import STAGES, STATUSES
from widget_server.web.api import MAX_INT
from widget_server.web.console import csat_pages, mail_pages, present, privacy, workspace
from widget_server.web.console.access import grant_status
from widget_server.web.console.auth import console_page, page, site_for_agent
from widget_server.web.errors import runtime
from widget_server.web.forms import read_form

REASON_MAX_CHARS = 1000
Action = Callable[[Request, Site, Ticket, FormData], Awaitable[str]]


def ticket_url(site_key: str, number: int) -> str:
    return f"/console/tickets/{site_key}/{number}"


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _agent(request: Request) -> Agent:
    session: AgentSession = request.state.session
    return session.agent


async def _ticket(request: Request) -> tuple[Site, Ticket, str]:
    site = await site_for_agent(request, request.path_params["site_key"])
    number: int = request.path_params["number"]
    found = (await runtime(request).store.get_ticket(site.id, number)
             if number <= MAX_INT else None)
    if found is None:
        raise NotFound(f"ticket {number} does not exist", code="ticket_not_found")
    return site, found[0], found[1]


async def site_agents(request: Request, site: Site) -> list[Agent]:
    """Active agents who work on the site; admins work on every site."""
    return [agent for agent, site_ids in await runtime(request).store.list_agents()
            if agent.active and (agent.is_admin or site.id in site_ids)]


async def _render(request: Request, *, status: int = 200, error: str | None = None,
                  drafts: dict[str, str] | None = None) -> Response:
    rt = runtime(request)
    site, ticket, _ = await _ticket(request)
    if ticket.erased_at is not None:  # a tombstone: nothing but its number and dates
        return await privacy.tombstone_page(request, site, ticket, status, error)
    messages = await rt.store.ticket_messages(ticket)
    profile, others = await rt.store.visitor_profile(ticket)
    all_agents = await rt.store.list_agents()
    names = {str(agent.id): agent.name for agent, _ in all_agents}
    visitor = profile.name or profile.email or "Visitor"
    linked = {}
    for label, ticket_id in (("split_from", ticket.split_from_id),
                             ("merged_into", ticket.merged_into_id)):
        other = await rt.store.ticket_by_id(ticket_id) if ticket_id else None
        if other is not None:
            linked[label] = {"reference": other.reference,
                             "url": ticket_url(site.key, other.number)}
    thread = [{"message": message, "author": present.author_name(message, profile.name),
               "iso": isoformat(message.created_at), "when": present.when(message.created_at),
               "splittable": not message.internal and message.author.type != "system",
               "files": present.files(message)}
              for message in messages]
    replies = await rt.store.saved_replies([site.id])
    await rt.store.mark_agent_read(_agent(request).id, ticket)
    labels = present.severity_labels(site)
    team = await workspace.team(request)
    return page(
        request, "console/ticket.html", status, site=site, ticket=ticket, thread=thread,
        error=error, drafts={"form": "", "body": "", "reason": "", "into": "", **(drafts or {})},
        linked=linked, visitor=visitor, profile=profile,
        access=await grant_status(rt, site, profile),
        mail_on=rt.settings.smtp_url is not None,
        mail_to=await rt.store.conversation_mail_to(ticket.conversation_id),
        mailed=request.query_params.get("mailed") == "transcript",
        page_link=present.web_url(profile.page_url),
        others=[{"ticket": other, "url": ticket_url(site.key, other.number),
                 "status": present.status_label(other.status)} for other in others],
        timeline=present.timeline(await rt.store.ticket_events(ticket), names, site, visitor),
        mail=await mail_pages.ticket_mail(rt, ticket),
        rating=await csat_pages.ticket_rating(rt, ticket),
        agents=await site_agents(request, site),
        queue=await workspace.queue(request, (site.key, ticket.number)),
        team=team, away={member["id"] for member in team if member["status"] == "away"},
        statuses=[(key, present.status_label(key)) for key in STATUSES],
        stages=[(key, present.stage_label(key)) for key in STAGES],
        severities=[*labels.items(), *([] if ticket.severity in labels
                                        else [(ticket.severity, ticket.severity)])],
        status_label=present.status_label(ticket.status),
        stage_label=present.stage_label(ticket.stage),
        severity_label=present.severity_label(ticket.severity, labels),
        tier_label=present.tier_name(site.tier_names, ticket.tier),
        next_tier=(present.tier_name(site.tier_names, ticket.tier + 1)
                   if ticket.tier < len(site.tier_names) else None),
        previous_tier=(present.tier_name(site.tier_names, ticket.tier - 1)
                       if ticket.tier > 1 else None),
        due=present.response_due(ticket, rt.clock.now()),
        due_when=present.when(ticket.sla_due) if ticket.sla_due else "",
        saved_replies=[{"shortcut": r.shortcut, "title": r.title, "body": r.body}
                       for r in replies],
    )


@console_page
async def view(request: Request) -> Response:
    return await _render(request)


# -- actions: each returns the URL to go to afterwards
def _attachment_ids(form: FormData) -> tuple[str, ...]:
    """The ``attachments`` fields: ids of the agent's uploads (POST /console/attachments)."""
    return tuple(value for value in form.getlist("attachments")
                 if isinstance(value, str) and value)


async def reply(request: Request, site: Site, ticket: Ticket, form: FormData) -> str:
    await runtime(request).messaging.agent_reply(
        site.id, ticket.number, _agent(request), _text(form, "body"), internal=False,
        attachments=_attachment_ids(form), max_files=site.attachment_max_files)
    return ticket_url(site.key, ticket.number)


async def note(request: Request, site: Site, ticket: Ticket, form: FormData) -> str:
    await runtime(request).messaging.agent_reply(
        site.id, ticket.number, _agent(request), _text(form, "body"), internal=True,
        attachments=_attachment_ids(form), max_files=site.attachment_max_files)
    return ticket_url(site.key, ticket.number)


async def update(request: Request, site: Site, ticket: Ticket, form: FormData) -> str:
    assignee = _text(form, "assignee")
    assignee_id: int | None = None
    if assignee:
        members = {agent.id for agent in await site_agents(request, site)}
        assignee_id = parse_int(assignee)
        if assignee_id is None or assignee_id not in members:
            raise Unprocessable("choose an agent who works on this site",
                                code="invalid_assignee")
    patch = TicketPatch(status=_text(form, "status") or None, stage=_text(form, "stage") or None,
                        severity=_text(form, "severity") or None, assignee_id=assignee_id,
                        unassign="assignee" in form and not assignee)
    await runtime(request).messaging.update_ticket(site.id, ticket.number, _agent(request), patch)
    return ticket_url(site.key, ticket.number)


async def split(request: Request, site: Site, ticket: Ticket, form: FormData) -> str:
    ids = [i for i in map(parse_int, form.getlist("message")) if i is not None]
    _, new = await runtime(request).messaging.split(site.id, ticket.number, ids, _agent(request))
    return ticket_url(site.key, new.ticket.number)


async def merge(request: Request, site: Site, ticket: Ticket, form: FormData) -> str:
    into = _text(form, "into").strip().lstrip("#")
    number = parse_int(into)
    if number is None:
        raise Unprocessable("give the number of the ticket to merge into", code="invalid_merge")
    _, target = await runtime(request).messaging.merge(site.id, ticket.number, number,
                                                        _agent(request))
    return ticket_url(site.key, target.ticket.number)


def _move(step: int) -> Action:
    async def move(request: Request, site: Site, ticket: Ticket, form: FormData) -> str:
        reason = one_line(_text(form, "reason"))
        if not reason:
            raise Unprocessable("say why the ticket moves to another tier",
                                code="reason_required")
        if len(reason) > REASON_MAX_CHARS:
            raise Unprocessable(f"a reason may have at most {REASON_MAX_CHARS} characters",
                                code="reason_too_long")
        await runtime(request).messaging.move_tier(site.id, ticket.number, _agent(request),
                                                   step, reason)
        return ticket_url(site.key, ticket.number)

    return move


async def transcript(request: Request, site: Site, ticket: Ticket, form: FormData) -> str:
    """The public thread mailed to the conversation's verified address (docs/email.md)."""
    rt = runtime(request)
    await rt.store.transcript_address(site.id, ticket.conversation_id, None)
    enforce(await rt.limits.transcript(ticket.conversation_id), "this transcript was mailed "
            "several times this hour; try again later")
    await rt.store.queue_transcript(site.id, ticket.conversation_id, None, rt.clock.now())
    return ticket_url(site.key, ticket.number) + "?mailed=transcript"


ACTIONS: dict[str, Action] = {
    "reply": reply, "note": note, "update": update, "split": split, "merge": merge,
    "escalate": _move(+1), "return": _move(-1), "transcript": transcript,
}


@console_page
async def act(request: Request) -> Response:
    action = ACTIONS.get(request.path_params["action"])
    site, ticket, _ = await _ticket(request)  # the membership check comes first, always
    if action is None:
        raise NotFound("no such action", code="not_found")
    form = await read_form(request)
    try:
        target = await action(request, site, ticket, form)
    except WidgetError as exc:
        if exc.status in {401, 403, 404} and exc.code != "ticket_not_found":
            raise
        drafts = {key: _text(form, key) for key in ("body", "reason", "into")}
        drafts["form"] = request.path_params["action"]
        return await _render(request, status=exc.status if exc.status != 404 else 422,
                             error=exc.message, drafts=drafts)
    return RedirectResponse(target, 303)


@console_page
async def mark_read(request: Request) -> Response:
    """Called by console.js when new messages were shown live in an open ticket view."""
    _, ticket, _ = await _ticket(request)
    await runtime(request).store.mark_agent_read(_agent(request).id, ticket)
    return Response(status_code=204)


routes: list[BaseRoute] = [
    Route("/console/tickets/{site_key:str}/{number:id}", view, methods=["GET"]),
    Route("/console/tickets/{site_key:str}/{number:id}/read", mark_read, methods=["POST"]),
    Route("/console/tickets/{site_key:str}/{number:id}/{action:str}", act, methods=["POST"]),
]
