"""The load generator in several processes: a fleet of worker processes driven by the suite.

The suite (``python -m bench``) is one process; the server under test is another; the
visitors are spread over ``--workers`` more (forked) processes, each with its own event loop,
so that the generator is not one saturated Python process. The parent sends each worker a
command over a pipe and waits for every answer:

* ``connect``: open this worker's visitors (session + hello, or the bare relay socket) and
  open a request each; answers the ticket numbers;
* ``closed`` / ``open``: one measured phase (visitors.closed_loop, or an open loop at a
  share of the offered rate on a schedule common to all workers);
* ``idle`` / ``close_idle``: open idle widget sockets (a connect storm) and hold them;
* ``http``: a fixed-duration HTTP load (Help Form posts or REST ticket listing);
* ``stop``.

Times are ``time.perf_counter()`` (CLOCK_MONOTONIC on Linux: the same clock in every
process), so a send noted in a worker and the agent socket's receipt noted in the parent can
be subtracted. Every answer carries the worker's CPU seconds for the phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import re
import time
import uuid
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlencode

import httpx
import websockets

from bench import visitors
from bench.raw_http import KeepAlivePool
from bench.server_process import HOST, Site
from bench.visitors import Tally, Visitor

STORM_CONCURRENCY = 100  # connects in flight per worker


class Target:
    """Where the workers connect (the part of server_process.Server a Visitor uses)."""

    def __init__(self, port: int, ws_path: str = "/ws/widget") -> None:
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.ws_url = f"ws://{HOST}:{port}{ws_path}"


class TimedVisitor(Visitor):
    """bench.visitors' Visitor, noting when each (unique) body was sent and when agent replies
    arrived on its socket."""

    def __init__(self, index: int, server: Any, site: Site) -> None:
        super().__init__(index, server, site)
        self.sent_at: dict[str, float] = {}
        self.received = {}

    async def send(self, body: str, conversation: str | None
                   ) -> tuple[float, asyncio.Future[tuple[float, dict[str, Any]]]]:
        body = f"{body} {uuid.uuid4().hex[:8]}"  # unique, so the agent's copy can be matched
        sent, future = await super().send(body, conversation)
        self.sent_at[body] = sent
        return sent, future


class RelayVisitor(TimedVisitor):
    """The same client against the bare relay: no session, no hello, no request to open."""

    async def connect(self, http: httpx.AsyncClient, timeout: float) -> None:
        self.ws = await websockets.connect(self.server.ws_url, open_timeout=timeout,
                                           max_queue=None, compression=None)
        self.reader = asyncio.create_task(self._read(), name=f"reader-{self.index}")

    async def open_request(self, timeout: float) -> float:
        self.conversation = "relay"
        return 0.0


def _cpu() -> float:
    return time.process_time()


# --------------------------------------------------------------------------- worker side


class Worker:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.target = Target(spec["port"], spec.get("ws_path", "/ws/widget"))
        self.site = Site(key=spec["site_key"], origin=spec["origin"])
        self.visitors: list[TimedVisitor] = []
        self.held: list[Any] = []

    async def connect(self, first: int, count: int, relay: bool,
                      concurrency: int = 50) -> dict[str, Any]:
        cls = RelayVisitor if relay else TimedVisitor
        self.visitors = [cls(first + i, self.target, self.site) for i in range(count)]
        gate = asyncio.Semaphore(concurrency)
        tickets: dict[int, int] = {}

        async def one(visitor: TimedVisitor, http: httpx.AsyncClient) -> None:
            async with gate:
                await visitor.connect(http, 30)
                if relay:
                    visitor.conversation = "relay"
                    return
                _, future = await visitor.send(f"Visitor {visitor.index}: export fails", None)
                _, ack = await asyncio.wait_for(future, 30)
                visitor.conversation = ack["conversation"]
                if ack.get("ticket"):
                    tickets[visitor.index] = ack["ticket"]["number"]

        started = time.perf_counter()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=self.target.url, timeout=30, limits=limits) as http:
            await asyncio.gather(*(one(v, http) for v in self.visitors))
        return {"tickets": tickets, "setup_s": time.perf_counter() - started}

    async def phase(self, run: Any) -> dict[str, Any]:
        sent_at: dict[str, float] = {}
        received: dict[str, float] = {}
        for visitor in self.visitors:
            visitor.sent_at, visitor.received = sent_at, received
        tally = Tally()
        cpu = _cpu()
        await run(tally)
        return {"latencies": tally.latencies, "sent_times": tally.sent_times,
                "lag": tally.lag, "sent": tally.sent,
                "acked": tally.acked, "timeouts": tally.timeouts, "errors": tally.errors,
                "failures": tally.failures[:5], "first_send": tally.first_send,
                "last_ack": tally.last_ack, "sent_at": sent_at, "received": received,
                "cpu_s": _cpu() - cpu}

    async def open_loop(self, rate: float, total: int, duration: float, start: float,
                        tally: Tally) -> None:
        """Visitor i (of ``total`` in the whole fleet) sends at start + (k * total + i) / rate."""
        await visitors.open_loop(self.visitors, rate, duration, 30, tally, start=start,
                                  total=total)

    async def idle(self, count: int, concurrency: int) -> dict[str, Any]:
        """Open ``count`` more widget sockets (session + hello + ready) and hold them."""
        gate = asyncio.Semaphore(concurrency)
        ready: list[float] = []
        errors: list[str] = []
        retries: list[str] = []
        cpu = _cpu()

        payload = {"site": self.site.key, "token": None, "user": None}

        async def session(http: KeepAlivePool) -> str:
            try:
                status, body = await asyncio.wait_for(
                    http.post_json("/api/widget/v1/session", payload), 30)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                # a pooled keep-alive connection the server had just closed (its 5 s idle
                # timeout, reached while the storm's tail waits): a browser retries it too
                retries.append(f"{type(exc).__name__}: {exc}"[:200])
                status, body = await asyncio.wait_for(
                    http.post_json("/api/widget/v1/session", payload), 30)
            if status != 200:
                raise RuntimeError(f"session: {status} {body[:100]!r}")
            return str(json.loads(body)["token"])

        async def one(http: KeepAlivePool) -> None:
            async with gate:
                started = time.perf_counter()
                try:
                    token = await session(http)
                    ws = await websockets.connect(
                        self.target.ws_url, origin=self.site.origin,  # type: ignore[arg-type]
                        open_timeout=30, compression=None, ping_interval=None)
                    self.held.append(ws)
                    await ws.send(json.dumps({"type": "hello", "site": self.site.key,
                                              "token": token, "resume": {}}))
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if frame.get("type") != "ready":
                        raise RuntimeError(f"expected ready, got {str(frame)[:120]}")
                    ready.append(time.perf_counter() - started)
                except Exception as exc:  # counted and reported; the others go on
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])

        # the session POSTs through the bench's own keep-alive client: with httpx the
        # workers spent 11-19 ms of CPU per connect, so the storm measured them
        http = KeepAlivePool(HOST, self.target.port, concurrency, {"Origin": self.site.origin})
        started = time.perf_counter()
        try:
            await asyncio.gather(*(one(http) for _ in range(count)))
        finally:
            await http.close()
        return {"ready_s": ready, "errors": len(errors), "first_errors": errors[:5],
                "session_retries": len(retries),
                "started": started, "ended": time.perf_counter(),
                "open": sum(1 for ws in self.held if ws.close_code is None),
                "cpu_s": _cpu() - cpu}

    async def close_idle(self) -> dict[str, Any]:
        await asyncio.gather(*(asyncio.wait_for(ws.close(), 10) for ws in self.held),
                             return_exceptions=True)
        self.held.clear()
        return {}

    async def http(self, kind: str, duration: float, concurrency: int, start: float,
                   token: str | None) -> dict[str, Any]:
        """``form``: GET /help/new then POST it (one Help Form post); ``list``: GET
        /api/v1/tickets with the bearer token. For ``duration`` seconds from ``start``."""
        latencies: list[float] = []
        failures: list[str] = []
        end = start + duration
        field = re.compile(r'name="(form_token|client_msg_id)" value="([^"]+)"')

        async def one_form(http: KeepAlivePool, n: int) -> None:
            status, page = await http.request("GET", f"/help/new?site={self.site.key}")
            if status != 200:
                raise RuntimeError(f"GET /help/new: {status}")
            values = dict(field.findall(page.decode()))
            status, _ = await http.request("POST", "/help/new", urlencode({
                "site": self.site.key, "name": "Bench Visitor", "email": "bench@example.com",
                "subject": f"Form {n}", "description": f"Export to CSV fails ({n})",
                "severity": "normal", **values}).encode(),
                {"Content-Type": "application/x-www-form-urlencoded"})
            if status != 303:
                raise RuntimeError(f"POST /help/new: {status}")

        async def one_list(http: KeepAlivePool, n: int) -> None:
            status, _ = await http.request("GET", "/api/v1/tickets?limit=50",
                                           headers={"Authorization": f"Bearer {token}"})
            if status != 200:
                raise RuntimeError(f"GET /api/v1/tickets: {status}")

        request = one_form if kind == "form" else one_list

        async def client(http: KeepAlivePool, n: int) -> None:
            while time.perf_counter() < end:
                began = time.perf_counter()
                try:
                    await asyncio.wait_for(request(http, n), 30)
                    latencies.append(time.perf_counter() - began)
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {exc}"[:200])
                n += 1000

        delay = start - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        cpu = _cpu()
        # the bench's own keep-alive client: httpx cost more CPU per request than the server
        http = KeepAlivePool(HOST, self.target.port, concurrency, {})
        try:
            await asyncio.gather(*(client(http, i) for i in range(concurrency)))
        finally:
            await http.close()
        return {"latencies": latencies, "failures": len(failures),
                "first_failures": failures[:5], "cpu_s": _cpu() - cpu}

    async def handle(self, command: str, args: dict[str, Any]) -> dict[str, Any]:
        if command == "connect":
            return await self.connect(**args)
        if command == "closed":
            messages = args["messages"]
            return await self.phase(lambda tally: visitors.closed_loop(
                self.visitors, messages, 30, tally))  # type: ignore[arg-type]
        if command == "open":
            rate, total, duration, start = (args[k] for k in ("rate", "total", "duration",
                                                              "start"))
            return await self.phase(lambda tally: self.open_loop(rate, total, duration, start,
                                                                 tally))
        if command == "idle":
            return await self.idle(args["count"], args["concurrency"])
        if command == "close_idle":
            return await self.close_idle()
        if command == "http":
            return await self.http(**args)
        raise ValueError(f"unknown command {command}")

    async def close(self) -> None:
        await asyncio.gather(*(v.close() for v in self.visitors))
        await self.close_idle()


async def _serve(conn: Connection, spec: dict[str, Any]) -> None:
    worker = Worker(spec)
    try:
        while True:
            command, args = await asyncio.to_thread(conn.recv)
            if command == "stop":
                return
            try:
                conn.send(("ok", await worker.handle(command, args)))
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"[:1000]))
    finally:
        await worker.close()


def _main(conn: Connection, spec: dict[str, Any]) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(conn, spec))
    conn.close()


# --------------------------------------------------------------------------- parent side


class Fleet:
    """``workers`` forked load-generator processes; ``call`` runs one command on each."""

    def __init__(self, workers: int, port: int, site: Site, ws_path: str = "/ws/widget",
                 ports: list[int] | None = None) -> None:
        """``ports``: worker i loads ``ports[i % len(ports)]`` (several nodes), else ``port``."""
        context = multiprocessing.get_context("fork")
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        for i in range(workers):
            spec = {"port": ports[i % len(ports)] if ports else port, "site_key": site.key,
                    "origin": site.origin, "ws_path": ws_path}
            parent, child = context.Pipe()
            process = context.Process(target=_main, args=(child, spec), daemon=True)
            process.start()
            child.close()
            self.pipes.append(parent)
            self.processes.append(process)

    @property
    def size(self) -> int:
        return len(self.pipes)

    def call(self, command: str, args: list[dict[str, Any]], timeout: float = 300
             ) -> list[dict[str, Any]]:
        """Send ``command`` with ``args[i]`` to worker i; wait for all; raise on an error."""
        for pipe, arg in zip(self.pipes, args, strict=True):
            pipe.send((command, arg))
        answers = []
        deadline = time.monotonic() + timeout
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"a load-generator worker did not answer {command}")
            status, answer = pipe.recv()
            if status != "ok":
                raise RuntimeError(f"worker {command}: {answer}")
            answers.append(answer)
        return answers

    async def acall(self, command: str, args: list[dict[str, Any]], timeout: float = 300
                    ) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.call, command, args, timeout)

    def split(self, total: int) -> list[tuple[int, int]]:
        """(first index, count) of each worker's share of ``total``."""
        base, extra = divmod(total, self.size)
        shares, first = [], 0
        for i in range(self.size):
            count = base + (1 if i < extra else 0)
            shares.append((first, count))
            first += count
        return shares

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError, BrokenPipeError):
                pipe.send(("stop", {}))
        for process in self.processes:
            process.join(15)
            if process.is_alive():
                process.terminate()
                process.join(5)
        for pipe in self.pipes:
            pipe.close()


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One phase's answers of all workers as one tally."""
    merged: dict[str, Any] = {"latencies": [], "sent_times": [], "lag": [], "sent_at": {},
                              "received": {}, "failures": []}
    for part in parts:
        merged["latencies"] += part["latencies"]
        merged["sent_times"] += part["sent_times"]
        merged["lag"] += part["lag"]
        merged["sent_at"].update(part["sent_at"])
        merged["received"].update(part["received"])
        merged["failures"] += part["failures"]
    for key in ("sent", "acked", "timeouts", "errors"):
        merged[key] = sum(part[key] for part in parts)
    firsts = [p["first_send"] for p in parts if p["first_send"] is not None]
    lasts = [p["last_ack"] for p in parts if p["last_ack"] is not None]
    merged["first_send"] = min(firsts) if firsts else None
    merged["last_ack"] = max(lasts) if lasts else None
    merged["client_cpu_s"] = sum(part["cpu_s"] for part in parts)
    return merged
