"""The built-in SMTP receiver of answers (aiosmtpd), listening on ``WIDGET_SMTP_LISTEN``.

It runs on the server's own event loop, so a mail is stored through the same store and hub
as a message typed in the widget. ``RCPT TO`` an address that is neither a genuine reply
address nor our own From address gets 550 without a database lookup; a mail over
``WIDGET_MAIL_MAX_BYTES`` gets 552 (aiosmtpd's ``data_size_limit``); a mail no conversation
takes gets 550 after ``DATA``; a failure of ours, 451 (the sending server retries).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from widget_server.mail_inbound import parse_mail
from widget_server.mail_route import MailRefused, MailRouter

log = logging.getLogger(__name__)


class InboundHandler:
    def __init__(self, router: MailRouter) -> None:
        self.router = router

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if not await self.router.accepts(address):
            return "550 5.1.1 no such recipient"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        try:
            mail = parse_mail(raw)
        except Exception:  # the email package refuses it: retrying cannot help
            log.info("inbound mail from %s is not a mail", envelope.mail_from)
            return "554 5.6.0 not a mail (RFC 5322)"
        try:
            delivery = await self.router.deliver(mail, envelope.rcpt_tos)
        except MailRefused as exc:
            log.info("inbound mail from %s refused: %s", envelope.mail_from, exc.message)
            return f"550 5.7.1 {exc.message}"
        except Exception:
            log.exception("inbound mail from %s not stored", envelope.mail_from)
            return "451 4.3.0 not stored; try again later"
        log.info("inbound mail from %s: %s %s", envelope.mail_from, delivery.outcome,
                 delivery.ticket or "")
        return "250 OK"


async def start_receiver(router: MailRouter, host: str, port: int, max_bytes: int
                         ) -> asyncio.Server:
    handler = InboundHandler(router)
    # aiosmtpd logs every connection and command at info; ours logs each mail's outcome
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, log.getEffectiveLevel()))

    def protocol() -> Any:
        return SMTP(handler, data_size_limit=max_bytes, ident="widget-server",
                    enable_SMTPUTF8=True)

    server = await asyncio.get_running_loop().create_server(protocol, host, port)
    log.info("SMTP receiver of answers listens on %s:%d", host, port)
    return server
