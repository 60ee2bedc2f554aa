-- Inbound mail (docs/email.md). An address whose mail came back as a delivery failure (a
-- DSN) is bouncing: the sender mails it no more.
CREATE TABLE mail_bounces (
    address    TEXT PRIMARY KEY,  -- lowercase
    reason     TEXT NOT NULL,     -- the DSN's status and diagnostic, as far as it says
    created_at TEXT NOT NULL
);

-- A site's support address (lowercase): a mail to it opens a ticket of channel 'email'.
ALTER TABLE sites ADD COLUMN support_address TEXT;
CREATE UNIQUE INDEX sites_support_address ON sites (support_address)
    WHERE support_address IS NOT NULL;

-- The channel 'email' joins the CHECK of tickets.channel.
ALTER TABLE tickets DROP CONSTRAINT tickets_channel_check,
    ADD CONSTRAINT tickets_channel_check
    CHECK (channel IN ('widget', 'form', 'api', 'email'));

-- An answer by mail to a closed ticket opens a new ticket that points at the closed one
-- (its id; a plain column, as on SQLite).
ALTER TABLE tickets ADD COLUMN follow_up_of_id BIGINT;
