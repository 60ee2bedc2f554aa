"""Wake-ups between nodes: what may be folded into one read."""

from __future__ import annotations

from typing import Any

from widget_server.realtime import wire


def test_wake_ups_merge_only_where_one_read_covers_exactly_both() -> None:
    def wake(r: list[int] | None, notes: list[int] | None = None, channel: str = "agents:1",
             kind: str = "m") -> dict[str, Any]:
        return {"n": "x", "c": channel, "k": kind, "v": "cv_1", "r": r, "i": notes or []}

    touching = wake([3, 4], [7])
    assert wire.merge(touching, wake([5, 6], [8]))
    assert touching["r"] == [3, 6] and touching["i"] == [7, 8]
    assert wire.merge(touching, wake(None, [9])) and touching["r"] == [3, 6]
    # a gap may hold messages this node delivered itself: read apart, never again
    assert not wire.merge(wake([3, 4]), wake([6, 6]))
    assert not wire.merge(wake([3, 4]), wake([5, 5], channel="visitor:v"))
    assert not wire.merge(wake([3, 4]), wake(None, kind="t"))
    assert not wire.merge(wake([3, 4]), wake(["x"]))  # type: ignore[list-item]


def test_only_plain_ranges_of_new_messages_are_read_together() -> None:
    plain = {"n": "other", "c": "agents:1", "k": "m", "v": "cv_1", "r": [3, 4], "i": []}
    assert wire.batchable(plain)
    assert not wire.batchable({**plain, "i": [7]})  # internal notes: resolve reads them
    assert not wire.batchable({**plain, "r": None})
    assert not wire.batchable({**plain, "r": ["3", 4]})
    assert not wire.batchable({**plain, "k": "t"})
    assert not wire.batchable({**plain, "v": None})
