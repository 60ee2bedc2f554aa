-- Data retention and erasure (docs/privacy.md): a retention period per site, tombstones of
-- tickets, and the append-only privacy audit.

-- NULL keeps everything forever (the default); otherwise closed conversations whose last
-- activity is older than this many days are deleted by the retention job.
ALTER TABLE sites ADD COLUMN retention_days INTEGER
    CHECK (retention_days IS NULL OR retention_days BETWEEN 1 AND 36500);

-- A tombstone keeps the ticket's site, number, severity, status, channel and dates; its
-- subject is blanked and it points at the site's placeholder conversation (cv_erased_<site>,
-- owned by the visitor row v_erased_<site>, which holds no data): the real conversation, its
-- messages and the visitor are deleted.
ALTER TABLE tickets ADD COLUMN erased_at TEXT;
ALTER TABLE tickets ADD COLUMN erased_reason TEXT
    CHECK (erased_reason IS NULL OR erased_reason IN ('retention', 'erasure'));

-- what the retention job scans: closed tickets not yet erased, oldest activity first
CREATE INDEX tickets_retention ON tickets (site_id, updated_at)
    WHERE status = 'closed' AND erased_at IS NULL;

-- Erasure is final: a tombstone never gets its subject or conversation back.
CREATE TRIGGER tickets_tombstone_final BEFORE UPDATE ON tickets
WHEN old.erased_at IS NOT NULL AND (
    new.erased_at IS NOT old.erased_at OR new.erased_reason IS NOT old.erased_reason
    OR new.subject IS NOT old.subject OR new.conversation_id IS NOT old.conversation_id)
BEGIN
    SELECT RAISE(ABORT, 'an erased ticket stays erased');
END;

-- ticket_events stays append-only with one narrow exception: the events of an erased ticket
-- may lose what could identify the visitor, and nothing else: a visitor actor's id (a
-- verified visitor's id is derived from the host's user id) and the free-text `reason`.
-- Events are never deleted: they are the tombstone's history and the SLA reports count them.
DROP TRIGGER ticket_events_append_only_update;
CREATE TRIGGER ticket_events_append_only_update BEFORE UPDATE ON ticket_events
WHEN NOT (
    (SELECT erased_at FROM tickets WHERE id = old.ticket_id) IS NOT NULL
    AND new.id = old.id AND new.ticket_id = old.ticket_id AND new.type = old.type
    AND new.actor_type = old.actor_type AND new.created_at = old.created_at
    AND (new.actor_id IS old.actor_id OR (old.actor_type = 'visitor' AND new.actor_id IS NULL))
    AND (new.data = old.data OR new.data = json_remove(old.data, '$.reason')))
BEGIN
    SELECT RAISE(ABORT, 'ticket_events is append-only');
END;

-- Who deleted what, when: retention runs, erasures and changes of the retention period.
-- Never who was erased: no email, name or user id (nor a hash of one, which a guess would
-- reverse); only how the request named the visitor, the operator's own reference for the
-- request, and counts.
CREATE TABLE privacy_audit (
    id         INTEGER PRIMARY KEY,
    site_id    INTEGER NOT NULL REFERENCES sites (id),
    action     TEXT NOT NULL CHECK (action IN ('retention', 'erasure', 'retention_set')),
    actor      TEXT NOT NULL CHECK (actor IN ('cli', 'admin', 'scheduler')),
    agent_id   INTEGER REFERENCES agents (id),          -- the admin, when actor = 'admin'
    subject    TEXT NOT NULL,    -- retention: the cutoff; erasure: user_id, email or visitor;
                                 -- retention_set: the new period ("30 days" or "off")
    reference  TEXT,             -- erasure: the operator's reference of the request
    counts     TEXT NOT NULL DEFAULT '{}',               -- JSON: what was deleted
    created_at TEXT NOT NULL
);
CREATE INDEX privacy_audit_site ON privacy_audit (site_id, id);

CREATE TRIGGER privacy_audit_append_only_update BEFORE UPDATE ON privacy_audit
BEGIN
    SELECT RAISE(ABORT, 'privacy_audit is append-only');
END;

CREATE TRIGGER privacy_audit_append_only_delete BEFORE DELETE ON privacy_audit
BEGIN
    SELECT RAISE(ABORT, 'privacy_audit is append-only');
END;
