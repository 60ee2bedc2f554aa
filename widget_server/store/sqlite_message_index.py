"""Full-text indexing of message bodies in bulk, off the path of each message.

An FTS5 trigger used to index every message inside the transaction that stored it. FTS5
then wrote a new index segment at every commit (one per writer batch) and kept merging them,
and that cost grew with the index: about a third of the writer's CPU per message on a fresh
database, more on a large one (docs/performance.md, item 18). Now
``message_index_state.indexed_upto`` is the highest message id in ``messages_fts``, and every
message above it is pending. The writer indexes what is pending as its upkeep, between
batches (sqlite_writer.SQLiteWriter): when it has been idle for a moment, or after
``INDEX_EVERY`` jobs while it is busy. A search first indexes what is still pending
(``ConsoleQueries.search``), so it finds every acknowledged message.

Deletes and body changes of indexed messages keep the index exact through triggers guarded by
the watermark, and a delete lowers the watermark when the newest ids are gone, since SQLite
may hand a rowid out again (migration 0008).
"""

from __future__ import annotations

import sqlite3

# Jobs after which a busy writer indexes anyway: bounded work per upkeep (a few ms) and an
# index at most this far behind while messages keep coming.
INDEX_EVERY = 500

PENDING_SQL = ("SELECT (SELECT indexed_upto FROM message_index_state),"
               " (SELECT COALESCE(MAX(id), 0) FROM messages)")


def index_pending(conn: sqlite3.Connection) -> int:
    """Index every pending message; return how many ids were covered."""
    upto, last = conn.execute(PENDING_SQL).fetchone()
    if last <= upto:
        return 0
    conn.execute("INSERT INTO messages_fts (rowid, body)"
                 " SELECT id, body FROM messages WHERE id > ? AND id <= ? ORDER BY id",
                 (upto, last))
    conn.execute("UPDATE message_index_state SET indexed_upto = ?", (last,))
    return int(last - upto)
