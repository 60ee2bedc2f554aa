"""GET /ws/widget: the visitor's live channel (docs/protocol.md).

The origin is checked at the handshake (refused with 403) and again against the site named in
``hello``; the token travels in that first frame, never in the URL. Each frame is handled to
the end before the next one is read, so a visitor's messages keep their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from widget_server import metrics
from widget_server.abuse import RateLimited
from widget_server.client_address import client_address
from widget_server.errors import Unauthorized, WidgetError
from widget_server.models import Author, Site, Visitor
from widget_server.realtime import protocol
from widget_server.realtime.events import Typing, agents_channel, visitor_channel
from widget_server.realtime.visitor_stream import VisitorStream
from widget_server.runtime import Runtime
from widget_server.web.ws_send import text_sender

OPEN_SOCKETS = metrics.SOCKETS_OPEN.labels("widget")
ACK_SECONDS = metrics.ACK_SECONDS
log = logging.getLogger(__name__)

GOING_AWAY = 1001  # idle for WIDGET_WS_IDLE_TIMEOUT: the widget reconnects and resumes
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


class Refused(Exception):
    """Tell the client why, then close with 1008."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Idle(Exception):
    """No frame from the client for WIDGET_WS_IDLE_TIMEOUT seconds."""


class _Frames:
    """The frames of a live socket, read straight from the ASGI ``receive`` (Starlette's
    checks of the state on every frame cost more than the rest of the read), with the idle
    timeout kept by one timer per socket that re-arms itself while frames come, instead of a
    timer made and cancelled for every frame. A socket waiting ``idle`` seconds for a frame
    is closed: the timer cancels the read (nothing queued is lost) and ``next`` raises Idle.
    """

    def __init__(self, websocket: WebSocket, idle: float) -> None:
        self._receive = websocket._receive
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._idle = idle
        self._since = self._loop.time()  # when the current wait for a frame began
        self._waiting = False
        self._fired = False
        self._timer = self._loop.call_at(self._since + idle, self._check) if idle > 0 else None

    def _check(self) -> None:
        now, due = self._loop.time(), self._since + self._idle
        if self._waiting and now >= due and self._task is not None:
            self._fired, self._timer = True, None
            self._task.cancel()
        else:  # a frame came, or one is being handled: look again when it could be idle
            self._timer = self._loop.call_at(due if self._waiting else now + self._idle,
                                             self._check)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def next(self) -> str | None:
        """The next text frame; None for a binary one; WebSocketDisconnect on close."""
        self._since = self._loop.time()
        self._waiting = True
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if self._fired and self._task is not None and self._task.uncancel() == 0:
                raise Idle from None
            raise
        finally:
            self._waiting = False
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        text = message.get("text")
        return text if isinstance(text, str) else None


