-- Every change to a ticket row gives it a new version, whichever statement or process made
-- it, so a writer that has built a ticket's record may reuse it while (id, version) is
-- unchanged instead of reading and parsing its thirty columns for each message
-- (sqlite_rows.py, TicketVersions). The version is random, not a count: a count would come
-- back after a rollback and name a different row than a record built before it.
-- recursive_triggers is off, and the WHEN clause stops a second change anyway.
ALTER TABLE tickets ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER tickets_version AFTER UPDATE ON tickets
WHEN new.version = old.version
BEGIN
    UPDATE tickets SET version = random() WHERE id = new.id;
END;
