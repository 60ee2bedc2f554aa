"""The suite's load scenarios, each against its own server, driven by a bench.fleet.Fleet.

* relay: the bare relay (bench/relay_app.py), closed loop;
* chat: widget-server with an agent watching on /ws/console and agents replying through the
  REST API: closed loop (saturation), then open loops at the offered rates;
* connect storm and idle hold: visitors doing session + hello all at once, then held open;
* http: Help Form posts (GET the form, POST it) and REST ticket listing, requests per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import websockets

from bench.fleet import Fleet, merge
from bench.raw_http import KeepAlivePool
from bench.server_process import HOST, Server, Site
from bench.stall_probe import StallProbe, Window, outside, summary
from bench.visitors import close_socket, ms, percentile

WARM_UP_SOCKETS = 20


def new_workdir(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"widget-bench-{name}-"))


def cpu_percent(before: float | None, after: float | None, wall: float) -> float | None:
    return None if before is None or after is None else round(100 * (after - before) / wall, 1)


class AgentWatcher:
    """One agent socket; notes when each message frame (by body) arrives."""

    def __init__(self) -> None:
        self.delivered: dict[str, float] = {}
        self.frames = 0
        self.closed: str | None = None
        self.ws: Any = None
        self.task: asyncio.Task[None] | None = None

    async def connect(self, url: str, headers: dict[str, str] | None = None,
                      origin: str | None = None, expect_ready: bool = False) -> None:
        self.ws = await websockets.connect(url, additional_headers=headers or {},
                                           origin=origin, max_queue=None,  # type: ignore[arg-type]
                                           compression=None, open_timeout=30)
        if expect_ready:
            ready = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
            if ready.get("type") != "ready":
                raise RuntimeError(f"agent socket: expected ready, got {ready}")
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                frame = json.loads(raw)
                self.frames += 1
                body = frame.get("body")
                if frame.get("type") == "message" and isinstance(frame.get("message"), dict):
                    body = frame["message"].get("body")
                if isinstance(body, str):
                    self.delivered.setdefault(body, now)
        except websockets.ConnectionClosed as exc:
            self.closed = str(exc)

    async def wait_for(self, bodies: list[str], timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline and not all(b in self.delivered for b in bodies):
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await close_socket(self.ws, self.task)


class Replier:
    """Agents answering through the REST API at ``rate`` replies/s (open loop), round robin
    over the tickets; notes each reply's body and send time."""

    def __init__(self, server: Server, token: str, tickets: list[int], rate: float) -> None:
        self.server, self.token, self.tickets, self.rate = server, token, tickets, rate
        self.sent_at: dict[str, float] = {}
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        if not self.tickets or self.rate <= 0:
            return
        pool = KeepAlivePool(HOST, self.server.port, 20,
                             {"Authorization": f"Bearer {self.token}"})
        pending: list[asyncio.Task[None]] = []

        async def post(number: int, body: str) -> None:
            began = time.perf_counter()
            self.sent_at[body] = began
            try:
                status, answer = await asyncio.wait_for(pool.post_json(
                    f"/api/v1/tickets/{number}/messages", {"body": body, "internal": False}), 30)
                if status not in (200, 201):
                    raise RuntimeError(f"{status} {answer[:100]!r}")
                self.latencies.append(time.perf_counter() - began)
            except Exception as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}"[:200])

        try:
            start, k = time.perf_counter(), 0
            while not self._stop.is_set():
                delay = start + k / self.rate - time.perf_counter()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), delay)
                    continue
                body = f"agent reply {k} {uuid.uuid4().hex[:8]}"
                pending.append(asyncio.create_task(post(self.tickets[k % len(self.tickets)],
                                                        body)))
                k += 1
            await asyncio.gather(*pending)
        finally:
            await pool.close()

    def stats(self, received: dict[str, float], wall: float) -> dict[str, Any]:
        delivery = [received[b] - t for b, t in self.sent_at.items() if b in received]
        return {"sent": len(self.sent_at), "ok": len(self.latencies),
                "per_s": round(len(self.latencies) / wall, 1) if wall > 0 else None,
                "failures": len(self.failures), "first_failures": self.failures[:3],
                "rest_p50_ms": ms(percentile(self.latencies, 0.5)),
                "rest_p99_ms": ms(percentile(self.latencies, 0.99)),
                "delivered_to_widget": len(delivery),
                "widget_delivery_p50_ms": ms(percentile(delivery, 0.5)),
                "widget_delivery_p99_ms": ms(percentile(delivery, 0.99))}


