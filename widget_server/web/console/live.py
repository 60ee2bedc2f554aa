"""GET /ws/console: live updates for signed-in agents (new tickets, messages, typing).

Authenticated by the console session cookie; the Origin must be this server's own, so no
other site can open an agent's socket with the agent's cookie (cross-site websocket hijack).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from widget_server import metrics
from widget_server.models import Agent, Message, Ticket
from widget_server.numbers import MAX_INT
from widget_server.realtime import protocol
from widget_server.realtime.events import (
    Event,
    MessagesAdded,
    PresenceChanged,
    Resync,
    TicketUpdated,
    Typing,
    agents_channel,
)
from widget_server.runtime import Runtime
from widget_server.web.agent_json import api_message, api_ticket
from widget_server.web.console.auth import current_session
from widget_server.web.ws_send import texts_sender

OPEN_SOCKETS = metrics.SOCKETS_OPEN.labels("console")
log = logging.getLogger(__name__)
QUEUE_LIMIT = 2000
UNSUPPORTED_DATA = 1003
RECHECK_SECONDS = 30


class AgentFeed:
    """Hub subscriber for one agent socket; events are sent by its own task, in order."""

    def __init__(self, rt: Runtime, sites: dict[int, str], agent_name: str = "",
                 agent_id: int | None = None) -> None:
        self.rt = rt
        self.sites = sites
        self.agent_name, self.agent_id = agent_name, agent_id
        self.queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_LIMIT)
        self.overflowed = asyncio.Event()

    def notify(self, event: Event) -> None:
        if isinstance(event, Typing) and self.queue.qsize() >= QUEUE_LIMIT // 2:
            return  # typing is fleeting: dropped long before it could crowd out real events
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed.set()

    def ready(self) -> dict[str, Any]:
        return {"type": "ready", "agent": self.agent_name, "agent_id": self.agent_id,
                "sites": sorted(self.sites.values())}

    async def frames(self, event: Event) -> list[dict[str, Any]]:
        if isinstance(event, Resync):  # events may be lost: "ready" makes the console refetch
            return [self.ready()]
        if isinstance(event, TicketUpdated):
            return [self._ticket(event.ticket)]
        if isinstance(event, MessagesAdded):
            ticket = event.ticket or await self._ticket_of(event.conversation_id)
            if ticket is None:
                return []
            return [self._message(ticket, message) for message in event.messages]
        if isinstance(event, Typing) and event.author.type in {"visitor", "agent"}:
            ticket = await self._ticket_of(event.conversation_id)
            if ticket is None:
                return []
            author: dict[str, Any] = {"type": event.author.type, "name": event.author.name}
            if event.author.type == "agent":  # the typing agent's own tabs leave it out by id
                author["id"] = int(event.author.id or 0)
            return [{"type": "typing", "site": self.sites[ticket.site_id],
                     "ticket": ticket.number, "author": author}]
        if isinstance(event, PresenceChanged):
            return [{"type": "presence", "agent": {"id": event.agent_id, "name": event.name,
                                                   "status": event.status}}]
        return []

    async def encoded(self, event: Event) -> list[str]:
        """The frames of ``event`` as JSON text, encoded once for all the agent sockets it
        reaches (they get the same frames: the site key, the ticket, the message)."""
        if isinstance(event, Resync):  # one per socket, though it comes for each of its sites
            first = event.channel == agents_channel(min(self.sites))
            return [protocol.encode(self.ready())] if first else []
        cached = event.encoded.get("console")
        if cached is None:
            cached = event.encoded["console"] = [
                protocol.encode(frame) for frame in await self.frames(event)]
        return cached  # type: ignore[return-value]

    async def _ticket_of(self, conversation_id: str) -> Ticket | None:
        conversation = await self.rt.store.get_conversation(conversation_id)
        return conversation.ticket if conversation else None

    def _ticket(self, ticket: Ticket) -> dict[str, Any]:
        return {"type": "ticket", "site": self.sites[ticket.site_id], "ticket": api_ticket(ticket)}

    def _message(self, ticket: Ticket, message: Message) -> dict[str, Any]:
        return {"type": "message", "site": self.sites[ticket.site_id], "ticket": ticket.number,
                "subject": ticket.subject, "message": api_message(message)}


def _same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin", "")
    host = websocket.headers.get("host", "")
    return origin in {f"http://{host}", f"https://{host}"}


async def console_socket(websocket: WebSocket) -> None:
    rt: Runtime = websocket.app.state.runtime
    session = await current_session(websocket)
    if session is None or not _same_origin(websocket):
        await websocket.close(code=1008)  # before accept: the handshake is refused with 403
        return
    await websocket.accept()
    agent = session.agent
    site_ids = await rt.store.agent_site_ids(agent)
    sites = {site.id: site.key for site in await rt.store.list_sites() if site.id in site_ids}
    feed = AgentFeed(rt, sites, agent.name, agent.id)
    for site_id in sites:
        rt.hub.subscribe(agents_channel(site_id), feed)
    allowed = Allowed(rt, session.id, set(sites))
    sender = asyncio.create_task(_send_loop(websocket, feed, allowed))
    guard = asyncio.create_task(_recheck(websocket, allowed))
    OPEN_SOCKETS.inc()
    try:
        await websocket.send_text(json.dumps(feed.ready()))
        idle = rt.settings.ws_idle_timeout or None  # console.js pings every 25 s
        while True:
            try:
                async with asyncio.timeout(idle):
                    message = await websocket.receive()
            except TimeoutError:  # a dead or frozen tab: the console reconnects when it wakes
                with contextlib.suppress(Exception):
                    await websocket.close(code=1001, reason="idle_timeout")
                return
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if not isinstance(raw, str):  # the console speaks JSON text only
                with contextlib.suppress(Exception):
                    await websocket.close(code=UNSUPPORTED_DATA, reason="text frames only")
                return
            if not await allowed.still():  # every frame acts with the socket's sites
                await websocket.close(code=1008, reason=allowed.reason)
                return
            await _handle(rt, agent, sites, websocket, raw)
    except (WebSocketDisconnect, RuntimeError):
        pass
    except Exception:  # never a dropped connection without a close frame
        log.exception("console socket of agent %s failed", agent.id)
        with contextlib.suppress(Exception):
            await websocket.close(code=1011)
    finally:
        OPEN_SOCKETS.dec()
        for site_id in sites:
            rt.hub.unsubscribe(agents_channel(site_id), feed)
        for task in (sender, guard):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class Allowed:
    """Whether the socket's session may still see what it subscribed to: the session is live
    (not signed out, expired, reset or disabled) and the agent still works on every site of
    the socket. Asked before events go out, read again at most once a ``FRESH_SECONDS``."""

    FRESH_SECONDS = 1.0

    def __init__(self, rt: Runtime, session_id: str, site_ids: set[int]) -> None:
        self.rt, self.session_id, self.site_ids = rt, session_id, site_ids
        self._checked = -float("inf")
        self.reason = ""

    async def still(self) -> bool:
        now = asyncio.get_running_loop().time()
        if now - self._checked < self.FRESH_SECONDS:
            return True
        session = await self.rt.store.agent_session(self.session_id)
        if session is None:
            self.reason = "session ended"
            return False
        if not self.site_ids <= set(await self.rt.store.agent_site_ids(session.agent)):
            self.reason = "sites changed"  # the console reconnects with the sites left
            return False
        self._checked = now
        return True


async def _recheck(websocket: WebSocket, allowed: Allowed) -> None:
    """An idle socket of a signed-out, disabled or reset agent, or of one taken off a site,
    is closed within ``RECHECK_SECONDS``; one with events to send, before they go out."""
    while True:
        await asyncio.sleep(RECHECK_SECONDS)
        if not await allowed.still():
            await websocket.close(code=1008, reason=allowed.reason)
            return


async def _send_loop(websocket: WebSocket, feed: AgentFeed, allowed: Allowed) -> None:
    send_texts = texts_sender(websocket, feed.rt.settings.ws_fast_send)
    while True:
        # what is queued goes out together: a writer batch publishes dozens of events at once
        texts = list(await feed.encoded(await feed.queue.get()))
        while not feed.queue.empty():
            texts += await feed.encoded(feed.queue.get_nowait())
        if not await allowed.still():
            await websocket.close(code=1008, reason=allowed.reason)
            return
        await send_texts(texts)
        if feed.overflowed.is_set():
            await websocket.close(code=1013, reason="overloaded")
            return


async def _handle(rt: Runtime, agent: Agent, sites: dict[int, str], websocket: WebSocket,
                  raw: str) -> None:
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        frame = None
    if not isinstance(frame, dict):
        await websocket.send_text(json.dumps({"type": "error", "code": "invalid_json",
                                              "message": "frames are JSON objects"}))
        return
    if frame.get("type") == "ping":
        await websocket.send_text('{"type":"pong"}')
    elif frame.get("type") == "typing":
        site_id = next((i for i, key in sites.items() if key == frame.get("site")), None)
        number = frame.get("ticket")
        if isinstance(number, bool) or not isinstance(number, int) or \
                not 1 <= number <= MAX_INT:  # a 64-bit column holds every ticket number
            number = None
        found = (await rt.store.get_ticket(site_id, number)
                 if site_id is not None and number is not None else None)
        if found is None:
            await websocket.send_text(json.dumps({"type": "error", "code": "ticket_not_found",
                                                  "message": "no such ticket"}))
            return
        rt.messaging.agent_typing(found[0], found[1], agent)
    else:
        await websocket.send_text(json.dumps({"type": "error", "code": "unknown_type",
                                              "message": "expected typing or ping"}))


routes = [WebSocketRoute("/ws/console", console_socket)]
