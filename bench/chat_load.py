#!/usr/bin/env python
"""Chat load benchmark: many widget visitors sending messages over real websockets.

Starts a real ``python -m widget_server serve`` subprocess on a free loopback port with a
fresh temporary SQLite database, connects N visitors exactly as the widget does (POST
/api/widget/v1/session with the site's Origin, then a websocket hello), has each open a
request, and then measures how long the server takes to acknowledge messages (an ack is
only sent after the message is committed, DESIGN 4.3 / section 3).

Two modes:

* closed loop (default): every visitor sends ``--messages`` messages one after another,
  each waiting for its ack before the next one is sent;
* open loop (``--rate R --duration S``): ``R`` messages per second in total are offered,
  spread evenly over the visitors, whatever the server's speed, for ``S`` seconds.

After the server is stopped the SQLite file is opened read-only and the stored visitor
messages are counted; the count must equal the number of acks received.

    python bench/chat_load.py --visitors 50 --messages 20 --out bench/results/chat_load.json
    python bench/chat_load.py --visitors 100 --rate 500 --duration 10 --out ... --append
    python bench/chat_load.py --suite --out bench/results/chat_load.json

All traffic goes to 127.0.0.1 only. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

REPO = Path(__file__).resolve().parent.parent
# Where the server code comes from: the repository's working tree, or (--ref) an exported
# snapshot of one commit. `python -m widget_server` runs with this as its working
# directory, so the package found there is imported before the installed (editable) one.
CODE = REPO
SNAPSHOT_COMMIT: str | None = None
HOST = "127.0.0.1"

# Hard bounds, so that a typo cannot turn the benchmark into a flood.
MAX_VISITORS = 2000
MAX_MESSAGES = 10_000          # per visitor, closed loop
MAX_TOTAL_MESSAGES = 200_000   # per run
MAX_RATE = 20_000.0            # msg/s, open loop
MAX_DURATION = 300.0           # s, open loop

# The predefined set of runs (``--suite``); each one gets a fresh server and database.
SUITE: list[dict[str, Any]] = [
    {"visitors": 10, "messages": 50},
    {"visitors": 100, "messages": 20},
    {"visitors": 200, "messages": 10},
    {"visitors": 100, "messages": 100},   # a longer closed loop: steadier throughput figure
    {"visitors": 100, "rate": 500.0, "duration": 10.0},
    {"visitors": 100, "rate": 1000.0, "duration": 10.0},
    {"visitors": 100, "rate": 1500.0, "duration": 10.0},  # near saturation on 2 cores
    {"visitors": 100, "rate": 2000.0, "duration": 10.0},  # overload: watch the queueing
]


# --------------------------------------------------------------------------- server


# The server under test runs with the abuse limits off (0): all the load comes from one
# address and a few visitors send far more than a person would. Unknown names are ignored
# by servers that predate them (--ref).
BENCH_LIMITS = {name: "0" for name in (
    "WIDGET_SESSIONS_PER_IP_HOUR", "WIDGET_REQUESTS_PER_VISITOR_HOUR",
    "WIDGET_MESSAGES_PER_VISITOR_MINUTE", "WIDGET_HELP_FORM_POSTS_PER_IP_HOUR",
    "WIDGET_WS_CONNECTS_PER_IP_MINUTE", "WIDGET_WS_OPEN_PER_IP", "WIDGET_WS_FRAMES_PER_MINUTE")}

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def run_cli(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "widget_server", *args],
        capture_output=True, text=True, timeout=60, env=env, cwd=CODE,
    )
    if result.returncode != 0:
        raise RuntimeError(f"widget-server {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


@dataclass
class Site:
    key: str
    origin: str


def init_site(db: Path, env: dict[str, str]) -> Site:
    origin = "https://bench-shop.test"
    out = run_cli("init", "--db", str(db), "--site-name", "Bench shop", "--origin", origin,
                  env=env)
    for line in out.splitlines():
        if line.startswith("site key: "):
            return Site(key=line.split(": ", 1)[1].strip(), origin=origin)
    raise RuntimeError(f"`widget-server init` printed no site key:\n{out}")


class Server:
    """`widget-server serve` as a real subprocess on a free loopback port."""

    def __init__(self, db: Path, log: Path, env: dict[str, str]) -> None:
        self.db, self.log, self.env = db, log, env
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws/widget"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> None:
        with self.log.open("ab") as log:
            # Own session: a Ctrl-C on the terminal reaches us, and we stop the server.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "widget_server", "serve", "--db", str(self.db),
                 "--host", HOST, "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=CODE,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not answer /healthz in time")

    def stop(self) -> int | None:
        """SIGTERM (graceful), SIGKILL after 15 s; return the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def cpu_seconds(self) -> float | None:
        """utime + stime of the server process (all threads), from /proc."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, AssertionError):
            return None

    def rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def system_cpu_seconds() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine, all cores, from /proc/stat."""
    try:
        values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # without guest time, already counted in user
    return (total - idle) / ticks, total / ticks


