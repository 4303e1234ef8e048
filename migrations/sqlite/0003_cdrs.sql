-- Call detail records, SQLite dialect. Keep in step with ../postgres/0003_cdrs.sql: same
-- columns, same constraint names (the storage contract tests compare the columns).
--
-- - One row per call attempt, written in batches by the daemon; not part of the change log.
-- - service_id restricts (services with CDRs are never deleted); device_id is set to NULL when the device goes,
--   so the record stays with its service.
-- - caller / callee are E.164 or dialled digits; call_type is the routing call type name; times are Unix ms.

CREATE TABLE cdrs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id         TEXT    NOT NULL,
    direction       TEXT    NOT NULL
        CONSTRAINT cdrs_direction_check CHECK (direction IN ('inbound', 'outbound', 'on_net')),
    service_id      BIGINT  REFERENCES services (id),
    device_id       BIGINT  REFERENCES devices (id) ON DELETE SET NULL,
    caller          TEXT    NOT NULL,
    callee          TEXT    NOT NULL,
    call_type       TEXT,
    started_at      BIGINT  NOT NULL,
    answered_at     BIGINT,
    ended_at        BIGINT,
    disposition     TEXT    NOT NULL
        CONSTRAINT cdrs_disposition_check
        CHECK (disposition IN ('answered', 'busy', 'no_answer', 'failed', 'cancelled', 'rejected')),
    sip_status      INTEGER,
    divert_reason   TEXT
        CONSTRAINT cdrs_divert_reason_check CHECK (divert_reason IN ('no_answer', 'all', 'offline', 'busy')),
    diverted_to     TEXT,
    gateway         TEXT,
    node            TEXT    NOT NULL
);
CREATE INDEX cdrs_started_at_idx ON cdrs (started_at);
CREATE INDEX cdrs_service_id_idx ON cdrs (service_id);
-- ON DELETE SET NULL finds a deleted device's CDRs through this index instead of a full scan.
CREATE INDEX cdrs_device_id_idx ON cdrs (device_id);
