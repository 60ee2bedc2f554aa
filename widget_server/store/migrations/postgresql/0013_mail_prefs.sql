-- Mail a widget visitor asked for and agents' alerts (docs/email.md): the outbox's kinds
-- gain 'confirm' (the link that confirms an address a visitor typed), 'transcript' and
-- 'alert'.
ALTER TABLE mail_outbox DROP CONSTRAINT mail_outbox_kind_check,
    ADD CONSTRAINT mail_outbox_kind_check CHECK (kind IN
    ('acknowledgement', 'reply', 'solved', 'confirm', 'transcript', 'alert'));

-- The address a visitor confirmed through the link we mailed; the visitor's requests, those
-- open then and those started later, are mailed to it. NULL: none confirmed.
ALTER TABLE visitors ADD COLUMN mail_confirmed TEXT;

-- Which alerts each agent gets by mail (docs/email.md). No row: the defaults, a visitor's
-- reply on the agent's tickets and SLA at risk.
CREATE TABLE agent_mail_prefs (
    agent_id      BIGINT PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    new_ticket    INTEGER NOT NULL DEFAULT 0,
    visitor_reply INTEGER NOT NULL DEFAULT 1,
    sla_at_risk   INTEGER NOT NULL DEFAULT 1,
    sla_breached  INTEGER NOT NULL DEFAULT 0,
    escalated     INTEGER NOT NULL DEFAULT 0
);
