-- Sites, agents, tokens, visitors, conversations, messages, tickets and their audit trail.
-- Times are UTC ISO 8601 text with milliseconds and a Z suffix, so they sort as text.

CREATE TABLE server_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE sites (
    id               INTEGER PRIMARY KEY,
    key              TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL UNIQUE,
    allowed_origins  TEXT NOT NULL DEFAULT '[]',   -- JSON array of normalised origins
    identity_secret  TEXT NOT NULL,
    reference_prefix TEXT NOT NULL DEFAULT '',
    ticket_counter   INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL
);

CREATE TABLE agents (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'agent')),
    password_hash TEXT,                               -- NULL: cannot sign in (integrations)
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,               -- sha256 hex; the token itself is never stored
    site_id      INTEGER NOT NULL REFERENCES sites (id),
    agent_id     INTEGER NOT NULL REFERENCES agents (id),
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);

CREATE TABLE visitors (
    id         TEXT PRIMARY KEY,
    site_id    INTEGER NOT NULL REFERENCES sites (id),
    user_id    TEXT,
    name       TEXT,
    email      TEXT,
    verified   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    UNIQUE (site_id, user_id)
);

CREATE TABLE conversations (
    id               TEXT PRIMARY KEY,
    site_id          INTEGER NOT NULL REFERENCES sites (id),
    visitor_id       TEXT NOT NULL REFERENCES visitors (id),
    last_seq         INTEGER NOT NULL DEFAULT 0,
    visitor_read_seq INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX conversations_visitor ON conversations (visitor_id);

CREATE TABLE messages (
    id                INTEGER PRIMARY KEY,
    conversation_id   TEXT NOT NULL REFERENCES conversations (id),
    seq               INTEGER,                        -- NULL only for internal notes
    author_type       TEXT NOT NULL CHECK (author_type IN ('visitor', 'agent', 'system')),
    author_visitor_id TEXT REFERENCES visitors (id),
    author_agent_id   INTEGER REFERENCES agents (id),
    author_name       TEXT,
    body              TEXT NOT NULL,
    internal          INTEGER NOT NULL DEFAULT 0,
    client_msg_id     TEXT,
    created_at        TEXT NOT NULL,
    CHECK (internal = 1 OR seq IS NOT NULL),
    CHECK (internal = 0 OR seq IS NULL),
    UNIQUE (conversation_id, seq),
    UNIQUE (author_visitor_id, client_msg_id)
);

CREATE TABLE tickets (
    id                 INTEGER PRIMARY KEY,
    site_id            INTEGER NOT NULL REFERENCES sites (id),
    number             INTEGER NOT NULL,
    conversation_id    TEXT NOT NULL REFERENCES conversations (id),
    subject            TEXT NOT NULL,
    severity           TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('new', 'open', 'pending', 'solved', 'closed')),
    stage              TEXT CHECK (stage IN ('investigating', 'replicated', 'workaround')),
    channel            TEXT NOT NULL CHECK (channel IN ('widget', 'form', 'api')),
    assignee_id        INTEGER REFERENCES agents (id),
    first_response_due TEXT NOT NULL,
    first_response_at  TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    solved_at          TEXT,
    closed_at          TEXT,
    UNIQUE (site_id, number)
);
CREATE INDEX tickets_conversation ON tickets (conversation_id);
CREATE INDEX tickets_site_due ON tickets (site_id, status, first_response_due);

CREATE TABLE ticket_events (
    id         INTEGER PRIMARY KEY,
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    type       TEXT NOT NULL,
    actor_type TEXT NOT NULL CHECK (actor_type IN ('visitor', 'agent', 'system')),
    actor_id   TEXT,
    data       TEXT NOT NULL DEFAULT '{}',            -- JSON
    created_at TEXT NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id);

CREATE TRIGGER ticket_events_append_only_update BEFORE UPDATE ON ticket_events
BEGIN
    SELECT RAISE(ABORT, 'ticket_events is append-only');
END;

CREATE TRIGGER ticket_events_append_only_delete BEFORE DELETE ON ticket_events
BEGIN
    SELECT RAISE(ABORT, 'ticket_events is append-only');
END;