def stall_stats(m: dict[str, Any], stalls: list[Window], start: float, end: float
                ) -> dict[str, Any]:
    """The machine's stalls during the phase, and the ack latencies of the messages that no
    stall overlapped (bench/stall_probe.py)."""
    calm = outside(stalls, m["sent_times"], m["latencies"])
    return {"machine_stalls": summary(stalls, start, end), "acked_outside_stalls": len(calm),
            "ack_p99_outside_stalls_ms": ms(percentile(calm, 0.99))}


def phase_stats(m: dict[str, Any], agent: AgentWatcher, wall: float,
                server_cpu: float | None) -> dict[str, Any]:
    duration = max((m["last_ack"] or 0) - (m["first_send"] or 0), 1e-9)
    delivery = [agent.delivered[b] - t for b, t in m["sent_at"].items() if b in agent.delivered]
    return {
        "sent": m["sent"], "acked": m["acked"], "lost": m["sent"] - m["acked"],
        "failures": m["failures"][:5], "duration_s": round(duration, 3),
        "msgs_per_s": round(m["acked"] / duration, 1),
        "ack_p50_ms": ms(percentile(m["latencies"], 0.50)),
        "p99_ms": ms(percentile(m["latencies"], 0.99)),
        "ack_max_ms": ms(max(m["latencies"]) if m["latencies"] else None),
        "delivered": len(delivery),
        "delivery_p50_ms": ms(percentile(delivery, 0.50)),
        "delivery_p99_ms": ms(percentile(delivery, 0.99)),
        "client_send_lag_p99_ms": ms(percentile(m["lag"], 0.99)),
        "server_cpu_percent": server_cpu,
        "client_cpu_percent": round(100 * m["client_cpu_s"] / wall, 1),
    }


async def run_phases(server: Server, fleet: Fleet, agent: AgentWatcher, visitors: int,
                     phases: list[dict[str, Any]], token: str | None = None,
                     tickets: list[int] | None = None) -> list[dict[str, Any]]:
    """Each phase: {"mode": "closed", "messages": M} or {"mode": "open", "rate": R,
    "duration": S}; with a token, agents reply at ``reply_rate`` meanwhile."""
    shares = fleet.split(visitors)
    results = []
    for phase in phases:
        replier = (Replier(server, token, tickets or [], phase.get("reply_rate", 0.0))
                   if token else None)
        probe = StallProbe()
        probe.start()
        cpu_before, wall_before = server.cpu_seconds(), time.perf_counter()
        driver_before = time.process_time()  # this process: the agent socket, the replies
        if replier is not None:
            replier.start()
        if phase["mode"] == "closed":
            answers = await fleet.acall("closed", [{"messages": phase["messages"]}
                                                   for _ in shares])
        else:
            start = time.perf_counter() + 0.3
            answers = await fleet.acall("open", [
                {"rate": phase["rate"], "total": visitors, "duration": phase["duration"],
                 "start": start} for _ in shares])
        wall = time.perf_counter() - wall_before
        server_cpu = cpu_percent(cpu_before, server.cpu_seconds(), wall)
        stalls = probe.stop()
        if replier is not None:
            await replier.stop()
        m = merge(answers)
        await agent.wait_for(list(m["sent_at"]), 10)
        stats = {**phase, **phase_stats(m, agent, wall, server_cpu),
                 **stall_stats(m, stalls, wall_before, wall_before + wall)}
        stats["driver_cpu_percent"] = round(100 * (time.process_time() - driver_before) / wall, 1)
        if replier is not None:
            stats["agent_replies"] = replier.stats(m["received"], wall)
        stats["server_rss_mb"] = round(server.rss_mb() or 0, 1)
        results.append(stats)
    return results


