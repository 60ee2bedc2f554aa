-- Attachments (docs/api.md#attachments): one row per upload. `id` is the public, unguessable
-- id; `storage_key` the SHA-256 of the stored bytes (content-addressed: one file for equal
-- contents, deleted when no row names it any more). An upload belongs to its uploader (a
-- visitor or an agent) until a message claims it (`message_id`); unsent ones are swept after
-- 24 hours, and rows whose message was purged or erased go with it.
CREATE TABLE attachments (
    id                  TEXT PRIMARY KEY,
    site_id             INTEGER NOT NULL REFERENCES sites (id),
    uploader_visitor_id TEXT,
    uploader_agent_id   INTEGER REFERENCES agents (id),
    message_id          INTEGER,
    name                TEXT NOT NULL,
    size                INTEGER NOT NULL,
    content_type        TEXT NOT NULL,
    storage_key         TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    CHECK (uploader_visitor_id IS NOT NULL OR uploader_agent_id IS NOT NULL
           OR message_id IS NOT NULL)
);
CREATE INDEX attachments_message ON attachments (message_id);
CREATE INDEX attachments_storage_key ON attachments (storage_key);
CREATE INDEX attachments_unsent ON attachments (created_at) WHERE message_id IS NULL;

-- A message's attachments as shown ([{"id", "name", "size", "content_type"}], JSON text;
-- NULL: none), written once when the message claims them: reading a conversation costs no
-- extra query, and a message without attachments nothing at all.
ALTER TABLE messages ADD COLUMN attachments TEXT;

-- A site's attachment rules (docs/configuration.md#attachments): largest file in bytes,
-- files per message, allowed content types (comma-separated; NULL: the default list), and
-- whether image metadata (EXIF, GPS) is kept (0: removed).
ALTER TABLE sites ADD COLUMN attachment_max_bytes INTEGER NOT NULL DEFAULT 10485760;
ALTER TABLE sites ADD COLUMN attachment_max_files INTEGER NOT NULL DEFAULT 10;
ALTER TABLE sites ADD COLUMN attachment_types TEXT;
ALTER TABLE sites ADD COLUMN attachment_keep_metadata INTEGER NOT NULL DEFAULT 0;
