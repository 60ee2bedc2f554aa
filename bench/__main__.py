"""The benchmark suite: ``python -m bench`` (full) or ``python -m bench --quick`` (< 60 s).

Runs, each against its own server subprocess on a free 127.0.0.1 port (this process is the
load generator):

1. relay: the bare relay of bench/relay_app.py (same uvicorn/websockets stack, no database);
2. chat: ``widget-server serve`` on a fresh SQLite file, N visitors sending in a closed loop
   while an agent watches on /ws/console; the same load generator as the relay
   (bench/chat_load.py's Visitor and closed_loop);
3. idle: N idle widget sockets (session + hello), server RSS delta per socket;
4. cold start: spawn to a healthy /healthz (median of 3), idle RSS after start;
5. widget weight: gzipped bytes of the loader and of the first open.

Prints a table and writes bench/results/latest.json. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench import chat_load
from bench.chat_load import HOST, Server, Site, Tally, Visitor, ms, percentile

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

QUICK = {"visitors": 100, "messages": 50, "rate": (1000.0, 5.0), "idle": [1000],
         "cold_starts": 3}
FULL = {"visitors": 100, "messages": 100, "rate": (1000.0, 10.0), "idle": [5000, 10000],
        "cold_starts": 3}
MAX_IDLE = 10_000
CONNECT_CONCURRENCY = 50
AGENT_PASSWORD = "bench-agent-pw-1"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def server_env() -> dict[str, str]:
    env = {**os.environ, "WIDGET_LOG_LEVEL": "warning"}
    for name in ("WIDGET_DB", "WIDGET_HOST", "WIDGET_PORT"):
        env.pop(name, None)
    return env


def rss_kib(pid: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else min(max(soft, wanted), hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class LimitedServer(Server):
    """`widget-server serve` under `prlimit --nofile` (so it can hold many sockets)."""

    nofile = 0

    def start(self, timeout: float = 30.0) -> None:
        command = [sys.executable, "-m", "widget_server", "serve", "--db", str(self.db),
                   "--host", HOST, "--port", str(self.port)]
        if self.nofile and shutil.which("prlimit"):
            command = ["prlimit", f"--nofile={self.nofile}:{self.nofile}", *command]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                            env=self.env, cwd=chat_load.CODE,
                                            start_new_session=True)
        wait_healthy(self, timeout)


class RelayServer(Server):
    def start(self, timeout: float = 30.0) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(BENCH / "relay_app.py"), "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        wait_healthy(self, timeout)


def wait_healthy(server: Server, timeout: float, poll: float = 0.05) -> None:
    assert server.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log_text()[-2000:]}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(poll)
    raise RuntimeError("server did not answer /healthz in time")


# --------------------------------------------------------------------------- load generator


class TimedVisitor(Visitor):
    """chat_load's visitor, also noting when each body was sent (for delivery latency)."""

    sent_at: dict[str, float]

    async def send(self, body: str, conversation: str | None
                   ) -> tuple[float, asyncio.Future[tuple[float, dict[str, Any]]]]:
        body = f"{body} {uuid.uuid4().hex[:8]}"  # unique, so the agent's copy can be matched
        sent, future = await super().send(body, conversation)
        self.sent_at[body] = sent
        return sent, future


class RelayVisitor(TimedVisitor):
    """The same client against the relay: no session, no hello, no request to open."""

    async def connect(self, http: httpx.AsyncClient, timeout: float) -> None:
        self.ws = await websockets.connect(self.server.ws_url, open_timeout=timeout,
                                           max_queue=None, compression=None)
        self.reader = asyncio.create_task(self._read(), name=f"reader-{self.index}")

    async def open_request(self, timeout: float) -> float:
        self.conversation = "relay"
        return 0.0


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
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task


