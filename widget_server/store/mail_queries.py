"""Reads and writes of the mail outbox, mixed into the SQLite store like ConsoleQueries.

The write jobs live in ``sqlite_mail.py``; the sender that uses them is ``mail_sender.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from widget_server.clock import isoformat
from widget_server.errors import Conflict, Unprocessable
from widget_server.store import sqlite_alerts as alerts
from widget_server.store import sqlite_mail as jobs
from widget_server.store.console_queries import StoreMixin
from widget_server.store.mail_records import MailPlan, OutboxMail


class MailQueries(StoreMixin):
    _mail: MailPlan | None  # None: mail is off

    async def queue_mail_confirmation(self, site_id: int, visitor_id: str,
                                      conversation_id: str, to_address: str, now: datetime
                                      ) -> int | None:
        """Queue an address confirmation mail; None when the conversation is not the
        visitor's (or mail is off)."""
        if self._mail is None:
            return None
        return await self._write(jobs.queue_confirmation, self._mail, site_id, visitor_id,
                                 conversation_id, to_address, now)

    async def queue_transcript(self, site_id: int, conversation_id: str,
                               visitor_id: str | None, now: datetime) -> str:
        """Queue a transcript mail to the conversation's verified address (returned);
        ``NotFound``, or ``Conflict`` without a verified address or with mail off."""
        if self._mail is None:
            raise Conflict("this server sends no mail", code="mail_off")
        return await self._write(jobs.queue_transcript, self._mail, site_id, conversation_id,
                                 visitor_id, now)

    async def transcript_address(self, site_id: int, conversation_id: str,
                                 visitor_id: str | None) -> str:
        """Where a transcript would go (read before spending a rate limit on it); raises
        as ``queue_transcript`` does."""
        row = await self._fetchone(jobs.TRANSCRIPT_TARGET,
                                   (conversation_id, site_id, visitor_id, visitor_id))
        return jobs.transcript_target(row)[0]

    async def agent_mail_prefs(self, agent_id: int) -> dict[str, bool]:
        return alerts.prefs(await self._fetchone(alerts.PREFS, (agent_id,)))

    async def set_agent_mail_prefs(self, agent_id: int, wanted: dict[str, bool]) -> None:
        await self._write(alerts.set_prefs, agent_id, wanted)

    async def conversation_mail_to(self, conversation_id: str) -> str | None:
        row = await self._fetchone_now("SELECT mail_to FROM conversations WHERE id = ?",
                                       (conversation_id,))
        return row[0] if row else None

    async def confirm_mail_address(self, site_id: int, visitor_id: str, email: str) -> bool:
        return await self._write(jobs.confirm_address, site_id, visitor_id, email)

    async def visitor_mail_confirmed(self, visitor_id: str) -> str | None:
        row = await self._fetchone_now("SELECT mail_confirmed FROM visitors WHERE id = ?",
                                       (visitor_id,))
        return row[0] if row else None

    async def mail_due(self, now: datetime) -> bool:
        """Whether any queued mail is due: a cheap read before claiming in a write."""
        row = await self._fetchone_now(
            "SELECT 1 FROM mail_outbox WHERE state = 'queued' AND next_attempt_at <= ? LIMIT 1",
            (isoformat(now),))
        return row is not None

    async def claim_mail(self, now: datetime, lease: timedelta, limit: int
                         ) -> list[OutboxMail]:
        return await self._write(jobs.claim_due, now, lease, limit)

    async def mail_composed(self, mail_id: int, subject: str, text: str, html: str,
                            headers: dict[str, str], upto_seq: int | None) -> None:
        await self._write(jobs.composed, mail_id, subject, text, html, headers, upto_seq)

    async def mail_sent(self, mail_id: int, now: datetime) -> None:
        await self._write(jobs.sent, mail_id, now)

    async def mail_failed_attempt(self, mail_id: int, error: str,
                                  retry_at: datetime | None) -> None:
        await self._write(jobs.failed_attempt, mail_id, error, retry_at)

    async def outbox(self, site_id: int | None = None, limit: int = 100,
                     state: str | None = None) -> list[OutboxMail]:
        """The newest mails, of one site or all, in one state or any: what admins see."""
        rows = await self._fetchall(
            "SELECT * FROM mail_outbox WHERE (CAST(? AS BIGINT) IS NULL OR site_id = ?)"
            " AND (CAST(? AS TEXT) IS NULL OR state = ?) ORDER BY id DESC LIMIT ?",
            (site_id, site_id, state, state, limit))
        return [jobs.outbox_mail(row) for row in rows]

    async def conversation_mail(self, conversation_id: str) -> list[OutboxMail]:
        """A conversation's mails, oldest first: the ticket view's "Mail" section."""
        rows = await self._fetchall(
            "SELECT * FROM mail_outbox WHERE conversation_id = ? ORDER BY id",
            (conversation_id,))
        return [jobs.outbox_mail(row) for row in rows]

    async def retry_mail(self, mail_id: int, site_ids: list[int]) -> bool:
        return await self._write(jobs.requeue, mail_id, site_ids, self._clock.now())

    async def queue_test_mail(self, site_id: int, to_address: str, subject: str, text: str,
                              html: str, headers: dict[str, str]) -> int:
        if self._mail is None:
            raise Unprocessable("mail is off: WIDGET_SMTP_URL is not set", code="mail_off")
        return await self._write(jobs.queue_composed, self._mail, site_id, to_address, "test",
                                 subject, text, html, headers, self._clock.now())

    async def set_mail_sender_name(self, site_id: int, name: str | None) -> None:
        await self._write(jobs.set_sender_name, site_id, name)

    async def bouncing_among(self, addresses: list[str]) -> set[str]:
        """Which of ``addresses`` bounce (mail_bounces holds them in lowercase)."""
        wanted = sorted({address.lower() for address in addresses})
        if not wanted:
            return set()
        rows = await self._fetchall(
            f"SELECT address FROM mail_bounces WHERE address IN ({', '.join('?' * len(wanted))})",
            tuple(wanted))
        return {str(row[0]) for row in rows}
