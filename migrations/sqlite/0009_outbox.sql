-- The email outbox, SQLite dialect. Keep in step with ../postgres/0009_outbox.sql.
--
-- - Every email the daemon sends is a row first (voicemail, device offline/online alerts), so nothing queued is
--   lost to a restart and a failing SMTP server only delays it. status: 'queued' until sent ('sent') or given up
--   after the last retry ('failed', last_error says why).
-- - A node takes a row by setting claimed_by/claimed_until in one UPDATE that re-checks the claim, so several
--   nodes never send the same email; a claim that lapses (its node died) is taken again.
-- - attachment: a file under voicemail.dir of node `node`, which alone may send the row (NULL: any node).
-- - voicemail_id: a message to delete once emailed (its mailbox keeps no copy). dedupe: one row per key (alerts).

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT    NOT NULL,
    recipient        TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    attachment       TEXT,
    attachment_name  TEXT,
    voicemail_id     BIGINT,
    node             TEXT,
    dedupe           TEXT,
    status           TEXT    NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    claimed_by       TEXT,
    claimed_until    BIGINT,
    last_error       TEXT,
    created_at       BIGINT  NOT NULL,
    sent_at          BIGINT,
    CONSTRAINT outbox_dedupe_key UNIQUE (dedupe)
);
CREATE INDEX outbox_due_idx ON outbox (status, next_attempt_at);
