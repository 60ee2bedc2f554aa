"""Prometheus metrics of one server process (``GET /metrics``, docs/operations.md).

Counters and histograms that code updates as things happen live in one process-wide
registry; gauges that describe state (sockets open, the outboxes, the SQLite writer) are
read when ``/metrics`` is scraped, so they cost nothing in between. No label ever carries a
ticket, visitor, agent or site value: every label has a small, fixed set of values, so the
number of series stays bounded whatever the traffic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # process_resident_memory_bytes, CPU, open files

SOCKETS_OPEN = Gauge("widget_sockets_open", "Websockets open now.", ["kind"],
                     registry=REGISTRY)
MESSAGES_STORED = Counter("widget_messages_stored", "Messages stored (acknowledged).",
                          ["author"], registry=REGISTRY)
ACK_SECONDS = Histogram(
    "widget_ack_seconds", "From a send frame read to its ack handed to the socket.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY)
SLA_MARKS = Counter("widget_sla_marks", "SLA marks made by the scheduler on this process.",
                    ["mark"], registry=REGISTRY)
RATE_LIMITED = Counter("widget_rate_limited", "Requests, messages or sockets refused by an "
                       "abuse limit.", registry=REGISTRY)
HTTP_REQUESTS = Counter("widget_http_requests", "HTTP requests answered.",
                        ["method", "route", "status"], registry=REGISTRY)
HTTP_SECONDS = Histogram(
    "widget_http_request_seconds", "Time to answer an HTTP request, by route template.",
    ["route"], buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
    registry=REGISTRY)
WRITER_STATS = {
    "batches": "Write transactions committed (SQLite: group commits).",
    "jobs": "Write jobs run; jobs / batches is the mean batch size.",
    "commit_seconds": "Time spent committing (SQLite: the disk's sync), in seconds.",
    "retries": "Write jobs run again after a serialization conflict (PostgreSQL).",
    "deadlocks": "Of the jobs run again, those PostgreSQL ended to break a deadlock.",
}
SLA_MARK_NAMES = {"sla_at_risk": "at_risk", "sla_breached": "breached"}

# (pending, failed): read from the store at each scrape
OutboxStats = Callable[[], Awaitable[tuple[int, int]]]


class StateSnapshot(Collector):
    """The gauges read at scrape time, gathered before the registry renders them."""

    def __init__(self, outboxes: dict[str, tuple[int, int]],
                 writer: Mapping[str, float] | None) -> None:
        self.outboxes = outboxes
        self.writer = writer

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("widget_outbox_pending",
                                  "Deliveries waiting to go out, by outbox.", labels=["outbox"])
        failed = GaugeMetricFamily("widget_outbox_failed",
                                   "Deliveries given up, by outbox.", labels=["outbox"])
        for name, (pending, gave_up) in sorted(self.outboxes.items()):
            depth.add_metric([name], pending)
            failed.add_metric([name], gave_up)
        yield depth
        yield failed
        for key, text in WRITER_STATS.items():  # what the store's backend keeps
            if self.writer is not None and key in self.writer:
                yield CounterMetricFamily(f"widget_writer_{key}", text, self.writer[key])


async def render(outboxes: dict[str, OutboxStats], writer: Mapping[str, float] | None
                 ) -> bytes:
    """The text format of every metric of this process; ``writer``: the store's
    ``writer_stats`` (batches, jobs, commit_seconds) when it keeps them."""
    state = CollectorRegistry(auto_describe=False)
    state.register(StateSnapshot({name: await read() for name, read in outboxes.items()},
                                 writer))
    return generate_latest(REGISTRY) + generate_latest(state)
