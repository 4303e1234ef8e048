-- Per-device digest setting and what each device last authenticated with, SQLite dialect. Keep in step with
-- ../postgres/0005_device_digest.sql: same columns, same constraint names.
--
-- - devices.digest: 'modern' (the configured algorithm list, SHA-256 first) or 'md5' (MD5 alone, offered only
--   from the device's last authenticated address or from devices.md5_from).
-- - devices.md5_from: comma-separated networks (CIDR) from which an 'md5' device is offered MD5 alone even
--   before it has ever authenticated (its office's address: the first registration of a new ATA).
-- - device_auth: the last successful authentication of each device (algorithm, User-Agent, source address),
--   written by the daemon when one of them changes; telemetry, not configuration, so it is outside the devices
--   table and its change log.

ALTER TABLE devices ADD COLUMN digest TEXT NOT NULL DEFAULT 'modern'
    CONSTRAINT devices_digest_check CHECK (digest IN ('modern', 'md5'));
ALTER TABLE devices ADD COLUMN md5_from TEXT;

CREATE TABLE device_auth (
    device_id   BIGINT  NOT NULL PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    algorithm   TEXT    NOT NULL,
    user_agent  TEXT,
    source      TEXT    NOT NULL,
    since       BIGINT  NOT NULL
);
