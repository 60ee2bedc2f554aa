"""Two nodes beside one (``python -m bench --db postgresql://...``): the chat on one
``widget-server serve``, and on two sharing one PostgreSQL database, with the same load.

Both setups are up at once, each on a database of its own with its own load-generator
workers and agent socket, and their loops are taken in turns (one node, two nodes, then two,
one, ...), as the suite does with the relay and the chat: measured one after the other, the
two sides would come from different stretches of the VM's time, which drifts by a third
within minutes. While one side runs, the other's servers and workers are idle.

On two nodes half the load-generator workers talk to each node, the agent watches on the
first node's console (so it sees the second node's messages cross over), and agents reply
through the first node's REST API (the visitors on the second get them across). Each side
runs closed loops (saturation) and an open loop at 1,000 msg/s; the stored messages are
counted against the acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import server_process
from bench.report import median_loop
from bench.scenarios import keep_or_remove, new_workdir
from bench.server_process import Server
from bench.side_by_side import ChatSide

OPEN_RATE = 1000.0
REPLY_RATE = 100.0
SIDES = ("1_node", "2_nodes")


class _Setup(ChatSide):
    """``nodes`` servers on one new database, their fleet and the agent's socket."""

    def __init__(self, plan: dict[str, Any], env: dict[str, str],
                 make_server: Callable[[Any, Any, dict[str, str]], Server], nodes: int) -> None:
        self.workdir: Path = new_workdir(f"nodes{nodes}")
        self.db = server_process.scenario_db(self.workdir)
        servers = [make_server(self.db, self.workdir / f"server{n}.log", env)
                   for n in range(nodes)]
        super().__init__(servers[0], plan, more_nodes=servers[1:])
        self.finished: list[dict[str, Any]] = []

    async def phase(self, phase: dict[str, Any]) -> dict[str, Any]:
        """One phase, with the CPU every node of the side used per acked message."""
        before = self._cpu_seconds()
        done = await super().phase(phase)
        used = self._cpu_seconds() - before
        done["nodes_cpu_ms_per_msg"] = round(1000 * used / done["acked"], 3) \
            if done.get("acked") else None
        self.finished.append(done)
        return done

    def _cpu_seconds(self) -> float:
        return sum(node.cpu_seconds() or 0.0 for node in self.nodes)

    def result(self, log: Callable[[str], None]) -> dict[str, Any]:
        """The side's figures, once its servers stopped: the median closed loop and every
        loop's, the open loop, and whether every acked message was stored."""
        stored = server_process.count_visitor_messages(self.db)
        acked = sum(p["acked"] for p in self.finished) + self.plan["visitors"]
        ok = stored["visitor_messages"] == acked
        loops = [p for p in self.finished if p["mode"] == "closed"]
        closed = median_loop(loops)
        opened = next((p for p in self.finished if p["mode"] == "open"), {})
        log(f"  {len(self.nodes)} node(s): {closed.get('msgs_per_s')} msg/s closed, ack p99 "
            f"{opened.get('p99_ms')} ms at {OPEN_RATE:g}/s, persistence "
            f"{'ok' if ok else 'MISMATCH'}")
        keep_or_remove(self.workdir, ok, log)
        return {"nodes": len(self.nodes), "msgs_per_s": closed.get("msgs_per_s"),
                "closed_loops_msgs_per_s": [p["msgs_per_s"] for p in loops],
                "ack_p99_ms": closed.get("p99_ms"), "delivery_p99_ms": closed.get(
                    "delivery_p99_ms"),
                "nodes_cpu_ms_per_msg": [p["nodes_cpu_ms_per_msg"] for p in loops],
                "ack_p99_ms_at_1000_per_s": opened.get("p99_ms"),
                "delivery_p99_ms_at_1000_per_s": opened.get("delivery_p99_ms"),
                "stored": stored, "persistence_ok": ok, "phases": self.finished}


def run(plan: dict[str, Any], env: dict[str, str], log: Callable[[str], None],
        make_server: Callable[[Any, Any, dict[str, str]], Server]) -> dict[str, Any]:
    setups = {"1_node": _Setup(plan, env, make_server, 1),
              "2_nodes": _Setup(plan, env, make_server, 2)}
    closed = {"mode": "closed", "messages": plan["messages"], "reply_rate": REPLY_RATE}

    async def go() -> None:
        try:
            for setup in setups.values():
                await setup.connect()
            for turn in range(plan["node_turns"]):
                order = SIDES if turn % 2 == 0 else SIDES[::-1]
                done = {side: await setups[side].phase(closed) for side in order}
                log(f"  closed loop {turn + 1}: one node {done['1_node']['msgs_per_s']}, "
                    f"two nodes {done['2_nodes']['msgs_per_s']} msg/s; the nodes' CPU "
                    f"{done['1_node']['nodes_cpu_ms_per_msg']}, "
                    f"{done['2_nodes']['nodes_cpu_ms_per_msg']} ms per message")
            for side in SIDES:
                await setups[side].phase({"mode": "open", "rate": OPEN_RATE,
                                          "duration": plan["rate_s"],
                                          "reply_rate": OPEN_RATE / 10})
        finally:
            for setup in setups.values():
                with contextlib.suppress(Exception):
                    await setup.agent.close()

    try:
        for setup in setups.values():
            setup.start()
        asyncio.run(asyncio.wait_for(go(), 900))
    finally:
        for setup in setups.values():
            setup.close()
    results: dict[str, Any] = {side: setups[side].result(log) for side in SIDES}
    one, two = results["1_node"], results["2_nodes"]
    if one.get("msgs_per_s") and two.get("msgs_per_s"):
        results["ratio_two_to_one"] = round(two["msgs_per_s"] / one["msgs_per_s"], 3)
    # each turn's two loops ran back to back, in the same stretch of the machine's time
    turns = [round(b / a, 3) for a, b in zip(one["closed_loops_msgs_per_s"],
                                             two["closed_loops_msgs_per_s"], strict=True) if a]
    results["ratio_by_turn"] = turns
    results["ratio_median_of_turns"] = round(statistics.median(turns), 3) if turns else None
    return results


def table(result: dict[str, Any]) -> str:
    rows = [("", "msg/s (closed)", "ack p99 ms", f"ack p99 ms at {OPEN_RATE:g}/s",
             "delivery p99 ms at 1000/s", "stored = acked")]
    for key in SIDES:
        side = result.get(key) or {}
        rows.append((key.replace("_", " "), str(side.get("msgs_per_s")),
                     str(side.get("ack_p99_ms")), str(side.get("ack_p99_ms_at_1000_per_s")),
                     str(side.get("delivery_p99_ms_at_1000_per_s")),
                     str(side.get("persistence_ok"))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in rows]
    lines.append(f"two nodes / one node: {result.get('ratio_two_to_one')} (medians); "
                 f"by turn {result.get('ratio_by_turn')}, median "
                 f"{result.get('ratio_median_of_turns')}")
    return "\n".join(lines)
