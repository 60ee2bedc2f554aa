-- Support policies and exact SLA clocks: business time, pauses, next-response clocks,
-- at-risk and breach marks, and a lease so one scheduler acts at a time.

ALTER TABLE sites ADD COLUMN policy TEXT;                 -- TOML; NULL means the default policy

ALTER TABLE tickets ADD COLUMN sla_kind TEXT NOT NULL DEFAULT 'first_response'
    CHECK (sla_kind IN ('first_response', 'next_response'));
ALTER TABLE tickets ADD COLUMN sla_target DOUBLE PRECISION;   -- business seconds
ALTER TABLE tickets ADD COLUMN sla_consumed DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN sla_running_since TEXT;    -- NULL while paused or stopped
ALTER TABLE tickets ADD COLUMN sla_due TEXT;              -- due instant of the running clock
ALTER TABLE tickets ADD COLUMN sla_at_risk_at TEXT;       -- when 80 % of the target is used
ALTER TABLE tickets ADD COLUMN sla_warned_at TEXT;        -- the at-risk mark, once per clock
ALTER TABLE tickets ADD COLUMN sla_breached_at TEXT;      -- the breach mark, once per clock
ALTER TABLE tickets ADD COLUMN next_response_at TEXT;

-- tickets from before policies: a running 12-hour first-response clock, as promised then
UPDATE tickets SET sla_target = 43200, sla_running_since = created_at,
    sla_due = first_response_due
WHERE first_response_at IS NULL AND status IN ('new', 'open');

CREATE INDEX tickets_sla_due ON tickets (sla_due) WHERE sla_due IS NOT NULL;
CREATE INDEX tickets_solved ON tickets (solved_at) WHERE status = 'solved';

CREATE TABLE scheduler_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
