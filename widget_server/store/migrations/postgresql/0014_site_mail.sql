-- The outbox also carries test mails ('test', "Send a test mail" on the console's Mail page).
ALTER TABLE mail_outbox DROP CONSTRAINT mail_outbox_kind_check,
    ADD CONSTRAINT mail_outbox_kind_check CHECK (kind IN
    ('acknowledgement', 'reply', 'solved', 'confirm', 'transcript', 'alert', 'test'));

-- A site's sender name: the From display name of its mails, in place of the site's name
-- (NULL: the site's name). Set on the console's site page.
ALTER TABLE sites ADD COLUMN mail_sender_name TEXT;
