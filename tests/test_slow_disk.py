"""A commit waiting for the disk holds its own batch's acks, not the server's event loop.

The server runs with bench/slowfsync.c preloaded: while the file ``hold`` exists, every
fsync waits for it to go (the shim notes each held fsync in ``hold.held``, with the thread
it holds), as a network disk that takes long to sync would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.slow_disk import build_shim
from tests.support import ServerProcess, VisitorClient, create_site, start_session
from tests.test_durability import stored_client_msg_ids

pytestmark = pytest.mark.anyio


@pytest.fixture
def held_disk_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    shim = build_shim(tmp_path)
    if shim is None:
        pytest.skip("no C compiler (cc, gcc or clang) to build bench/slowfsync.c")
    hold = tmp_path / "hold"
    server = ServerProcess(tmp_path / "widget.db", env={
        "LD_PRELOAD": str(shim), "SLOWFSYNC_MS": "0", "SLOWFSYNC_HOLD": str(hold)})
    yield server, hold
    hold.unlink(missing_ok=True)
    server.stop()


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


async def test_a_commit_held_in_fsync_holds_its_ack_not_the_event_loop(
    held_disk_server: tuple[ServerProcess, Path],
) -> None:
    server, hold = held_disk_server
    held = hold.with_name("hold.held")
    site = create_site(server.db)
    server.start()
    visitor = await VisitorClient.connect(server, site)
    ack, _ = await visitor.open_request("before the disk slows down")
    bystander = await VisitorClient.connect(server, site)
    hold.touch()
    try:
        client_msg_id = await visitor.send("sent while the disk syncs",
                                           conversation=ack["conversation"])
        await until(held.exists, "an fsync held")
        # A loop that committed itself would sit in fsync: no pong, no session, until the
        # disk is released.
        assert await bystander.frames_until_pong() == []
        assert (await start_session(server, site))["token"]
        assert stored_client_msg_ids(server.db)[client_msg_id] == 0
    finally:
        hold.unlink()
    late = await visitor.recv_type("ack")
    assert late["client_msg_id"] == client_msg_id and late["seq"] == 3
    assert stored_client_msg_ids(server.db)[client_msg_id] == 1
    assert "main" not in held.read_text().split()  # no fsync held the loop's thread
    await visitor.close()
    await bystander.close()