async def send_phase(server: Server, site: Site, visitor_cls: type[TimedVisitor],
                     agent: AgentWatcher, visitors_n: int, messages: int,
                     rate: tuple[float, float] | None = None) -> dict[str, Any]:
    """Connect N visitors, then chat_load's closed loop (and, if ``rate`` = (msg/s, s), its
    open loop at that offered load); ack and delivery latency of each."""
    visitors = [visitor_cls(index, server, site) for index in range(visitors_n)]
    for visitor in visitors:
        visitor.sent_at = {}
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def connect(visitor: TimedVisitor, http: httpx.AsyncClient) -> None:
        async with gate:
            await visitor.connect(http, 30)
            await visitor.open_request(30)

    async def phase(run: Any) -> dict[str, Any]:
        sent_at: dict[str, float] = {}
        for visitor in visitors:
            visitor.sent_at = sent_at
        tally = Tally()
        cpu_before, wall_before = server.cpu_seconds(), time.perf_counter()
        await run(tally)
        wall_after, cpu_after = time.perf_counter(), server.cpu_seconds()
        await agent.wait_for(list(sent_at), 10)
        duration = max((tally.last_ack or wall_after) - (tally.first_send or wall_before), 1e-9)
        delivery = [agent.delivered[b] - t for b, t in sent_at.items() if b in agent.delivered]
        return {
            "sent": tally.sent, "acked": tally.acked, "lost": tally.sent - tally.acked,
            "failures": tally.failures[:5],
            "duration_s": round(duration, 3),
            "msgs_per_s": round(tally.acked / duration, 1),
            "ack_p50_ms": ms(percentile(tally.latencies, 0.50)),
            "p99_ms": ms(percentile(tally.latencies, 0.99)),
            "ack_max_ms": ms(max(tally.latencies) if tally.latencies else None),
            "delivered": len(delivery),
            "delivery_p50_ms": ms(percentile(delivery, 0.50)),
            "delivery_p99_ms": ms(percentile(delivery, 0.99)),
            "server_cpu_percent": (None if cpu_before is None or cpu_after is None else
                                   round(100 * (cpu_after - cpu_before)
                                         / (wall_after - wall_before), 1)),
            "server_rss_mb": round(server.rss_mb() or 0, 1),
        }

    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await asyncio.gather(*(connect(v, http) for v in visitors))
        result = {"visitors": visitors_n, "messages_per_visitor": messages}
        result.update(await phase(lambda tally: chat_load.closed_loop(
            visitors, messages, 30, tally)))
        if rate is not None:
            result["open_loop"] = {"offered_msgs_per_s": rate[0], "duration_s": rate[1],
                                   **await phase(lambda tally: chat_load.open_loop(
                                       visitors, rate[0], rate[1], 30, tally))}
        return result
    finally:
        await asyncio.gather(*(v.close() for v in visitors))


# --------------------------------------------------------------------------- scenarios


def new_workdir(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"widget-bench-{name}-"))


def bench_relay(visitors: int, messages: int) -> dict[str, Any]:
    workdir = new_workdir("relay")
    server = RelayServer(workdir / "unused.db", workdir / "relay.log", server_env())
    try:
        server.start()

        async def go() -> dict[str, Any]:
            agent = AgentWatcher()
            await agent.connect(f"ws://{HOST}:{server.port}/ws/agent")
            try:
                return await send_phase(server, Site(key="relay", origin=""), RelayVisitor,
                                        agent, visitors, messages)
            finally:
                await agent.close()

        return asyncio.run(asyncio.wait_for(go(), 180))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def sign_in_agent(server: Server, site: Site, env: dict[str, str]) -> str:
    """Create an admin agent with the CLI and sign in; return the Cookie header."""
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    chat_load.run_cli("agent", "add", "--db", str(server.db), "--email", email, "--password",
                      AGENT_PASSWORD, "--role", "admin", "--site", site.key, env=env)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        form = client.get("/console/login").text
        token = re.search(r'name="login_token" value="([^"]+)"', form)
        if token is None:
            raise RuntimeError("the sign-in form has no login_token")
        response = client.post("/console/login", data={
            "email": email, "password": AGENT_PASSWORD, "login_token": token.group(1)})
        if response.status_code != 303:
            raise RuntimeError(f"console sign-in: {response.status_code}")
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


