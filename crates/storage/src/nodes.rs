//! The cluster's nodes: each announces itself with a heartbeat row; anyone lists them, with the bindings each
//! holds.

use crate::backend::{SqlStore, with_pool};
use crate::{Node, Result};

impl SqlStore {
    pub(crate) async fn heartbeat_node(&self, node: &Node) -> Result<()> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO nodes (name, region, sip_address, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (name) DO UPDATE SET region = excluded.region, sip_address = excluded.sip_address, \
                 started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at",
            )
            .bind(&node.name)
            .bind(&node.region)
            .bind(&node.sip_address)
            .bind(node.started_at)
            .bind(node.heartbeat_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub(crate) async fn list_nodes(&self) -> Result<Vec<(Node, i64)>> {
        with_pool!(self, pool => {
            let rows: Vec<(String, String, String, i64, i64, i64)> = sqlx::query_as(
                "SELECT n.name, n.region, n.sip_address, n.started_at, n.heartbeat_at, \
                 (SELECT COUNT(*) FROM bindings b WHERE b.node = n.name) FROM nodes n ORDER BY n.region, n.name",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(name, region, sip_address, started_at, heartbeat_at, bindings)| {
                    (Node { name, region, sip_address, started_at, heartbeat_at }, bindings)
                })
                .collect())
        })
    }
}
