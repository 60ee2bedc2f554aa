"""The baseline: a bare relay on the same Starlette/uvicorn/websockets stack as widget-server.

Visitor sockets (/ws/widget) send JSON frames; the server forwards each frame, as received, to
the one agent socket (/ws/agent) and acks the sender with ``{"type": "ack", "client_msg_id"}``.
No database, no validation, no sessions: what is left is the cost of the stack itself, so
this is the limit of this stack on this machine. uvicorn runs with widget-server's settings
(widget_server.cli._serve): websockets-sansio, no per-message deflate, uvloop and httptools when
installed, no server header, log level warning. Its frames go out as widget-server's do,
through widget_server.web.ws_send (written to the transport directly while a connection is
open), so the relay keeps every shortcut of the stack that the server has.

    python bench/relay_app.py --port 8765      # 127.0.0.1 only
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from widget_server.web.ws_send import text_sender

MAX_FRAME_BYTES = 16 * 1024  # widget-server's default WIDGET_MAX_FRAME_BYTES

agents: list[Callable[[str], Awaitable[None]]] = []  # each agent socket's send_text


async def healthz(request: object) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def agent_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    send_text = text_sender(websocket)
    agents.append(send_text)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        agents.remove(send_text)


async def visitor_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    send_text = text_sender(websocket)
    try:
        while True:
            raw = await websocket.receive_text()
            frame = json.loads(raw)  # the one decoding needed to address the ack
            if agents:
                await agents[0](raw)
            await send_text(json.dumps({"type": "ack",
                                        "client_msg_id": frame.get("client_msg_id")}))
    except WebSocketDisconnect:
        pass


app = Starlette(routes=[Route("/healthz", healthz),
                        WebSocketRoute("/ws/widget", visitor_socket),
                        WebSocketRoute("/ws/agent", agent_socket)])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="bare websocket relay (benchmark baseline)")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app, host="127.0.0.1", port=args.port,
        ws="websockets-sansio", ws_max_size=MAX_FRAME_BYTES, ws_per_message_deflate=False,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        log_level="warning", server_header=False, lifespan="off",
    )


if __name__ == "__main__":
    main()
