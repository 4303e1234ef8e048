//! Loading the device and number directory at start, resolving gateway names, and the task that keeps the
//! engine's directory current.
//!
//! Every device is loaded at start, so authenticating a REGISTER never waits on the database. Edits made by the
//! CLI or API (on any node) reach the running daemon through the store's change log, polled every
//! `database.poll_ms`: changed devices are re-read and sent to the engine as [`Change`]s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard_storage::{Entity, Gateway, ServiceMode, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use switchboard_engine::directory::{CachedDevice, CachedNumber, Change, DeviceCache, NumberCache};

/// Reads every device and what it takes from its service (mode, customer, TLS only).
pub async fn load_devices(store: &dyn Store) -> Result<DeviceCache, switchboard_storage::StoreError> {
    let services: HashMap<i64, (ServiceMode, i64, bool)> =
        store.list_services(None).await?.into_iter().map(|s| (s.id, (s.mode, s.customer_id, s.require_tls))).collect();
    let mut cache = DeviceCache::default();
    for device in store.list_devices(None).await? {
        let (mode, customer_id, service_tls) =
            services.get(&device.service_id).copied().unwrap_or((ServiceMode::Direct, 0, false));
        cache.upsert(CachedDevice { device, mode, customer_id, service_tls });
    }
    Ok(cache)
}

/// Resolves each gateway's address (`IP:PORT`, or `HOST[:PORT]`, port 5060 if not given) without blocking: host
/// names are looked up here, in the change follower or at start, never in the SIP task. A name that does not
/// resolve within 2 s gets `None` (the gateway is skipped, with a warning, until the list is loaded again).
pub async fn resolve_gateways(list: Vec<Gateway>) -> Vec<(Gateway, Option<SocketAddr>)> {
    let mut out = Vec::with_capacity(list.len());
    for gw in list {
        let addr = match gw.address.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                let with_port =
                    if gw.address.contains(':') { gw.address.clone() } else { format!("{}:5060", gw.address) };
                let lookup = tokio::net::lookup_host(with_port);
                match tokio::time::timeout(Duration::from_secs(2), lookup).await {
                    Ok(Ok(mut addrs)) => addrs.next(),
                    _ => None,
                }
            }
        };
        out.push((gw, addr));
    }
    out
}

/// Reads every number and the customer that owns it.
pub async fn load_numbers(store: &dyn Store) -> Result<NumberCache, switchboard_storage::StoreError> {
    let customers: HashMap<i64, i64> =
        store.list_services(None).await?.into_iter().map(|s| (s.id, s.customer_id)).collect();
    let mut cache = NumberCache::default();
    for number in store.list_numbers(None).await? {
        let customer_id = customers.get(&number.service_id).copied().unwrap_or(0);
        cache.upsert(CachedNumber { number, customer_id });
    }
    Ok(cache)
}

/// Follows the change log from `after` and sends the changes to the engine until shutdown.
pub async fn follow_changes(
    store: Arc<dyn Store>,
    mut after: i64,
    every: Duration,
    file_gateways: Vec<Gateway>,
    tx: mpsc::Sender<Change>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        loop {
            let changes = match store.changes_since(after, 500).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the change log failed; will retry");
                    break;
                }
            };
            let Some(last) = changes.last() else { break };
            let last_seq = last.seq;
            for ch in &changes {
                let ids: Vec<i64> = match ch.entity {
                    Entity::Number => {
                        let update = match load_number(store.as_ref(), ch.entity_id).await {
                            Ok(Some(n)) => Change::Number(Box::new(n)),
                            Ok(None) => Change::NumberRemoved(ch.entity_id),
                            Err(e) => {
                                tracing::warn!(error = %e, number = ch.entity_id, "reloading a number failed");
                                continue;
                            }
                        };
                        if tx.send(update).await.is_err() {
                            return;
                        }
                        Vec::new()
                    }
                    Entity::Gateway => {
                        match store.list_gateways().await {
                            Ok(mut list) => {
                                list.extend(file_gateways.iter().cloned());
                                let resolved = resolve_gateways(list).await;
                                if tx.send(Change::Gateways(resolved)).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "reloading gateways failed"),
                        }
                        Vec::new()
                    }
                    Entity::Device => vec![ch.entity_id],
                    // A service change (mode) affects all of its devices.
                    Entity::Service => match store.list_devices(Some(ch.entity_id)).await {
                        Ok(list) => list.into_iter().map(|d| d.id).collect(),
                        Err(_) => Vec::new(),
                    },
                    Entity::Customer => Vec::new(),
                };
                for id in ids {
                    let update = match load_one(store.as_ref(), id).await {
                        Ok(Some(d)) => Change::Upsert(Box::new(d)),
                        Ok(None) => Change::Removed(id),
                        Err(e) => {
                            tracing::warn!(error = %e, device = id, "reloading a device failed");
                            continue;
                        }
                    };
                    if tx.send(update).await.is_err() {
                        return;
                    }
                }
            }
            after = last_seq;
            if changes.len() < 500 {
                break;
            }
        }
    }
}

async fn load_one(store: &dyn Store, id: i64) -> Result<Option<CachedDevice>, switchboard_storage::StoreError> {
    let Some(device) = store.device(id).await? else { return Ok(None) };
    let (mode, customer_id, service_tls) = store
        .service(device.service_id)
        .await?
        .map_or((ServiceMode::Direct, 0, false), |s| (s.mode, s.customer_id, s.require_tls));
    Ok(Some(CachedDevice { device, mode, customer_id, service_tls }))
}

async fn load_number(store: &dyn Store, id: i64) -> Result<Option<CachedNumber>, switchboard_storage::StoreError> {
    let Some(number) = store.number(id).await? else { return Ok(None) };
    let customer_id = store.service(number.service_id).await?.map_or(0, |s| s.customer_id);
    Ok(Some(CachedNumber { number, customer_id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(address: &str) -> Gateway {
        Gateway {
            id: 1,
            name: "carrier".into(),
            address: address.into(),
            transport: "udp".into(),
            priority: 1,
            enabled: true,
            created_at: 0,
        }
    }

    #[tokio::test]
    async fn gateway_names_resolve_off_the_sip_task_and_bad_ones_are_skipped() {
        let list = vec![gateway("192.0.2.7:5070"), gateway("localhost:5071"), gateway("no-such-host.invalid")];
        let resolved = resolve_gateways(list).await;
        let addrs: Vec<Option<SocketAddr>> = resolved.into_iter().map(|(_, a)| a).collect();
        assert_eq!(addrs[0], Some("192.0.2.7:5070".parse().unwrap()));
        assert!(addrs[1].is_some_and(|a| a.ip().is_loopback() && a.port() == 5071), "{addrs:?}");
        assert_eq!(addrs[2], None);
    }
}
