"""The benchmark suite: ``python -m bench`` (full) or ``python -m bench --quick`` (< 60 s).

Runs, each against its own server subprocess on a free 127.0.0.1 port; the load is generated
by ``--workers`` forked processes (bench/fleet.py), this process drives them and watches:

1. relay: the bare relay of bench/relay_app.py (same uvicorn/websockets stack, no database),
   closed loop: the limit of this stack with this generator on this machine;
2. chat: ``widget-server serve`` on a fresh SQLite file, N visitors sending while an agent
   watches on /ws/console and agents reply through the REST API: closed loop (saturation),
   then open loops at 500, 1,000 and 2,000 msg/s. Relay and chat run side by side, their
   closed loops in turns (bench/side_by_side.py);
3. connect storm: N visitors doing session + hello at once (connects/s, time to ready);
4. idle hold: the storm's sockets held open, server RSS delta per socket;
5. http: Help Form posts (GET + POST /help/new) and REST ticket listing, requests/s;
6. cold start: spawn to a healthy /healthz (median of 3), idle RSS after start;
7. widget weight: gzipped bytes of the loader and of the first open.

Prints a table and writes bench/results/latest.json. See docs/performance.md.
``--slow-disk`` runs only the slow-disk scenario instead (bench/slow_disk.py: the plain disk
against every fsync delayed by 8 ms) and writes bench/results/slow-disk.json; ``--mail`` only
the mail scenario (bench/mail_bench.py: mails/s to a loopback SMTP server, the chat with mail
on and off) and writes bench/results/mail.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import mail_bench, server_process, slow_disk, two_nodes
from bench.report import chat_summary, table
from bench.scenarios import (
    Fleet,
    http_load,
    keep_or_remove,
    new_workdir,
    open_levels,
)
from bench.server_process import BENCH_LIMITS, HOST, Server, wait_healthy
from bench.side_by_side import RELAY_REFERENCE_RATE, relay_and_chat
from bench.stall_probe import StallProbe, summary

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

QUICK: dict[str, Any] = {
    "visitors": 100, "messages": 50, "closed_loops": 1, "rates": [500.0, 1000.0, 2000.0],
    "rate_s": 2.0, "storm": [500], "idle": [], "http_s": 2.0, "cold_starts": 3,
    "node_turns": 1}
# 300 messages each: with 100, the relay's closed loop lasts 0.8-1.5 s and its figure swings
# from 6,751 to 13,156 msg/s within two hours.
# Three closed loops each for the relay and the chat, in turns, the median one reported: one
# loop's figure moves by a tenth from run to run of the same code (docs/performance.md).
FULL: dict[str, Any] = {
    "visitors": 100, "messages": 300, "closed_loops": 3, "rates": [500.0, 1000.0, 2000.0],
    "rate_s": 10.0, "storm": [1000], "idle": [5000, 10000], "http_s": 10.0, "cold_starts": 3,
    "node_turns": 5}  # two-nodes scenario: closed loops of one node and of two, in turns
WORKERS = 2                # load-generator processes (--workers)
MAX_IDLE = 10_000
STORM_CONCURRENCY = 100    # connects in flight per worker
HTTP_CONCURRENCY = 10      # HTTP clients per worker
MACHINE_PROBE_S = {"quick": 2.0, "full": 5.0}  # the idle machine's stalls, before the scenarios
SERVER_CPU: list[str] = []  # --pin: ["taskset", "-c", "0"] before every server command


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def server_env() -> dict[str, str]:
    env = {**os.environ, "WIDGET_LOG_LEVEL": "warning", **BENCH_LIMITS}
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
        command = [*SERVER_CPU, *command]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                            env=self.env, cwd=server_process.CODE,
                                            start_new_session=True)
        wait_healthy(self, timeout)


class RelayServer(Server):
    def start(self, timeout: float = 30.0) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*SERVER_CPU, sys.executable, str(BENCH / "relay_app.py"), "--port",
                 str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        wait_healthy(self, timeout)


# --------------------------------------------------------------------------- scenarios


def bench_relay_and_chat(plan: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The relay and the chat side by side (bench/side_by_side.py); the chat's database and
    log are kept when a step failed or the stored messages do not match the acks."""
    relay_dir, chat_dir = new_workdir("relay"), new_workdir("chat")
    env = server_env()
    ok = False
    try:
        relay, chat = relay_and_chat(
            plan, RelayServer(relay_dir / "unused.db", relay_dir / "relay.log", env),
            LimitedServer(server_process.scenario_db(chat_dir), chat_dir / "server.log", env),
            log)
        ok = chat["persistence_ok"] and not chat["server_log"]["flagged_lines"]
        return relay, chat
    finally:
        shutil.rmtree(relay_dir, ignore_errors=True)
        keep_or_remove(chat_dir, ok, log)


