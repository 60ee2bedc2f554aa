"""Console pages of outbound mail (docs/email.md): the "Mail" section of a ticket, and for
admins the outbox page (filters by state, each failure's reason, "Retry", "Send a test mail").

Every POST is an ``admin_page`` one: signed in as an admin, from this server's own pages,
with the session's CSRF token. A retry and a test mail are store write jobs; the mail
sender delivers them like any other mail. Without WIDGET_SMTP_URL nothing is mailed, and
the pages say so.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from widget_server.clock import isoformat, parse_iso
from widget_server.errors import NotFound
from widget_server.mail_compose import compose_test, from_name
from widget_server.models import AgentSession, Site, Ticket
from widget_server.runtime import Runtime
from widget_server.store.mail_records import OutboxMail
from widget_server.text import one_line
from widget_server.web.console import present
from widget_server.web.console.auth import admin_page, page
from widget_server.web.errors import runtime
from widget_server.web.forms import read_form
from widget_server.web.help_fields import EMAIL, EMAIL_MAX

# What each state of a mail is called in the console. "bouncing" is no state of a row: a
# mail to an address whose mail came back undeliverable (mail_bounces) shows as bouncing,
# whatever its row says (a queued one will be skipped).
STATE_LABELS = {"queued": "Queued", "sent": "Sent", "failed": "Failed", "skipped": "Skipped",
                "bouncing": "Bouncing"}
KIND_LABELS = {"acknowledgement": "Acknowledgement", "reply": "Reply", "solved": "Solved",
               "test": "Test mail"}
FILTERS = ("queued", "sent", "failed", "skipped")
OUTBOX_LIMIT = 200
BOUNCES_SHOWN = 100
NOTICES = {"retried": "The mail is queued again; the sender tries it within seconds.",
           "test-queued": "The test mail is queued; it shows as Sent below once the mail "
                          "server accepted it."}


def mail_on(rt: Runtime) -> bool:
    return rt.settings.smtp_url is not None


def _when(moment: datetime | None) -> dict[str, str] | None:
    return {"iso": isoformat(moment), "text": present.when(moment)} if moment else None


def mail_row(mail: OutboxMail, bouncing: bool = False) -> dict[str, object]:
    """One mail as the pages show it; every text is escaped by the templates."""
    state = "bouncing" if bouncing else mail.state
    return {"id": mail.id, "mail": mail, "kind": KIND_LABELS.get(mail.kind, mail.kind),
            "state": state, "state_label": STATE_LABELS.get(state, state),
            "queued": _when(mail.created_at), "sent": _when(mail.sent_at),
            "next": _when(mail.next_attempt_at) if mail.state == "queued" else None,
            "error": mail.last_error if mail.state != "sent" else None}


async def ticket_mail(rt: Runtime, ticket: Ticket) -> dict[str, object]:
    """The ticket view's "Mail" section: what was mailed about the ticket, and when."""
    mails = await rt.store.conversation_mail(ticket.conversation_id)
    bouncing = await rt.store.bouncing_among([mail.to_address for mail in mails])
    return {"on": mail_on(rt), "rows": [mail_row(mail, mail.to_address.lower() in bouncing)
                                        for mail in mails]}


def _session(request: Request) -> AgentSession:
    session: AgentSession = request.state.session
    return session


async def _sites(request: Request) -> list[Site]:
    store = runtime(request).store
    allowed = set(await store.agent_site_ids(_session(request).agent))
    return [site for site in await store.list_sites() if site.id in allowed]


async def _outbox_page(request: Request, status: int = 200, errors: dict[str, str] | None = None,
                       values: dict[str, str] | None = None) -> Response:
    rt = runtime(request)
    state = request.query_params.get("state", "")
    state = state if state in FILTERS else ""
    sites = await _sites(request)
    names = {site.id: site for site in sites}
    mails = [mail for mail in await rt.store.outbox(None, OUTBOX_LIMIT, state or None)
             if mail.site_id in names]
    bouncing = await rt.store.bouncing_among([mail.to_address for mail in mails])
    rows = [{**mail_row(mail, mail.to_address.lower() in bouncing), "site": names[mail.site_id],
             "ticket_url": (f"/console/tickets/{names[mail.site_id].key}/{mail.ticket_number}"
                            if mail.ticket_number is not None else None)} for mail in mails]
    return page(request, "console/admin_mail.html", status, rows=rows, state=state,
                filters=[(key, STATE_LABELS[key]) for key in FILTERS], sites=sites,
                smtp=str(rt.settings.smtp_url or ""),
                bounces=[{"address": address, "reason": reason,
                          "since": present.when(parse_iso(since))} for address, reason, since
                         in await rt.store.bouncing_addresses(BOUNCES_SHOWN)],
                errors=errors or {}, values=values or {},
                notice=NOTICES.get(request.query_params.get("done", "")))


@admin_page
async def outbox(request: Request) -> Response:
    return await _outbox_page(request)


@admin_page
async def retry(request: Request) -> Response:
    rt = runtime(request)
    if not mail_on(rt):
        return await _outbox_page(request, 422, {"retry": "Mail is off: set WIDGET_SMTP_URL "
                                                 "and restart the server to send mail."})
    site_ids = [site.id for site in await _sites(request)]
    if not await rt.store.retry_mail(request.path_params["mail_id"], site_ids):
        raise NotFound("no failed mail has this number", code="mail_not_found")
    return RedirectResponse("/console/admin/mail?done=retried", 303)


@admin_page
async def send_test(request: Request) -> Response:
    rt = runtime(request)
    form = await read_form(request)
    to = one_line(str(form.get("to", "")))
    key = one_line(str(form.get("site", "")))
    errors: dict[str, str] = {}
    sites = {site.key: site for site in await _sites(request)}
    site = sites.get(key)
    if not mail_on(rt):
        errors["to"] = "Mail is off: set WIDGET_SMTP_URL and restart the server to send mail."
    elif len(to) > EMAIL_MAX or not EMAIL.fullmatch(to):
        errors["to"] = "Enter an email address like ana@example.com."
    if site is None:
        errors["site"] = "Choose a site."
    if errors or site is None:
        return await _outbox_page(request, 422, errors, {"to": to, "site": key})
    composed = compose_test(site.name, _session(request).agent.name)
    await rt.store.queue_test_mail(
        site.id, to, composed.subject, composed.text, composed.html,
        {"X-Site-Name": from_name(site.name, site.mail_sender_name)})
    return RedirectResponse("/console/admin/mail?done=test-queued", 303)


routes: list[BaseRoute] = [
    Route("/console/admin/mail", outbox, methods=["GET"]),
    Route("/console/admin/mail/test", send_test, methods=["POST"]),
    Route("/console/admin/mail/{mail_id:id}/retry", retry, methods=["POST"]),
]
