-- Inbound mail (docs/email.md). An address whose mail came back as a delivery failure (a
-- DSN) is bouncing: the sender mails it no more.
CREATE TABLE mail_bounces (
    address    TEXT PRIMARY KEY,  -- lowercase
    reason     TEXT NOT NULL,     -- the DSN's status and diagnostic, as far as it says
    created_at TEXT NOT NULL
);

-- An answer by mail to a closed ticket opens a new ticket that points at the closed one
-- (its id; a plain column, so an upgrade test can drop it as it drops every later change).
ALTER TABLE tickets ADD COLUMN follow_up_of_id INTEGER;
