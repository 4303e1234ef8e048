//! Calls in progress: rows the daemon writes in batches (write-behind) as calls ring, answer and end, and the CLI
//! and API list. Transient: not part of the change log, no foreign keys, and each node clears its own rows when
//! it starts (a crashed node's calls are gone with it).

use std::collections::HashMap;

use crate::backend::{SqlStore, WritePool, with_pool};
use crate::location::sized_chunks;
use crate::rows::{ActiveCallRow, active_call_columns, convert_all};
use crate::{ActiveCall, ActiveCallOp, Result};

const UPSERT_HEAD: &str = concat!("INSERT INTO active_calls (", active_call_columns!(), ") ");
const UPSERT_TAIL: &str = " ON CONFLICT (call_id) DO UPDATE SET \
     node = excluded.node, direction = excluded.direction, service_id = excluded.service_id, \
     device_id = excluded.device_id, caller = excluded.caller, callee = excluded.callee, state = excluded.state, \
     started_at = excluded.started_at, answered_at = excluded.answered_at";

/// The last operation on each call, in first-seen order, split into upserts and removals.
///
/// An upsert replaces every column and a removal deletes the row, so a call's final row depends only on the last
/// operation on it, and operations on different calls commute: applying these two sets equals applying `ops` in
/// order. It also keeps one statement from touching a row twice, which `ON CONFLICT` forbids.
fn last_per_call(ops: &[ActiveCallOp]) -> (Vec<&ActiveCall>, Vec<&str>) {
    let mut last: Vec<&ActiveCallOp> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for op in ops {
        let call_id = match op {
            ActiveCallOp::Upsert(call) => call.call_id.as_str(),
            ActiveCallOp::Remove { call_id } => call_id.as_str(),
        };
        match index.get(call_id) {
            Some(&i) => {
                if let Some(slot) = last.get_mut(i) {
                    *slot = op;
                }
            }
            None => {
                index.insert(call_id, last.len());
                last.push(op);
            }
        }
    }
    let mut upserts = Vec::new();
    let mut removals = Vec::new();
    for op in last {
        match op {
            ActiveCallOp::Upsert(call) => upserts.push(call),
            ActiveCallOp::Remove { call_id } => removals.push(call_id.as_str()),
        }
    }
    (upserts, removals)
}

impl SqlStore {
    /// Applies `ops` as if in order, in one transaction, many rows per statement (see [`last_per_call`]).
    pub(crate) async fn apply_active_calls(&self, ops: &[ActiveCallOp]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let (upserts, removals) = last_per_call(ops);
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for chunk in sized_chunks(&upserts) {
                let mut q = sqlx::QueryBuilder::new(UPSERT_HEAD);
                q.push_values(chunk, |mut row, c| {
                    row.push_bind(c.call_id.as_str())
                        .push_bind(c.node.as_str())
                        .push_bind(c.direction.as_str())
                        .push_bind(c.service_id)
                        .push_bind(c.device_id)
                        .push_bind(c.caller.as_str())
                        .push_bind(c.callee.as_str())
                        .push_bind(c.state.as_str())
                        .push_bind(c.started_at)
                        .push_bind(c.answered_at);
                });
                q.push(UPSERT_TAIL);
                q.build().execute(&mut *tx).await?;
            }
            for chunk in sized_chunks(&removals) {
                let mut q = sqlx::QueryBuilder::new("DELETE FROM active_calls WHERE call_id IN (");
                let mut ids = q.separated(", ");
                for call_id in chunk {
                    ids.push_bind(*call_id);
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub(crate) async fn list_active_calls(&self) -> Result<Vec<ActiveCall>> {
        with_pool!(self, pool => {
            let rows: Vec<ActiveCallRow> = sqlx::query_as(concat!(
                "SELECT ", active_call_columns!(), " FROM active_calls ORDER BY started_at, call_id"
            ))
            .fetch_all(pool)
            .await?;
            convert_all(rows)
        })
    }

    pub(crate) async fn clear_active_calls(&self, node: &str) -> Result<u64> {
        with_pool!(self, pool => {
            let cleared = sqlx::query("DELETE FROM active_calls WHERE node = $1")
                .bind(node)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(cleared)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::last_per_call;
    use crate::{ActiveCall, ActiveCallOp, CdrDirection};

    fn call(call_id: &str, state: &str) -> ActiveCall {
        ActiveCall {
            call_id: call_id.to_owned(),
            node: "node-a".to_owned(),
            direction: CdrDirection::Inbound,
            service_id: None,
            device_id: None,
            caller: "+61298765432".to_owned(),
            callee: "+61298765433".to_owned(),
            state: state.to_owned(),
            started_at: 1,
            answered_at: None,
        }
    }

    #[test]
    fn the_last_operation_on_each_call_wins() {
        let remove = |id: &str| ActiveCallOp::Remove { call_id: id.to_owned() };
        let ops = [
            ActiveCallOp::Upsert(call("a", "ringing")),
            ActiveCallOp::Upsert(call("b", "ringing")),
            remove("c"),
            ActiveCallOp::Upsert(call("a", "answered")),
            remove("b"),
            ActiveCallOp::Upsert(call("c", "ringing")),
        ];
        let (upserts, removals) = last_per_call(&ops);
        let upserts: Vec<_> = upserts.iter().map(|c| (c.call_id.as_str(), c.state.as_str())).collect();
        assert_eq!(upserts, [("a", "answered"), ("c", "ringing")]);
        assert_eq!(removals, ["b"]);
    }
}
