-- Message bodies are indexed for search in bulk (widget_server/store/sqlite_message_index.py)
-- instead of by a trigger inside the transaction that stores each message: every message id
-- up to indexed_upto is in messages_fts, every one above it is pending.
CREATE TABLE message_index_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_upto INTEGER NOT NULL
);
-- the old insert trigger indexed every message there is
INSERT INTO message_index_state (id, indexed_upto) SELECT 1, COALESCE(MAX(id), 0) FROM messages;

DROP TRIGGER messages_fts_insert;

-- Deleting or changing a message that is indexed keeps the index exact; a pending one is not
-- in the index yet. A message id is a rowid, which SQLite hands out again once the newest
-- rows are gone: a delete at or above the watermark brings it down to the highest id left,
-- so that a reused id is above it, pending, and gets indexed. One trigger, in this order:
-- the order in which two triggers on the same event fire is not defined.
DROP TRIGGER messages_fts_delete;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body)
    SELECT 'delete', old.id, old.body
    WHERE old.id <= (SELECT indexed_upto FROM message_index_state);
    UPDATE message_index_state SET indexed_upto = (SELECT COALESCE(MAX(id), 0) FROM messages)
    WHERE old.id >= indexed_upto AND indexed_upto > (SELECT COALESCE(MAX(id), 0) FROM messages);
END;

DROP TRIGGER messages_fts_update;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages
WHEN old.id <= (SELECT indexed_upto FROM message_index_state)
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;
