-- Webhooks (docs/webhooks.md): endpoints an admin registers per site, the durable outbox
-- of deliveries written in the transaction of the event they tell of, and the log of every
-- attempt. Portable SQL: the PostgreSQL file of the same name has the same tables.
CREATE TABLE webhook_endpoints (
    id               INTEGER PRIMARY KEY,
    site_id          INTEGER NOT NULL REFERENCES sites (id),
    url              TEXT NOT NULL,
    events           TEXT NOT NULL,  -- JSON array of event types
    include_notes    INTEGER NOT NULL DEFAULT 0,  -- 1: message.created of internal notes too
    secret           TEXT NOT NULL,  -- whsec_ + base64 of 24 random bytes
    enabled          INTEGER NOT NULL DEFAULT 1,
    failure_streak   INTEGER NOT NULL DEFAULT 0,  -- failed attempts since the last success
    failing_since    TEXT,  -- the first failure of the streak; NULL after a success
    disabled_at      TEXT,
    disabled_reason  TEXT,
    created_at       TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_site ON webhook_endpoints (site_id);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    webhook_id      TEXT NOT NULL UNIQUE,  -- msg_...: the webhook-id of every attempt
    endpoint_id     INTEGER NOT NULL REFERENCES webhook_endpoints (id),
    site_id         INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    ordering_key    TEXT,  -- 'ticket:ID' or 'grant:ID': delivered in order; NULL: no order
    payload         TEXT NOT NULL,  -- the JSON body, byte for byte what every attempt sends
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,  -- when it is due (again); also the lease of a claim
    last_status     INTEGER,  -- the receiver's HTTP status of the last attempt
    last_error      TEXT,
    last_response   TEXT,  -- an excerpt of the last answer's body
    created_at      TEXT NOT NULL,
    delivered_at    TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, ordering_key, id)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

CREATE TABLE webhook_attempts (
    id            INTEGER PRIMARY KEY,
    delivery_id   INTEGER NOT NULL REFERENCES webhook_deliveries (id),
    attempted_at  TEXT NOT NULL,
    status        INTEGER,  -- NULL: no HTTP answer (refused, unreachable, timed out)
    error         TEXT,
    response      TEXT,  -- an excerpt of the answer's body
    duration_ms   INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
