"""The Help Form: plain server-rendered pages that work without JavaScript (docs/api.md).

GET/POST /help/new is the form (the help-centre pages around it are in help_centre.py), and
/help/requests/{token} the requester's private page of one request (its thread and a reply
form). Requests made here are the same tickets the widget makes: they go through
``Messaging`` with channel "form".
Every page is rendered by jinja2 with autoescape on and sent under a strict CSP.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from widget_server import tickets as rules
from widget_server.client_address import client_address
from widget_server.clock import isoformat
from widget_server.errors import WidgetError
from widget_server.help_tokens import HelpTokens, RequestKey
from widget_server.models import Conversation, Message, Site, Ticket, Visitor
from widget_server.policy import policy_from_text
from widget_server.rate_limit import retry_after
from widget_server.realtime.protocol import ticket_json
from widget_server.visitor_tokens import anonymous_visitor
from widget_server.web.bodies import PayloadTooLarge, read_body
from widget_server.web.errors import runtime
from widget_server.web.help_fields import (
    FormValues,
    clean_reply,
    field_summary,
    first_response_promise,
    validate,
)
from widget_server.web.templating import templates

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
NO_STORE = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
FORM_BYTES = 64 * 1024  # besides the description / reply, which may be up to 12 bytes a char



class PageError(Exception):
    """Answer with the plain error page (never JSON: these are pages for people)."""

    def __init__(self, status: int, heading: str, message: str, site: Site | None = None) -> None:
        super().__init__(message)
        self.status, self.heading, self.message, self.site = status, heading, message, site


def render(name: str, status: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    html = templates.get_template(name).render({"site": None, **context})
    return HTMLResponse(html, status_code=status, headers=headers or SECURITY_HEADERS)


Endpoint = Callable[[Request], Awaitable[Response]]


def page(handler: Endpoint) -> Endpoint:
    """Turn a ``PageError`` raised by the handler into the HTML error page."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except PageError as error:
            return render("base.html", error.status, NO_STORE, site=error.site,
                          heading=error.heading, message=error.message)

    return endpoint


async def help_tokens(request: Request) -> HelpTokens:
    return runtime(request).help_tokens


def _unknown_site() -> PageError:
    return PageError(404, "Help centre not found",
                     "There is no help centre with this address. Check the link you followed.")


async def _site_named(request: Request, key: str) -> Site:
    site = await runtime(request).site(key) if 0 < len(key) <= 200 else None
    if site is None:
        raise _unknown_site()
    return site


async def _chosen_site(request: Request) -> tuple[Site | None, list[Site]]:
    """The site of ``?site=KEY``, else the only public one; else (None, the public sites to
    choose from). Sites in ``required`` identity mode are never listed nor chosen without
    their key: their users arrive from inside the product (docs/help_centre.md)."""
    key = request.query_params.get("site")
    if key is not None:
        return await _site_named(request, key), []
    every = await runtime(request).store.list_sites()
    sites = [site for site in every if not site.identity_required]
    if not sites:
        if every:
            raise PageError(404, "Help centre not found", "Open the help centre from the link "
                            "in the product you use: this address does not name one.")
        raise PageError(404, "No help centre yet", "This server has no help centre set up yet.")
    return (sites[0], []) if len(sites) == 1 else (None, sites)


def _severities(site: Site) -> list[dict[str, Any]]:
    return [{"key": s.key, "label": s.label, "description": s.description,
             "hours": round(s.first_response.total_seconds() / 3600)}
            for s in policy_from_text(site.policy).severities]


def _form_page(request: Request, site: Site, values: FormValues, form_token: str,
               client_msg_id: str, errors: dict[str, str], status: int = 200) -> Response:
    return render("help_new.html", status, NO_STORE, site=site, values=values,
                  form_token=form_token, client_msg_id=client_msg_id, errors=errors,
                  summary=field_summary(errors), severities=_severities(site),
                  max_body=runtime(request).settings.max_body_chars)


IDENTITY_HEADING = "Ask for help from inside the product"


