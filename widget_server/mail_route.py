"""Where an inbound mail goes (docs/email.md#inbound-mail): a delivery failure marks the
addresses bouncing; an answer lands in its conversation as a visitor message, published
live to the console and the widget like one typed there.

The conversation is named by the signed ``r+`` recipient (checked without the database: a
forged one is refused outright), else by In-Reply-To/References naming one of our mails.
Only the conversation's verified address may answer: every mail we send carries its reply
address, so a forwarded mail would otherwise let anyone it reached write as the customer.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from widget_server.attachments import safe_name
from widget_server.errors import Conflict, WidgetError
from widget_server.mail_inbound import InboundMail
from widget_server.mail_settings import mail_from_address
from widget_server.mail_tokens import parse_reply_address
from widget_server.models import Uploader, Visitor
from widget_server.runtime import Runtime

log = logging.getLogger(__name__)
MAX_RECIPIENTS = 20  # looked up as support addresses; a mail to more is a mailing anyway


class MailRefused(WidgetError):
    """No conversation takes this mail, or its sender may not answer it."""

    code = "recipient_refused"
    status = 422


@dataclass(frozen=True)
class Delivery:
    outcome: str  # answer, follow_up, request, bounce or ignored
    ticket: int | None = None  # the ticket's number it landed in
    detail: str = ""


def _msg_id(mail: InboundMail) -> str:
    """The same mail delivered twice is stored once: its Message-ID is its client id."""
    return "mail-" + hashlib.sha256((mail.message_id or mail.text).encode()).hexdigest()[:32]


class MailRouter:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        settings = rt.settings
        self.reply_domain = settings.mail_reply_domain
        self.own_address = mail_from_address(settings.mail_from).lower() \
            if settings.mail_from else None

    async def accepts(self, address: str) -> bool:
        """Whether the SMTP receiver takes mail for ``address``: a genuine reply address
        (an address of the reply domain is decided without the database), our own From
        address (delivery failures come back to it, and an answer to it is routed by
        In-Reply-To), or a site's support address."""
        address = address.strip().strip("<>").lower()
        if address == self.own_address:
            return True
        if self.reply_domain is not None and address.endswith("@" + self.reply_domain):
            return parse_reply_address(address, self.rt.secret_keys,
                                       self.reply_domain) is not None
        return await self.rt.store.support_site(address) is not None

    def _named(self, recipients: Sequence[str]) -> str | None:
        """The conversation a reply address among ``recipients`` names; MailRefused for a
        forged address of our reply domain."""
        if self.reply_domain is None:
            return None
        for recipient in recipients:
            address = recipient.strip().strip("<>").lower()
            if not address.endswith("@" + self.reply_domain):
                continue
            found = parse_reply_address(address, self.rt.secret_keys, self.reply_domain)
            if found is None:
                raise MailRefused(f"{address} is not a reply address of ours")
            return found
        return None

    async def deliver(self, mail: InboundMail, recipients: Sequence[str],
                      site_id: int | None = None) -> Delivery:
        """Store what ``mail`` brings. ``site_id``: only that site's conversations (the HTTP
        way in, whose API token belongs to one site)."""
        store = self.rt.store
        if mail.failed:
            for address in mail.failed:
                await store.mark_bouncing(address, mail.reason or "delivery failed")
            log.info("mail to %s bounced: %s", ", ".join(mail.failed), mail.reason)
            return Delivery("bounce", detail=", ".join(mail.failed))
        conversation_id = self._named([*recipients, *mail.recipients]) or \
            await store.conversation_of_mail(list(mail.refers_to))
        thread = await store.mail_thread(conversation_id) if conversation_id else None
        if thread is None or (site_id is not None and thread.site_id != site_id):
            support = await self._support_site([*recipients, *mail.recipients], site_id)
            if support is None:
                raise MailRefused("this mail answers none of our conversations")
            return await self._new_request(mail, support)
        if thread.mail_to is None or mail.sender != thread.mail_to.lower():
            raise MailRefused("only the address the request's mails go to may answer them",
                              code="sender_not_verified")
        if not mail.text.strip() and not mail.files:
            return Delivery("ignored", thread.ticket_number, "the mail adds no text")
        files, note, most = await self._attach(mail, thread.site_id, thread.visitor.id)
        automatic, body, client_msg_id = self._automatic(mail), self._body(mail, note), \
            _msg_id(mail)
        messaging = self.rt.messaging
        try:
            result = await messaging.visitor_send(thread.visitor, thread.conversation_id,
                                                  client_msg_id, body, attachments=files,
                                                  max_files=most)
            outcome = "answer"
        except Conflict as exc:
            if exc.code != "conversation_closed" or thread.ticket_number is None:
                raise
            subject = f"Follow-up to {thread.reference}"
            result = await messaging.visitor_send(
                thread.visitor, None, client_msg_id, body, subject=subject,
                channel=thread.channel or "form", mail_to=thread.mail_to,
                acknowledge=not automatic, attachments=files, max_files=most,
                follow_up_of=thread.ticket_number, follow_up_via="mail")
            outcome = "follow_up"
        messaging.announce(thread.visitor, result)
        number = result.ticket.number if result.ticket else thread.ticket_number
        return Delivery(outcome, number, "automatic: nothing is sent in answer"
                        if automatic else "")

    def _automatic(self, mail: InboundMail) -> bool:
        """Our own mail coming back, or an auto-responder's: stored, never answered
        (RFC 3834)."""
        return mail.automatic or mail.sender == self.own_address

    def _body(self, mail: InboundMail, note: str = "") -> str:
        """The mail's text, and the note on files not kept, within the longest body."""
        room = self.rt.settings.max_body_chars - len(note)
        return (mail.text[:max(room, 0)] + note)[:self.rt.settings.max_body_chars]

    async def _attach(self, mail: InboundMail, site_id: int, visitor_id: str
                      ) -> tuple[tuple[str, ...], str, int]:
        """Keep the mail's files like a visitor's uploads (the same checks): their ids, a
        note naming those refused (too large, a type not allowed, too many), and the
        site's files per message."""
        site = await self.rt.store.get_site(site_id)
        if not mail.files or site is None:
            return (), "", 10
        kept: list[str] = []
        refused: list[str] = []
        for file in mail.files:
            name = safe_name(file.name)
            if len(kept) >= site.attachment_max_files:
                refused.append(f"{name} (more than {site.attachment_max_files} files)")
                continue
            try:
                info = await self.rt.attachments.store_bytes(
                    file.data, file.name, site, Uploader(site.id, visitor_id=visitor_id))
            except WidgetError as exc:
                refused.append(f"{name} ({exc.message})")
                continue
            kept.append(info.id)
        note = f"\n\n[Attachments not kept: {'; '.join(refused)}]" if refused else ""
        return tuple(kept), note, site.attachment_max_files

    async def _support_site(self, recipients: Sequence[str], site_id: int | None
                            ) -> int | None:
        for recipient in recipients[:MAX_RECIPIENTS]:
            found = await self.rt.store.support_site(recipient.strip().strip("<>"))
            if found is not None and site_id in {None, found}:
                return found
        return None

    async def _new_request(self, mail: InboundMail, site_id: int) -> Delivery:
        """A mail to a site's support address: a new ticket, acknowledged by mail like a
        Help Form request (unless the mail is automatic), its follow-ups mailed back."""
        if "@" not in mail.sender:
            raise MailRefused("a new request needs a From address", code="sender_not_verified")
        if not mail.text.strip() and not mail.files:
            return Delivery("ignored", None, "the mail adds no text")
        automatic = self._automatic(mail)
        # the visitor of this one mail, named after it: delivered twice, it is one request
        visitor = Visitor(id="v_" + _msg_id(mail)[5:29], site_id=site_id, user_id=None,
                          name=mail.sender_name, email=mail.sender, verified=False)
        subject = mail.subject[:200] or None
        files, note, most = await self._attach(mail, site_id, visitor.id)
        result = await self.rt.messaging.visitor_send(
            visitor, None, _msg_id(mail), self._body(mail, note), subject=subject,
            channel="email", mail_to=mail.sender, acknowledge=not automatic,
            attachments=files, max_files=most)
        self.rt.messaging.announce(visitor, result)
        return Delivery("request", result.ticket.number if result.ticket else None,
                        "automatic: nothing is sent in answer" if automatic else "")
