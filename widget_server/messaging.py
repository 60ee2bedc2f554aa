"""The path of a message: validate, store as one transaction, then announce on the hub.

Web endpoints call this module; it calls the store and the hub. Nothing is published before
the store has committed, so a live frame never shows a message that could still be lost.
"""

from __future__ import annotations

from collections.abc import Callable

from widget_server import metrics
from widget_server.clock import Clock
from widget_server.errors import NotFound, Unprocessable, WidgetError
from widget_server.models import Agent, Author, PostResult, Ticket, TicketChange, Visitor
from widget_server.ratings import Rating
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

STORED_BY_VISITOR = metrics.MESSAGES_STORED.labels("visitor")
STORED_BY_AGENT = metrics.MESSAGES_STORED.labels("agent")
STORED_NOTE = metrics.MESSAGES_STORED.labels("note")

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
        follow_up_of: int | None = None,
        follow_up_via: str = "widget",
        attachments: tuple[str, ...] = (),
        max_files: int = 10,
    ) -> PostResult:
        """Store a visitor message (opening a ticket when ``conversation_id`` is None).

        Does not publish: the caller acknowledges first, then calls ``announce``, so the
        sending connection sees its ack before any frame that follows from it. ``mail_to``:
        a verified address a new request's follow-ups are mailed to (docs/email.md).
        ``follow_up_of``: a new request follows up this closed ticket of the same visitor,
        linked to it in the same transaction (``follow_up_via``: how, for its history).
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
                           attachments=attachments,
                           follow_up_of=follow_up_of, follow_up_via=follow_up_via)
        if follow_up_of is not None and conversation_id is None:
            found = await self.store.get_ticket(visitor.site_id, follow_up_of)
            if found is None or found[1] != visitor.id or found[0].status != "closed":
                raise NotFound("no closed request of yours has this number",
                               code="follow_up_not_found")
        result = await self.store.post_visitor_message(post, self.clock.now(), max_files)
        if not result.duplicate:
            STORED_BY_VISITOR.inc()
        return result

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
        (STORED_NOTE if internal else STORED_BY_AGENT).inc()
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

    async def rate(self, site_id: int, visitor_id: str, conversation_id: str, score: int,
                   comment: str | None, keep: bool, channel: str) -> Rating:
        """The visitor's satisfaction rating (ratings.py): stored, then shown live on their
        other tabs and to the site's agents. ``keep``: the stored comment stays."""
        rating, ticket = await self.store.rate_ticket(site_id, visitor_id, conversation_id,
                                                      score, comment, keep, channel,
                                                      self.clock.now())
        self.hub.publish(visitor_channel(visitor_id), TicketUpdated(ticket))
        self.hub.publish(agents_channel(site_id), TicketUpdated(ticket))
        return rating

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
        # the other agents on the ticket learn who is replying (collision warning)
        self.hub.publish(agents_channel(ticket.site_id), Typing(
            ticket.conversation_id, Author("agent", agent.name, str(agent.id))))
