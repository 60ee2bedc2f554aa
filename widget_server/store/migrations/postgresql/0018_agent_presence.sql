-- An agent's availability, set by the agent in the console and shown to the other agents
-- of the same sites: 'online' or 'away'. An agent without a row is online.
CREATE TABLE agent_presence (
    agent_id   BIGINT PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    status     TEXT NOT NULL CHECK (status IN ('online', 'away')),
    updated_at TEXT NOT NULL
);

-- A "No" vote on a help article is stored when it is clicked, before its reason: the reason
-- step then fills the same row in, and a "No" abandoned there still counts.
ALTER TABLE article_feedback DROP CONSTRAINT IF EXISTS article_feedback_check;
ALTER TABLE article_feedback ADD CONSTRAINT article_feedback_check
    CHECK ((helpful = 1 AND reason IS NULL AND comment IS NULL) OR helpful = 0);
