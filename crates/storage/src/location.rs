//! Bindings, device liveness and the change log: state the daemon writes (bindings via its write-behind task)
//! and reads back at start-up or when polling for directory changes.

use crate::backend::{SqlStore, WritePool, with_pool};
use crate::errors::WriteCtx;
use crate::rows::{BindingRow, ChangeRow, DeviceStateRow, binding_columns, convert_all, encode_list};
use crate::{Binding, BindingOp, Change, DeviceState, Millis, Result};

/// Insert-or-replace keyed by (device_id, contact). The `WHERE EXISTS` skips bindings of devices that no longer
/// exist: see [`SqlStore::apply_bindings`]. (SQLite needs the `WHERE` anyway to parse `INSERT ... SELECT ... ON
/// CONFLICT`.)
const UPSERT_BINDING: &str = concat!(
    "INSERT INTO bindings (",
    binding_columns!(),
    ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16 \
     WHERE EXISTS (SELECT 1 FROM devices WHERE id = $1) \
     ON CONFLICT (device_id, contact) DO UPDATE SET \
     aor = excluded.aor, q = excluded.q, expires_at = excluded.expires_at, call_id = excluded.call_id, \
     cseq = excluded.cseq, source = excluded.source, transport = excluded.transport, local = excluded.local, \
     path = excluded.path, instance_id = excluded.instance_id, reg_id = excluded.reg_id, \
     user_agent = excluded.user_agent, node = excluded.node, updated_at = excluded.updated_at"
);

impl SqlStore {
    /// Applies `ops` in order in one transaction.
    ///
    /// An upsert for a device that has been deleted is skipped rather than failing: a device deleted while its
    /// REGISTER sat in the daemon's write-behind queue has nothing left to bind, and an error would roll back
    /// every other device's bindings in the batch.
    pub(crate) async fn apply_bindings(&self, ops: &[BindingOp]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for op in ops {
                match op {
                    BindingOp::Upsert(b) => {
                        sqlx::query(UPSERT_BINDING)
                            .bind(b.device_id)
                            .bind(&b.aor)
                            .bind(&b.contact)
                            .bind(b.q)
                            .bind(b.expires_at)
                            .bind(&b.call_id)
                            .bind(b.cseq)
                            .bind(&b.source)
                            .bind(&b.transport)
                            .bind(&b.local)
                            .bind(encode_list(&b.path))
                            .bind(&b.instance_id)
                            .bind(b.reg_id)
                            .bind(&b.user_agent)
                            .bind(&b.node)
                            .bind(b.updated_at)
                            .execute(&mut *tx)
                            .await
                            // Only reachable if the device is deleted concurrently (PostgreSQL).
                            .map_err(|e| WriteCtx::new("binding", &[]).parent("device", b.device_id).error(e))?;
                    }
                    BindingOp::Remove { device_id, contact } => {
                        sqlx::query("DELETE FROM bindings WHERE device_id = $1 AND contact = $2")
                            .bind(device_id)
                            .bind(contact)
                            .execute(&mut *tx)
                            .await?;
                    }
                    BindingOp::RemoveAll { device_id } => {
                        sqlx::query("DELETE FROM bindings WHERE device_id = $1")
                            .bind(device_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub(crate) async fn list_bindings(&self) -> Result<Vec<Binding>> {
        with_pool!(self, pool => {
            let rows: Vec<BindingRow> =
                sqlx::query_as(concat!("SELECT ", binding_columns!(), " FROM bindings ORDER BY device_id, contact"))
                    .fetch_all(pool)
                    .await?;
            convert_all(rows)
        })
    }

    pub(crate) async fn bindings_for_device(&self, device_id: i64) -> Result<Vec<Binding>> {
        with_pool!(self, pool => {
            let rows: Vec<BindingRow> = sqlx::query_as(concat!(
                "SELECT ", binding_columns!(), " FROM bindings WHERE device_id = $1 ORDER BY contact"
            ))
            .bind(device_id)
            .fetch_all(pool)
            .await?;
            convert_all(rows)
        })
    }

    pub(crate) async fn purge_expired_bindings(&self, now: Millis) -> Result<u64> {
        with_pool!(self, pool => {
            let purged = sqlx::query("DELETE FROM bindings WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(purged)
        })
    }

    pub(crate) async fn set_device_state(&self, state: &DeviceState) -> Result<()> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO device_states (device_id, online, since) VALUES ($1, $2, $3) \
                 ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, since = excluded.since",
            )
            .bind(state.device_id)
            .bind(state.online)
            .bind(state.since)
            .execute(pool)
            .await
            .map_err(|e| WriteCtx::new("device state", &[]).parent("device", state.device_id).error(e))?;
            Ok(())
        })
    }

    pub(crate) async fn device_states(&self) -> Result<Vec<DeviceState>> {
        with_pool!(self, pool => {
            let rows: Vec<DeviceStateRow> =
                sqlx::query_as("SELECT device_id, online, since FROM device_states ORDER BY device_id")
                    .fetch_all(pool)
                    .await?;
            Ok(rows.into_iter().map(DeviceState::from).collect())
        })
    }

    pub(crate) async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>> {
        with_pool!(self, pool => {
            let rows: Vec<ChangeRow> = sqlx::query_as(
                "SELECT seq, entity, entity_id FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            // SQLite reads a negative LIMIT as "no limit", PostgreSQL rejects it: make both return nothing.
            .bind(limit.max(0))
            .fetch_all(pool)
            .await?;
            convert_all(rows)
        })
    }

    pub(crate) async fn last_change(&self) -> Result<i64> {
        with_pool!(self, pool => {
            let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM change_log")
                .fetch_one(pool)
                .await?;
            Ok(seq)
        })
    }
}