def cpu_pressure_us() -> int | None:
    """Total microseconds some task waited for a CPU (PSI), if the kernel reports it."""
    try:
        for line in Path("/proc/pressure/cpu").read_text().splitlines():
            if line.startswith("some"):
                return int(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


# --------------------------------------------------------------------------- visitors


class Visitor:
    """One widget tab: a session token, a websocket, and a reader task matching acks."""

    def __init__(self, index: int, server: Server, site: Site) -> None:
        self.index, self.server, self.site = index, server, site
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.pending: dict[str, asyncio.Future[tuple[float, dict[str, Any]]]] = {}
        self.conversation: str | None = None
        self.frames: dict[str, int] = {}
        self.errors: list[dict[str, Any]] = []
        self.closed: str | None = None
        self.received: dict[str, float] | None = None  # set: note message frames by body

    async def connect(self, http: httpx.AsyncClient, timeout: float) -> None:
        response = await http.post("/api/widget/v1/session",
                                   json={"site": self.site.key, "token": None, "user": None},
                                   headers={"Origin": self.site.origin})
        if response.status_code != 200:
            raise RuntimeError(f"session: {response.status_code} {response.text}")
        token = response.json()["token"]
        self.ws = await websockets.connect(
            self.server.ws_url, origin=self.site.origin,  # type: ignore[arg-type]
            open_timeout=timeout, max_queue=None, compression=None,
        )
        await self.ws.send(json.dumps({"type": "hello", "site": self.site.key,
                                       "token": token, "resume": {}}))
        ready = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        if ready.get("type") != "ready":
            raise RuntimeError(f"expected ready, got {ready}")
        self.reader = asyncio.create_task(self._read(), name=f"reader-{self.index}")

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                frame = json.loads(raw)
                kind = frame.get("type", "?")
                self.frames[kind] = self.frames.get(kind, 0) + 1
                if kind == "ack":
                    future = self.pending.pop(frame.get("client_msg_id"), None)
                    if future is not None and not future.done():
                        future.set_result((now, frame))
                elif kind == "message" and self.received is not None:
                    self.received.setdefault(str(frame.get("body")), now)
                elif kind == "error":
                    self.errors.append(frame)
                    future = self.pending.pop(frame.get("ref"), None)
                    if future is not None and not future.done():
                        future.set_exception(RuntimeError(f"error frame: {frame}"))
        except websockets.ConnectionClosed as exc:
            self.closed = f"{exc.rcvd.code if exc.rcvd else '?'} {exc}"
        finally:
            if self.closed is None and self.ws.close_code is not None:
                self.closed = f"{self.ws.close_code} {self.ws.close_reason}"
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"socket closed: {self.closed}"))
            self.pending.clear()

    async def send(self, body: str, conversation: str | None
                   ) -> tuple[float, asyncio.Future[tuple[float, dict[str, Any]]]]:
        """Send one message; return the send time and a future of (ack time, ack frame)."""
        assert self.ws is not None
        client_msg_id = str(uuid.uuid4())
        future: asyncio.Future[tuple[float, dict[str, Any]]] = (
            asyncio.get_running_loop().create_future())
        if self.reader is None or self.reader.done():
            future.set_exception(ConnectionError(f"socket closed: {self.closed}"))
            return time.perf_counter(), future
        self.pending[client_msg_id] = future
        frame = json.dumps({"type": "send", "conversation": conversation,
                            "client_msg_id": client_msg_id, "body": body})
        sent = time.perf_counter()
        await self.ws.send(frame)
        return sent, future

    async def open_request(self, timeout: float) -> float:
        sent, future = await self.send(f"Visitor {self.index}: export to CSV fails", None)
        acked, ack = await asyncio.wait_for(future, timeout)
        self.conversation = ack["conversation"]
        return acked - sent

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)   # seconds, send -> ack
    sent_times: list[float] = field(default_factory=list)  # perf_counter at each send, same order
    lag: list[float] = field(default_factory=list)         # open loop: schedule -> send
    sent: int = 0
    acked: int = 0
    timeouts: int = 0
    errors: int = 0
    failures: list[str] = field(default_factory=list)
    first_send: float | None = None
    last_ack: float | None = None

    def record(self, sent: float, outcome: tuple[float, dict[str, Any]]) -> None:
        acked, _ = outcome
        self.acked += 1
        self.latencies.append(acked - sent)
        self.sent_times.append(sent)
        self.last_ack = acked if self.last_ack is None else max(self.last_ack, acked)

    def fail(self, exc: BaseException) -> None:
        if isinstance(exc, TimeoutError):
            self.timeouts += 1
        else:
            self.errors += 1
            if len(self.failures) < 20:
                self.failures.append(repr(exc))