def bench_connect(plan: dict[str, Any], levels: list[int], name: str) -> dict[str, Any]:
    """Connect storms up to each level on one server, holding every socket open."""
    levels = [min(n, MAX_IDLE) for n in levels]
    client_limit = raise_fd_limit(max(levels) + 1000)  # the forked workers inherit it
    workdir = new_workdir(name)
    env = server_env()
    server = LimitedServer(server_process.scenario_db(workdir), workdir / "server.log", env)
    server.nofile = max(levels) + 1000
    fleet: Fleet | None = None
    try:
        site = server_process.init_site(server.db, env)
        server.start()
        fleet = Fleet(plan["workers"], server.port, site)
        out = asyncio.run(asyncio.wait_for(open_levels(
            server, fleet, levels, STORM_CONCURRENCY, 2.0), 600))
        for level in out:
            log(f"  {name}: {level['open']}/{level['target']} sockets open, "
                f"{level['connects_per_s']} connects/s, {level['kib_per_socket']} KiB/socket")
        return {"client_fd_limit": client_limit, "server_fd_limit": server.nofile,
                "workers": fleet.size, "levels": out}
    finally:
        if fleet is not None:
            fleet.close()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def bench_http(plan: dict[str, Any]) -> dict[str, Any]:
    """Help Form posts (GET /help/new, then POST it: one new ticket each), then REST ticket
    listing (GET /api/v1/tickets?limit=50) over the tickets they made."""
    workdir = new_workdir("http")
    env = server_env()
    server = LimitedServer(server_process.scenario_db(workdir), workdir / "server.log", env)
    fleet: Fleet | None = None
    try:
        site = server_process.init_site(server.db, env)
        server.start()
        token = server_process.api_token(server, env)
        fleet = Fleet(plan["workers"], server.port, site)

        async def go() -> dict[str, Any]:
            assert fleet is not None
            form = await http_load(server, fleet, "form", plan["http_s"], HTTP_CONCURRENCY, None)
            listing = await http_load(server, fleet, "list", plan["http_s"], HTTP_CONCURRENCY,
                                      token)
            return {"help_form": form, "rest_list": listing}

        result = asyncio.run(asyncio.wait_for(go(), 120))
        fleet.close()
        fleet = None
        server.stop()
        result["help_form"]["tickets_stored"] = server_process.count_visitor_messages(
            server.db)["tickets"]
        return result
    finally:
        if fleet is not None:
            fleet.close()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def bench_cold_start(times: int) -> dict[str, Any]:
    workdir = new_workdir("cold")
    env = server_env()
    db = server_process.scenario_db(workdir)
    server_process.init_site(db, env)
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


def machine_stalls(seconds: float) -> dict[str, Any]:
    """How often this machine stalls with nothing running (bench/stall_probe.py)."""
    probe = StallProbe()
    probe.start()
    time.sleep(seconds)
    windows = probe.stop()
    return summary(windows, probe.samples[0][0], probe.samples[-1][1])


def widget_weight() -> dict[str, Any]:
    from tests.widget_modules import first_open as first_open_modules
    from widget_server.web.static import widget_assets

    assets = widget_assets()
    panel = {name: len(asset.gzipped) for name, asset in assets.panel.items()}
    loader = len(assets.loader.gzipped)
    # panel.js and its static imports, as tests/web/test_widget_budget.py counts them; the
    # views loaded with import() (an article, Access and Security) come later
    opened = first_open_modules() | {"panel.css"}
    first_open = loader + sum(size for name, size in panel.items() if name in opened)
    return {"loader": loader, "first_open": first_open, "panel_files": panel}


