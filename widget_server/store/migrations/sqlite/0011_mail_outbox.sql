-- The durable outbox of outbound mail (docs/email.md). A row is written in the same
-- transaction as what causes it (a Help Form request, an agent's reply, a ticket solved);
-- the sender (mail_sender.py) composes it when it falls due, storing subject and bodies
-- before the first attempt, so every retry sends the same mail under the same Message-ID.
CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY,
    site_id         INTEGER NOT NULL,
    to_address      TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('acknowledgement', 'reply', 'solved')),
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

CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE state = 'queued';
CREATE INDEX mail_outbox_conversation ON mail_outbox (conversation_id, kind, state);

-- The verified address a conversation's follow-ups are mailed to (a Help Form address, an
-- address the host signed); NULL: nothing is mailed.
ALTER TABLE conversations ADD COLUMN mail_to TEXT;
