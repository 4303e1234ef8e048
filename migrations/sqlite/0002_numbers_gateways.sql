-- Phone numbers (DIDs) and carrier gateways, SQLite dialect. Keep in step with ../postgres/0002_numbers_gateways.sql:
-- same tables, same columns (the storage contract tests compare them).
--
-- - numbers.number is E.164 (`+61...`), unique across the platform.
-- - numbers.service_id restricts (services are never deleted in bulk); numbers.device_id is set to NULL when the
--   device goes, so the number stays with its service.
-- - numbers.divert_to is 'voicemail' or an E.164 number; every divert_when but 'never' needs one (the CLI checks;
--   a rule without it behaves as 'never').

CREATE TABLE numbers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id      BIGINT  NOT NULL REFERENCES services (id),
    number          TEXT    NOT NULL,
    device_id       BIGINT  REFERENCES devices (id) ON DELETE SET NULL,
    divert_when     TEXT    NOT NULL DEFAULT 'never' CHECK (divert_when IN ('never', 'no_answer', 'all', 'offline')),
    divert_to       TEXT,
    no_answer_secs  BIGINT  NOT NULL DEFAULT 60 CHECK (no_answer_secs >= 0),
    offline_alert   TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    CONSTRAINT numbers_number_key UNIQUE (number)
);
CREATE INDEX numbers_service_id_idx ON numbers (service_id);
CREATE INDEX numbers_device_id_idx ON numbers (device_id);

CREATE TABLE gateways (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    address     TEXT    NOT NULL,
    transport   TEXT    NOT NULL CHECK (transport IN ('udp', 'tcp')),
    priority    BIGINT  NOT NULL,
    enabled     BOOLEAN NOT NULL,
    created_at  BIGINT  NOT NULL,
    CONSTRAINT gateways_name_key UNIQUE (name)
);
