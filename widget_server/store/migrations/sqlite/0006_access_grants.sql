-- Support access grants: a verified visitor lets support into their account in the host
-- product for a limited time. Grants belong to the host's user id (not to a visitor row, which
-- may not exist before a first message); every grant, revoke, expiry and use is an append-only
-- event. The longest grant a site allows is sites.grant_max_hours (0 turns grants off).

ALTER TABLE sites ADD COLUMN grant_max_hours INTEGER NOT NULL DEFAULT 168
    CHECK (grant_max_hours IN (0, 1, 24, 168));

CREATE TABLE access_grants (
    id              TEXT PRIMARY KEY,
    site_id         INTEGER NOT NULL REFERENCES sites (id),
    user_id         TEXT NOT NULL,
    visitor_id      TEXT NOT NULL,
    ticket_id       INTEGER REFERENCES tickets (id),
    scope           TEXT NOT NULL,
    reason          TEXT,
    hours           INTEGER NOT NULL CHECK (hours IN (1, 24, 168)),
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    revoked_at      TEXT,
    expiry_recorded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX access_grants_user ON access_grants (site_id, user_id, expires_at);
CREATE INDEX access_grants_due ON access_grants (expires_at)
    WHERE revoked_at IS NULL AND expiry_recorded = 0;

CREATE TABLE access_grant_events (
    id         INTEGER PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES access_grants (id),
    site_id    INTEGER NOT NULL REFERENCES sites (id),
    user_id    TEXT NOT NULL,
    type       TEXT NOT NULL CHECK (type IN ('granted', 'revoked', 'expired', 'used')),
    actor_type TEXT NOT NULL CHECK (actor_type IN ('visitor', 'agent', 'api', 'system')),
    actor_name TEXT,
    action     TEXT,
    detail     TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX access_grant_events_user ON access_grant_events (site_id, user_id, id);
CREATE INDEX access_grant_events_grant ON access_grant_events (grant_id, id);

CREATE TRIGGER access_grant_events_no_update BEFORE UPDATE ON access_grant_events
BEGIN SELECT RAISE(ABORT, 'access_grant_events is append-only'); END;
CREATE TRIGGER access_grant_events_no_delete BEFORE DELETE ON access_grant_events
BEGIN SELECT RAISE(ABORT, 'access_grant_events is append-only'); END;
