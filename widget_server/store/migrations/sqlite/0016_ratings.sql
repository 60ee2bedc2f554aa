-- Satisfaction ratings (docs/console.md, "Satisfaction"): one per ticket, a score from 1 to
-- 5 and an optional comment, given in the widget or through the solved mail's links, and
-- changeable for 7 days after it was first given (ratings.py). agent_id is the ticket's
-- assignee when the visitor rated: the agent the CSAT report credits. visitor_id names no
-- visitors row: an erasure deletes the rating with the ticket's other visitor data.
CREATE TABLE ratings (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL UNIQUE REFERENCES tickets (id) ON DELETE CASCADE,
    site_id INTEGER NOT NULL REFERENCES sites (id),
    visitor_id TEXT NOT NULL,
    agent_id INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment TEXT CHECK (comment IS NULL OR length(comment) <= 1000),
    channel TEXT NOT NULL CHECK (channel IN ('widget', 'email')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ratings_site_created ON ratings (site_id, created_at);

-- The score and when it was first given, on the ticket too: the ticket JSON the widget
-- reads shows them without another read, and a rating changes the ticket's version.
ALTER TABLE tickets ADD COLUMN rating INTEGER;
ALTER TABLE tickets ADD COLUMN rated_at TEXT;

-- The per-site switch: 1 (the default) asks for ratings in the widget and the solved mail.
ALTER TABLE sites ADD COLUMN ratings_enabled INTEGER NOT NULL DEFAULT 1;
