-- Credentials are checked against the current state at every use (docs/privacy.md,
-- docs/api.md).
--
-- erased_visitors: the visitors an erasure request deleted, by id, with the instant. A
-- visitor token, Help Form token or other credential issued before that instant no longer
-- speaks for the visitor, so an old token cannot bring the erased name back. A row is
-- dropped once every credential that could name it has expired (retention runs and
-- erasures prune them).
CREATE TABLE erased_visitors (
    visitor_id TEXT PRIMARY KEY,
    site_id    BIGINT NOT NULL REFERENCES sites (id),
    erased_at  TEXT NOT NULL
);

-- An API token acts only while its agent works on the token's site (or is an admin). The
-- integration agents that `token create` made for its tokens never had a membership: give
-- them the sites of their tokens, so those tokens keep working.
INSERT INTO agent_sites (agent_id, site_id)
SELECT DISTINCT t.agent_id, t.site_id FROM api_tokens t JOIN agents a ON a.id = t.agent_id
WHERE a.email LIKE '%@integrations.invalid' AND a.password_hash IS NULL
ON CONFLICT DO NOTHING;
