-- Voicemail messages, SQLite dialect. Keep in step with ../postgres/0007_voicemail.sql.
--
-- - One row per message left in a number's mailbox; the audio is the WAV file `file` (a path relative to the
--   node's voicemail.dir) on node `node`, the node that recorded it.
-- - status: 'recording' while the caller speaks (the row exists before the first sample is written, so a node
--   that dies mid-message finds it at restart and repairs the file), then 'new', then 'saved' once listened to.
-- - The messages go with their number (ON DELETE CASCADE); not part of the change log.

CREATE TABLE voicemails (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    number_id    BIGINT  NOT NULL REFERENCES numbers (id) ON DELETE CASCADE,
    caller       TEXT    NOT NULL,
    caller_name  TEXT,
    received_at  BIGINT  NOT NULL,
    duration_ms  BIGINT  NOT NULL DEFAULT 0 CHECK (duration_ms >= 0),
    status       TEXT    NOT NULL CHECK (status IN ('recording', 'new', 'saved')),
    file         TEXT    NOT NULL,
    node         TEXT    NOT NULL
);
CREATE INDEX voicemails_number_id_idx ON voicemails (number_id, received_at);
CREATE INDEX voicemails_status_idx ON voicemails (status);
