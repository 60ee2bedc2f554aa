"""The benchmark's report (bench/report.py) on made-up runs: which closed loop is reported."""

from __future__ import annotations

import re
from typing import Any

from bench.report import chat_summary, median_loop, table


def loop(msgs_per_s: float, **more: Any) -> dict[str, Any]:
    return {"mode": "closed", "msgs_per_s": msgs_per_s, "ack_p50_ms": msgs_per_s / 1000,
            **more}


def test_the_median_loop_is_reported_whole() -> None:
    assert median_loop([loop(7000), loop(5000), loop(6000)]) == loop(6000)
    assert median_loop([loop(7000), loop(5000)]) == loop(5000)  # even: the lower middle
    assert median_loop([loop(4000)]) == loop(4000)
    assert median_loop([]) == {}


def test_the_ratio_is_the_median_chat_loop_over_the_median_relay_loop() -> None:
    relay = {"msgs_per_s": 16000.0, "closed_loops_msgs_per_s": [17000.0, 16000.0, 12000.0]}
    opened = {"mode": "open", "rate": 1000.0, "msgs_per_s": 999.0, "p99_ms": 8.0}
    chat = {"phases": [loop(7000, agent_replies={"per_s": 99.0}),
                       loop(5600, agent_replies={"per_s": 98.0}),
                       loop(6400, agent_replies={"per_s": 97.0}), opened]}
    summary = chat_summary(chat, relay)
    assert summary["msgs_per_s"] == 6400
    assert summary["ack_p50_ms"] == 6.4  # the latencies of the same loop
    assert summary["closed_loops_msgs_per_s"] == [7000, 5600, 6400]
    assert summary["ratio_to_relay"] == 0.4
    assert list(summary["open_loop"]) == ["1000"]
    assert summary["ack_p99_ms_at_1000_per_s"] == 8.0
    printed = table({"relay": {**relay, "details": relay}, "chat": summary})
    assert "16000.0 (17000.0 / 16000.0 / 12000.0)" in printed
    assert "6400 (7000 / 5600 / 6400)" in printed
    assert re.search(r"agent REST replies/s \(closed\).* +97\.0, ", printed)  # the median's


def test_one_loop_is_reported_as_it_is() -> None:
    summary = chat_summary({"phases": [loop(5000)]}, {"msgs_per_s": 10000.0})
    assert summary["ratio_to_relay"] == 0.5
    printed = table({"chat": summary})
    assert re.search(r"chat persisted msg/s \(closed; median of\) +5000\n", printed)
