"""The records of the mail outbox that the store takes and returns (docs/email.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from widget_server.models import AttachmentInfo, Visitor

MailKind = Literal["acknowledgement", "reply", "solved", "test", "confirm", "transcript",
                   "alert"]
MailState = Literal["queued", "sent", "failed", "skipped"]


@dataclass(frozen=True)
class MailPlan:
    """Mail is on (WIDGET_SMTP_URL is set): what the write jobs need to queue a mail."""

    domain: str  # of WIDGET_MAIL_FROM: the right-hand side of every Message-ID
    delay: timedelta  # WIDGET_MAIL_DELAY_SECONDS: how long a reply may wait to be read


@dataclass(frozen=True)
class ThreadMessage:
    seq: int
    author_type: str
    author_name: str | None
    body: str
    created_at: datetime
    attachments: tuple[AttachmentInfo, ...] = ()  # linked from the mail with signed links


@dataclass(frozen=True)
class MailContext:
    """What composing a claimed mail needs, read in the claim's transaction."""

    site_key: str
    site_name: str
    reference: str
    subject: str
    severity_label: str
    status: str
    first_response_due: datetime | None
    first_response_at: datetime | None
    visitor_id: str
    visitor_name: str | None
    page_url: str | None
    messages: tuple[ThreadMessage, ...] = ()  # a reply mail: the unread agent replies
    sender_name: str | None = None  # the site's sender name, set in the console


@dataclass(frozen=True)
class OutboxMail:
    id: int
    site_id: int
    to_address: str
    kind: MailKind
    conversation_id: str | None
    ticket_number: int | None
    subject: str | None  # None until composed
    text_body: str | None
    html_body: str | None
    headers: dict[str, str]
    message_id: str
    state: MailState
    attempts: int
    send_after: datetime
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    upto_seq: int | None = None
    context: MailContext | None = field(default=None, compare=False)  # set by a claim


@dataclass(frozen=True)
class MailThread:
    """A conversation an inbound answer may land in, with what posting to it needs."""

    conversation_id: str
    site_id: int
    visitor: Visitor
    mail_to: str | None  # the verified address; only its owner may answer by mail
    ticket_number: int | None
    ticket_status: str | None
    channel: str | None
    reference: str | None
