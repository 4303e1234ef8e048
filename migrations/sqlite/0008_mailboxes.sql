-- Mailbox settings, SQLite dialect. Keep in step with ../postgres/0008_mailboxes.sql.
--
-- - One row per number whose mailbox has been set up (a number without a row has no PIN: 777 cannot open it).
-- - pin_hash: PBKDF2-HMAC-SHA256 in the form pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX; never the PIN.
-- - pin_failures counts wrong PINs in a row across calls; at the limit the mailbox is locked until locked_until
--   (Unix ms) and the count starts again.
-- - email: where new messages are sent (NULL: none); email_keep: keep the message after emailing it.
-- - The row goes with its number (ON DELETE CASCADE); not part of the change log (read per call).

CREATE TABLE mailboxes (
    number_id     BIGINT  PRIMARY KEY REFERENCES numbers (id) ON DELETE CASCADE,
    pin_hash      TEXT,
    pin_failures  BIGINT  NOT NULL DEFAULT 0,
    locked_until  BIGINT,
    email         TEXT,
    email_keep    BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at    BIGINT  NOT NULL
);
