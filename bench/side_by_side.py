"""The relay and the chat, side by side: both servers up at once, their closed loops taken in
turns (relay, chat, relay, chat, ...), then the relay's open loop at the reference rate and
the chat's open loops.

Measured one after the other, the relay's and the chat's figures come from different
stretches of the VM's time, which drifts with its neighbours: the chat server can need 40 %
more CPU per message in one run than in the next while the relay, measured half a minute
earlier, does not slow down (docs/performance.md). Taken in turns, each chat loop
has a relay loop right before it. While one side runs, the other's server, sockets and load
generator processes are idle.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from bench import server_process
from bench.report import median_loop
from bench.scenarios import AgentWatcher, Fleet, run_phases
from bench.server_process import HOST, Server, Site

CLOSED_REPLY_RATE = 100.0  # agent replies/s through the REST API during a closed loop
REPLY_SHARE = 0.1          # ... and during an open loop, as a share of the offered rate
# The relay also runs an open loop at the rate of the ack-p99 target: the stack's own tail at
# that load, on this machine, in this run.
RELAY_REFERENCE_RATE = 1000.0


class _Side:
    """One server, its load-generator fleet and its agent socket."""

    def __init__(self, server: Server, plan: dict[str, Any]) -> None:
        self.server, self.plan = server, plan
        self.fleet: Fleet | None = None
        self.agent = AgentWatcher()
        self.token: str | None = None  # an API token: agents reply through the REST API
        self.tickets: list[int] = []    # ... to these tickets

    async def phase(self, phase: dict[str, Any]) -> dict[str, Any]:
        return (await self.phases([phase]))[0]

    async def phases(self, phases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        assert self.fleet is not None
        return await run_phases(self.server, self.fleet, self.agent, self.plan["visitors"],
                                phases, self.token, self.tickets)

    def close(self) -> None:
        if self.fleet is not None:
            self.fleet.close()
            self.fleet = None
        self.server.stop()


class RelaySide(_Side):
    def start(self) -> None:
        self.server.start()
        self.fleet = Fleet(self.plan["workers"], self.server.port, Site(key="relay", origin=""))

    async def connect(self) -> None:
        assert self.fleet is not None
        await self.agent.connect(f"ws://{HOST}:{self.server.port}/ws/agent")
        await self.fleet.acall("connect", [{"first": f, "count": c, "relay": True}
                                           for f, c in self.fleet.split(self.plan["visitors"])])


class ChatSide(_Side):
    """``widget-server serve`` on a fresh database: an admin agent watching on /ws/console,
    an API token for the agents' REST replies. With ``more_nodes`` (servers on the same
    PostgreSQL database), the load-generator workers spread over every node; the agent
    watches and replies on the first."""

    def __init__(self, server: Server, plan: dict[str, Any],
                 more_nodes: Sequence[Server] = ()) -> None:
        super().__init__(server, plan)
        self.nodes = [server, *more_nodes]
        self.cookie = ""  # the signed-in agent's, for /ws/console
        self.setup_s = 0.0

    def start(self) -> None:
        site = server_process.init_site(self.server.db, self.server.env)
        for node in self.nodes:
            node.start()
        self.cookie = server_process.sign_in_agent(self.server, site, self.server.env)
        self.token = server_process.api_token(self.server, self.server.env)
        self.fleet = Fleet(max(self.plan["workers"], len(self.nodes)), self.server.port, site,
                           ports=[node.port for node in self.nodes])

    def close(self) -> None:
        super().close()
        for node in self.nodes[1:]:
            node.stop()

    async def connect(self) -> None:
        assert self.fleet is not None
        await self.agent.connect(f"ws://{HOST}:{self.server.port}/ws/console",
                                 headers={"Cookie": self.cookie},
                                 origin=f"http://{HOST}:{self.server.port}", expect_ready=True)
        answers = await self.fleet.acall("connect", [
            {"first": f, "count": c, "relay": False}
            for f, c in self.fleet.split(self.plan["visitors"])])
        self.tickets = sorted(n for a in answers for n in a["tickets"].values())
        self.setup_s = round(max(a["setup_s"] for a in answers), 2)


def relay_and_chat(plan: dict[str, Any], relay_server: Server, chat_server: Server,
                   log: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both sides' results, as the report reads them: the relay's median closed loop with
    every loop's figure and its reference open loop; the chat's phases (every closed loop,
    then the open loops), what was stored, and the server log's problems."""
    relay, chat = RelaySide(relay_server, plan), ChatSide(chat_server, plan)
    closed = {"mode": "closed", "messages": plan["messages"]}

    async def go() -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
        try:
            await relay.connect()
            await chat.connect()
            relay_loops, chat_loops = [], []
            for turn in range(plan["closed_loops"]):
                relay_loops.append(await relay.phase(closed))
                chat_loops.append(await chat.phase({**closed, "reply_rate": CLOSED_REPLY_RATE}))
                log(f"  closed loop {turn + 1}: relay {relay_loops[-1]['msgs_per_s']}, "
                    f"chat {chat_loops[-1]['msgs_per_s']} msg/s")
            reference = await relay.phase({"mode": "open", "rate": RELAY_REFERENCE_RATE,
                                           "duration": plan["rate_s"]})
            opened = await chat.phases([{"mode": "open", "rate": rate,
                                         "duration": plan["rate_s"],
                                         "reply_rate": rate * REPLY_SHARE}
                                        for rate in plan["rates"]])
            return relay_loops, reference, chat_loops + opened
        finally:
            for agent in (relay.agent, chat.agent):
                with contextlib.suppress(Exception):
                    await agent.close()

    try:
        relay.start()
        chat.start()
        relay_loops, reference, chat_phases = asyncio.run(asyncio.wait_for(go(), 480))
    finally:
        relay.close()
        chat.close()
    relay_result = {"visitors": plan["visitors"], "workers": plan["workers"],
                    **median_loop(relay_loops),
                    "closed_loops_msgs_per_s": [loop["msgs_per_s"] for loop in relay_loops],
                    "open_loop": {f"{RELAY_REFERENCE_RATE:g}": reference}}
    stored = server_process.count_visitor_messages(chat_server.db)
    acked = sum(p["acked"] for p in chat_phases) + plan["visitors"]  # + the openings
    chat_result = {"visitors": plan["visitors"], "workers": plan["workers"],
                   "messages_per_visitor": plan["messages"], "setup_s": chat.setup_s,
                   "phases": chat_phases, "agent_socket_closed": chat.agent.closed,
                   "stored": stored, "persistence_ok": stored["visitor_messages"] == acked,
                   "server_log": server_process.log_problems(chat_server.log_text())}
    return relay_result, chat_result