async def closed_loop(visitors: list[Visitor], messages: int, ack_timeout: float,
                      tally: Tally) -> None:
    async def one(visitor: Visitor) -> None:
        for number in range(messages):
            sent, future = await visitor.send(f"message {number} from visitor {visitor.index}",
                                              visitor.conversation)
            tally.sent += 1
            try:
                tally.record(sent, await asyncio.wait_for(future, ack_timeout))
            except (TimeoutError, ConnectionError, RuntimeError) as exc:
                tally.fail(exc)
                if isinstance(exc, ConnectionError):
                    return

    tally.first_send = time.perf_counter()
    await asyncio.gather(*(one(visitor) for visitor in visitors))


async def open_loop(visitors: Sequence[Visitor], rate: float, duration: float,
                    ack_timeout: float, tally: Tally, *, start: float | None = None,
                    total: int | None = None) -> None:
    """Offer ``rate`` msg/s in total: visitor i sends at start + (k * N + i) / rate.

    ``total`` is N when these visitors are a part of a larger fleet (bench/fleet.py), whose
    processes share ``start``."""
    count = total or len(visitors)
    start = time.perf_counter() + 0.2 if start is None else start
    tally.first_send = start
    waits: list[asyncio.Task[None]] = []

    async def wait_ack(sent: float, future: asyncio.Future[tuple[float, dict[str, Any]]]
                       ) -> None:
        try:
            tally.record(sent, await asyncio.wait_for(future, ack_timeout))
        except (TimeoutError, ConnectionError, RuntimeError) as exc:
            tally.fail(exc)

    async def one(visitor: Visitor) -> None:
        number = 0
        while True:
            offset = (number * count + visitor.index) / rate
            if offset >= duration:
                return
            due = start + offset
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent, future = await visitor.send(f"message {number} from visitor {visitor.index}",
                                              visitor.conversation)
            tally.sent += 1
            tally.lag.append(max(0.0, sent - due))
            waits.append(asyncio.create_task(wait_ack(sent, future)))
            number += 1

    await asyncio.gather(*(one(visitor) for visitor in visitors))
    await asyncio.gather(*waits)


