-- Calls, PostgreSQL dialect. Keep in step with ../sqlite/0004_calls.sql: same
-- columns, same constraint names (the storage contract tests compare the columns).
--
-- - devices.trusted_address is an ip:port (IPv6 as [v6]:port) from which a PBX trunk is trusted without digest
--   auth, and where its inbound calls go when it does not register. Unique: a source address names one device.
-- - active_calls holds the calls in progress, one row per call, written by the node that handles the call and
--   cleared by that node when it starts. Transient, so no foreign keys: a row must never stop a device or service
--   from being deleted, nor fail a batch because one was. state is 'ringing' or 'answered'; times are Unix ms.

ALTER TABLE devices ADD COLUMN trusted_address TEXT;
CREATE UNIQUE INDEX devices_trusted_address_key ON devices (trusted_address);

CREATE TABLE active_calls (
    call_id         TEXT    NOT NULL PRIMARY KEY,
    node            TEXT    NOT NULL,
    direction       TEXT    NOT NULL
        CONSTRAINT active_calls_direction_check CHECK (direction IN ('inbound', 'outbound', 'on_net')),
    service_id      BIGINT,
    device_id       BIGINT,
    caller          TEXT    NOT NULL,
    callee          TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    started_at      BIGINT  NOT NULL,
    answered_at     BIGINT
);
-- A node clears its own rows at start.
CREATE INDEX active_calls_node_idx ON active_calls (node);
