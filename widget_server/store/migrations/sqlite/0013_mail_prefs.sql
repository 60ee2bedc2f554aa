-- Mail a widget visitor asked for and agents' alerts (docs/email.md): the outbox's kinds
-- gain 'confirm' (the link that confirms an address a visitor typed), 'transcript' and
-- 'alert'. Widening a CHECK changes no stored row, so the table's definition is edited in
-- place (SQLite's documented writable_schema procedure, as 0012 does for tickets); the
-- ALTER below bumps the schema cookie, so every connection reloads the definition.
PRAGMA writable_schema = ON;
UPDATE sqlite_master SET sql = replace(sql,
    'CHECK (kind IN (''acknowledgement'', ''reply'', ''solved''))',
    'CHECK (kind IN (''acknowledgement'', ''reply'', ''solved'', ''confirm'', ''transcript'', ''alert''))')
    WHERE type = 'table' AND name = 'mail_outbox';
PRAGMA writable_schema = RESET;

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
