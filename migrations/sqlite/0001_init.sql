-- Switchboard schema, SQLite dialect. Keep in step with ../postgres/0001_init.sql: same tables, same columns
-- (the storage contract tests compare them).
--
-- Conventions:
-- - Times are BIGINT Unix milliseconds.
-- - List columns (devices.call_types, bindings.path) hold a JSON array of strings as TEXT, e.g. '["local","mobile"]'.
--   JSON rather than comma-joined because Path values are SIP name-addrs that may themselves contain commas.
-- - Only devices cascade on delete (to their bindings and state); customers and services are never deleted in bulk
--   by accident, so their foreign keys restrict.
-- - AUTOINCREMENT so ids (and change_log seqs) are never reused after a delete: caches key on them.

CREATE TABLE customers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    CONSTRAINT customers_name_key UNIQUE (name)
);

CREATE TABLE services (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT  NOT NULL REFERENCES customers (id),
    name        TEXT    NOT NULL,
    mode        TEXT    NOT NULL CHECK (mode IN ('direct', 'trunk')),
    region      TEXT,
    created_at  BIGINT  NOT NULL,
    CONSTRAINT services_name_key UNIQUE (name)
);
CREATE INDEX services_customer_id_idx ON services (customer_id);

CREATE TABLE devices (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id      BIGINT  NOT NULL REFERENCES services (id),
    name            TEXT    NOT NULL,
    auth_id         TEXT    NOT NULL,
    realm           TEXT    NOT NULL,
    ha1_md5         TEXT    NOT NULL,
    ha1_sha256      TEXT    NOT NULL,
    ha1_sha512_256  TEXT    NOT NULL,
    caller_id       TEXT,
    call_types      TEXT    NOT NULL DEFAULT '[]',
    max_contacts    BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    CONSTRAINT devices_auth_id_key UNIQUE (auth_id),
    CONSTRAINT devices_service_id_name_key UNIQUE (service_id, name)
);

CREATE TABLE bindings (
    device_id   BIGINT  NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    aor         TEXT    NOT NULL,
    contact     TEXT    NOT NULL,
    q           BIGINT,
    expires_at  BIGINT  NOT NULL,
    call_id     TEXT    NOT NULL,
    cseq        BIGINT  NOT NULL,
    source      TEXT    NOT NULL,
    transport   TEXT    NOT NULL,
    local       TEXT    NOT NULL,
    path        TEXT    NOT NULL DEFAULT '[]',
    instance_id TEXT,
    reg_id      BIGINT,
    user_agent  TEXT,
    node        TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL,
    CONSTRAINT bindings_device_id_contact_key PRIMARY KEY (device_id, contact)
);
CREATE INDEX bindings_expires_at_idx ON bindings (expires_at);

CREATE TABLE device_states (
    device_id   BIGINT  NOT NULL PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    online      BOOLEAN NOT NULL,
    since       BIGINT  NOT NULL
);

CREATE TABLE change_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    entity      TEXT    NOT NULL,
    entity_id   BIGINT  NOT NULL,
    at          BIGINT  NOT NULL
);