# --------------------------------------------------------------------------- report


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
    parser.add_argument("--out", type=Path, default=None,
                        help="results/latest.json, or results/latest-pinned.json with --pin")
    parser.add_argument("--ref", default=None, metavar="COMMIT",
                        help="run the server code of this commit (git archive to a temporary "
                             "directory), not the working tree that others may be editing")
    parser.add_argument("--workers", type=int, default=WORKERS,
                        help=f"load-generator processes ({WORKERS})")
    parser.add_argument("--pin", action="store_true",
                        help="run each server (relay included) on CPU 0 and the load generator "
                             "on the other CPUs (docs/performance.md)")
    parser.add_argument("--slow-disk", action="store_true",
                        help="only the slow-disk scenario: the plain disk against every fsync "
                             "delayed by 8 ms (bench/slow_disk.py; needs a C compiler)")
    parser.add_argument("--db", default=None, metavar="URL",
                        help="run the servers on PostgreSQL (postgresql://user@host:port/db: "
                             "a new database per scenario, made and dropped with these "
                             "credentials), and add the two-nodes scenario (bench/two_nodes.py)")
    parser.add_argument("--mail", action="store_true",
                        help="only the mail scenario: mails/s to an SMTP server on loopback, "
                             "the chat's closed loop with mail on and off (bench/mail_bench.py)")
    args = parser.parse_args(argv)
    if args.mail and args.slow_disk:
        parser.error("--mail and --slow-disk are separate runs")
    if not 1 <= args.workers <= 8:
        parser.error("--workers must be 1..8")
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2 or not shutil.which("taskset"):
            parser.error("--pin needs at least 2 CPUs and taskset")
        SERVER_CPU[:] = ["taskset", "-c", str(cpus[0])]
        os.sched_setaffinity(0, cpus[1:])  # this process, its CLI calls and the forked workers
    if args.db is not None:
        if not args.db.startswith(("postgresql://", "postgres://")) or args.mail or \
                args.slow_disk:
            parser.error("--db takes a postgresql:// URL, for the suite itself")
        server_process.PG_ADMIN = args.db
    if args.out is None:
        args.out = RESULTS / ("slow-disk.json" if args.slow_disk else "mail.json" if args.mail
                              else "postgresql.json" if args.db
                              else "latest-pinned.json" if args.pin else "latest.json")
    snapshot: Path | None = None
    if args.ref is not None:
        snapshot = Path(tempfile.mkdtemp(prefix="widget-bench-code-"))
        server_process.SNAPSHOT_COMMIT = server_process.export_snapshot(args.ref, snapshot)
        server_process.CODE = snapshot
        log(f"server code: {args.ref} = {server_process.SNAPSHOT_COMMIT}")
    try:
        if args.mail:
            return run_mail(args)
        return run_slow_disk(args) if args.slow_disk else run_suite(args)
    finally:
        server_process.drop_scenario_dbs()
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)


def run_slow_disk(args: argparse.Namespace) -> int:
    plan = {**(slow_disk.QUICK if args.quick else slow_disk.FULL), "workers": args.workers,
            "pin": bool(SERVER_CPU)}
    result = run_scenario(args, "slow_disk", "slow-disk", slow_disk.run, slow_disk.table, plan)
    return 0 if result.get("persistence_ok", True) else 1


def run_mail(args: argparse.Namespace) -> int:
    plan = {**(mail_bench.QUICK if args.quick else mail_bench.FULL), "workers": args.workers}
    run_scenario(args, "mail", "mail", mail_bench.run, mail_bench.table, plan)
    return 0