def bench_chat(visitors: int, messages: int, rate: tuple[float, float] | None
               ) -> dict[str, Any]:
    workdir = new_workdir("chat")
    env = server_env()
    server = LimitedServer(workdir / "bench.db", workdir / "server.log", env)
    ok = False
    try:
        site = chat_load.init_site(server.db, env)
        server.start()
        cookie = sign_in_agent(server, site, env)

        async def go() -> dict[str, Any]:
            agent = AgentWatcher()
            await agent.connect(f"ws://{HOST}:{server.port}/ws/console",
                                headers={"Cookie": cookie},
                                origin=f"http://{HOST}:{server.port}", expect_ready=True)
            try:
                result = await send_phase(server, site, TimedVisitor, agent, visitors, messages,
                                          rate)
                result["agent_socket_closed"] = agent.closed
                return result
            finally:
                await agent.close()

        result = asyncio.run(asyncio.wait_for(go(), 180))
        server.stop()
        stored = chat_load.count_visitor_messages(server.db)
        expected = (result["acked"] + result.get("open_loop", {}).get("acked", 0)
                    + visitors)  # opening requests are visitor messages too
        result["persistence_ok"] = stored["visitor_messages"] == expected
        result["server_log"] = chat_load.log_problems(server.log_text())
        ok = result["persistence_ok"] and not result["server_log"]["flagged_lines"]
        return result
    finally:
        server.stop()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"  kept {workdir} (database, server.log)")


