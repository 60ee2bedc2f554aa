"""The path of a message: validate, store as one transaction, then announce on the hub.

Web endpoints call this module; it calls the store and the hub. Nothing is published before
the store has committed, so a live frame never shows a message that could still be lost.
"""

from __future__ import annotations

from collections.abc import Callable

from widget_server.clock import Clock
from widget_server.errors import Unprocessable, WidgetError
from widget_server.models import Agent, Author, PostResult, Ticket, TicketChange, Visitor
from widget_server.realtime.events import (
    MessagesAdded,
    TicketUpdated,
    Typing,
    agents_channel,
    visitor_channel,
)
from widget_server.realtime.hub import Hub
from widget_server.store import Store, TicketPatch, VisitorPost
from widget_server.text import multi_line, optional_line


class BodyTooLong(WidgetError):
    code = "body_too_long"
    status = 413


class Messaging:
    def __init__(self, store: Store, hub: Hub, clock: Clock, max_body_chars: int) -> None:
        self.store = store
        self.hub = hub
        self.clock = clock
        self.max_body_chars = max_body_chars
        self.changed: Callable[[], None] = lambda: None  # the SLA scheduler's wake-up

    def check_body(self, body: str, attached: bool = False) -> str:
        if len(body) > self.max_body_chars:
            raise BodyTooLong(f"a message may have at most {self.max_body_chars} characters")
        if not body.strip() and not attached:  # attachments alone make a message
            raise Unprocessable("a message needs some text", code="body_empty")
        return body

    async def visitor_send(
        self,
        visitor: Visitor,
        conversation_id: str | None,
        client_msg_id: str,
        body: str,
        severity: str | None = None,
        subject: str | None = None,
        channel: str = "widget",
        page_url: str | None = None,
        user_agent: str | None = None,
        mail_to: str | None = None,
        acknowledge: bool | None = None,
        attachments: tuple[str, ...] = (),
        max_files: int = 10,
    ) -> PostResult:
        """Store a visitor message (opening a ticket when ``conversation_id`` is None).

        Does not publish: the caller acknowledges first, then calls ``announce``, so the
        sending connection sees its ack before any frame that follows from it. ``mail_to``:
        a verified address a new request's follow-ups are mailed to (docs/email.md).
        """
        # the visitor's name and email were cleaned where they came in (session, token, form)
        body = self.check_body(multi_line(body), attached=bool(attachments))
        if mail_to is None and conversation_id is None and visitor.email_verified:
            mail_to = visitor.email  # the host signed this address
        post = VisitorPost(visitor=visitor, conversation_id=conversation_id,
                           client_msg_id=client_msg_id, body=body, severity=severity,
                           subject=optional_line(subject), channel=channel,
                           page_url=optional_line(page_url and page_url[:2000]),
                           user_agent=optional_line(user_agent and user_agent[:500]),
                           mail_to=mail_to, acknowledge=acknowledge,
                           attachments=attachments)
        return await self.store.post_visitor_message(post, self.clock.now(), max_files)

    def announce(self, visitor: Visitor, result: PostResult) -> None:
        if result.duplicate or not result.created:
            return
        self.changed()
        event = MessagesAdded(result.message.conversation_id, result.created, result.ticket)
        self.hub.publish(visitor_channel(visitor.id), event)
        self.hub.publish(agents_channel(visitor.site_id), event)
        if result.ticket is not None and result.ticket_changed:  # e.g. reopened by this message
            self.hub.publish(visitor_channel(visitor.id), TicketUpdated(result.ticket))

    async def agent_reply(
        self, site_id: int, number: int, agent: Agent, body: str, internal: bool,
        attachments: tuple[str, ...] = (), max_files: int = 10,
    ) -> TicketChange:
        body = self.check_body(multi_line(body), attached=bool(attachments))
        change = await self.store.post_agent_message(
            site_id, number, agent, body, internal, self.clock.now(), attachments, max_files
        )
        self.changed()
        event = MessagesAdded(change.ticket.conversation_id, change.messages, change.ticket)
        self.hub.publish(agents_channel(site_id), event)
        if not internal:
            self.hub.publish(visitor_channel(change.visitor_id), event)
            if change.changed:
                self.hub.publish(visitor_channel(change.visitor_id), TicketUpdated(change.ticket))
        return change

    async def update_ticket(
        self, site_id: int, number: int, agent: Agent, patch: TicketPatch
    ) -> TicketChange:
        change = await self.store.update_ticket(site_id, number, agent, patch, self.clock.now())
        if not change.changed:
            return change
        self.changed()
        self.hub.publish(visitor_channel(change.visitor_id), TicketUpdated(change.ticket))
        self.hub.publish(agents_channel(site_id), TicketUpdated(change.ticket))
        return change

    # -- console operations: each commits first, then tells the visitor and the agents
    def _publish_change(self, site_id: int, change: TicketChange) -> None:
        self.changed()
        for channel in (visitor_channel(change.visitor_id), agents_channel(site_id)):
            if change.messages:
                self.hub.publish(channel, MessagesAdded(change.ticket.conversation_id,
                                                        change.messages, change.ticket))
            self.hub.publish(channel, TicketUpdated(change.ticket))

    async def split(self, site_id: int, number: int, message_ids: list[int],
                    agent: Agent) -> tuple[TicketChange, TicketChange]:
        old, new = await self.store.split_ticket(site_id, number, message_ids, agent)
        self._publish_change(site_id, old)
        self._publish_change(site_id, new)
        return old, new

    async def merge(self, site_id: int, number: int, into_number: int,
                    agent: Agent) -> tuple[TicketChange, TicketChange]:
        source, target = await self.store.merge_ticket(site_id, number, into_number, agent)
        self._publish_change(site_id, source)
        self._publish_change(site_id, target)
        return source, target

    async def move_tier(self, site_id: int, number: int, agent: Agent, step: int,
                        reason: str) -> TicketChange:
        change = await self.store.move_tier(site_id, number, agent, step, reason)
        self._publish_change(site_id, change)
        return change

    def agent_typing(self, ticket: Ticket, visitor_id: str, agent: Agent) -> None:
        self.hub.publish(visitor_channel(visitor_id),
                         Typing(ticket.conversation_id, Author("agent", agent.name)))
