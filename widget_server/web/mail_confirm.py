"""Get replies by email: a widget visitor confirms an address through a link we mail.

``POST /api/widget/v1/email-confirmations`` (visitor token, ``{conversation, email}``) queues
one mail to the typed address, with a signed link valid for a day; that mail is all a typed
address ever gets. ``GET /api/widget/v1/email-confirmations/{token}``, the link, shows a
button whose ``POST`` records the address as the visitor's confirmed one: their requests,
open and later, are mailed to it (docs/email.md). Rate-limited per address and per client
address (abuse.py).
``POST /api/widget/v1/transcripts`` (``{conversation}``) mails the public thread to the
conversation's verified address; never to an address merely typed.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from widget_server.abuse import enforce
from widget_server.client_address import client_address
from widget_server.errors import NotFound, Unauthorized, Unprocessable
from widget_server.models import Site, Visitor
from widget_server.text import one_line
from widget_server.web.bearer import bearer_token
from widget_server.web.cors import check_origin, preflight, with_cors
from widget_server.web.errors import read_json_object, runtime
from widget_server.web.help_fields import EMAIL, EMAIL_MAX
from widget_server.web.responses import JSONResponse
from widget_server.web.session import identity_required
from widget_server.web.templating import render

MAX_ID = 64
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


async def _visitor_call(request: Request) -> tuple[Site, Visitor, str, dict[str, Any]]:
    """The site, visitor, conversation id and body of a widget mail call."""
    rt = runtime(request)
    data = await read_json_object(request)
    site_key = data.get("site")
    site = await rt.site(site_key) if isinstance(site_key, str) else None
    if site is None:
        raise NotFound("no site has this key", code="unknown_site")
    check_origin(request, site)
    if rt.settings.smtp_url is None:
        raise NotFound("this server sends no mail", code="mail_off")
    token = bearer_token(request) or data.get("token")
    if not isinstance(token, str) or not token:
        raise Unauthorized("a visitor token is required", code="invalid_token")
    visitor = await rt.token_visitor(token, site)
    if site.identity_required and not visitor.verified:
        raise identity_required()
    conversation = data.get("conversation")
    if not isinstance(conversation, str) or not conversation or len(conversation) > MAX_ID:
        raise Unprocessable("conversation must be the id of one of your requests",
                            code="invalid_conversation")
    return site, visitor, conversation, data


async def ask(request: Request) -> Response:
    rt = runtime(request)
    site, visitor, conversation, data = await _visitor_call(request)
    email = data.get("email")
    email = one_line(email) if isinstance(email, str) else ""
    if len(email) > EMAIL_MAX or not EMAIL.fullmatch(email):
        raise Unprocessable("email must be an address like name@example.com",
                            code="invalid_email")
    enforce(await rt.limits.mail_confirmation(
        email, client_address(request, rt.settings.trusted_proxies)),
            "too many confirmation mails asked for; try again later")
    queued = await rt.store.queue_mail_confirmation(site.id, visitor.id, conversation, email,
                                                    rt.clock.now())
    if queued is None:
        raise NotFound("no request of yours has this id", code="unknown_conversation")
    return JSONResponse({"email": email, "status": "confirmation_sent"}, status_code=202,
                        headers={"Cache-Control": "no-store"})


async def transcript(request: Request) -> Response:
    """The public thread mailed to the conversation's verified address, and only there."""
    rt = runtime(request)
    site, visitor, conversation, _ = await _visitor_call(request)
    await rt.store.transcript_address(site.id, conversation, visitor.id)  # refusals cost none
    enforce(await rt.limits.transcript(conversation), "this transcript was mailed several times "
            "this hour; try again later")
    await rt.store.queue_transcript(site.id, conversation, visitor.id, rt.clock.now())
    return JSONResponse({"status": "transcript_sent"}, status_code=202,
                        headers={"Cache-Control": "no-store"})


async def confirm_page(request: Request) -> Response:
    """The link in the mail shows a button and writes nothing: mail scanners and link
    previews follow links, and only a person's click may confirm an address."""
    rt = runtime(request)
    found = rt.help_tokens.read_confirm(request.path_params["token"])
    site = await rt.site(found.site_key) if found is not None else None
    if found is None or site is None:
        return _broken_link(site)
    return render("mail_confirm.html", headers=NO_STORE, site=site,
                  heading="Confirm your address",
                  message=f"Get replies to your requests on {site.name} at {found.email}?")


async def confirm(request: Request) -> Response:
    """The button's POST: records the address; doing so twice records it again."""
    rt = runtime(request)
    found = rt.help_tokens.read_confirm(request.path_params["token"])
    site = await rt.site(found.site_key) if found is not None else None
    if found is None or site is None or not await rt.store.confirm_mail_address(
            site.id, found.visitor_id, found.email):
        return _broken_link(site)
    return render("base.html", headers=NO_STORE, site=site, heading="Address confirmed",
                  message=f"Replies to your requests on {site.name} will be mailed to "
                          f"{found.email}. You can close this page.")


def _broken_link(site: Site | None) -> Response:
    return render("base.html", status=400, headers=NO_STORE, site=site,
                  heading="This link does not work",
                  message="It is not a confirmation link of ours, or it is more than a "
                          "day old. Ask for replies by email again in the chat.")


routes = [
    Route("/api/widget/v1/email-confirmations", with_cors(ask), methods=["POST"]),
    Route("/api/widget/v1/email-confirmations", preflight, methods=["OPTIONS"]),
    Route("/api/widget/v1/email-confirmations/{token}", confirm_page, methods=["GET"]),
    Route("/api/widget/v1/email-confirmations/{token}", confirm, methods=["POST"]),
    Route("/api/widget/v1/transcripts", with_cors(transcript), methods=["POST"]),
    Route("/api/widget/v1/transcripts", preflight, methods=["OPTIONS"]),
]
