"""REST API under /api/v1 for agents and host backends, authenticated by bearer tokens.

A token belongs to one site and acts as one agent; replies posted with it reach the
visitor's widget live, like replies from the console.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from widget_server.errors import InvalidAssignee, NotFound, Unprocessable
from widget_server.models import Ticket
from widget_server.numbers import parse_int, parse_signed
from widget_server.reports import build_report
from widget_server.store import TicketPatch
from widget_server.tickets import STATUSES
from widget_server.web.agent_json import api_message, api_ticket
from widget_server.web.bearer import authenticate
from widget_server.web.errors import read_json_object, runtime
from widget_server.web.openapi import openapi_json
from widget_server.web.responses import JSONResponse

MAX_PAGE = 200
MAX_INT = 2**63 - 1  # SQLite's integers; anything larger cannot name a row


def ticket_number(request: Request) -> int:
    number: int = request.path_params["number"]
    if number > MAX_INT:
        raise NotFound(f"ticket {number} does not exist", code="ticket_not_found")
    return number




def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name)
    if value is not None and value not in allowed:
        raise Unprocessable(f"{name} must be one of {', '.join(allowed)}", code=f"invalid_{name}")
    return value


def _severity_filter(request: Request) -> str | None:
    value = request.query_params.get("severity")
    if value is not None and not (0 < len(value) <= 40):
        raise Unprocessable("severity must be a severity key", code="invalid_severity")
    return value


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if parse_int(raw) is None and parse_signed(raw) is None:
        raise Unprocessable(f"{name} must be an integer", code=f"invalid_{name}")
    value = parse_int(raw, 1, MAX_INT)
    if value is None:
        raise Unprocessable(f"{name} must be a positive 64-bit integer", code=f"invalid_{name}")
    return value


async def list_tickets(request: Request) -> Response:
    site_id, _ = await authenticate(request)
    limit = min(_int_param(request, "limit", 50) or 50, MAX_PAGE)
    found = await runtime(request).store.list_tickets(
        site_id,
        status=_choice(request, "status", STATUSES),
        severity=_severity_filter(request),
        limit=limit,
        after_number=_int_param(request, "before", None),
    )
    following = found[-1].number if len(found) == limit else None
    return JSONResponse({"tickets": [api_ticket(t) for t in found], "next_before": following})


async def _ticket_or_404(request: Request, site_id: int) -> tuple[Ticket, str]:
    number = ticket_number(request)
    found = await runtime(request).store.get_ticket(site_id, number)
    if found is None:
        raise NotFound(f"ticket {number} does not exist", code="ticket_not_found")
    return found


async def get_ticket(request: Request) -> Response:
    site_id, _ = await authenticate(request)
    ticket, visitor_id = await _ticket_or_404(request, site_id)
    store = runtime(request).store
    return JSONResponse({
        "ticket": {**api_ticket(ticket),
                   "visitor_id": None if ticket.erased_at else visitor_id},
        "messages": [api_message(m) for m in await store.ticket_messages(ticket)],
        "events": await store.ticket_events(ticket),
    })


async def patch_ticket(request: Request) -> Response:
    site_id, agent = await authenticate(request)
    data = await read_json_object(request)
    unknown = set(data) - {"status", "severity", "stage", "assignee"}
    if unknown:
        raise Unprocessable(f"unknown fields: {', '.join(sorted(unknown))}", code="unknown_field")
    for field in ("status", "severity", "stage"):
        if field in data and not isinstance(data[field], str):
            raise Unprocessable(f"{field} must be a string", code=f"invalid_{field}")
    assignee_id, unassign = None, False
    if "assignee" in data:
        assignee = data["assignee"]
        if assignee is None:
            unassign = True
        elif isinstance(assignee, int) and not isinstance(assignee, bool):
            if not 1 <= assignee <= MAX_INT:
                raise InvalidAssignee()
            assignee_id = assignee
        elif isinstance(assignee, str):
            # only the site's agents are looked up: an agent of another site is refused
            # with the same answer, after the same single read, as an unknown email
            found = await runtime(request).store.site_agent_by_email(site_id, assignee)
            if found is None:
                raise InvalidAssignee()
            assignee_id = found.id
        else:
            raise Unprocessable("assignee must be an agent id, an email or null",
                                code="invalid_assignee")
    patch = TicketPatch(status=data.get("status"), severity=data.get("severity"),  # type: ignore[arg-type]
                        stage=data.get("stage"), assignee_id=assignee_id, unassign=unassign)  # type: ignore[arg-type]
    change = await runtime(request).messaging.update_ticket(
        site_id, ticket_number(request), agent, patch)
    return JSONResponse({"ticket": api_ticket(change.ticket)})


async def post_message(request: Request) -> Response:
    site_id, agent = await authenticate(request)
    data = await read_json_object(request)
    body, internal = data.get("body"), data.get("internal", False)
    if not isinstance(body, str):
        raise Unprocessable("body must be a string", code="invalid_body")
    if not isinstance(internal, bool):
        raise Unprocessable("internal must be true or false", code="invalid_internal")
    attachments = data.get("attachments", [])
    if not isinstance(attachments, list) or not all(
            isinstance(a, str) and 0 < len(a) <= 64 for a in attachments):
        raise Unprocessable("attachments must be a list of attachment ids",
                            code="invalid_attachments")
    rt = runtime(request)
    site = await rt.store.get_site(site_id)
    change = await rt.messaging.agent_reply(
        site_id, ticket_number(request), agent, body, internal, tuple(attachments),
        site.attachment_max_files if site else 10)
    return JSONResponse(
        {"message": api_message(change.messages[0]), "ticket": api_ticket(change.ticket)},
        status_code=201,
    )


async def sla_report(request: Request) -> Response:
    """The SLA figures of the token's site over the last ``days`` days (UTC), today included."""
    site_id, _ = await authenticate(request)
    rt = runtime(request)
    days = _int_param(request, "days", 30) or 30
    if days > 366:
        raise Unprocessable("days must be at most 366", code="invalid_days")
    report = await build_report(rt.store, rt.clock.now(), site_id, days)
    return JSONResponse(report.as_json())


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_json())


routes = [
    Route("/api/v1/openapi.json", openapi, methods=["GET"]),
    Route("/api/v1/tickets", list_tickets, methods=["GET"]),
    Route("/api/v1/reports/sla", sla_report, methods=["GET"]),
    Route("/api/v1/tickets/{number:id}", get_ticket, methods=["GET"]),
    Route("/api/v1/tickets/{number:id}", patch_ticket, methods=["PATCH"]),
    Route("/api/v1/tickets/{number:id}/messages", post_message, methods=["POST"]),
]
