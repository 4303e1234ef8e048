-- Management API tokens, SQLite dialect. Keep in step with ../postgres/0010_api_tokens.sql.
--
-- - token_hash: hex SHA-256 of the token, which is shown once when made and never stored. A token is 256 random
--   bits, so a fast hash is enough (nothing to brute-force); lookups go by the hash.
-- - customer_id NULL: an operator's token (every customer); else the token reaches that customer's data only.
-- - A revoked token stays as history (revoked_at set) and never authenticates again.

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL,
    token_hash    TEXT    NOT NULL,
    customer_id   BIGINT  REFERENCES customers (id) ON DELETE CASCADE,
    created_at    BIGINT  NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    CONSTRAINT api_tokens_name_key UNIQUE (name),
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash)
);
