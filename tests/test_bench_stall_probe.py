"""The benchmark's machine-stall classifier (bench/stall_probe.py) on made-up samples."""

from __future__ import annotations

from bench.stall_probe import RECOVERY, Sample, outside, stall_windows, summary


def samples(costs: list[float], period: float = 0.005) -> list[Sample]:
    """One chunk every ``period`` seconds, each taking ``cost`` of CPU (and of wall time)."""
    return [(k * period, k * period + cost, cost) for k, cost in enumerate(costs)]


def test_slow_chunks_close_together_are_one_stall_bounded_by_their_neighbours() -> None:
    costs = [40e-6] * 100
    costs[10] = costs[11] = costs[13] = 300e-6  # 13 is within MERGE_GAP of 11
    costs[60] = 200e-6
    costs[80] = 100e-6  # 2.5 times the median: not a stall
    windows = stall_windows(samples(costs))
    assert len(windows) == 2
    (a, b), (c, d) = windows
    assert (round(a, 6), round(b, 6)) == (round(0.045 + 40e-6, 6), 0.070)
    assert (round(c, 6), round(d, 6)) == (round(0.295 + 40e-6, 6), 0.305)


def test_summary_clips_stalls_to_the_phase() -> None:
    windows = [(0.9, 1.1), (2.0, 2.05), (5.0, 5.5)]
    result = summary(windows, 1.0, 3.0)
    assert result == {"count": 2, "stalled_share": 0.075, "longest_ms": 100.0}
    assert summary([], 0.0, 1.0) == {"count": 0, "stalled_share": 0.0, "longest_ms": 0.0}


def test_messages_in_flight_during_a_stall_or_just_after_are_left_out() -> None:
    windows = [(1.0, 1.1)]
    sent = [0.5, 0.95, 1.05, 1.1 + RECOVERY / 2, 1.1 + RECOVERY + 0.01, 2.0]
    latencies = [0.01, 0.06, 0.01, 0.01, 0.02, 0.03]
    assert outside(windows, sent, latencies) == [0.01, 0.02, 0.03]
