"""The machine's own stalls, measured beside a benchmark (docs/performance.md, "Machine stalls").

On the 2-core VM this suite was tuned on, both CPUs run six to eight times slower for 10 to
100 ms, about every 1.5 to 2 seconds, with nothing else running: a pure-Python loop shows it
as well as the server does. A message in flight during such a stall waits for it, so an ack
p99 cannot be read without knowing how much of the run the machine spent stalled.

The probe is a separate process that wakes every ``PERIOD``, runs a fixed chunk of work and
notes the chunk's *thread CPU time*. Waiting for a CPU that the benchmark keeps busy does not
count (that is load, and it is ours to carry); a CPU that computes the same chunk several
times slower does. Chunks costing more than ``STALL_FACTOR`` times the median are stalled;
stalled chunks less than ``MERGE_GAP`` apart are one stall. It costs about 1 % of a CPU.

    python -m bench.stall_probe --seconds 10     # stalls of an idle machine, as a table
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

PERIOD = 0.005       # s between chunks
CHUNK_LOOPS = 400    # ~40 us of work on the machine above
STALL_FACTOR = 3.0   # a chunk this many times the median's CPU time is stalled
MERGE_GAP = 0.025    # s: stalled chunks closer than this are one stall
RECOVERY = 0.1       # s after a stall during which a message still counts as stalled

Sample = tuple[float, float, float]  # (start, end, CPU seconds), time.perf_counter()
Window = tuple[float, float]


def _chunk() -> int:
    total = 0
    for i in range(CHUNK_LOOPS):
        total += i * i
    return total


def sample(stop: threading.Event) -> list[Sample]:
    samples: list[Sample] = []
    while not stop.is_set():
        started, cpu = time.perf_counter(), time.thread_time()
        _chunk()
        samples.append((started, time.perf_counter(), time.thread_time() - cpu))
        stop.wait(PERIOD)
    return samples


def stall_windows(samples: list[Sample]) -> list[Window]:
    if not samples:
        return []
    costs = sorted(cpu for _, _, cpu in samples)
    limit = STALL_FACTOR * costs[len(costs) // 2]
    windows: list[list[float]] = []
    for index, (started, ended, cpu) in enumerate(samples):
        if cpu <= limit:
            continue
        # the stall began after the chunk before ended, and may last until the next starts
        began = samples[index - 1][1] if index else started
        until = samples[index + 1][0] if index + 1 < len(samples) else ended
        if windows and began - windows[-1][1] < MERGE_GAP:
            windows[-1][1] = until
        else:
            windows.append([began, until])
    return [(a, b) for a, b in windows]


def summary(windows: list[Window], start: float, end: float) -> dict[str, Any]:
    """The stalls overlapping [start, end]: how many, the share of the time, the longest."""
    inside = [(max(a, start), min(b, end)) for a, b in windows if b > start and a < end]
    stalled = sum(b - a for a, b in inside)
    return {"count": len(inside), "stalled_share": round(stalled / max(end - start, 1e-9), 4),
            "longest_ms": round(1000 * max((b - a for a, b in inside), default=0.0), 1)}


def outside(windows: list[Window], sent: list[float], latencies: list[float],
            recovery: float = RECOVERY) -> list[float]:
    """The latencies of the messages that were not in flight during a stall nor sent within
    ``recovery`` after one (while the work a stall held back is still being caught up)."""
    kept = []
    for began, took in zip(sent, latencies, strict=True):
        ended = began + took
        if not any(a < ended and b + recovery > began for a, b in windows):
            kept.append(took)
    return kept


class StallProbe:
    """The probe as a child process: ``start()``, run the load, ``stop()`` -> stall windows."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.samples: list[Sample] = []

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "bench.stall_probe", "--child"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        cwd=Path(__file__).resolve().parent.parent)

    def stop(self) -> list[Window]:
        if self.process is None:
            return []
        out, _ = self.process.communicate(timeout=30)  # closing stdin ends the sampling
        self.process = None
        self.samples = [(a, b, c) for a, b, c in json.loads(out)]
        return stall_windows(self.samples)


def _child() -> None:
    stop = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.buffer.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    json.dump(sample(stop), sys.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child()
        return 0
    stop = threading.Event()
    threading.Timer(args.seconds, stop.set).start()
    samples = sample(stop)
    windows = stall_windows(samples)
    costs = sorted(cpu for _, _, cpu in samples)
    print(f"{len(samples)} chunks, median {1e6 * costs[len(costs) // 2]:.0f} us of CPU")
    for a, b in windows:
        print(f"  stall at {a - samples[0][0]:7.3f} s for {1000 * (b - a):6.1f} ms")
    print(json.dumps(summary(windows, samples[0][0], samples[-1][1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
