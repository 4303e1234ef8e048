-- The nodes of the cluster, SQLite dialect. Keep in step with ../postgres/0012_nodes.sql.
--
-- - Each node upserts its row at start (started_at) and every node.heartbeat_secs (heartbeat_at), so every node
--   and the CLI see which nodes are up, in which region, at which SIP address. A row whose heartbeat is old is
--   a node that stopped; rows are never deleted by the daemon (`switchboard nodes` shows them stale).

CREATE TABLE nodes (
    name          TEXT    NOT NULL PRIMARY KEY,
    region        TEXT    NOT NULL,
    sip_address   TEXT    NOT NULL,
    started_at    BIGINT  NOT NULL,
    heartbeat_at  BIGINT  NOT NULL
);