def _identity_message(site: Site) -> str:
    return (f"{site.name} answers requests only from its signed-in users. Sign in to the "
            "product and open the help widget there to make a request.")


def _identity_required_page(site: Site, status: int) -> Response:
    """Sites in ``required`` identity mode take requests only from signed-in users."""
    return render("base.html", status, NO_STORE, site=site, heading=IDENTITY_HEADING,
                  message=_identity_message(site))


async def new_form(request: Request) -> Response:
    site, choices = await _chosen_site(request)
    if site is None:
        return render("help_home.html", sites=choices, target="/help/new")
    if site.identity_required:
        return _identity_required_page(site, 200)
    token, grant = (await help_tokens(request)).new_form(site, anonymous_visitor(site).id)
    subject = request.query_params.get("subject", "")
    values = FormValues(subject=" ".join(subject.split())[:200],
                        severity=policy_from_text(site.policy).default_severity)
    return _form_page(request, site, values, token, grant.client_msg_id, {})


async def _read_fields(request: Request, text_limit: int) -> dict[str, str]:
    """The first value of each field of an urlencoded form body, refusing oversized bodies."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise PageError(415, "Unsupported form", "Send this form from its page, please.")
    limit = FORM_BYTES + 12 * text_limit
    try:
        body = await read_body(request, limit)
    except PayloadTooLarge:
        raise PageError(413, "Too much text", "The form you sent is too large.") from None
    try:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True,
                          max_num_fields=50)
    except ValueError:
        raise PageError(400, "Bad form", "The form you sent could not be read.") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


async def submit_form(request: Request) -> Response:
    rt = runtime(request)
    fields = await _read_fields(request, rt.settings.max_body_chars)
    site = await _site_named(request, fields.get("site", ""))
    if site.identity_required:
        return _identity_required_page(site, 403)
    tokens = await help_tokens(request)
    values, errors = validate(fields, rt.settings.max_body_chars,
                              policy_from_text(site.policy).keys)
    form_token = fields.get("form_token", "")
    grant = tokens.read_form(form_token)
    if grant is None or grant.site_key != site.key or \
            grant.client_msg_id != fields.get("client_msg_id"):
        form_token, grant = tokens.new_form(site, anonymous_visitor(site).id)
        errors = {"form": "This form has expired. Check your request and send it again.",
                  **errors}
    wait = await _limited(request, grant.visitor_id, new_request=True)
    if wait:
        response = _form_page(request, site, values, form_token, grant.client_msg_id,
                              {"form": _try_later(wait), **errors}, 429)
        response.headers["Retry-After"] = wait
        return response
    if errors:
        return _form_page(request, site, values, form_token, grant.client_msg_id, errors, 422)
    visitor = Visitor(id=grant.visitor_id, site_id=site.id, user_id=None, name=values.name,
                      email=values.email, verified=False, since=grant.issued_at)
    try:
        result = await rt.messaging.visitor_send(
            visitor, None, grant.client_msg_id, values.description, values.severity,
            values.subject or None, channel="form", mail_to=values.email)
    except WidgetError as exc:
        return _form_page(request, site, values, form_token, grant.client_msg_id,
                          {"description": exc.message}, 422)
    rt.messaging.announce(visitor, result)
    key = RequestKey(site.key, visitor.id, result.message.conversation_id, values.name,
                     values.email)
    return RedirectResponse(f"/help/requests/{tokens.follow(key)}", 303, headers=NO_STORE)


async def _limited(request: Request, visitor_id: str, new_request: bool) -> str:
    """Spend one Help Form post of the address (and a message of the visitor): "" when
    allowed, else the Retry-After seconds."""
    rt = runtime(request)
    limits = rt.limits
    address = client_address(request, rt.settings.trusted_proxies)
    wait = await limits.help_form(address)
    if wait == 0.0:
        wait = await limits.send(visitor_id, new_request, address)
    return retry_after(wait) if wait > 0 else ""


def _try_later(wait: str) -> str:
    minutes = -(-int(wait) // 60)
    when = f"{minutes} minutes" if minutes > 1 else "a minute"
    return (f"We received many requests from your network just now. Your text is kept below: "
            f"please send it again in {when}.")


def _not_your_request() -> PageError:
    return PageError(404, "Request not found",
                     "This link does not open any request. Check that you copied it whole.")


async def _open_request(request: Request) -> tuple[str, RequestKey, Site, Ticket]:
    token = request.path_params["token"]
    key = (await help_tokens(request)).read_follow(token)
    if key is None:
        raise _not_your_request()
    site = await runtime(request).site(key.site_key)
    conversation: Conversation | None = (
        await runtime(request).store.get_conversation(key.conversation_id) if site else None)
    if site is None or conversation is None or conversation.ticket is None or \
            conversation.site_id != site.id or conversation.visitor_id != key.visitor_id:
        raise _not_your_request()
    if site.identity_required:
        # the link was made for an anonymous requester; a site that now takes requests only
        # from its signed-in users opens them no anonymous path, new or old (identity.md)
        raise PageError(403, IDENTITY_HEADING, _identity_message(site), site)
    return token, key, site, conversation.ticket


async def _request_page(request: Request, token: str, key: RequestKey, site: Site,
                        ticket: Ticket, reply: str = "", client_msg_id: str | None = None,
                        error: str | None = None, status: int = 200, seen: bool = False
                        ) -> Response:
    rt = runtime(request)
    messages = await rt.store.messages_after(ticket.conversation_id, 0)
    if seen and messages:  # the requester reads these replies here: none is mailed now
        await rt.store.mark_read(key.visitor_id, ticket.conversation_id, messages[-1].seq)
    shown = ticket_json(ticket)
    thread = [{"type": m.author.type, "author": _author(m, site), "body": m.body,
               "iso": isoformat(m.created_at), "when": rules.format_due(m.created_at)}
              for m in messages]
    return render(
        "help_request.html", status, NO_STORE, site=site, token=token, ticket=ticket,
        requester=key.name, status_label=shown["status_label"], stage_label=shown["stage_label"],
        severity_label=rules.severity(ticket.severity).label, thread=thread,
        promise=first_response_promise(ticket, rt.clock.now()),
        closed=ticket.status == "closed", reply=reply, error=error,
        client_msg_id=client_msg_id or str(uuid.uuid4()), max_body=rt.settings.max_body_chars)


def _author(message: Message, site: Site) -> str:
    if message.author.type == "visitor":
        return "You"
    if message.author.type == "agent":
        return message.author.name or "Support"
    return site.name


async def show_request(request: Request) -> Response:
    token, key, site, ticket = await _open_request(request)
    return await _request_page(request, token, key, site, ticket, seen=True)


async def reply(request: Request) -> Response:
    rt = runtime(request)
    token, key, site, ticket = await _open_request(request)
    fields = await _read_fields(request, rt.settings.max_body_chars)
    body, client_msg_id, error = clean_reply(fields, rt.settings.max_body_chars)
    wait = await _limited(request, key.visitor_id, new_request=False)
    if wait:
        response = await _request_page(request, token, key, site, ticket, body, client_msg_id,
                                       _try_later(wait), 429)
        response.headers["Retry-After"] = wait
        return response
    if error is None:
        visitor = Visitor(id=key.visitor_id, site_id=site.id, user_id=None, name=key.name,
                          email=key.email, verified=False)
        try:
            result = await rt.messaging.visitor_send(visitor, ticket.conversation_id,
                                                     client_msg_id, body)
        except WidgetError as exc:
            return await _request_page(request, token, key, site, ticket, body, client_msg_id,
                                       exc.message, exc.status)
        rt.messaging.announce(visitor, result)
        return RedirectResponse(f"/help/requests/{token}", 303, headers=NO_STORE)
    return await _request_page(request, token, key, site, ticket, body, client_msg_id, error, 422)


routes = [
    Route("/help/new", page(new_form), methods=["GET"]),
    Route("/help/new", page(submit_form), methods=["POST"]),
    Route("/help/requests/{token}", page(show_request), methods=["GET"]),
    Route("/help/requests/{token}", page(reply), methods=["POST"]),
]
