//! Call detail records: append-only history that the daemon writes in batches (write-behind) and the API lists.
//! Not part of the change log: no node caches them.

use sqlx::error::ErrorKind;

use crate::backend::{SqlStore, WritePool, with_pool};
use crate::location::sized_chunks;
use crate::rows::{CdrRow, cdr_insert_columns, convert_all};
use crate::{CDR_LIST_MAX, Cdr, CdrFilter, NewCdr, Result, StoreError};

/// Many rows per statement. The values go through a CTE so that one `CASE WHEN EXISTS` can store the device of a
/// CDR as NULL when that device has gone (deleted while the CDR sat in the write-behind queue): the same outcome as
/// `ON DELETE SET NULL` had it been deleted a moment later, instead of a foreign-key error that would lose the
/// whole batch. Casts give PostgreSQL the parameter types a bare VALUES list cannot.
const INSERT_HEAD: &str = concat!("WITH v (", cdr_insert_columns!(), ") AS (VALUES ");
const INSERT_TAIL: &str = concat!(
    ") INSERT INTO cdrs (",
    cdr_insert_columns!(),
    ") SELECT call_id, direction, service_id, \
     CASE WHEN EXISTS (SELECT 1 FROM devices WHERE devices.id = v.device_id) THEN v.device_id END, \
     caller, callee, call_type, started_at, answered_at, ended_at, disposition, sip_status, divert_reason, \
     diverted_to, gateway, node, end_reason FROM v"
);

const LIST: &str = concat!(
    "SELECT id, ",
    cdr_insert_columns!(),
    " FROM cdrs WHERE ($1 IS NULL OR service_id = $1) AND ($2 IS NULL OR started_at >= $2) \
     AND ($3 IS NULL OR started_at < $3) ORDER BY started_at DESC, id DESC LIMIT $4"
);

impl SqlStore {
    /// All or nothing, in one transaction; up to 128 rows per statement (17 parameters a row).
    pub(crate) async fn insert_cdrs(&self, cdrs: &[NewCdr]) -> Result<()> {
        if cdrs.is_empty() {
            return Ok(());
        }
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for chunk in sized_chunks(cdrs) {
                let mut q = sqlx::QueryBuilder::new(INSERT_HEAD);
                for (i, c) in chunk.iter().enumerate() {
                    if i > 0 {
                        q.push(", ");
                    }
                    q.push("(CAST(").push_bind(c.call_id.as_str())
                        .push(" AS TEXT), CAST(").push_bind(c.direction.as_str())
                        .push(" AS TEXT), CAST(").push_bind(c.service_id)
                        .push(" AS BIGINT), CAST(").push_bind(c.device_id)
                        .push(" AS BIGINT), CAST(").push_bind(c.caller.as_str())
                        .push(" AS TEXT), CAST(").push_bind(c.callee.as_str())
                        .push(" AS TEXT), CAST(").push_bind(c.call_type.as_deref())
                        .push(" AS TEXT), CAST(").push_bind(c.started_at)
                        .push(" AS BIGINT), CAST(").push_bind(c.answered_at)
                        .push(" AS BIGINT), CAST(").push_bind(c.ended_at)
                        .push(" AS BIGINT), CAST(").push_bind(c.disposition.as_str())
                        .push(" AS TEXT), CAST(").push_bind(c.sip_status.map(i32::from))
                        .push(" AS INTEGER), CAST(").push_bind(c.divert_reason.map(|r| r.as_str()))
                        .push(" AS TEXT), CAST(").push_bind(c.diverted_to.as_deref())
                        .push(" AS TEXT), CAST(").push_bind(c.gateway.as_deref())
                        .push(" AS TEXT), CAST(").push_bind(c.node.as_str())
                        .push(" AS TEXT), CAST(").push_bind(c.end_reason.as_deref())
                        .push(" AS TEXT))");
                }
                q.push(INSERT_TAIL);
                q.build().execute(&mut *tx).await.map_err(|e| missing_service(e, cdrs))?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub(crate) async fn list_cdrs(&self, filter: &CdrFilter) -> Result<Vec<Cdr>> {
        if filter.limit <= 0 {
            return Ok(Vec::new());
        }
        with_pool!(self, pool => {
            let rows: Vec<CdrRow> = sqlx::query_as(LIST)
                .bind(filter.service_id)
                .bind(filter.since)
                .bind(filter.until)
                .bind(filter.limit.min(CDR_LIST_MAX))
                .fetch_all(pool)
                .await?;
            convert_all(rows)
        })
    }
}

/// The only foreign key an insert can violate is `service_id` (devices are checked in the statement); the batch
/// does not say which row, so the error names every service id in it.
fn missing_service(err: sqlx::Error, cdrs: &[NewCdr]) -> StoreError {
    let is_fk = err.as_database_error().is_some_and(|db| db.kind() == ErrorKind::ForeignKeyViolation);
    if !is_fk {
        return StoreError::Database(err);
    }
    let ids: std::collections::BTreeSet<i64> = cdrs.iter().filter_map(|c| c.service_id).collect();
    let key = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    StoreError::NotFound { entity: "service", key }
}
