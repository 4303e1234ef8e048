//! Bindings, device liveness and the change log: state the daemon writes (bindings via its write-behind task)
//! and reads back at start-up or when polling for directory changes.

use crate::backend::{SqlStore, WritePool, with_pool};
use crate::errors::WriteCtx;
use crate::rows::{BindingRow, ChangeRow, DeviceAuthRow, DeviceStateRow, binding_columns, convert_all, encode_list};
use crate::{Binding, BindingOp, Change, DeviceAuth, DeviceState, Millis, Result};

/// Insert-or-replace keyed by (device_id, contact), many rows per statement: the values go through a CTE so that
/// one `WHERE EXISTS` can skip bindings of devices that no longer exist (see [`SqlStore::apply_bindings`]); SQLite
/// also needs that `WHERE` to parse `INSERT ... SELECT ... ON CONFLICT`. Casts give PostgreSQL the parameter types
/// a bare VALUES list cannot.
const UPSERT_HEAD: &str = concat!("WITH v (", binding_columns!(), ") AS (VALUES ");
const UPSERT_TAIL: &str = concat!(
    ") INSERT INTO bindings (",
    binding_columns!(),
    ") SELECT ",
    binding_columns!(),
    " FROM v WHERE EXISTS (SELECT 1 FROM devices WHERE devices.id = v.device_id) \
     ON CONFLICT (device_id, contact) DO UPDATE SET \
     aor = excluded.aor, q = excluded.q, expires_at = excluded.expires_at, call_id = excluded.call_id, \
     cseq = excluded.cseq, source = excluded.source, transport = excluded.transport, local = excluded.local, \
     path = excluded.path, instance_id = excluded.instance_id, reg_id = excluded.reg_id, \
     user_agent = excluded.user_agent, node = excluded.node, updated_at = excluded.updated_at"
);
/// Rows per statement, largest first: a run is cut greedily into these sizes, so only four distinct statements
/// exist and each connection keeps them prepared (parsing a 128-row statement costs more than running it).
/// 16 parameters a row stays far below both databases' parameter limits.
const UPSERT_SIZES: [usize; 4] = [128, 16, 4, 1];

/// Cuts `list` into chunks of the sizes in [`UPSERT_SIZES`] (CDR inserts use the same sizes).
pub(crate) fn sized_chunks<T>(mut list: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let size = UPSERT_SIZES.iter().copied().find(|&n| n <= list.len())?;
        let (chunk, rest) = list.split_at(size);
        list = rest;
        Some(chunk)
    })
}

/// Splits `ops` into runs: a run of upserts (deduplicated by key, last one wins: one statement may not touch a
/// row twice) or a single removal. Applying the runs in order equals applying the ops in order.
enum Run<'a> {
    Upserts(Vec<&'a Binding>),
    Other(&'a BindingOp),
}

fn runs(ops: &[BindingOp]) -> Vec<Run<'_>> {
    let mut out = Vec::new();
    let mut current: Vec<&Binding> = Vec::new();
    let mut index: std::collections::HashMap<(i64, &str), usize> = std::collections::HashMap::new();
    for op in ops {
        match op {
            BindingOp::Upsert(b) => match index.get(&(b.device_id, b.contact.as_str())) {
                Some(&i) => {
                    if let Some(slot) = current.get_mut(i) {
                        *slot = b;
                    }
                }
                None => {
                    index.insert((b.device_id, b.contact.as_str()), current.len());
                    current.push(b);
                }
            },
            other => {
                if !current.is_empty() {
                    out.push(Run::Upserts(std::mem::take(&mut current)));
                    index.clear();
                }
                out.push(Run::Other(other));
            }
        }
    }
    if !current.is_empty() {
        out.push(Run::Upserts(current));
    }
    out
}

