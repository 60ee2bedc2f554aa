-- Every change to a ticket row gives it a new version, whichever statement or process made
-- it, so a writer that has built a ticket's record may reuse it while (id, version) is
-- unchanged instead of reading and parsing its thirty columns for each message
-- (sqlite_rows.py, TicketVersions). The version is random, not a count: a count would come
-- back after a rollback and name a different row than a record built before it.
ALTER TABLE tickets ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION tickets_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    new.version := floor((random() - 0.5) * 9.2e18)::bigint;
    RETURN new;
END;
$$;
CREATE TRIGGER tickets_version BEFORE UPDATE ON tickets
    FOR EACH ROW WHEN (new.version = old.version) EXECUTE FUNCTION tickets_version();
