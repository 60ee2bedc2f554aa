"""The mail sender: a background loop that sends the outbox's due mails over SMTP.

Each round claims the due rows (a write that leases them, so several processes never send
the same row at once and a process killed mid-send leaves them to the next claim), has the
ones not yet composed composed and stored (from then on every attempt sends the same text
under the same Message-ID), and sends them on one connection. A mail is marked sent as soon
as the server accepts it. A temporary failure (no connection, a 4xx answer) is retried with
exponential backoff; a permanent one (a 5xx answer) or ``MAX_ATTEMPTS`` failures give up,
the reason kept on the row. Started by app.py only when WIDGET_SMTP_URL is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING

import aiosmtplib

from widget_server.background import BackgroundLoop
from widget_server.clock import Clock
from widget_server.config import Settings
from widget_server.help_tokens import HelpTokens, MailConfirmation, RatingLink, RequestKey
from widget_server.mail_compose import compose, from_name, one_line
from widget_server.mail_settings import SmtpUrl, mail_from_address
from widget_server.mail_tokens import reply_address
from widget_server.store.mail_records import OutboxMail

if TYPE_CHECKING:
    from widget_server.store import Store

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how often the outbox is looked at; a look is one indexed read
BATCH = 20  # mails claimed (and sent on one connection) per round
LEASE = timedelta(minutes=5)  # a claimed mail is claimed again after this if not settled
RETRY_FIRST = timedelta(minutes=2)  # then doubling: 2, 4, 8 ... minutes
RETRY_CAP = timedelta(hours=6)
MAX_ATTEMPTS = 10  # about 15 hours of retrying, then the mail is given up
SMTP_TIMEOUT = 30.0
SMTP_LEASE_MARGIN = timedelta(seconds=2 * SMTP_TIMEOUT)  # no send may start past its lease
STOP_WAIT = SMTP_TIMEOUT  # a graceful stop waits this long for the mails being sent
AUTO_SUBMITTED = {"acknowledgement": "auto-replied", "reply": "auto-generated",
                  "solved": "auto-generated", "test": "auto-generated",
                  "confirm": "auto-generated", "transcript": "auto-generated",
                  "alert": "auto-generated"}  # RFC 3834
CONFIRM_PATH = "/api/widget/v1/email-confirmations/"
RATING_PATH = "/api/widget/v1/ratings/"


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt."""
    doubled: timedelta = RETRY_FIRST * 2 ** min(max(attempts - 1, 0), 20)
    return min(doubled, RETRY_CAP)


