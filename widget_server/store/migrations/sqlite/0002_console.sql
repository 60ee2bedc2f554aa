-- The agent console: site memberships, support tiers, console sessions, login throttling,
-- saved replies, per-agent read markers, ticket links (split, merge), visitor context,
-- and full-text search over tickets and messages.

ALTER TABLE agents ADD COLUMN tier INTEGER NOT NULL DEFAULT 1;

CREATE TABLE agent_sites (
    agent_id INTEGER NOT NULL REFERENCES agents (id),
    site_id  INTEGER NOT NULL REFERENCES sites (id),
    PRIMARY KEY (agent_id, site_id)
);

-- "First level" is the host's own staff; more levels are configurable per site.
ALTER TABLE sites ADD COLUMN tier_names TEXT NOT NULL DEFAULT '["First level", "Second level"]';

ALTER TABLE tickets ADD COLUMN tier INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tickets ADD COLUMN split_from_id INTEGER REFERENCES tickets (id);
ALTER TABLE tickets ADD COLUMN merged_into_id INTEGER REFERENCES tickets (id);

ALTER TABLE conversations ADD COLUMN page_url TEXT;
ALTER TABLE conversations ADD COLUMN user_agent TEXT;

CREATE TABLE agent_sessions (
    id         TEXT PRIMARY KEY,                     -- random; the cookie carries it signed
    agent_id   INTEGER NOT NULL REFERENCES agents (id),
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX agent_sessions_agent ON agent_sessions (agent_id);

CREATE TABLE login_failures (
    key            TEXT PRIMARY KEY,                 -- sha256 of the lower-cased email
    failures       INTEGER NOT NULL,
    last_failed_at TEXT NOT NULL
);

CREATE TABLE saved_replies (
    id         INTEGER PRIMARY KEY,
    site_id    INTEGER NOT NULL REFERENCES sites (id),
    shortcut   TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (site_id, shortcut)
);

CREATE TABLE agent_reads (
    agent_id  INTEGER NOT NULL REFERENCES agents (id),
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    message_id INTEGER NOT NULL,                     -- the newest message the agent has seen
    PRIMARY KEY (agent_id, ticket_id)
);

CREATE VIRTUAL TABLE messages_fts USING fts5 (body, content = 'messages', content_rowid = 'id');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;
INSERT INTO messages_fts (rowid, body) SELECT id, body FROM messages;

CREATE VIRTUAL TABLE tickets_fts USING fts5 (subject, content = 'tickets', content_rowid = 'id');
CREATE TRIGGER tickets_fts_insert AFTER INSERT ON tickets BEGIN
    INSERT INTO tickets_fts (rowid, subject) VALUES (new.id, new.subject);
END;
CREATE TRIGGER tickets_fts_update AFTER UPDATE OF subject ON tickets BEGIN
    INSERT INTO tickets_fts (tickets_fts, rowid, subject) VALUES ('delete', old.id, old.subject);
    INSERT INTO tickets_fts (rowid, subject) VALUES (new.id, new.subject);
END;
INSERT INTO tickets_fts (rowid, subject) SELECT id, subject FROM tickets;
