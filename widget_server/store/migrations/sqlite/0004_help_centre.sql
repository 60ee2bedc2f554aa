-- The help centre: articles with full-text search, anonymous feedback, comments, and the
-- events the help-centre metrics are computed from (see docs/help_centre.md).

CREATE TABLE articles (
    id         INTEGER PRIMARY KEY,
    site_id    INTEGER NOT NULL REFERENCES sites (id),
    slug       TEXT NOT NULL,
    category   TEXT NOT NULL,
    title      TEXT NOT NULL,
    body_md    TEXT NOT NULL,
    body_html  TEXT NOT NULL,                       -- rendered and sanitised (nh3)
    body_text  TEXT NOT NULL,                       -- plain text, for search and snippets
    status     TEXT NOT NULL CHECK (status IN ('draft', 'published')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (site_id, slug)
);
CREATE INDEX articles_site_category ON articles (site_id, status, category, title);

CREATE VIRTUAL TABLE articles_fts USING fts5 (
    title, body_text, content = 'articles', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts (rowid, title, body_text) VALUES (new.id, new.title, new.body_text);
END;
CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, body_text)
    VALUES ('delete', old.id, old.title, old.body_text);
END;
CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, body_text ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, body_text)
    VALUES ('delete', old.id, old.title, old.body_text);
    INSERT INTO articles_fts (rowid, title, body_text) VALUES (new.id, new.title, new.body_text);
END;

-- Anonymous by construction: no visitor id, no IP address, no token, no user agent, no
-- browser id. Only what was said about which article, and when.
CREATE TABLE article_feedback (
    id         INTEGER PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    helpful    INTEGER NOT NULL CHECK (helpful IN (0, 1)),
    reason     TEXT CHECK (reason IN ('not_addressed', 'not_understood', 'feature_missing',
                                      'other')),
    comment    TEXT,
    created_at TEXT NOT NULL,
    CHECK ((helpful = 1 AND reason IS NULL AND comment IS NULL)
           OR (helpful = 0 AND reason IS NOT NULL))
);
CREATE INDEX article_feedback_article ON article_feedback (article_id, created_at);

CREATE TABLE article_comments (
    id                INTEGER PRIMARY KEY,
    article_id        INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    author_type       TEXT NOT NULL CHECK (author_type IN ('visitor', 'agent')),
    author_visitor_id TEXT REFERENCES visitors (id),
    author_agent_id   INTEGER REFERENCES agents (id),
    author_name       TEXT,
    body              TEXT NOT NULL,
    hidden            INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    CHECK ((author_type = 'visitor') = (author_visitor_id IS NOT NULL)),
    CHECK ((author_type = 'agent') = (author_agent_id IS NOT NULL))
);
CREATE INDEX article_comments_article ON article_comments (article_id, created_at);

-- Views and searches. `browser` is a random id the widget keeps per browser; it is never
-- stored next to a visitor, and it is forgotten (set NULL) once its 30 minutes are over.
-- `tracked` says the event came with a browser id; `followed` that the same browser opened
-- a new request within 30 minutes (what the deflection rate counts).
CREATE TABLE article_events (
    id         INTEGER PRIMARY KEY,
    site_id    INTEGER NOT NULL REFERENCES sites (id),
    type       TEXT NOT NULL CHECK (type IN ('view', 'search')),
    article_id INTEGER REFERENCES articles (id) ON DELETE SET NULL,
    query      TEXT,
    results    INTEGER,
    browser    TEXT,
    tracked    INTEGER NOT NULL DEFAULT 0 CHECK (tracked IN (0, 1)),
    followed   INTEGER NOT NULL DEFAULT 0 CHECK (followed IN (0, 1)),
    created_at TEXT NOT NULL,
    CHECK (type = 'search' OR (query IS NULL AND results IS NULL)),
    CHECK (type = 'view' OR (query IS NOT NULL AND results IS NOT NULL))
);
CREATE INDEX article_events_site ON article_events (site_id, type, created_at);
CREATE INDEX article_events_article ON article_events (article_id, type, created_at);
CREATE INDEX article_events_browser ON article_events (browser, created_at)
    WHERE browser IS NOT NULL;
