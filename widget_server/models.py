"""Typed records that flow between the store, the domain and the web layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

AuthorType = Literal["visitor", "agent", "system"]
IDENTITY_MODES = ("optional", "required")


@dataclass(frozen=True)
class Site:
    id: int
    key: str
    name: str
    allowed_origins: tuple[str, ...]
    identity_secret: str
    reference_prefix: str
    tier_names: tuple[str, ...] = ("First level", "Second level")
    policy: str | None = None  # the support policy as TOML; None: the default policy
    identity_mode: str = "optional"  # "optional" or "required" (docs/identity.md)
    previous_identity_secret: str | None = None  # still accepted until previous_secret_until
    previous_secret_until: datetime | None = None
    grant_max_hours: int = 168  # longest support access grant; 0: grants off
    retention_days: int | None = None  # None: keep forever (docs/privacy.md)
    mail_sender_name: str | None = None  # From display name of its mails; None: its name
    attachment_max_bytes: int = 10 * 1024 * 1024  # largest attachment (docs/api.md#attachments)
    attachment_max_files: int = 10  # attachments per message
    attachment_types: tuple[str, ...] | None = None  # allowed content types; None: default
    attachment_keep_metadata: bool = False  # keep images' EXIF/GPS instead of removing it

    @property
    def identity_required(self) -> bool:
        return self.identity_mode == "required"

    def identity_secrets(self, now: datetime) -> list[str]:
        """The secrets a user hash may be made with at ``now``: current, then previous."""
        found = [self.identity_secret]
        if self.previous_identity_secret and self.previous_secret_until is not None \
                and now < self.previous_secret_until:
            found.append(self.previous_identity_secret)
        return found

    def allows(self, origin: str | None) -> bool:
        return origin is not None and normalize_origin(origin) in self.allowed_origins


@dataclass(frozen=True)
class Agent:
    id: int
    email: str
    name: str
    role: str
    active: bool
    tier: int = 1

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    site_id: int
    agent_id: int


@dataclass(frozen=True)
class Visitor:
    """Who a visitor token speaks for. ``id`` exists before any database row does."""

    id: str
    site_id: int
    user_id: str | None
    name: str | None
    email: str | None
    verified: bool
    # when the credential naming this visitor was first issued (a renewed token keeps it;
    # None: made just now, from no credential). A visitor erased at or after it is refused
    # at every use: an old token cannot bring an erased visitor back (docs/privacy.md).
    since: datetime | None = field(default=None, compare=False)
    email_verified: bool = False  # the host signed ``email`` (email_hash): it may be mailed


# Records made for every message (Author, Message, PostResult; store.VisitorPost and
# realtime.events.MessagesAdded too) are slotted and not frozen: a frozen dataclass sets each
# field through object.__setattr__, which costs about 4 us of the server's 120 per message in
# the chat benchmark (docs/performance.md). Nothing changes them once built.
@dataclass(slots=True)
class Author:
    type: AuthorType
    name: str | None
    id: str | None = None


@dataclass(frozen=True)
class AttachmentInfo:
    """What a message shows of one attachment; the file itself is served by its id."""

    id: str
    name: str
    size: int
    content_type: str


@dataclass(frozen=True)
class StoredAttachment:
    """An attachment row with what decides who may read it."""

    info: AttachmentInfo
    site_id: int
    storage_key: str
    uploader_visitor_id: str | None
    uploader_agent_id: int | None
    message_id: int | None
    internal: bool  # its message is an internal note (agents only)
    visitor_id: str | None  # the visitor of its message's conversation


@dataclass(frozen=True)
class Uploader:
    site_id: int
    visitor_id: str | None = None
    agent_id: int | None = None


@dataclass(slots=True)  # made per message: see Author
class Message:
    id: int
    conversation_id: str
    seq: int
    author: Author
    body: str
    internal: bool
    created_at: datetime
    client_msg_id: str | None = None
    attachments: tuple[AttachmentInfo, ...] = ()


@dataclass(frozen=True)
class Ticket:
    id: int
    site_id: int
    number: int
    reference: str
    conversation_id: str
    subject: str
    severity: str
    status: str
    stage: str | None
    channel: str
    assignee_id: int | None
    first_response_due: datetime
    first_response_at: datetime | None
    created_at: datetime
    updated_at: datetime
    tier: int = 1
    split_from_id: int | None = None
    merged_into_id: int | None = None
    sla_kind: str = "first_response"
    sla_due: datetime | None = None  # due instant of the running clock; None: paused/stopped
    sla_paused: bool = False
    at_risk: bool = False
    breached: bool = False
    next_response_at: datetime | None = None
    solved_at: datetime | None = None
    closed_at: datetime | None = None
    erased_at: datetime | None = None  # a tombstone: see docs/privacy.md
    erased_reason: str | None = None  # "retention" or "erasure"


@dataclass(frozen=True)
class Conversation:
    id: str
    site_id: int
    visitor_id: str
    last_seq: int
    ticket: Ticket | None


@dataclass(slots=True)  # made per message: see Author
class PostResult:
    """What a stored visitor message produced, or what it had produced the first time."""

    message: Message
    ticket: Ticket | None
    created: list[Message]
    duplicate: bool
    ticket_changed: bool = False


@dataclass(frozen=True)
class TicketChange:
    ticket: Ticket
    visitor_id: str
    messages: list[Message]
    changed: bool = True  # whether the ticket's own fields moved


@dataclass(frozen=True)
class VisitorProfile:
    id: str
    name: str | None
    email: str | None
    verified: bool
    page_url: str | None
    user_agent: str | None
    user_id: str | None = None  # the host's user id, verified or not


@dataclass(frozen=True)
class InboxRow:
    ticket: Ticket
    site_key: str
    site_name: str
    visitor_name: str | None
    visitor_email: str | None
    last_body: str | None
    last_author: str | None
    unread: bool


@dataclass(frozen=True)
class AgentSession:
    id: str
    agent: Agent
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class SavedReply:
    id: int
    site_id: int
    shortcut: str
    title: str
    body: str


@dataclass(frozen=True)
class SearchHit:
    ticket: Ticket
    site_key: str
    snippet: str


@dataclass(frozen=True)
class SweepResult:
    acted: bool  # False when another scheduler holds the lease
    changed: list[tuple[Ticket, str]]  # tickets and their visitor ids
    next_wake: datetime | None


def normalize_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()
