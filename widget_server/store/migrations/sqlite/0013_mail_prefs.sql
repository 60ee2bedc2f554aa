-- Mail a widget visitor asked for (docs/email.md): the outbox also carries the confirmation
-- of an address a visitor typed ('confirm'), and transcripts and agent alerts. SQLite cannot
-- widen a CHECK in place, so the outbox is rebuilt with its rows, ids and indexes.
CREATE TABLE mail_outbox_new (
    id              INTEGER PRIMARY KEY,
    site_id         INTEGER NOT NULL,
    to_address      TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('acknowledgement', 'reply', 'solved',
                                                 'confirm', 'transcript', 'alert')),
    conversation_id TEXT,  -- no foreign key: erasing a conversation deletes its mails
    ticket_number   INTEGER,
    subject         TEXT,  -- NULL until composed
    text_body       TEXT,
    html_body       TEXT,
    headers         TEXT NOT NULL DEFAULT '{}',  -- JSON: Reply-To and the like
    message_id      TEXT NOT NULL UNIQUE,  -- fixed at insert: every attempt sends the same
    upto_seq        INTEGER,  -- a reply mail: the last message seq it shows
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'sent', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    send_after      TEXT NOT NULL,  -- not before: the delay a reply waits to be read
    next_attempt_at TEXT NOT NULL,  -- when it is due (again); also the lease of a claim
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
INSERT INTO mail_outbox_new SELECT id, site_id, to_address, kind, conversation_id,
    ticket_number, subject, text_body, html_body, headers, message_id, upto_seq, state,
    attempts, send_after, next_attempt_at, last_error, created_at, sent_at FROM mail_outbox;
DROP TABLE mail_outbox;
ALTER TABLE mail_outbox_new RENAME TO mail_outbox;
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE state = 'queued';
CREATE INDEX mail_outbox_conversation ON mail_outbox (conversation_id, kind, state);

-- The address a visitor confirmed through the link we mailed; the visitor's requests, those
-- open then and those started later, are mailed to it. NULL: none confirmed.
ALTER TABLE visitors ADD COLUMN mail_confirmed TEXT;

-- Which alerts each agent gets by mail (docs/email.md). No row: the defaults, a visitor's
-- reply on the agent's tickets and SLA at risk.
CREATE TABLE agent_mail_prefs (
    agent_id      INTEGER PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    new_ticket    INTEGER NOT NULL DEFAULT 0,
    visitor_reply INTEGER NOT NULL DEFAULT 1,
    sla_at_risk   INTEGER NOT NULL DEFAULT 1,
    sla_breached  INTEGER NOT NULL DEFAULT 0,
    escalated     INTEGER NOT NULL DEFAULT 0
);
