"""CPU per visitor message inside the SQLite writer, without the network or the event loop.

    python -m bench.writer_cost                  # batches of 1, 10 and 40: a table
    python -m bench.writer_cost --batch 40 --rounds 500 --out /tmp/writer.json

A fresh database in a temporary directory (same schema, pragmas and ``synchronous=full`` as
the server), 100 visitors with an open request each, then ``--rounds`` batches of
``--batch`` messages, each batch run by the writer's own ``run_batch`` (one transaction,
one commit, one fsync) on this thread, with the message bodies indexed for search every
``INDEX_EVERY`` messages as the busy writer's upkeep does (sqlite_message_index). Reports
this thread's CPU time (user + system, which includes the fsync's) and wall time per
message. The chat scenarios measure the whole
server; this isolates the writer's share, which moves with the statements per message.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from widget_server.models import Visitor
from widget_server.store import sqlite_message_index as message_index
from widget_server.store import sqlite_schema as schema
from widget_server.store import sqlite_writes as writes
from widget_server.store.base import VisitorPost
from widget_server.store.sqlite_batch import Job, run_batch

VISITORS = 100


def thread_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def measure(batch_size: int, rounds: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="widget-writer-cost-"))
    try:
        conn = schema.connect(str(workdir / "writer.db"))
        schema.migrate(conn)
        now = datetime.now(UTC)
        conn.execute("BEGIN IMMEDIATE")
        site, _ = writes.ensure_site(conn, "Bench shop", ["https://bench-shop.test"], now)
        conn.execute("COMMIT")
        visitors = [Visitor(id=f"v_bench{n:04d}", site_id=site.id, user_id=None, name=None,
                            email=None, verified=False) for n in range(VISITORS)]
        conversations = []
        for visitor in visitors:
            opening = VisitorPost(visitor, None, str(uuid.uuid4()), "Hello", None, None)
            conn.execute("BEGIN IMMEDIATE")
            conversations.append(
                writes.post_visitor_message(conn, opening, now).message.conversation_id)
            conn.execute("COMMIT")

        def job(post: VisitorPost) -> Any:
            return lambda c: writes.post_visitor_message(c, post, datetime.now(UTC))

        batches: list[list[Job]] = []
        for r in range(rounds):
            batch: list[Job] = []
            for i in range(batch_size):
                n = (r * batch_size + i) % VISITORS
                post = VisitorPost(visitors[n], conversations[n], str(uuid.uuid4()),
                                   f"message {r}.{i} from visitor {n}", None, None)
                batch.append(job(post))
            batches.append(batch)
        cpu, wall = thread_cpu(), time.perf_counter()
        since_upkeep = 0
        for batch in batches:
            if not all(ok for ok, _ in run_batch(conn, batch)):
                raise RuntimeError("a message failed")
            since_upkeep += len(batch)
            if since_upkeep >= message_index.INDEX_EVERY:  # as the writer does while busy
                since_upkeep = 0
                run_batch(conn, [message_index.index_pending])
        cpu, wall = thread_cpu() - cpu, time.perf_counter() - wall
        messages = batch_size * rounds
        stored = conn.execute("SELECT COUNT(*) FROM messages WHERE author_type = 'visitor'"
                              ).fetchone()[0]
        conn.close()
        if stored != messages + VISITORS:
            raise RuntimeError(f"stored {stored}, expected {messages + VISITORS}")
        return {"batch": batch_size, "messages": messages,
                "cpu_us_per_message": round(1e6 * cpu / messages, 1),
                "wall_us_per_message": round(1e6 * wall / messages, 1)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, action="append",
                        help="messages per transaction (repeatable; default 1, 10, 40)")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.rounds < 1 or any(b < 1 or b > 256 for b in args.batch or []):
        parser.error("--rounds must be positive and --batch 1..256")
    sizes = args.batch or [1, 10, 40]
    results = [measure(size, args.rounds if size > 1 else max(args.rounds, 1000))
               for size in sizes]
    print(f"{'batch':>6} {'messages':>9} {'cpu us/msg':>11} {'wall us/msg':>12}")
    for row in results:
        print(f"{row['batch']:>6} {row['messages']:>9} {row['cpu_us_per_message']:>11} "
              f"{row['wall_us_per_message']:>12}")
    if args.out is not None:
        args.out.write_text(json.dumps({"sqlite": sqlite3.sqlite_version,
                                        "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