async def open_idle(server: Server, site: Site, count: int, held: list[Any],
                    ready_ms: list[float]) -> list[str]:
    """Open ``count`` more widget sockets (session + hello + ready) and keep them open."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    errors: list[str] = []

    async def one(http: httpx.AsyncClient) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                response = await http.post("/api/widget/v1/session",
                                           json={"site": site.key, "token": None, "user": None},
                                           headers={"Origin": site.origin})
                response.raise_for_status()
                ws = await websockets.connect(server.ws_url, origin=site.origin,  # type: ignore[arg-type]
                                              open_timeout=30, compression=None,
                                              ping_interval=None)
                held.append(ws)
                await ws.send(json.dumps({"type": "hello", "site": site.key,
                                          "token": response.json()["token"], "resume": {}}))
                ready = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if ready.get("type") != "ready":
                    raise RuntimeError(f"expected ready, got {ready.get('type')}")
                ready_ms.append(time.perf_counter() - started)
            except Exception as exc:  # counted, reported; the others go on
                if len(errors) < 5:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                else:
                    errors.append("")

    limits = httpx.Limits(max_connections=CONNECT_CONCURRENCY,
                          max_keepalive_connections=CONNECT_CONCURRENCY)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as http:
        await asyncio.gather(*(one(http) for _ in range(count)))
    return errors


def bench_idle(levels: list[int]) -> dict[str, Any]:
    levels = [min(n, MAX_IDLE) for n in levels]
    top = max(levels)
    client_limit = raise_fd_limit(top + 1000)
    workdir = new_workdir("idle")
    env = server_env()
    server = LimitedServer(workdir / "bench.db", workdir / "server.log", env)
    server.nofile = top + 1000
    result: dict[str, Any] = {"client_fd_limit": client_limit, "server_fd_limit": server.nofile,
                              "levels": []}
    try:
        site = chat_load.init_site(server.db, env)
        server.start()

        async def go() -> None:
            held: list[Any] = []
            try:
                await open_idle(server, site, 20, held, [])  # warm-up: lazy imports, caches
                for ws in held:
                    await ws.close()
                held.clear()
                await asyncio.sleep(1.0)
                base = rss_kib(server.pid) or 0
                result["rss_before_mb"] = round(base / 1024, 1)
                opened = 0
                for level in levels:
                    ready: list[float] = []
                    started = time.perf_counter()
                    errors = await open_idle(server, site, level - opened, held, ready)
                    elapsed = time.perf_counter() - started
                    opened = level
                    await asyncio.sleep(2.0)  # let the server settle (hello handling, GC)
                    alive = sum(1 for ws in held if ws.close_code is None)
                    after = rss_kib(server.pid) or 0
                    result["levels"].append({
                        "target": level, "open": alive, "ready": len(ready),
                        "errors": len(errors), "first_errors": [e for e in errors if e][:5],
                        "connects_per_s": round(len(ready) / elapsed, 1),
                        "ready_p99_ms": ms(percentile(ready, 0.99)),
                        "rss_after_mb": round(after / 1024, 1),
                        "kib_per_socket": round((after - base) / alive, 1) if alive else None,
                    })
                    log(f"  idle: {alive}/{level} sockets open, "
                        f"{result['levels'][-1]['kib_per_socket']} KiB/socket")
            finally:
                await asyncio.gather(*(asyncio.wait_for(ws.close(), 10) for ws in held),
                                     return_exceptions=True)

        asyncio.run(asyncio.wait_for(go(), 420))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    last = result["levels"][-1] if result["levels"] else {}
    result["sockets"] = last.get("open")
    result["kib_per_socket"] = last.get("kib_per_socket")
    result["target_reached"] = bool(last) and last.get("open") == top
    return result


def bench_cold_start(times: int) -> dict[str, Any]:
    workdir = new_workdir("cold")
    env = server_env()
    db = workdir / "bench.db"
    chat_load.init_site(db, env)
    durations: list[float] = []
    rss: list[float] = []
    try:
        for _ in range(times):
            server = LimitedServer(db, workdir / "server.log", env)
            started = time.perf_counter()
            try:
                server.start()
                durations.append(time.perf_counter() - started)
                time.sleep(1.0)  # idle: what the started server holds
                rss.append((rss_kib(server.pid) or 0) / 1024)
            finally:
                server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"runs_s": [round(d, 3) for d in durations],
            "median_s": round(statistics.median(durations), 3),
            "idle_rss_mb": round(statistics.median(rss), 1)}


def widget_weight() -> dict[str, Any]:
    from widget_server.web.static import widget_assets

    assets = widget_assets()
    panel = {name: len(asset.gzipped) for name, asset in assets.panel.items()}
    loader = len(assets.loader.gzipped)
    return {"loader": loader, "first_open": loader + sum(panel.values()), "panel_files": panel}


# --------------------------------------------------------------------------- report


TARGETS = [
    # (label, value getter, target text, test)
    ("idle sockets held", lambda r: r["idle"]["sockets"], ">= 10000", lambda v: v >= 10000),
    ("KiB per idle socket", lambda r: r["idle"]["kib_per_socket"], "<= 32", lambda v: v <= 32),
    ("persisted msg/s", lambda r: r["chat"]["msgs_per_s"], ">= 3000", lambda v: v >= 3000),
    ("ratio to relay", lambda r: r["chat"]["ratio_to_relay"], ">= 0.40", lambda v: v >= 0.40),
    ("ack p99 ms at 1000/s", lambda r: r["chat"]["ack_p99_ms_at_1000_per_s"], "<= 25",
     lambda v: v <= 25),
    ("cold start s", lambda r: r["cold_start_s"], "<= 1", lambda v: v <= 1),
    ("idle RSS MB", lambda r: r["idle_rss_mb"], "<= 60", lambda v: v <= 60),
]


def table(report: dict[str, Any]) -> str:
    relay, chat, idle = report["relay"], report["chat"], report["idle"]
    rows = [
        ("relay msg/s", relay.get("msgs_per_s")),
        ("relay ack p99 ms", relay.get("p99_ms")),
        ("chat persisted msg/s", chat.get("msgs_per_s")),
        ("chat ack p50 ms", chat.get("ack_p50_ms")),
        ("chat ack p99 ms", chat.get("ack_p99_ms")),
        ("chat delivery p99 ms", chat.get("delivery_p99_ms")),
        ("chat / relay", chat.get("ratio_to_relay")),
        ("chat ack p99 ms at 1000/s", chat.get("ack_p99_ms_at_1000_per_s")),
        ("connects/s (idle setup)", idle["details"].get("levels", [{}])[-1].get("connects_per_s")
         if idle.get("details", {}).get("levels") else None),
        ("idle sockets", idle.get("sockets")),
        ("KiB per idle socket", idle.get("kib_per_socket")),
        ("cold start s (median)", report.get("cold_start_s")),
        ("idle RSS MB", report.get("idle_rss_mb")),
        ("widget loader gz bytes", report["widget_gz_bytes"].get("loader")),
        ("widget first open gz bytes", report["widget_gz_bytes"].get("first_open")),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'figure'.ljust(width)}  value", "-" * (width + 12)]
    lines += [f"{name.ljust(width)}  {'n/a' if value is None else value}" for name, value in rows]
    lines += ["", "targets (issue 8):"]
    for label, get, target, test in TARGETS:
        try:
            value = get(report)
            verdict = "n/a" if value is None else ("met" if test(value) else "NOT met")
        except (KeyError, TypeError):
            value, verdict = None, "n/a"
        lines.append(f"  {label.ljust(22)} {str(value).rjust(10)}  target {target:9} {verdict}")
    return "\n".join(lines)


def step(report: dict[str, Any], errors: dict[str, str], name: str, fn: Any, *args: Any) -> Any:
    log(f"running: {name} ...")
    started = time.perf_counter()
    try:
        return fn(*args)
    except (Exception, TimeoutError) as exc:
        errors[name] = f"{type(exc).__name__}: {exc}"[:1000]
        log(f"  {name} failed: {errors[name]}")
        return None
    finally:
        log(f"  {name}: {time.perf_counter() - started:.1f} s")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short run (under 60 s)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--ref", default=None, metavar="COMMIT",
                        help="run the server code of this commit (git archive to a temporary "
                             "directory), not the working tree that others may be editing")
    args = parser.parse_args(argv)
    snapshot: Path | None = None
    if args.ref is not None:
        snapshot = Path(tempfile.mkdtemp(prefix="widget-bench-code-"))
        chat_load.SNAPSHOT_COMMIT = chat_load.export_snapshot(args.ref, snapshot)
        chat_load.CODE = snapshot
        log(f"server code: {args.ref} = {chat_load.SNAPSHOT_COMMIT}")
    try:
        return run_suite(args)
    finally:
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)


def run_suite(args: argparse.Namespace) -> int:
    plan = QUICK if args.quick else FULL
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.perf_counter()
    errors: dict[str, str] = {}
    report: dict[str, Any] = {"mode": "quick" if args.quick else "full",
                              "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "machine": chat_load.machine_info(),
                              "loadavg_before": [round(x, 2) for x in os.getloadavg()]}
    report["widget_gz_bytes"] = step(report, errors, "widget weight", widget_weight) or {}
    relay = step(report, errors, "relay", bench_relay, plan["visitors"], plan["messages"]) or {}
    chat = step(report, errors, "chat", bench_chat, plan["visitors"], plan["messages"],
                plan["rate"]) or {}
    report["relay"] = {"msgs_per_s": relay.get("msgs_per_s"), "p99_ms": relay.get("p99_ms"),
                       "details": relay}
    ratio = (round(chat["msgs_per_s"] / relay["msgs_per_s"], 3)
             if chat.get("msgs_per_s") and relay.get("msgs_per_s") else None)
    report["chat"] = {"msgs_per_s": chat.get("msgs_per_s"), "ack_p50_ms": chat.get("ack_p50_ms"),
                      "ack_p99_ms": chat.get("p99_ms"),
                      "delivery_p99_ms": chat.get("delivery_p99_ms"),
                      "ratio_to_relay": ratio,
                      "ack_p99_ms_at_1000_per_s": chat.get("open_loop", {}).get("p99_ms"),
                      "details": chat}
    idle = step(report, errors, "idle", bench_idle, plan["idle"]) or {}
    report["idle"] = {"sockets": idle.get("sockets"), "kib_per_socket": idle.get("kib_per_socket"),
                      "details": idle}
    cold = step(report, errors, "cold start", bench_cold_start, plan["cold_starts"]) or {}
    report["cold_start_s"] = cold.get("median_s")
    report["idle_rss_mb"] = cold.get("idle_rss_mb")
    report["cold_start"] = cold
    report["errors"] = errors
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(table(report))
    if errors:
        print("\nfailed: " + "; ".join(f"{k}: {v[:200]}" for k, v in errors.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out} ({report['elapsed_s']} s)")
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