impl SqlStore {
    /// Applies `ops` in order in one transaction, upserts many rows per statement.
    ///
    /// An upsert for a device that has been deleted is skipped rather than failing: a device deleted while its
    /// REGISTER sat in the daemon's write-behind queue has nothing left to bind, and an error would roll back
    /// every other device's bindings in the batch.
    pub(crate) async fn apply_bindings(&self, ops: &[BindingOp]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let runs = runs(ops);
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for run in &runs {
                match run {
                    Run::Upserts(list) => {
                        for chunk in sized_chunks(list) {
                            let mut q = sqlx::QueryBuilder::new(UPSERT_HEAD);
                            let mut first = true;
                            for b in chunk {
                                if !first {
                                    q.push(", ");
                                }
                                first = false;
                                q.push("(CAST(").push_bind(b.device_id)
                                    .push(" AS BIGINT), CAST(").push_bind(b.aor.as_str())
                                    .push(" AS TEXT), CAST(").push_bind(b.contact.as_str())
                                    .push(" AS TEXT), CAST(").push_bind(b.q)
                                    .push(" AS BIGINT), CAST(").push_bind(b.expires_at)
                                    .push(" AS BIGINT), CAST(").push_bind(b.call_id.as_str())
                                    .push(" AS TEXT), CAST(").push_bind(b.cseq)
                                    .push(" AS BIGINT), CAST(").push_bind(b.source.as_str())
                                    .push(" AS TEXT), CAST(").push_bind(b.transport.as_str())
                                    .push(" AS TEXT), CAST(").push_bind(b.local.as_str())
                                    .push(" AS TEXT), CAST(").push_bind(encode_list(&b.path))
                                    .push(" AS TEXT), CAST(").push_bind(b.instance_id.as_deref())
                                    .push(" AS TEXT), CAST(").push_bind(b.reg_id)
                                    .push(" AS BIGINT), CAST(").push_bind(b.user_agent.as_deref())
                                    .push(" AS TEXT), CAST(").push_bind(b.node.as_str())
                                    .push(" AS TEXT), CAST(").push_bind(b.updated_at)
                                    .push(" AS BIGINT))");
                            }
                            q.push(UPSERT_TAIL);
                            q.build()
                                .execute(&mut *tx)
                                .await
                                // Only reachable if a device is deleted concurrently (PostgreSQL).
                                .map_err(|e| WriteCtx::new("binding", &[]).error(e))?;
                        }
                    }
                    Run::Other(BindingOp::Remove { device_id, contact, node }) => {
                        sqlx::query("DELETE FROM bindings WHERE device_id = $1 AND contact = $2 AND node = $3")
                            .bind(device_id)
                            .bind(contact)
                            .bind(node)
                            .execute(&mut *tx)
                            .await?;
                    }
                    Run::Other(BindingOp::RemoveAll { device_id }) => {
                        sqlx::query("DELETE FROM bindings WHERE device_id = $1")
                            .bind(device_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    Run::Other(BindingOp::Upsert(_)) => {}
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

    pub(crate) async fn bindings_for_service(&self, service_id: i64) -> Result<Vec<Binding>> {
        with_pool!(self, pool => {
            let rows: Vec<BindingRow> = sqlx::query_as(concat!(
                "SELECT ", binding_columns!(), " FROM bindings \
                 WHERE device_id IN (SELECT id FROM devices WHERE service_id = $1) ORDER BY device_id, contact"
            ))
            .bind(service_id)
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

    /// Upserts each device's last authentication, in one transaction; rows of devices deleted meanwhile are
    /// skipped (the write-behind may carry them after a delete).
    pub(crate) async fn set_device_auths(&self, auths: &[DeviceAuth]) -> Result<()> {
        if auths.is_empty() {
            return Ok(());
        }
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for a in auths {
                sqlx::query(
                    "INSERT INTO device_auth (device_id, algorithm, user_agent, source, since) \
                     SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM devices WHERE id = $1) \
                     ON CONFLICT (device_id) DO UPDATE SET algorithm = excluded.algorithm, \
                     user_agent = excluded.user_agent, source = excluded.source, since = excluded.since",
                )
                .bind(a.device_id)
                .bind(&a.algorithm)
                .bind(&a.user_agent)
                .bind(&a.source)
                .bind(a.since)
                .execute(&mut *tx)
                .await
                .map_err(|e| WriteCtx::new("device auth", &[]).parent("device", a.device_id).error(e))?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub(crate) async fn device_auths(&self) -> Result<Vec<DeviceAuth>> {
        with_pool!(self, pool => {
            let rows: Vec<DeviceAuthRow> = sqlx::query_as(
                "SELECT device_id, algorithm, user_agent, source, since FROM device_auth ORDER BY device_id",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(DeviceAuth::from).collect())
        })
    }

    pub(crate) async fn device_auth(&self, device_id: i64) -> Result<Option<DeviceAuth>> {
        with_pool!(self, pool => {
            let row: Option<DeviceAuthRow> = sqlx::query_as(
                "SELECT device_id, algorithm, user_agent, source, since FROM device_auth WHERE device_id = $1",
            )
            .bind(device_id)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(DeviceAuth::from))
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

    pub(crate) async fn device_states_of(
        &self,
        service_id: Option<i64>,
        device_id: Option<i64>,
    ) -> Result<Vec<DeviceState>> {
        with_pool!(self, pool => {
            let rows: Vec<DeviceStateRow> = sqlx::query_as(
                "SELECT s.device_id, s.online, s.since FROM device_states s JOIN devices d ON d.id = s.device_id \
                 WHERE ($1 IS NULL OR d.service_id = $1) AND ($2 IS NULL OR s.device_id = $2) ORDER BY s.device_id",
            )
            .bind(service_id)
            .bind(device_id)
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

#[cfg(test)]
mod tests {
    #[test]
    fn chunks_use_the_fixed_sizes_and_cover_everything() {
        let list: Vec<u32> = (0..300).collect();
        let sizes: Vec<usize> = super::sized_chunks(&list).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![128, 128, 16, 16, 4, 4, 4]);
        let list: Vec<u32> = (0..7).collect();
        let sizes: Vec<usize> = super::sized_chunks(&list).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![4, 1, 1, 1]);
        assert_eq!(super::sized_chunks::<u32>(&[]).count(), 0);
    }
}
