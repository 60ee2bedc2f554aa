"""Two nodes beside one (``python -m bench --db postgresql://...``): the chat on one
``widget-server serve``, then on two sharing one PostgreSQL database, with the same load.

On two nodes half the load-generator workers talk to each node, the agent watches on the
first node's console (so it sees the second node's messages cross over), and agents reply
through the first node's REST API (the visitors on the second get them across). Each side
runs a closed loop (saturation) and an open loop at 1,000 msg/s; the stored messages are
counted against the acks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from bench import server_process
from bench.report import median_loop
from bench.scenarios import AgentWatcher, Fleet, keep_or_remove, new_workdir, run_phases
from bench.server_process import HOST, Server

OPEN_RATE = 1000.0
REPLY_RATE = 100.0


def run(plan: dict[str, Any], env: dict[str, str], log: Callable[[str], None],
        make_server: Callable[[Any, Any, dict[str, str]], Server]) -> dict[str, Any]:
    results = {}
    for nodes in (1, 2):
        results[f"{nodes}_node" + ("s" if nodes > 1 else "")] = _side(
            plan, env, log, make_server, nodes)
    one, two = results["1_node"], results["2_nodes"]
    if one.get("msgs_per_s") and two.get("msgs_per_s"):
        results["ratio_two_to_one"] = round(two["msgs_per_s"] / one["msgs_per_s"], 3)
    return results


def _side(plan: dict[str, Any], env: dict[str, str], log: Callable[[str], None],
          make_server: Callable[[Any, Any, dict[str, str]], Server], nodes: int
          ) -> dict[str, Any]:
    workdir = new_workdir(f"nodes{nodes}")
    db = server_process.scenario_db(workdir)
    servers = [make_server(db, workdir / f"server{n}.log", env) for n in range(nodes)]
    fleet: Fleet | None = None
    agent = AgentWatcher()
    ok = False
    try:
        site = server_process.init_site(db, env)
        for server in servers:
            server.start()
        first = servers[0]
        cookie = server_process.sign_in_agent(first, site, env)
        token = server_process.api_token(first, env)
        fleet = Fleet(max(plan["workers"], nodes), first.port, site,
                      ports=[server.port for server in servers])

        async def go() -> list[dict[str, Any]]:
            assert fleet is not None
            await agent.connect(f"ws://{HOST}:{first.port}/ws/console",
                                headers={"Cookie": cookie}, origin=f"http://{HOST}:{first.port}",
                                expect_ready=True)
            answers = await fleet.acall("connect", [
                {"first": f, "count": c, "relay": False}
                for f, c in fleet.split(plan["visitors"])])
            tickets = sorted(n for a in answers for n in a["tickets"].values())
            try:
                phases = [{"mode": "closed", "messages": plan["messages"],
                           "reply_rate": REPLY_RATE} for _ in range(plan["closed_loops"])]
                phases.append({"mode": "open", "rate": OPEN_RATE, "duration": plan["rate_s"],
                               "reply_rate": OPEN_RATE / 10})
                return await run_phases(first, fleet, agent, plan["visitors"], phases, token,
                                        tickets)
            finally:
                with contextlib.suppress(Exception):
                    await agent.close()

        phases = asyncio.run(asyncio.wait_for(go(), 480))
        fleet.close()
        fleet = None
        for server in servers:
            server.stop()
        stored = server_process.count_visitor_messages(db)
        acked = sum(p["acked"] for p in phases) + plan["visitors"]
        ok = stored["visitor_messages"] == acked
        loops = [p for p in phases if p["mode"] == "closed"]
        closed = median_loop(loops)
        opened = phases[-1]
        log(f"  {nodes} node(s): {closed.get('msgs_per_s')} msg/s closed, ack p99 "
            f"{opened.get('p99_ms')} ms at {OPEN_RATE:g}/s, persistence "
            f"{'ok' if ok else 'MISMATCH'}")
        return {"nodes": nodes, "msgs_per_s": closed.get("msgs_per_s"),
                "closed_loops_msgs_per_s": [p["msgs_per_s"] for p in loops],
                "ack_p99_ms": closed.get("p99_ms"), "delivery_p99_ms": closed.get(
                    "delivery_p99_ms"),
                "ack_p99_ms_at_1000_per_s": opened.get("p99_ms"),
                "delivery_p99_ms_at_1000_per_s": opened.get("delivery_p99_ms"),
                "stored": stored, "persistence_ok": ok, "phases": phases}
    finally:
        if fleet is not None:
            fleet.close()
        for server in servers:
            server.stop()
        keep_or_remove(workdir, ok, log)


def table(result: dict[str, Any]) -> str:
    rows = [("", "msg/s (closed)", "ack p99 ms", f"ack p99 ms at {OPEN_RATE:g}/s",
             "delivery p99 ms at 1000/s", "stored = acked")]
    for key in ("1_node", "2_nodes"):
        side = result.get(key) or {}
        rows.append((key.replace("_", " "), str(side.get("msgs_per_s")),
                     str(side.get("ack_p99_ms")), str(side.get("ack_p99_ms_at_1000_per_s")),
                     str(side.get("delivery_p99_ms_at_1000_per_s")),
                     str(side.get("persistence_ok"))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in rows]
    lines.append(f"two nodes / one node: {result.get('ratio_two_to_one')}")
    return "\n".join(lines)