# --------------------------------------------------------------------------- connect / idle


async def open_levels(server: Server, fleet: Fleet, levels: list[int],
                      concurrency: int, settle: float) -> list[dict[str, Any]]:
    """Connect storms up to each level in turn, holding every socket; RSS per socket."""
    from bench.__main__ import rss_kib  # the one /proc reader

    await fleet.acall("idle", [{"count": c, "concurrency": concurrency}
                               for _, c in fleet.split(WARM_UP_SOCKETS)])  # lazy imports
    await fleet.acall("close_idle", [{} for _ in range(fleet.size)])
    await asyncio.sleep(1.0)
    base = rss_kib(server.pid) or 0
    out, opened = [], 0
    for level in levels:
        cpu_before, started = server.cpu_seconds(), time.perf_counter()
        answers = await fleet.acall("idle", [{"count": c, "concurrency": concurrency}
                                             for _, c in fleet.split(level - opened)], 600)
        elapsed = time.perf_counter() - started
        server_cpu = cpu_percent(cpu_before, server.cpu_seconds(), elapsed)
        opened = level
        ready = [t for a in answers for t in a["ready_s"]]
        await asyncio.sleep(settle)  # let the server settle (hello handling, GC)
        after = rss_kib(server.pid) or 0
        alive = sum(a["open"] for a in answers)  # each worker counts every socket it holds
        out.append({
            "target": level, "open": alive, "ready": len(ready),
            "errors": sum(a["errors"] for a in answers),
            "first_errors": [e for a in answers for e in a["first_errors"]][:5],
            "session_retries": sum(a["session_retries"] for a in answers),
            "concurrency": concurrency * fleet.size,
            "connects_per_s": round(len(ready) / elapsed, 1),
            "ready_p50_ms": ms(percentile(ready, 0.50)),
            "ready_p99_ms": ms(percentile(ready, 0.99)),
            "server_cpu_percent": server_cpu,
            "client_cpu_percent": round(100 * sum(a["cpu_s"] for a in answers) / elapsed, 1),
            "rss_before_mb": round(base / 1024, 1), "rss_after_mb": round(after / 1024, 1),
            "kib_per_socket": round((after - base) / alive, 1) if alive else None,
        })
    return out


# --------------------------------------------------------------------------- http


async def http_load(server: Server, fleet: Fleet, kind: str, duration: float,
                    concurrency: int, token: str | None) -> dict[str, Any]:
    start = time.perf_counter() + 0.3
    cpu_before = server.cpu_seconds()
    answers = await fleet.acall("http", [{"kind": kind, "duration": duration,
                                          "concurrency": concurrency, "start": start,
                                          "token": token} for _ in range(fleet.size)])
    wall = time.perf_counter() - start
    latencies = [t for a in answers for t in a["latencies"]]
    return {"duration_s": round(wall, 2), "requests": len(latencies),
            "per_s": round(len(latencies) / wall, 1),
            "p50_ms": ms(percentile(latencies, 0.5)), "p99_ms": ms(percentile(latencies, 0.99)),
            "failures": sum(a["failures"] for a in answers),
            "first_failures": [f for a in answers for f in a["first_failures"]][:3],
            "concurrency": concurrency * fleet.size,
            "server_cpu_percent": cpu_percent(cpu_before, server.cpu_seconds(), wall),
            "client_cpu_percent": round(100 * sum(a["cpu_s"] for a in answers) / wall, 1)}


def keep_or_remove(workdir: Path, ok: bool, log: Any) -> None:
    if ok:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        log(f"  kept {workdir} (database, server.log)")


__all__ = ["HOST", "AgentWatcher", "Fleet", "Site", "http_load", "new_workdir",
           "open_levels", "run_phases"]
