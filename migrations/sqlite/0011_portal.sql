-- Customer portal logins, sessions and one-time links, SQLite dialect. Keep in step with ../postgres/0011_portal.sql.
--
-- - logins.email is stored lower-case. password_hash is an argon2id PHC string, NULL until the owner sets a
--   password from an emailed link. customer_id NULL: not yet linked by an operator (the login reaches nothing).
-- - portal_sessions.id_hash and login_tokens.token_hash are hex SHA-256 of the secret the browser holds or the
--   email carried; the secrets themselves are never stored. A password change deletes the login's sessions and
--   unused links in the same transaction.
-- - login_tokens.used_at: a link works once (an UPDATE that checks used_at IS NULL and expires_at spends it).

CREATE TABLE logins (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    email                TEXT    NOT NULL,
    password_hash        TEXT,
    customer_id          BIGINT  REFERENCES customers (id),
    created_at           BIGINT  NOT NULL,
    password_changed_at  BIGINT,
    CONSTRAINT logins_email_key UNIQUE (email)
);

CREATE TABLE portal_sessions (
    id_hash       TEXT    NOT NULL PRIMARY KEY,
    login_id      BIGINT  NOT NULL REFERENCES logins (id) ON DELETE CASCADE,
    created_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL
);
CREATE INDEX portal_sessions_login_idx ON portal_sessions (login_id);

CREATE TABLE login_tokens (
    token_hash  TEXT    NOT NULL PRIMARY KEY,
    login_id    BIGINT  NOT NULL REFERENCES logins (id) ON DELETE CASCADE,
    purpose     TEXT    NOT NULL CHECK (purpose IN ('reset', 'welcome')),
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT
);
CREATE INDEX login_tokens_login_idx ON login_tokens (login_id);
