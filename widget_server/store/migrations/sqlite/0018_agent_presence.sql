-- A "No" vote on a help article is stored when it is clicked, before its reason: the reason
-- step then fills the same row in, and a "No" abandoned there still counts. Loosening a
-- CHECK changes no stored row, so the definition is edited in place (as in 0014); the
-- CREATE TABLE after it bumps the schema cookie, so every connection reloads it.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
    SET sql = replace(sql, 'OR (helpful = 0 AND reason IS NOT NULL)', 'OR helpful = 0')
    WHERE type = 'table' AND name = 'article_feedback';
PRAGMA writable_schema = RESET;

-- An agent's availability, set by the agent in the console and shown to the other agents
-- of the same sites: 'online' or 'away'. An agent without a row is online.
CREATE TABLE agent_presence (
    agent_id   INTEGER PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    status     TEXT NOT NULL CHECK (status IN ('online', 'away')),
    updated_at TEXT NOT NULL
);
