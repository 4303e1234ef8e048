-- Calls across nodes, SQLite dialect. Keep in step with ../postgres/0013_cluster.sql.
--
-- - nodes.cluster_address: the ip:port other nodes send relayed calls to (and trust relayed calls from); empty
--   for a node that takes no relayed calls.
-- - bindings (updated_at): each node reads the bindings others wrote since its last look, every poll.

ALTER TABLE nodes ADD COLUMN cluster_address TEXT NOT NULL DEFAULT '';
CREATE INDEX bindings_updated_at_idx ON bindings (updated_at);
