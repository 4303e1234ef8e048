//! Reads the cluster for the engine: every `database.poll_ms`, the other nodes that are up (a heartbeat within
//! three intervals) with their cluster addresses, and the bindings other nodes wrote since the last read. Every
//! [`FULL_EVERY`] the whole set is read again, which drops bindings removed elsewhere (a removal leaves no row
//! to read). Runs only when `cluster.secret` is set.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_engine::cluster::ClusterView;
use switchboard_storage::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// How often every binding held elsewhere is read again.
const FULL_EVERY: Duration = Duration::from_secs(30);
/// How far back each read reaches before the previous one: rows are written behind (batched) and clocks of
/// nodes differ, so a row may land with an `updated_at` a little before the last read.
const OVERLAP_MS: i64 = 5_000;

pub(crate) fn follow(
    store: Arc<dyn Store>,
    config: &Config,
    views: mpsc::Sender<ClusterView>,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = ()> + use<> {
    let me = config.node.name.clone();
    let stale_ms = i64::try_from(config.node.heartbeat_secs.saturating_mul(3000)).unwrap_or(i64::MAX);
    let every = Duration::from_millis(config.database.poll_ms.max(10));
    async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_full: Option<Instant> = None;
        let mut last_read: i64 = 0;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = switchboard_model::date::now_ms();
            let full = last_full.is_none_or(|t| t.elapsed() >= FULL_EVERY);
            let since = if full { 0 } else { last_read.saturating_sub(OVERLAP_MS) };
            let read = async {
                let nodes = store.live_nodes(now.saturating_sub(stale_ms)).await?;
                let bindings = store.bindings_elsewhere(&me, since, now).await?;
                Ok::<_, switchboard_storage::StoreError>((nodes, bindings))
            };
            let (nodes, bindings) = match read.await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the cluster's nodes and bindings");
                    continue;
                }
            };
            let nodes = nodes
                .into_iter()
                .filter(|n| n.name != me)
                .filter_map(|n| n.cluster_address.parse().ok().map(|a| (n.name, a)))
                .collect();
            if full {
                last_full = Some(Instant::now());
            }
            last_read = now;
            if views.send(ClusterView { nodes, bindings, full }).await.is_err() {
                return;
            }
        }
    }
}
