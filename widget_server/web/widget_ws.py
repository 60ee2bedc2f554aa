"""GET /ws/widget: the visitor's live channel (DESIGN section 4.3).

The origin is checked at the handshake (refused with 403) and again against the site named in
``hello``; the token travels in that first frame, never in the URL. Each frame is handled to
the end before the next one is read, so a visitor's messages keep their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from widget_server.errors import Unauthorized, WidgetError
from widget_server.models import Author, Site, Visitor
from widget_server.realtime import protocol
from widget_server.realtime.events import Typing, agents_channel, visitor_channel
from widget_server.realtime.visitor_stream import VisitorStream
from widget_server.runtime import Runtime

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


class Refused(Exception):
    """Tell the client why, then close with 1008."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def _receive_text(websocket: WebSocket) -> str | None:
    """The next text frame; None for a binary frame; raises WebSocketDisconnect on close."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    return text if isinstance(text, str) else None


async def _refuse(websocket: WebSocket, code: str, message: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.send_text(protocol.encode(protocol.error_frame(code, message)))
        await websocket.close(code=POLICY_VIOLATION, reason=code)


async def widget_socket(websocket: WebSocket) -> None:
    rt: Runtime = websocket.app.state.runtime
    origin = websocket.headers.get("origin")
    if not await rt.origin_allowed_anywhere(origin):
        await websocket.close(code=POLICY_VIOLATION)  # before accept: the handshake gets 403
        return
    await websocket.accept()
    try:
        site, visitor, hello = await _handshake(rt, websocket, origin)
    except Refused as refused:
        await _refuse(websocket, refused.code, refused.message)
        return
    except WebSocketDisconnect:
        return
    await _serve(rt, websocket, site, visitor, hello)


async def _handshake(
    rt: Runtime, websocket: WebSocket, origin: str | None
) -> tuple[Site, Visitor, protocol.Hello]:
    try:
        raw = await asyncio.wait_for(_receive_text(websocket), rt.settings.hello_timeout)
    except TimeoutError:
        raise Refused("hello_timeout", "no hello frame in time") from None
    if raw is None:
        raise Refused("invalid_frame", "frames must be JSON text")
    try:
        hello = protocol.decode(raw)
    except protocol.FrameError as error:
        raise Refused(error.code, error.message) from None
    if not isinstance(hello, protocol.Hello):
        raise Refused("hello_required", "the first frame must be a hello")
    site = await rt.site(hello.site)
    if site is None:
        raise Refused("unknown_site", "no site has this key")
    if not site.allows(origin):
        raise Refused("origin_not_allowed", "this page's origin is not allowed for the site")
    if not hello.token:
        raise Refused("invalid_token", "hello needs the token from the session endpoint")
    try:
        visitor = rt.tokens.read(hello.token, site)
    except Unauthorized as exc:
        raise Refused(exc.code, exc.message) from None
    if site.identity_required and not visitor.verified:
        raise Refused("identity_required",
                      "this site only talks to signed-in users of its product")
    return site, visitor, hello


async def _serve(
    rt: Runtime, websocket: WebSocket, site: Site, visitor: Visitor, hello: protocol.Hello
) -> None:
    def overflow() -> None:
        log.warning("visitor %s cannot keep up; closing its socket", visitor.id)
        if websocket.application_state == WebSocketState.CONNECTED:
            asyncio.get_running_loop().create_task(
                websocket.close(code=TRY_AGAIN_LATER, reason="overloaded")
            )

    stream = VisitorStream(rt.store, websocket.send_text, overflow)
    context = (hello.page, websocket.headers.get("user-agent"))
    channel = visitor_channel(visitor.id)
    rt.hub.subscribe(channel, stream)  # before reading the state, so nothing slips between
    pump: asyncio.Task[None] | None = None
    try:
        conversations = await rt.store.visitor_conversations(visitor.id)
        await stream.send({
            "type": "ready",
            "visitor": protocol.visitor_json(visitor),
            "conversations": [
                {"id": c.id, "last_seq": c.last_seq,
                 "ticket": protocol.ticket_json(c.ticket) if c.ticket else None}
                for c in conversations
            ],
        })
        for foreign in await stream.replay(conversations, hello.resume):
            await stream.send(protocol.error_frame(
                "conversation_not_found", "no such conversation", ref=foreign))
        pump = asyncio.create_task(stream.run(), name=f"deliver:{visitor.id}")
        while True:
            raw = await _receive_text(websocket)
            await _handle(rt, stream, site, visitor, raw, context)
    except WebSocketDisconnect:
        pass
    except Exception:
        log.exception("widget socket of visitor %s failed", visitor.id)
        with contextlib.suppress(Exception):
            await websocket.close(code=1011)
    finally:
        rt.hub.unsubscribe(channel, stream)
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump


async def _handle(
    rt: Runtime, stream: VisitorStream, site: Site, visitor: Visitor, raw: str | None,
    context: tuple[str | None, str | None],
) -> None:
    if raw is None:
        await stream.send(protocol.error_frame("invalid_frame", "frames must be JSON text"))
        return
    try:
        frame = protocol.decode(raw)
    except protocol.FrameError as error:
        await stream.send(protocol.error_frame(error.code, error.message))
        return
    if isinstance(frame, protocol.Send):
        try:
            result = await rt.messaging.visitor_send(
                visitor, frame.conversation, frame.client_msg_id, frame.body,
                frame.severity, frame.subject, page_url=context[0], user_agent=context[1],
            )
        except WidgetError as exc:
            await stream.send(protocol.error_frame(exc.code, exc.message, ref=frame.client_msg_id))
            return
        await stream.acknowledge(result)
        rt.messaging.announce(visitor, result)
    elif isinstance(frame, protocol.Ping):
        await stream.send({"type": "pong"})
    elif isinstance(frame, protocol.Typing):
        if frame.conversation not in stream.owned:
            await stream.send(protocol.error_frame(
                "conversation_not_found", "no such conversation", ref=frame.conversation))
            return
        rt.hub.publish(agents_channel(site.id), Typing(
            frame.conversation, Author("visitor", visitor.name, visitor.id)))
    elif isinstance(frame, protocol.Read):
        try:
            await rt.store.mark_read(visitor.id, frame.conversation, frame.seq)
        except WidgetError as exc:
            await stream.send(protocol.error_frame(exc.code, exc.message, ref=frame.conversation))
    elif isinstance(frame, protocol.Hello):
        await stream.send(protocol.error_frame("unexpected_hello", "hello was already sent"))


routes = [WebSocketRoute("/ws/widget", widget_socket)]
