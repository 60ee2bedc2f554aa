"""``POST /api/v1/inbound-email``: an inbound mail forwarded by HTTP (docs/email.md).

For mail providers that deliver by webhook: the body is the raw RFC 5322 message, the
bearer token an API token of the site whose conversations it may answer. The answer is
stored exactly as the SMTP receiver stores it (mail_route.py).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from widget_server.errors import Unprocessable
from widget_server.mail_inbound import InboundMail, parse_mail
from widget_server.mail_route import MailRouter
from widget_server.runtime import Runtime
from widget_server.web.bearer import authenticate
from widget_server.web.bodies import read_body
from widget_server.web.responses import JSONResponse


async def inbound_email(request: Request) -> Response:
    site_id, _ = await authenticate(request)
    rt: Runtime = request.app.state.runtime
    raw = await read_body(request, rt.settings.mail_max_bytes)
    if not raw.strip():
        raise Unprocessable("send the raw mail (RFC 5322) as the body", code="invalid_message")
    try:
        mail: InboundMail = parse_mail(raw)
    except Exception:  # the email package refuses it: no mail we could store
        raise Unprocessable("the body is not a mail (RFC 5322)",
                            code="invalid_message") from None
    delivery = await MailRouter(rt).deliver(mail, (), site_id)
    return JSONResponse({"outcome": delivery.outcome, "ticket": delivery.ticket,
                         "detail": delivery.detail}, status_code=202)


routes = [Route("/api/v1/inbound-email", inbound_email, methods=["POST"])]
