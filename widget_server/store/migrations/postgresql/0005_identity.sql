-- Identity verification per site: the mode (`optional` lets unverified visitors in, marked
-- unverified; `required` refuses every conversation without a valid user hash) and the
-- previous identity secret, still accepted until previous_secret_until after a rotation.

ALTER TABLE sites ADD COLUMN identity_mode TEXT NOT NULL DEFAULT 'optional'
    CHECK (identity_mode IN ('optional', 'required'));
ALTER TABLE sites ADD COLUMN previous_identity_secret TEXT;
ALTER TABLE sites ADD COLUMN previous_secret_until TEXT;