def run_scenario(args: argparse.Namespace, key: str, mode: str,
                 run: Callable[..., dict[str, Any]], table: Callable[[dict[str, Any]], str],
                 plan: dict[str, Any]) -> dict[str, Any]:
    """One scenario alone (``--slow-disk``, ``--mail``): its table printed, its JSON written
    with the machine's description; the scenario's own result returned."""
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.perf_counter()
    report: dict[str, Any] = {"mode": mode + (" quick" if args.quick else ""),
                              "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "machine": server_process.machine_info(),
                              "loadavg_before": [round(x, 2) for x in os.getloadavg()],
                              "server_env": BENCH_LIMITS}
    log(f"running: {mode.replace('-', ' ')} ...")
    report[key] = run(plan, server_env(), log)
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(table(report[key]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out} ({report['elapsed_s']} s)")
    result: dict[str, Any] = report[key]
    return result


def run_suite(args: argparse.Namespace) -> int:
    plan = {**(QUICK if args.quick else FULL), "workers": args.workers, "pin": bool(SERVER_CPU)}
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.perf_counter()
    errors: dict[str, str] = {}
    report: dict[str, Any] = {"mode": "quick" if args.quick else "full",
                              "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "machine": server_process.machine_info(),
                              "loadavg_before": [round(x, 2) for x in os.getloadavg()],
                              "plan": plan, "server_env": BENCH_LIMITS}
    report["machine"]["stalls_idle"] = step(report, errors, "machine stalls (idle)",
                                            machine_stalls, MACHINE_PROBE_S[report["mode"]])
    report["widget_gz_bytes"] = step(report, errors, "widget weight", widget_weight) or {}
    relay, chat = step(report, errors, "relay and chat", bench_relay_and_chat, plan) or ({}, {})
    reference = (relay.get("open_loop") or {}).get(f"{RELAY_REFERENCE_RATE:g}", {})
    report["relay"] = {"msgs_per_s": relay.get("msgs_per_s"), "p99_ms": relay.get("p99_ms"),
                       "ack_p99_ms_at_1000_per_s": reference.get("p99_ms"),
                       "details": relay}
    report["chat"] = chat_summary(chat, relay)
    report["storm"] = {}
    idle_levels: list[dict[str, Any]] = []
    for n in plan["storm"]:
        storm = step(report, errors, f"connect storm {n}", bench_connect, plan, [n],
                     f"storm{n}") or {}
        for level in storm.get("levels", []):
            report["storm"][str(level["target"])] = level
            if not plan["idle"]:  # quick: the storm's sockets are the idle hold
                idle_levels.append(level)
    if plan["idle"]:
        idle = step(report, errors, "idle", bench_connect, plan, plan["idle"], "idle") or {}
        idle_levels = idle.get("levels", [])
        if idle_levels:  # the first level of the idle server is a storm of that size too
            report["storm"].setdefault(str(idle_levels[0]["target"]), idle_levels[0])
    last = idle_levels[-1] if idle_levels else {}
    report["idle"] = {"sockets": last.get("open"), "kib_per_socket": last.get("kib_per_socket"),
                      "details": {"levels": idle_levels}}
    http = step(report, errors, "help form + REST listing", bench_http, plan) or {}
    form, listing = http.get("help_form", {}), http.get("rest_list", {})
    report["help_form"] = {"posts_per_s": form.get("per_s"), "p99_ms": form.get("p99_ms"),
                           "details": form}
    report["rest_list"] = {"requests_per_s": listing.get("per_s"),
                           "p99_ms": listing.get("p99_ms"), "details": listing}
    if server_process.PG_ADMIN is not None:
        report["database"] = "postgresql"
        report["two_nodes"] = step(report, errors, "one node and two, in turns", two_nodes.run,
                                   plan, server_env(), log, LimitedServer) or {}
    cold = step(report, errors, "cold start", bench_cold_start, plan["cold_starts"]) or {}
    report["cold_start_s"] = cold.get("median_s")
    report["idle_rss_mb"] = cold.get("idle_rss_mb")
    report["cold_start"] = cold
    report["errors"] = errors
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(table(report))
    if report.get("two_nodes"):
        print("\n" + two_nodes.table(report["two_nodes"]))
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
