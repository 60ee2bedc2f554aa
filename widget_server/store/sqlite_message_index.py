"""Full-text indexing of message bodies in bulk, off the path of each message.

An FTS5 trigger indexing every message inside the transaction that stored it would write a
new index segment at every commit (one per writer batch) and keep merging them, a cost that
grows with the index: about a third of the writer's CPU per message on a fresh database,
more on a large one (docs/performance.md). Instead
``message_index_state.indexed_upto`` is the highest message id in ``messages_fts``, and every
message above it is pending. The writer indexes what is pending as its upkeep, on the event
loop (sqlite_writer.SQLiteWriter): when it has been idle for a moment, or inside a batch
after ``INDEX_EVERY`` jobs while it is busy, at most ``UPKEEP_MESSAGES`` at a time, so that
a backlog (messages written by another process, say) never holds the loop for long. A search
first indexes everything still pending, in the writer's helper thread
(``ConsoleQueries.search``), so it finds every acknowledged message.

Deletes and body changes of indexed messages keep the index exact through triggers guarded by
the watermark, and a delete lowers the watermark when the newest ids are gone, since SQLite
may hand a rowid out again (migration 0008).
"""

from __future__ import annotations

import sqlite3

# Jobs after which a busy writer indexes anyway, in a batch: bounded work (a few ms) and an
# index at most this far behind while messages keep coming.
INDEX_EVERY = 500
# The most one upkeep indexes: about 5 ms of the loop (2.5 ms for 500 on the benchmark's VM).
UPKEEP_MESSAGES = 1000

PENDING_SQL = ("SELECT (SELECT indexed_upto FROM message_index_state),"
               " (SELECT COALESCE(MAX(id), 0) FROM messages)")


def index_pending(conn: sqlite3.Connection, limit: int | None = None) -> int:
    """Index the pending messages, or the first ``limit`` ids of them; return how many ids
    were covered."""
    upto, last = conn.execute(PENDING_SQL).fetchone()
    if last <= upto:
        return 0
    if limit is not None:
        last = min(last, upto + limit)
    conn.execute("INSERT INTO messages_fts (rowid, body)"
                 " SELECT id, body FROM messages WHERE id > ? AND id <= ? ORDER BY id",
                 (upto, last))
    conn.execute("UPDATE message_index_state SET indexed_upto = ?", (last,))
    return int(last - upto)


def index_some(conn: sqlite3.Connection) -> bool:
    """The writer's upkeep: index up to ``UPKEEP_MESSAGES``; True when more are pending."""
    return index_pending(conn, UPKEEP_MESSAGES) == UPKEEP_MESSAGES
