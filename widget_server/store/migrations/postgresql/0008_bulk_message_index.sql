-- SQLite indexes message bodies for search in bulk behind a watermark; PostgreSQL's GIN
-- index (0002) is kept up to date by every insert, so nothing is ever pending. The table is
-- kept so both schemas have the same tables; indexed_upto is not read on PostgreSQL.
CREATE TABLE message_index_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_upto BIGINT NOT NULL
);
INSERT INTO message_index_state (id, indexed_upto) SELECT 1, COALESCE(MAX(id), 0) FROM messages;
