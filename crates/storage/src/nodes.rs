//! The cluster's nodes: each announces itself with a heartbeat row; anyone lists them, with the bindings each
//! holds; each node reads where the others' devices are bound, to relay calls there.

use crate::backend::{SqlStore, with_pool};
use crate::{Located, Millis, Node, Result};

type NodeRow = (String, String, String, i64, i64, String);

fn node_of((name, region, sip_address, started_at, heartbeat_at, cluster_address): NodeRow) -> Node {
    Node { name, region, sip_address, started_at, heartbeat_at, cluster_address }
}

impl SqlStore {
    pub(crate) async fn heartbeat_node(&self, node: &Node) -> Result<()> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO nodes (name, region, sip_address, started_at, heartbeat_at, cluster_address) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (name) DO UPDATE SET region = excluded.region, sip_address = excluded.sip_address, \
                 started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, \
                 cluster_address = excluded.cluster_address",
            )
            .bind(&node.name)
            .bind(&node.region)
            .bind(&node.sip_address)
            .bind(node.started_at)
            .bind(node.heartbeat_at)
            .bind(&node.cluster_address)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub(crate) async fn list_nodes(&self) -> Result<Vec<(Node, i64)>> {
        with_pool!(self, pool => {
            let rows: Vec<(String, String, String, i64, i64, String, i64)> = sqlx::query_as(
                "SELECT n.name, n.region, n.sip_address, n.started_at, n.heartbeat_at, n.cluster_address, \
                 (SELECT COUNT(*) FROM bindings b WHERE b.node = n.name) FROM nodes n ORDER BY n.region, n.name",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(name, region, sip, started, beat, cluster, bindings)| {
                    (node_of((name, region, sip, started, beat, cluster)), bindings)
                })
                .collect())
        })
    }

    pub(crate) async fn live_nodes(&self, since: Millis) -> Result<Vec<Node>> {
        with_pool!(self, pool => {
            let rows: Vec<NodeRow> = sqlx::query_as(
                "SELECT name, region, sip_address, started_at, heartbeat_at, cluster_address FROM nodes \
                 WHERE heartbeat_at >= $1 ORDER BY region, name",
            )
            .bind(since)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(node_of).collect())
        })
    }

    pub(crate) async fn bindings_elsewhere(&self, node: &str, since: Millis, now: Millis) -> Result<Vec<Located>> {
        with_pool!(self, pool => {
            let rows: Vec<(i64, String, String, i64, i64)> = sqlx::query_as(
                "SELECT device_id, contact, node, updated_at, expires_at FROM bindings \
                 WHERE updated_at > $1 AND node <> $2 AND expires_at > $3",
            )
            .bind(since)
            .bind(node)
            .bind(now)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(device_id, contact, node, updated_at, expires_at)| Located {
                    device_id,
                    contact,
                    node,
                    updated_at,
                    expires_at,
                })
                .collect())
        })
    }
}
