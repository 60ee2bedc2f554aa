"""The mail scenario: how fast the outbox drains to a mail server, and whether the chat
notices that mail is on. ``python -m bench --mail`` runs it alone.

A real SMTP server on loopback (aiosmtpd, in a thread of this process) takes the mails.

1. **Drain**: a server mailing to it; its answer to the first mail is held while N Help Form
   posts each queue an acknowledgement (a backlog of N), then released: N mails over the
   time from the release to the last mail's arrival is the sender's rate (mails/s).
2. **Chat with mail on and off**: two servers, one with WIDGET_SMTP_URL, one without; their
   closed loops in turns (off, on, then on, off, ...), each loop with agents replying through
   the REST API as in the suite, and a trickle of Help Form posts on both servers (each
   one mailed on the server with mail on). The medians of each side, their ratio, and the
   median of each turn's ratio (its two loops ran back to back).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from bench import server_process
from bench.report import median_loop
from bench.scenarios import keep_or_remove, new_workdir
from bench.server_process import HOST, Server, Site
from bench.side_by_side import CLOSED_REPLY_RATE, ChatSide

QUICK = {"mails": 200, "visitors": 100, "messages": 50, "loops": 2, "workers": 2}
FULL = {"mails": 500, "visitors": 100, "messages": 300, "loops": 5, "workers": 2}
POST_CONCURRENCY = 10
TRICKLE_PER_S = 10.0  # Help Form posts per second on each chat server during its loops
FIELD = re.compile(r'name="(form_token|client_msg_id)" value="([^"]+)"')


class Sink:
    """An SMTP server on loopback that counts what arrives; ``hold`` keeps its answer to
    the mails until ``release()``."""

    def __init__(self) -> None:
        self.port = server_process.free_port()
        self.arrived: list[float] = []
        self.message_ids: set[str] = set()
        self.released = threading.Event()
        self.released.set()
        self._controller = Controller(self, hostname=HOST, port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        while not self.released.is_set():
            await asyncio.sleep(0.005)
        found = re.search(rb"^Message-ID: *(\S+)", envelope.content, re.M | re.I)
        self.message_ids.add(found.group(1).decode() if found else "")
        self.arrived.append(time.perf_counter())
        return "250 OK"

    def env(self) -> dict[str, str]:
        return {"WIDGET_SMTP_URL": f"smtp://{HOST}:{self.port}",
                "WIDGET_MAIL_FROM": "Bench Support <support@bench.test>",
                "WIDGET_PUBLIC_URL": "https://support.bench.test"}

    def __enter__(self) -> Sink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


async def post_forms(server: Server, site: Site, count: int, first: int = 0,
                     per_s: float | None = None, stop: asyncio.Event | None = None) -> int:
    """Help Form posts (GET /help/new, then POST it), each with an address: ``count`` of
    them, or at ``per_s`` until ``stop``. Returns how many were stored."""
    done = 0
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        async def one(n: int) -> None:
            nonlocal done
            page = await http.get("/help/new", params={"site": site.key})
            response = await http.post("/help/new", data={
                "site": site.key, "name": "Bench Visitor", "email": f"bench{n}@example.com",
                "subject": f"Form {n}", "description": f"Export to CSV fails ({n})",
                "severity": "normal", **dict(FIELD.findall(page.text))})
            if response.status_code != 303:
                raise RuntimeError(f"POST /help/new: {response.status_code}")
            done += 1

        if per_s is None:
            queue = iter(range(first, first + count))

            async def worker() -> None:
                for n in queue:
                    await one(n)

            await asyncio.gather(*(worker() for _ in range(POST_CONCURRENCY)))
            return done
        assert stop is not None
        n, began = first, time.perf_counter()
        while not stop.is_set():
            await one(n)
            n += 1
            wait = began + (n - first) / per_s - time.perf_counter()
            if wait > 0:  # the trickle's pace, not a wait for a condition
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
    return done


def outbox_states(db: Any) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return dict(conn.execute("SELECT state, COUNT(*) FROM mail_outbox GROUP BY state"))


def the_site(server: Server) -> Site:
    """The one site ``init_site`` made on the server's database."""
    with contextlib.closing(sqlite3.connect(f"file:{server.db}?mode=ro", uri=True)) as conn:
        key = conn.execute("SELECT key FROM sites ORDER BY id LIMIT 1").fetchone()[0]
    return Site(key=key, origin="https://bench-shop.test")


