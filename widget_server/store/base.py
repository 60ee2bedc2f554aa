"""The one async interface every storage backend implements (SQLite now, PostgreSQL later).

Writes are whole transactions: each method either commits everything it describes or nothing.
A method returns only after its transaction is committed, so callers may acknowledge at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from widget_server.models import (
    Agent,
    ApiToken,
    Conversation,
    Message,
    PostResult,
    Site,
    Ticket,
    TicketChange,
    Visitor,
)


@dataclass(frozen=True)
class TicketPatch:
    status: str | None = None
    stage: str | None = None
    severity: str | None = None
    assignee_id: int | None = None
    unassign: bool = False


@dataclass(frozen=True)
class VisitorPost:
    visitor: Visitor
    conversation_id: str | None
    client_msg_id: str
    body: str
    severity: str
    subject: str | None
    channel: str = "widget"


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> bool: ...

    # -- setup and administration
    async def secret_key(self) -> str:
        """The persisted server secret, generated on first call."""
        ...

    async def ensure_site(self, name: str, origins: list[str]) -> tuple[Site, bool]: ...
    async def ensure_agent(
        self, email: str, name: str, role: str, password_hash: str | None
    ) -> tuple[Agent, bool]: ...
    async def set_agent_password(self, email: str, password_hash: str) -> Agent: ...
    async def create_api_token(
        self, name: str, token_hash: str, site_id: int, agent_id: int
    ) -> ApiToken: ...
    async def set_setting(self, key: str, value: str) -> None: ...
    async def get_setting(self, key: str) -> str | None: ...

    # -- reads
    async def get_site_by_key(self, key: str) -> Site | None: ...
    async def get_site(self, site_id: int) -> Site | None: ...
    async def list_sites(self) -> list[Site]: ...
    async def get_agent(self, agent_id: int) -> Agent | None: ...
    async def get_agent_by_email(self, email: str) -> Agent | None: ...
    async def find_api_token(self, token_hash: str) -> ApiToken | None: ...
    async def visitor_conversations(self, visitor_id: str) -> list[Conversation]: ...
    async def get_conversation(self, conversation_id: str) -> Conversation | None: ...
    async def messages_after(
        self, conversation_id: str, after_seq: int, limit: int = 500
    ) -> list[Message]:
        """Messages the visitor may see with seq > after_seq, in seq order."""
        ...

    async def list_tickets(
        self,
        site_id: int,
        *,
        status: str | None = None,
        severity: str | None = None,
        limit: int = 50,
        after_number: int | None = None,
    ) -> list[Ticket]: ...
    async def get_ticket(self, site_id: int, number: int) -> tuple[Ticket, str] | None:
        """The ticket and the id of the visitor it belongs to."""
        ...

    async def ticket_messages(self, ticket: Ticket) -> list[Message]:
        """The whole thread as agents see it, internal notes included, in order."""
        ...

    async def ticket_events(self, ticket: Ticket) -> list[dict[str, object]]: ...

    # -- writes
    async def post_visitor_message(self, post: VisitorPost, now: datetime) -> PostResult: ...
    async def post_agent_message(
        self, site_id: int, number: int, agent: Agent, body: str, internal: bool, now: datetime
    ) -> TicketChange: ...
    async def update_ticket(
        self, site_id: int, number: int, agent: Agent, patch: TicketPatch, now: datetime
    ) -> TicketChange: ...
    async def mark_read(self, visitor_id: str, conversation_id: str, seq: int) -> None: ...
