-- A site's sender name: the From display name of its mails, in place of the site's name
-- (NULL: the site's name). Set on the console's site page.
ALTER TABLE sites ADD COLUMN mail_sender_name TEXT;

-- The outbox gains the kind 'test' ("Send a test mail" on the console's outbox page).
-- SQLite cannot change a CHECK in place: the table is rebuilt with the same columns.
CREATE TABLE mail_outbox_new (
    id              INTEGER PRIMARY KEY,
    site_id         INTEGER NOT NULL,
    to_address      TEXT NOT NULL,
    kind            TEXT NOT NULL
                    CHECK (kind IN ('acknowledgement', 'reply', 'solved', 'test')),
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

INSERT INTO mail_outbox_new (id, site_id, to_address, kind, conversation_id, ticket_number,
    subject, text_body, html_body, headers, message_id, upto_seq, state, attempts, send_after,
    next_attempt_at, last_error, created_at, sent_at)
SELECT id, site_id, to_address, kind, conversation_id, ticket_number, subject, text_body,
    html_body, headers, message_id, upto_seq, state, attempts, send_after, next_attempt_at,
    last_error, created_at, sent_at FROM mail_outbox;

DROP TABLE mail_outbox;
ALTER TABLE mail_outbox_new RENAME TO mail_outbox;
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE state = 'queued';
CREATE INDEX mail_outbox_conversation ON mail_outbox (conversation_id, kind, state);
