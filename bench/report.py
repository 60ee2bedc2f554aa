"""The suite's report: the chat summary the JSON carries, the printed table, the targets.

Kept apart from ``__main__`` (which runs the scenarios) so that what a run means is read
in one place: the figures, their order in the table and the issue's targets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def median_loop(loops: list[dict[str, Any]]) -> dict[str, Any]:
    """The closed loop with the median throughput (of an even number, the lower middle one):
    a whole loop, so that its latencies and CPU belong to the figure reported."""
    ranked = sorted(loops, key=lambda loop: loop.get("msgs_per_s") or 0)
    return ranked[(len(ranked) - 1) // 2] if ranked else {}


def chat_summary(chat: dict[str, Any], relay: dict[str, Any]) -> dict[str, Any]:
    phases = chat.get("phases") or []
    loops = [p for p in phases if p.get("mode") == "closed"]
    closed = median_loop(loops)
    opened = {f"{p['rate']:g}": p for p in phases if p.get("mode") == "open"}
    ratio = (round(closed["msgs_per_s"] / relay["msgs_per_s"], 3)
             if closed.get("msgs_per_s") and relay.get("msgs_per_s") else None)
    return {"msgs_per_s": closed.get("msgs_per_s"),
            "closed_loops_msgs_per_s": [loop.get("msgs_per_s") for loop in loops],
            "ack_p50_ms": closed.get("ack_p50_ms"),
            "ack_p99_ms": closed.get("p99_ms"), "delivery_p50_ms": closed.get("delivery_p50_ms"),
            "delivery_p99_ms": closed.get("delivery_p99_ms"), "ratio_to_relay": ratio,
            "ack_p99_ms_at_1000_per_s": opened.get("1000", {}).get("p99_ms"),
            "ack_p99_outside_stalls_ms_at_1000_per_s":
                opened.get("1000", {}).get("ack_p99_outside_stalls_ms"),
            "open_loop": {rate: {k: p.get(k) for k in (
                "msgs_per_s", "ack_p50_ms", "p99_ms", "delivery_p50_ms", "delivery_p99_ms",
                "server_cpu_percent", "machine_stalls", "ack_p99_outside_stalls_ms")}
                for rate, p in opened.items()},
            "details": chat}


TARGETS: list[tuple[str, Callable[[dict[str, Any]], Any], str, Callable[[Any], bool]]] = [
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


def _get(report: dict[str, Any], *path: Any) -> Any:
    value: Any = report
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _loops(report: dict[str, Any], name: str) -> Any:
    """The median closed loop's figure, and every loop's when there were several."""
    median = _get(report, name, "msgs_per_s")
    loops = (_get(report, name, "closed_loops_msgs_per_s")
             or _get(report, name, "details", "closed_loops_msgs_per_s") or [])
    return f"{median} ({' / '.join(map(str, loops))})" if len(loops) > 1 else median


def _stalls(stalls: dict[str, Any] | None) -> str:
    if not stalls:
        return "n/a"
    return (f"{stalls['count']}, {100 * stalls['stalled_share']:.1f} %, "
            f"{stalls['longest_ms']}")


def table(report: dict[str, Any]) -> str:
    chat = report.get("chat", {})
    rows: list[tuple[str, Any]] = [
        ("relay msg/s (closed loop; median of)", _loops(report, "relay")),
        ("relay ack p99 ms", _get(report, "relay", "p99_ms")),
        ("relay ack p99 ms at 1000/s", _get(report, "relay", "ack_p99_ms_at_1000_per_s")),
        ("machine stalls idle: count, share, longest ms",
         _stalls(_get(report, "machine", "stalls_idle"))),
        ("chat persisted msg/s (closed; median of)", _loops(report, "chat")),
        ("chat ack p50 / p99 ms (closed)", f"{chat.get('ack_p50_ms')} / {chat.get('ack_p99_ms')}"),
        ("chat delivery p99 ms (closed)", chat.get("delivery_p99_ms")),
        ("chat / relay", chat.get("ratio_to_relay")),
    ]
    for rate, phase in (chat.get("open_loop") or {}).items():
        rows.append((f"chat at {rate}/s: msg/s, ack p50/p99, delivery p50/p99 ms",
                     f"{phase.get('msgs_per_s')}, {phase.get('ack_p50_ms')}/"
                     f"{phase.get('p99_ms')}, {phase.get('delivery_p50_ms')}/"
                     f"{phase.get('delivery_p99_ms')}"))
        rows.append((f"chat at {rate}/s: machine stalls; ack p99 ms outside them",
                     f"{_stalls(phase.get('machine_stalls'))}; "
                     f"{phase.get('ack_p99_outside_stalls_ms')}"))
    phases = _get(report, "chat", "details", "phases")
    if phases:
        closed = median_loop([p for p in phases if p.get("mode") == "closed"]).get(
            "agent_replies") or {}
        rows.append(("agent REST replies/s (closed), POST p99 ms, to widget p99 ms",
                     f"{closed.get('per_s')}, {closed.get('rest_p99_ms')}, "
                     f"{closed.get('widget_delivery_p99_ms')}"))
    for n, level in (report.get("storm") or {}).items():
        rows.append((f"connect storm {n}: connects/s, ready p50/p99 ms",
                     f"{level.get('connects_per_s')}, {level.get('ready_p50_ms')}/"
                     f"{level.get('ready_p99_ms')}"))
    for level in _get(report, "idle", "details", "levels") or []:
        rows.append((f"idle {level.get('target')}: open, KiB per socket",
                     f"{level.get('open')}, {level.get('kib_per_socket')}"))
    rows += [
        ("Help Form posts/s (GET + POST), p99 ms",
         f"{_get(report, 'help_form', 'posts_per_s')}, {_get(report, 'help_form', 'p99_ms')}"),
        ("REST ticket listing req/s, p99 ms",
         f"{_get(report, 'rest_list', 'requests_per_s')}, {_get(report, 'rest_list', 'p99_ms')}"),
        ("cold start s (median)", report.get("cold_start_s")),
        ("idle RSS MB", report.get("idle_rss_mb")),
        ("widget loader gz bytes", _get(report, "widget_gz_bytes", "loader")),
        ("widget first open gz bytes", _get(report, "widget_gz_bytes", "first_open")),
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