# --------------------------------------------------------------------------- reporting


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def git(*args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def export_snapshot(ref: str, dest: Path) -> str:
    """Extract the tree of ``ref`` into ``dest`` (read-only for the repository)."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    if not commit:
        raise SystemExit(f"--ref {ref}: not a commit of {REPO}")
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=REPO,
                             capture_output=True, timeout=60, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    where = subprocess.run(
        [sys.executable, "-c", "import widget_server; print(widget_server.__file__)"],
        cwd=dest, capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(dest.resolve()):
        raise SystemExit(f"the snapshot is not what gets imported ({where}); cannot use --ref")
    return commit


def git_info() -> dict[str, Any]:
    if CODE != REPO:
        return {"commit": SNAPSHOT_COMMIT, "source": "snapshot (--ref)",
                "server_code_dirty": False, "server_code_changes": []}
    status = git("status", "--porcelain", "--", "widget_server")
    return {"commit": git("rev-parse", "HEAD"), "source": "working tree",
            # uncommitted changes to the server code: the run did not measure `commit` alone
            "server_code_dirty": None if status is None else bool(status),
            "server_code_changes": None if status is None else status.splitlines()[:20]}


def machine_info() -> dict[str, Any]:
    from importlib import metadata

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "cpu_model": cpu_model,
        "packages": {**{name: version(name) for name in
                        ("widget-server", "websockets", "uvicorn", "starlette", "uvloop",
                         "httpx")},
                     "sqlite": sqlite3.sqlite_version},
        "git": git_info(),
    }


def count_visitor_messages(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        visitor, distinct = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT client_msg_id) FROM messages "
            "WHERE author_type = 'visitor'").fetchone()
        system = conn.execute(
            "SELECT COUNT(*) FROM messages WHERE author_type = 'system'").fetchone()[0]
        tickets = conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
    finally:
        conn.close()
    return {"visitor_messages": visitor, "distinct_client_msg_ids": distinct,
            "system_messages": system, "tickets": tickets}


def log_problems(text: str) -> dict[str, Any]:
    lines = text.splitlines()
    flagged = [line for line in lines
               if any(word in line for word in ("ERROR", "CRITICAL", "Traceback", "WARNING",
                                                "Exception"))]
    return {"lines": len(lines), "flagged_lines": len(flagged), "first_flagged": flagged[:10]}


TABLE_COLUMNS = [
    ("mode", 7), ("visitors", 8), ("messages", 8), ("duration s", 10), ("persisted msg/s", 15),
    ("ack p50 ms", 10), ("p99 ms", 8), ("max ms", 8), ("lost", 5), ("srv cpu%", 8),
    ("other cpu%", 10),
]


def table(runs: list[dict[str, Any]]) -> str:
    head = "  ".join(name.rjust(width) for name, width in TABLE_COLUMNS)
    rows = [head, "-" * len(head)]
    for run in runs:
        p = run["parameters"]
        mode = "closed" if p["mode"] == "closed" else f"{p['rate']:g}/s"
        if "results" not in run:
            rows.append(f"{mode:>7}  {p['visitors']:>8}  FAILED: {run.get('error', '?')[:70]}")
            continue
        r = run["results"]
        cells = [mode, p["visitors"], r["acked"], r["duration_s"], r["persisted_msgs_per_s"],
                 r["ack_ms"]["p50"], r["ack_ms"]["p99"], r["ack_ms"]["max"],
                 r["sent"] - r["acked"], r.get("server_cpu_percent"),
                 r.get("other_cpu_percent")]
        rows.append("  ".join(("-" if cell is None else str(cell)).rjust(width)
                              for cell, (_, width) in zip(cells, TABLE_COLUMNS, strict=True)))
    return "\n".join(rows)


# --------------------------------------------------------------------------- one run


async def drive(server: Server, site: Site, params: dict[str, Any], pyspy: dict[str, Any] | None
                ) -> dict[str, Any]:
    timeout, setup_timeout = params["ack_timeout"], params["setup_timeout"]
    visitors = [Visitor(index, server, site) for index in range(params["visitors"])]
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    setup_started = time.perf_counter()
    connect_gate = asyncio.Semaphore(50)  # do not stampede the accept queue

    async def connect(visitor: Visitor, http: httpx.AsyncClient) -> float:
        async with connect_gate:
            await visitor.connect(http, setup_timeout)
            return await visitor.open_request(setup_timeout)

    try:
        async with httpx.AsyncClient(base_url=server.url, limits=limits,
                                     timeout=setup_timeout) as http:
            open_latencies = await asyncio.gather(*(connect(v, http) for v in visitors))
        setup_s = time.perf_counter() - setup_started

        tally = Tally()
        cpu_before, wall_before = server.cpu_seconds(), time.perf_counter()
        usage_before = resource.getrusage(resource.RUSAGE_SELF)
        system_before, pressure_before = system_cpu_seconds(), cpu_pressure_us()
        spy = start_pyspy(server.pid, pyspy) if pyspy else None
        try:
            if params["mode"] == "closed":
                await closed_loop(visitors, params["messages"], timeout, tally)
            else:
                await open_loop(visitors, params["rate"], params["duration"], timeout, tally)
        finally:
            if spy is not None:
                stop_pyspy(spy)
        wall_after, cpu_after = time.perf_counter(), server.cpu_seconds()
        usage_after = resource.getrusage(resource.RUSAGE_SELF)
        system_after, pressure_after = system_cpu_seconds(), cpu_pressure_us()
        rss = server.rss_mb()
    finally:
        await asyncio.gather(*(visitor.close() for visitor in visitors))

    end = tally.last_ack if tally.last_ack is not None else wall_after
    start = tally.first_send if tally.first_send is not None else wall_before
    duration = max(end - start, 1e-9)
    phase_wall = wall_after - wall_before
    client_cpu = ((usage_after.ru_utime + usage_after.ru_stime)
                  - (usage_before.ru_utime + usage_before.ru_stime))
    frames: dict[str, int] = {}
    for visitor in visitors:
        for kind, number in visitor.frames.items():
            frames[kind] = frames.get(kind, 0) + number
    closes = sorted({v.closed for v in visitors if v.closed and not v.closed.startswith("1000")})
    results: dict[str, Any] = {
        "setup_s": round(setup_s, 3),
        "open_request_ack_ms": {"p50": ms(percentile(open_latencies, 0.5)),
                                "p99": ms(percentile(open_latencies, 0.99)),
                                "max": ms(max(open_latencies))},
        "sent": tally.sent,
        "acked": tally.acked,
        "ack_timeouts": tally.timeouts,
        "ack_failures": tally.errors,
        "failures": tally.failures,
        "duration_s": round(duration, 3),
        "persisted_msgs_per_s": round(tally.acked / duration, 1),
        "ack_ms": {"p50": ms(percentile(tally.latencies, 0.50)),
                   "p90": ms(percentile(tally.latencies, 0.90)),
                   "p99": ms(percentile(tally.latencies, 0.99)),
                   "max": ms(max(tally.latencies) if tally.latencies else None),
                   "mean": ms(sum(tally.latencies) / len(tally.latencies)
                              if tally.latencies else None)},
        "server_cpu_percent": (None if cpu_before is None or cpu_after is None else
                               round(100 * (cpu_after - cpu_before) / phase_wall, 1)),
        "client_cpu_percent": round(100 * client_cpu / phase_wall, 1),
        # Everything else on the machine (other processes, py-spy), in % of one core; high
        # values mean the figures above were measured on a busy machine.
        "other_cpu_percent": (
            None if system_before is None or system_after is None
            or cpu_before is None or cpu_after is None else
            round(100 * ((system_after[0] - system_before[0]) - (cpu_after - cpu_before)
                         - client_cpu) / phase_wall, 1)),
        "machine_cpu_percent": (
            None if system_before is None or system_after is None else
            round(100 * (system_after[0] - system_before[0])
                  / (system_after[1] - system_before[1]), 1)),
        "cpu_pressure_percent": (
            None if pressure_before is None or pressure_after is None else
            round((pressure_after - pressure_before) / 1e4 / phase_wall, 1)),
        "server_rss_mb": None if rss is None else round(rss, 1),
        "frames_received": frames,
        "error_frames": sum(len(v.errors) for v in visitors),
        "abnormal_closes": closes[:10],
    }
    if params["mode"] == "open":
        results["offered_msgs_per_s"] = round(tally.sent / params["duration"], 1)
        results["client_send_lag_ms"] = {"p50": ms(percentile(tally.lag, 0.5)),
                                         "p99": ms(percentile(tally.lag, 0.99)),
                                         "max": ms(max(tally.lag) if tally.lag else None)}
    results["_opened"] = len(open_latencies)
    return results


def start_pyspy(pid: int, options: dict[str, Any]) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy")
    if exe is None:
        print("py-spy not found; not profiling", file=sys.stderr)
        return None
    out = Path(options["out"])
    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(out.suffix, "raw")
    out.parent.mkdir(parents=True, exist_ok=True)
    extra = shlex.split(options.get("extra") or "")
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "200", "--format", fmt,
                             "--output", str(out), "--threads", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_pyspy(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(signal.SIGINT)
    try:
        _, err = spy.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        _, err = spy.communicate()
    if spy.returncode not in (0, None):
        print(f"py-spy: {err.decode(errors='replace')[-2000:]}", file=sys.stderr)


def run_once(params: dict[str, Any], keep: bool, pyspy: dict[str, Any] | None) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="widget-bench-"))
    db, log = workdir / "bench.db", workdir / "server.log"
    env = {**os.environ, "WIDGET_LOG_LEVEL": "warning", **BENCH_LIMITS}
    for name in ("WIDGET_DB", "WIDGET_HOST", "WIDGET_PORT"):  # the flags decide these
        env.pop(name, None)
    server = Server(db, log, env)
    run: dict[str, Any] = {"parameters": params, "workdir": str(workdir) if keep else None,
                           "loadavg_before": [round(x, 2) for x in os.getloadavg()],
                           "git": git_info()}
    ok = False
    try:
        site = init_site(db, env)
        server.start()
        run["server_pid"] = server.pid
        results = asyncio.run(asyncio.wait_for(drive(server, site, params, pyspy),
                                               params["max_seconds"]))
        opened = results.pop("_opened")
        exit_code = server.stop()
        stored = count_visitor_messages(db)
        expected = opened + results["acked"]  # the opening messages are visitor messages too
        results["server_exit_code"] = exit_code
        results["persistence"] = {**stored, "expected_acked": expected,
                                  # the durability failure proper: acked, yet not stored
                                  "acked_but_missing": max(0, expected
                                                           - stored["visitor_messages"]),
                                  "ok": stored["visitor_messages"] == expected
                                  and stored["distinct_client_msg_ids"] == expected
                                  and stored["tickets"] == opened}
        results["server_log"] = log_problems(server.log_text())
        if git_info() != run["git"]:  # the code under test changed while it ran
            run["git_after"] = git_info()
        run["results"] = results
        ok = True
        return run
    except (Exception, TimeoutError) as exc:  # recorded as a failed run; the others still run
        run["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        print(f"  run failed: {run['error']}", file=sys.stderr)
        return run
    finally:
        server.stop()
        if not ok:
            tail = server.log_text()[-3000:]
            if tail:
                print(f"--- server log ({log}) ---\n{tail}", file=sys.stderr)
        if (ok and not keep and not run["results"]["server_log"]["flagged_lines"]
                and run["results"]["persistence"]["ok"]):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir} (database and server.log)", file=sys.stderr)


# --------------------------------------------------------------------------- CLI


def check_bounds(params: dict[str, Any]) -> None:
    if not 1 <= params["visitors"] <= MAX_VISITORS:
        raise SystemExit(f"--visitors must be 1..{MAX_VISITORS}")
    if params["mode"] == "closed":
        if not 1 <= params["messages"] <= MAX_MESSAGES:
            raise SystemExit(f"--messages must be 1..{MAX_MESSAGES}")
        total = params["visitors"] * params["messages"]
    else:
        if not 0 < params["rate"] <= MAX_RATE:
            raise SystemExit(f"--rate must be in (0, {MAX_RATE:g}]")
        if not 0 < params["duration"] <= MAX_DURATION:
            raise SystemExit(f"--duration must be in (0, {MAX_DURATION:g}]")
        total = params["rate"] * params["duration"]
    if total > MAX_TOTAL_MESSAGES:
        raise SystemExit(f"at most {MAX_TOTAL_MESSAGES} messages per run (asked {total:g})")


def make_params(base: argparse.Namespace, **override: Any) -> dict[str, Any]:
    values = {"visitors": base.visitors, "messages": base.messages, "rate": base.rate,
              "duration": base.duration, **override}
    params = {"mode": "open" if values.get("rate") else "closed",
              "visitors": values["visitors"], "ack_timeout": base.ack_timeout,
              "setup_timeout": base.setup_timeout,
              "max_seconds": base.max_seconds}
    if params["mode"] == "closed":
        params["messages"] = values["messages"]
    else:
        params["rate"] = float(values["rate"])
        params["duration"] = float(values["duration"])
    check_bounds(params)
    return params


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM: unwind like Ctrl-C, so the server gets stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=50, help="concurrent visitors (50)")
    parser.add_argument("--messages", type=int, default=20,
                        help="closed loop: messages per visitor after its request (20)")
    parser.add_argument("--rate", type=float, default=None,
                        help="open loop: messages per second offered in total")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="open loop: seconds of sending (10)")
    parser.add_argument("--ack-timeout", type=float, default=30.0,
                        help="seconds to wait for one ack before counting it lost (30)")
    parser.add_argument("--setup-timeout", type=float, default=30.0,
                        help="seconds for each step of connecting a visitor and opening its "
                             "request (30)")
    parser.add_argument("--max-seconds", type=float, default=180.0,
                        help="hard limit on one run's client side, setup included (180)")
    parser.add_argument("--suite", action="store_true",
                        help="run the predefined set of runs (see SUITE) instead of one")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    parser.add_argument("--append", action="store_true",
                        help="add the runs to the existing --out file instead of replacing it")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (database, server log)")
    parser.add_argument("--py-spy", dest="pyspy", type=Path, default=None, metavar="FILE",
                        help="profile the server with py-spy during the sending phase "
                             "(.svg flamegraph, .json speedscope, else collapsed stacks)")
    parser.add_argument("--py-spy-args", dest="pyspy_args", default="", metavar="ARGS",
                        help="extra py-spy record options, e.g. '--gil --native --nonblocking'")
    parser.add_argument("--ref", default=None, metavar="COMMIT",
                        help="benchmark the server code of this commit (exported to a "
                             "temporary directory) instead of the working tree, so that "
                             "edits made meanwhile do not mix into the runs")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each setting this many times, each with a fresh server (1)")
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 10:
        parser.error("--repeat must be 1..10")

    plans = ([make_params(args, **{"rate": None, **entry}) for entry in SUITE] if args.suite
             else [make_params(args)])
    plans = [params for params in plans for _ in range(args.repeat)]
    pyspy = {"out": args.pyspy, "extra": args.pyspy_args} if args.pyspy else None
    signal.signal(signal.SIGTERM, _interrupt)

    global CODE, SNAPSHOT_COMMIT
    snapshot_dir: Path | None = None
    if args.ref is not None:
        snapshot_dir = Path(tempfile.mkdtemp(prefix="widget-bench-code-"))
        SNAPSHOT_COMMIT = export_snapshot(args.ref, snapshot_dir)
        CODE = snapshot_dir
        print(f"server code: {args.ref} = {SNAPSHOT_COMMIT} (snapshot in {snapshot_dir})",
              file=sys.stderr)

    runs: list[dict[str, Any]] = []
    failed = False
    try:
        for params in plans:
            described = (f"{params['visitors']} visitors x {params['messages']} messages"
                         if params["mode"] == "closed" else
                         f"{params['visitors']} visitors, {params['rate']:g} msg/s "
                         f"for {params['duration']:g} s")
            print(f"running: {described} ...", file=sys.stderr, flush=True)
            run = run_once(params, args.keep, pyspy)
            run["timestamp"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            runs.append(run)
            if "results" not in run:
                failed = True
                continue
            r = run["results"]
            persistence = r["persistence"]
            print(f"  persisted: {persistence['visitor_messages']} visitor messages stored, "
                  f"{persistence['expected_acked']} acked "
                  f"({'OK' if persistence['ok'] else 'MISMATCH'}); "
                  f"lost acks {r['sent'] - r['acked']}, error frames {r['error_frames']}, "
                  f"server log flagged lines {r['server_log']['flagged_lines']}",
                  file=sys.stderr, flush=True)
            if not persistence["ok"] or r["sent"] != r["acked"]:
                failed = True
    except KeyboardInterrupt:
        print("interrupted; server stopped", file=sys.stderr)
        return 130
    finally:
        if snapshot_dir is not None:
            shutil.rmtree(snapshot_dir, ignore_errors=True)

    print()
    print(table(runs))
    if args.out is not None:
        document: dict[str, Any] = {"benchmark": "chat_load", "machine": machine_info(),
                                    "runs": []}
        if args.append and args.out.exists():
            with contextlib.suppress(ValueError, OSError):
                previous = json.loads(args.out.read_text())
                if isinstance(previous.get("runs"), list):
                    document["runs"] = previous["runs"]
        document["runs"].extend(runs)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n")
        print(f"\nwrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
