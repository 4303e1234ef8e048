-- Devices and services reached and accepted over TLS only, PostgreSQL dialect. Keep in step with ../sqlite/0014_require_tls.sql.
--
-- - devices.require_tls: the device's requests over UDP or TCP are refused (after authentication, so the answer
--   tells a stranger nothing), and calls reach it over its TLS (or secure WebSocket) connection only.
-- - services.require_tls: the same for every device of the service.

ALTER TABLE devices ADD COLUMN require_tls BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE services ADD COLUMN require_tls BOOLEAN NOT NULL DEFAULT FALSE;
