"""The console's "Email alerts" page: which mails each agent gets about tickets.

Every agent sets their own (docs/email.md): a new ticket on their sites, a visitor's reply
on a ticket assigned to them, SLA at risk, SLA breached, a ticket escalated to their tier.
Without a choice saved, a visitor's reply on their tickets and SLA at risk.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from widget_server.models import AgentSession
from widget_server.store.sqlite_alerts import ALERTS
from widget_server.web.console.auth import console_page, page
from widget_server.web.errors import runtime
from widget_server.web.forms import read_form

PATH = "/console/email-alerts"
LABELS = {
    "new_ticket": "A new ticket on one of my sites",
    "visitor_reply": "The visitor replied on a ticket assigned to me",
    "sla_at_risk": "A ticket's SLA is at risk (mine, or any while nobody is assigned)",
    "sla_breached": "A ticket's SLA is breached (mine, or any while nobody is assigned)",
    "escalated": "A ticket was escalated to my tier",
}


@console_page
async def email_alerts(request: Request) -> Response:
    rt = runtime(request)
    session: AgentSession = request.state.session
    if request.method == "POST":
        form = await read_form(request)
        await rt.store.set_agent_mail_prefs(session.agent.id,
                                            {alert: alert in form for alert in ALERTS})
        return RedirectResponse(f"{PATH}?saved=1", 303)
    wanted = await rt.store.agent_mail_prefs(session.agent.id)
    return page(request, "console/mail_prefs.html",
                choices=[(alert, LABELS[alert], wanted[alert]) for alert in ALERTS],
                mail_on=rt.settings.smtp_url is not None,
                saved=request.query_params.get("saved") == "1")


routes = [Route(PATH, email_alerts, methods=["GET", "POST"])]
