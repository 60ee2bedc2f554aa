-- The outbox also carries test mails ('test', "Send a test mail" on the console's Mail
-- page). Widening a CHECK changes no stored row, so the table's definition is edited in
-- place (SQLite's documented writable_schema procedure for such changes) instead of copying
-- every mail into a new table: the kinds and columns earlier migrations gave the outbox stay
-- as they are ('solved' is only ever a kind). The ALTER after it bumps the schema cookie, so
-- every connection reloads the definition.
PRAGMA writable_schema = ON;
UPDATE sqlite_master SET sql = replace(sql, '''solved''', '''solved'', ''test''')
    WHERE type = 'table' AND name = 'mail_outbox' AND sql NOT LIKE '%''test''%';
PRAGMA writable_schema = RESET;

-- A site's sender name: the From display name of its mails, in place of the site's name
-- (NULL: the site's name). Set on the console's site page.
ALTER TABLE sites ADD COLUMN mail_sender_name TEXT;