def failure(exc: BaseException) -> tuple[str, bool]:
    """The reason to keep, and whether retrying may help (a 4xx, a lost connection) or not
    (a 5xx answer to this mail)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        refused = exc.recipients[0]
        return f"{refused.code} {refused.message}", not 500 <= refused.code < 600
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):  # the operator's to fix: retry
        return f"authentication failed: {exc.code} {exc.message}", True
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}", not 500 <= exc.code < 600
    return f"{type(exc).__name__}: {exc}", True


class MailSender(BackgroundLoop):
    task_name = "mail-sender"

    def __init__(self, store: Store, clock: Clock, settings: Settings, secret_key: str,
                 help_tokens: HelpTokens,
                 attachment_link: Callable[[str], str] | None = None) -> None:
        assert settings.smtp_url is not None and settings.mail_from
        self.store = store
        self.clock = clock
        self.smtp: SmtpUrl = settings.smtp_url
        self.from_address = mail_from_address(settings.mail_from)
        self.reply_domain = settings.mail_reply_domain
        self.base_url = settings.base_url
        self.secret_key = secret_key
        self.help_tokens = help_tokens
        self.attachment_link = attachment_link  # an attachment id's signed URL for mails
        self._stopping = False
        self._round: asyncio.Future[None] | None = None

    async def stop(self) -> None:
        """Let the round under way finish (at most ``STOP_WAIT``), then stop. Cancelled
        between the server's acceptance of a mail and the write that records it, the mail
        would be sent again after the restart."""
        self._stopping = True
        if self._round is not None and not self._round.done():
            # a failed round is logged by the loop; one too slow is cancelled below
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._round), STOP_WAIT)
        await super().stop()
        if self._round is not None and not self._round.done():
            self._round.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._round

    async def _loop(self) -> None:
        while not self._stopping:
            self._round = asyncio.ensure_future(self._rounds())
            try:  # shielded: stop() waits for the round instead of cancelling it
                await asyncio.shield(self._round)
            except Exception:
                log.exception("mail sender round failed; trying again shortly")
            await asyncio.sleep(POLL_SECONDS)

    async def _rounds(self) -> None:
        while await self.run_once() == BATCH:
            pass  # a full batch: more may be due

    async def run_once(self) -> int:
        """Send what is due; return how many mails were claimed."""
        now = self.clock.now()
        if self._stopping or not await self.store.mail_due(now):
            return 0
        claimed = await self.store.claim_mail(now, LEASE, BATCH)
        ready = []
        for mail in claimed:
            try:
                ready.append((mail, await self._message(mail)))
            except Exception as exc:  # e.g. an address Python's email package refuses
                log.exception("mail %s could not be composed", mail.id)
                await self.store.mail_failed_attempt(mail.id, f"not composed: {exc}", None)
        if ready:
            await self._send(ready, now + LEASE - SMTP_LEASE_MARGIN)
        return len(claimed)

    async def _message(self, mail: OutboxMail) -> EmailMessage:
        subject, text, html, headers = mail.subject, mail.text_body, mail.html_body, mail.headers
        if subject is None or text is None or html is None:
            composed = compose(mail, self._follow_url(mail), self.clock.now(),
                               await self._rating_url(mail), self.attachment_link)
            subject, text, html = composed.subject, composed.text, composed.html
            headers = {**mail.headers, **self._headers(mail)}
            await self.store.mail_composed(mail.id, subject, text, html, headers,
                                           composed.upto_seq)
        site_name = one_line(mail.context.site_name) if mail.context else ""
        message = EmailMessage()
        message["Message-ID"] = mail.message_id
        message["Date"] = format_datetime(mail.created_at)
        message["From"] = Address(display_name=headers.get("X-Site-Name", site_name),
                                  addr_spec=self.from_address)
        message["To"] = Address(addr_spec=mail.to_address)
        message["Subject"] = subject
        message["Auto-Submitted"] = AUTO_SUBMITTED[mail.kind]
        if "Reply-To" in headers:
            message["Reply-To"] = headers["Reply-To"]
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message

    def _headers(self, mail: OutboxMail) -> dict[str, str]:
        assert mail.context is not None
        # the From name, kept for the retries
        headers = {"X-Site-Name": from_name(mail.context.site_name, mail.context.sender_name)}
        # an address not yet confirmed, or an agent's, gets no way to write as the visitor
        if self.reply_domain and mail.conversation_id and mail.kind not in {"confirm",
                                                                            "alert"}:
            headers["Reply-To"] = reply_address(self.secret_key, mail.conversation_id,
                                                self.reply_domain)
        return headers

    def _follow_url(self, mail: OutboxMail) -> str:
        context = mail.context
        assert context is not None and mail.conversation_id is not None
        if mail.kind == "alert":  # to an agent: the ticket in the console
            return f"{self.base_url}/console/tickets/{context.site_key}/{mail.ticket_number}"
        if mail.kind == "confirm":  # the link confirms; it opens nothing of the request
            token = self.help_tokens.confirm(MailConfirmation(
                context.site_key, context.visitor_id, mail.conversation_id, mail.to_address))
            return f"{self.base_url}{CONFIRM_PATH}{token}"
        token = self.help_tokens.follow(RequestKey(context.site_key, context.visitor_id,
                                                   mail.conversation_id, context.visitor_name,
                                                   mail.to_address))
        return f"{self.base_url}/help/requests/{token}"

    async def _rating_url(self, mail: OutboxMail) -> str | None:
        """The solved mail's rating link (without its score), if the site asks for ratings."""
        context = mail.context
        if mail.kind != "solved" or context is None or mail.conversation_id is None:
            return None
        site = await self.store.get_site_by_key(context.site_key)
        if site is None or not site.ratings_enabled:
            return None
        token = self.help_tokens.rating(RatingLink(context.site_key, context.visitor_id,
                                                   mail.conversation_id))
        return f"{self.base_url}{RATING_PATH}{token}"

    def _client(self) -> aiosmtplib.SMTP:
        smtp = self.smtp
        return aiosmtplib.SMTP(hostname=smtp.host, port=smtp.port,
                               use_tls=smtp.security == "tls",
                               start_tls=smtp.security == "starttls",
                               username=smtp.username, password=smtp.password,
                               timeout=SMTP_TIMEOUT)

    async def _send(self, ready: list[tuple[OutboxMail, EmailMessage]], deadline: datetime
                    ) -> None:
        """Send on one connection; no send starts after ``deadline``, near the end of the
        claim's lease, after which another process may claim the same mails."""
        client = self._client()
        try:
            await client.connect()
        except Exception as exc:
            reason, _ = failure(exc)
            log.warning("mail server %s unreachable: %s", self.smtp, reason)
            for mail, _message in ready:
                await self._failed(mail, reason, temporary=True)
            return
        try:
            for mail, message in ready:
                if self.clock.now() >= deadline:
                    log.warning("mail server %s too slow: %d mails left for later", self.smtp,
                                len(ready) - ready.index((mail, message)))
                    break
                if not client.is_connected:
                    await self._failed(mail, "the mail server closed the connection", True)
                    continue
                try:
                    await client.send_message(message)
                except Exception as exc:
                    reason, temporary = failure(exc)
                    await self._failed(mail, reason, temporary)
                else:
                    await self.store.mail_sent(mail.id, self.clock.now())
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except Exception:  # the mails are settled; a rude goodbye changes nothing
                    client.close()

    async def _failed(self, mail: OutboxMail, reason: str, temporary: bool) -> None:
        attempts = mail.attempts + 1
        give_up = not temporary or attempts >= MAX_ATTEMPTS
        retry_at = None if give_up else self.clock.now() + retry_delay(attempts)
        if give_up:
            log.warning("mail %s to %s given up after %d attempts: %s", mail.id,
                        mail.to_address, attempts, reason)
        await self.store.mail_failed_attempt(mail.id, reason, retry_at)