async def _receive_text(websocket: WebSocket) -> str | None:
    """The next text frame; None for a binary frame; raises WebSocketDisconnect on close."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    return text if isinstance(text, str) else None


async def _refuse(websocket: WebSocket, code: str, message: str,
                  retry_after: int | None = None) -> None:
    frame, reason = protocol.error_frame(code, message), code
    if retry_after is not None:  # rate limits say when to come back, in the frame and reason
        frame["retry_after"] = retry_after
        reason = f"{code} retry_after={retry_after}"
    with contextlib.suppress(Exception):
        await websocket.send_text(protocol.encode(frame))
        await websocket.close(code=POLICY_VIOLATION, reason=reason)


async def widget_socket(websocket: WebSocket) -> None:
    rt: Runtime = websocket.app.state.runtime
    origin = websocket.headers.get("origin")
    if not await rt.origin_allowed_anywhere(origin):
        await websocket.close(code=POLICY_VIOLATION)  # before accept: the handshake gets 403
        return
    address = client_address(websocket, rt.settings.trusted_proxies)
    admission = await rt.limits.connect(address)
    await websocket.accept()  # then the error frame can say why and when to come back
    if admission.wait:
        await _refuse(websocket, "rate_limited", f"{admission.message}; try again later",
                      RateLimited(admission.wait).seconds)
        return
    try:
        try:
            site, visitor, hello = await _handshake(rt, websocket, origin)
        except Refused as refused:
            await _refuse(websocket, refused.code, refused.message)
            return
        except WebSocketDisconnect:
            return
        await _serve(rt, websocket, site, visitor, hello, address)
    finally:
        admission.release()


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
        visitor = await rt.token_visitor(hello.token, site)
    except Unauthorized as exc:
        raise Refused(exc.code, exc.message) from None
    if site.identity_required and not visitor.verified:
        raise Refused("identity_required",
                      "this site only talks to signed-in users of its product")
    return site, visitor, hello


async def _identity_now_required(rt: Runtime, site: Site) -> bool:
    """Whether the site went over to ``required`` identity mode (or away) since the socket of
    an unverified visitor opened: the socket then ends at its next frame (the site cache
    answers, so this costs no read)."""
    current = await rt.site(site.key)
    return current is None or current.identity_required


async def _serve(
    rt: Runtime, websocket: WebSocket, site: Site, visitor: Visitor, hello: protocol.Hello,
    address: str,
) -> None:
    def overflow() -> None:
        log.warning("visitor %s cannot keep up; closing its socket", visitor.id)
        if websocket.application_state == WebSocketState.CONNECTED:
            asyncio.get_running_loop().create_task(
                websocket.close(code=TRY_AGAIN_LATER, reason="overloaded")
            )

    stream = VisitorStream(rt.store, text_sender(websocket, rt.settings.ws_fast_send), overflow,
                           rt.settings.ws_send_queue)
    frames = _Frames(websocket, rt.settings.ws_idle_timeout)
    context = (hello.page, websocket.headers.get("user-agent"), address)
    channel = visitor_channel(visitor.id)
    rt.hub.subscribe(channel, stream)  # before reading the state, so nothing slips between
    OPEN_SOCKETS.inc()
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
        stream.start()
        frame_budget = rt.limits.frame_budget()
        while True:
            raw = await frames.next()
            wait = frame_budget()
            if wait:  # a flood, not a person: close rather than answer every frame
                await _refuse(websocket, "rate_limited", "too many frames; slow down",
                              RateLimited(wait).seconds)
                return
            if not visitor.verified and await _identity_now_required(rt, site):
                await _refuse(websocket, "identity_required",
                              "this site only talks to signed-in users of its product")
                return
            await _handle(rt, stream, site, visitor, raw, context)
    except WebSocketDisconnect:
        pass
    except Idle:
        with contextlib.suppress(Exception):
            await websocket.close(code=GOING_AWAY, reason="idle_timeout")
    except Exception:
        log.exception("widget socket of visitor %s failed", visitor.id)
        with contextlib.suppress(Exception):
            await websocket.close(code=1011)
    finally:
        frames.stop()
        OPEN_SOCKETS.dec()
        rt.hub.unsubscribe(channel, stream)
        await stream.stop()


async def _handle(
    rt: Runtime, stream: VisitorStream, site: Site, visitor: Visitor, raw: str | None,
    context: tuple[str | None, str | None, str],
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
        began = time.perf_counter()
        wait = await rt.limits.send(visitor.id, new_request=frame.conversation is None,
                              address=context[2])
        if wait:  # refused, not closed: the widget keeps it in its outbox and sends it later
            limited = RateLimited(wait, "too many messages; try again later")
            await stream.send({**protocol.error_frame(
                limited.code, limited.message, ref=frame.client_msg_id),
                "retry_after": limited.seconds})
            return
        try:
            result = await rt.messaging.visitor_send(
                visitor, frame.conversation, frame.client_msg_id, frame.body,
                frame.severity, frame.subject, page_url=context[0], user_agent=context[1],
                follow_up_of=frame.follow_up_of, attachments=tuple(frame.attachments),
                max_files=site.attachment_max_files)
        except WidgetError as exc:
            await stream.send(protocol.error_frame(exc.code, exc.message, ref=frame.client_msg_id))
            return
        await stream.acknowledge(result)
        ACK_SECONDS.observe(time.perf_counter() - began)
        rt.messaging.announce(visitor, result)
    elif isinstance(frame, protocol.Ping):
        await stream.send({"type": "pong"})
    elif isinstance(frame, protocol.Typing):
        if frame.conversation not in stream.owned:
            await stream.send(protocol.error_frame(
                "conversation_not_found", "no such conversation", ref=frame.conversation))
            return
        if rt.limits.typing(visitor.id, frame.conversation):
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
