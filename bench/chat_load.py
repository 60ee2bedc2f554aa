#!/usr/bin/env python
"""Chat load benchmark: many widget visitors sending messages over real websockets.

Starts a real ``python -m widget_server serve`` subprocess on a free loopback port with a
fresh temporary SQLite database, connects N visitors exactly as the widget does (POST
/api/widget/v1/session with the site's Origin, then a websocket hello), has each open a
request, and then measures how long the server takes to acknowledge messages (an ack is
only sent after the message is committed, docs/protocol.md).

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
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

if not __package__:  # run as `python bench/chat_load.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import server_process
from bench.server_process import (
    BENCH_LIMITS,
    Server,
    Site,
    count_visitor_messages,
    cpu_pressure_us,
    export_snapshot,
    git_info,
    init_site,
    log_problems,
    machine_info,
    system_cpu_seconds,
)
from bench.visitors import Tally, Visitor, closed_loop, ms, open_loop, percentile

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

    snapshot_dir: Path | None = None
    if args.ref is not None:
        snapshot_dir = Path(tempfile.mkdtemp(prefix="widget-bench-code-"))
        commit = server_process.SNAPSHOT_COMMIT = export_snapshot(args.ref, snapshot_dir)
        server_process.CODE = snapshot_dir
        print(f"server code: {args.ref} = {commit} (snapshot in {snapshot_dir})",
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