def until(condition: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {what}")
        time.sleep(0.005)  # polling the condition


def drain(plan: dict[str, Any], env: dict[str, str], log: Callable[[str], None]
          ) -> dict[str, Any]:
    workdir = new_workdir("mail-drain")
    ok = False
    with Sink() as sink:
        server = Server(workdir / "bench.db", workdir / "server.log", {**env, **sink.env()})
        try:
            site = server_process.init_site(server.db, server.env)
            server.start()
            count = plan["mails"]
            sink.released.clear()
            began = time.perf_counter()
            stored = asyncio.run(post_forms(server, site, count))
            posting = time.perf_counter() - began
            cpu_before = server.cpu_seconds()
            released = time.perf_counter()
            sink.released.set()
            until(lambda: len(sink.arrived) >= count, f"{count} mails", 120)
            wall = sink.arrived[-1] - released
            cpu_after = server.cpu_seconds()
            until(lambda: outbox_states(server.db).get("sent") == count, "all recorded sent", 30)
            states = outbox_states(server.db)
            result = {
                "mails": count, "forms_stored": stored,
                "forms_per_s": round(stored / posting, 1),
                "drain_s": round(wall, 3), "mails_per_s": round(count / wall, 1),
                "server_cpu_percent": (round(100 * (cpu_after - cpu_before) / wall, 1)
                                       if cpu_before is not None and cpu_after is not None
                                       else None),
                "distinct_message_ids": len(sink.message_ids), "outbox": states,
                "server_log": server_process.log_problems(server.log_text())}
            ok = len(sink.message_ids) == count and states == {"sent": count}
            log(f"  drain: {count} mails in {wall:.2f} s, {result['mails_per_s']} mails/s")
            return result
        finally:
            server.stop()
            keep_or_remove(workdir, ok, log)


def chat_on_off(plan: dict[str, Any], env: dict[str, str], log: Callable[[str], None]
                ) -> dict[str, Any]:
    off_dir, on_dir = new_workdir("mail-off"), new_workdir("mail-on")
    with Sink() as sink:
        sides = {"off": ChatSide(Server(off_dir / "bench.db", off_dir / "server.log", env),
                                 plan),
                 "on": ChatSide(Server(on_dir / "bench.db", on_dir / "server.log",
                                       {**env, **sink.env()}), plan)}
        sites: dict[str, Site] = {}
        closed = {"mode": "closed", "messages": plan["messages"],
                  "reply_rate": CLOSED_REPLY_RATE}

        async def loop(name: str, turn: int) -> dict[str, Any]:
            side, stop = sides[name], asyncio.Event()
            trickle = asyncio.create_task(post_forms(side.server, sites[name], 0,
                                                     first=turn * 100_000, per_s=TRICKLE_PER_S,
                                                     stop=stop))
            try:
                result = await side.phase(closed)
            finally:
                stop.set()
            result["forms_posted"] = await trickle
            return result

        async def go() -> dict[str, list[dict[str, Any]]]:
            loops: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
            try:
                for side in sides.values():
                    await side.connect()
                for turn in range(plan["loops"]):
                    # off first, then on first: neither side always follows the other
                    for name in ("off", "on") if turn % 2 == 0 else ("on", "off"):
                        loops[name].append(await loop(name, turn))
                    log(f"  closed loop {turn + 1}: mail off {loops['off'][-1]['msgs_per_s']}, "
                        f"mail on {loops['on'][-1]['msgs_per_s']} msg/s")
                return loops
            finally:
                for side in sides.values():
                    with contextlib.suppress(Exception):
                        await side.agent.close()

        try:
            for name, side in sides.items():
                side.start()
                sites[name] = the_site(side.server)
            loops = asyncio.run(asyncio.wait_for(go(), 600))
            on_forms = sum(loop["forms_posted"] for loop in loops["on"])
            until(lambda: len(sink.arrived) >= on_forms, "the trickle's mails", 60)
        finally:
            for side in sides.values():
                side.close()
    result: dict[str, Any] = {"mails_sent_during_loops": len(sink.arrived)}
    for name, side in sides.items():
        median = median_loop(loops[name])
        result[name] = {"msgs_per_s": median.get("msgs_per_s"),
                        "ack_p50_ms": median.get("ack_p50_ms"), "ack_p99_ms": median.get("p99_ms"),
                        "server_cpu_percent": median.get("server_cpu_percent"),
                        "closed_loops_msgs_per_s": [loop["msgs_per_s"] for loop in loops[name]],
                        "forms_posted": sum(loop["forms_posted"] for loop in loops[name]),
                        "server_log": server_process.log_problems(side.server.log_text())}
    off, on = result["off"]["msgs_per_s"], result["on"]["msgs_per_s"]
    result["on_over_off"] = round(on / off, 3) if on and off else None
    # each turn's two loops ran back to back, in the same stretch of the machine's time
    pairs = [b["msgs_per_s"] / a["msgs_per_s"] for a, b in zip(loops["off"], loops["on"],
                                                                strict=True)
             if a["msgs_per_s"] and b["msgs_per_s"]]
    result["turn_ratios"] = [round(x, 3) for x in pairs]
    result["turn_ratio_median"] = round(statistics.median(pairs), 3) if pairs else None
    for folder in (off_dir, on_dir):
        keep_or_remove(folder, True, log)
    return result


def run(plan: dict[str, Any], env: dict[str, str], log: Callable[[str], None]
        ) -> dict[str, Any]:
    return {"plan": plan, "drain": drain(plan, env, log), "chat": chat_on_off(plan, env, log)}


def table(report: dict[str, Any]) -> str:
    drain_, chat = report["drain"], report["chat"]
    rows = [
        ("mails drained (acknowledgements)", f"{drain_['mails']}"),
        ("mails/s to the loopback sink", f"{drain_['mails_per_s']}"),
        ("server CPU while draining", f"{drain_['server_cpu_percent']} %"),
        ("Help Form posts/s (queuing them)", f"{drain_['forms_per_s']}"),
    ]
    for name in ("off", "on"):
        side = chat[name]
        loops = ", ".join(str(x) for x in side["closed_loops_msgs_per_s"])
        rows.append((f"chat closed loop, mail {name} (msg/s)",
                     f"{side['msgs_per_s']} (loops: {loops})"))
        rows.append((f"chat ack p50 / p99, mail {name} (ms)",
                     f"{side['ack_p50_ms']} / {side['ack_p99_ms']}"))
    rows.append(("chat throughput, mail on / off", f"{chat['on_over_off']} (median of the "
                 f"turns' ratios {chat['turn_ratio_median']}: {chat['turn_ratios']})"))
    rows.append(("mails sent during the chat loops", f"{chat['mails_sent_during_loops']}"))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


__all__ = ["FULL", "QUICK", "run", "table"]
