//! The in-memory device directory the registrar authenticates against, and the task that keeps it current.
//!
//! Every device is loaded at start, so authenticating a REGISTER never waits on the database. Edits made by the
//! CLI or API (on any node) reach the running daemon through the store's change log, polled every
//! `database.poll_ms`: changed devices are re-read and sent to the core task as [`DeviceUpdate`]s.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use switchboard_storage::{Device, Entity, Gateway, Number, ServiceMode, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A device with what the registrar needs from its service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedDevice {
    pub device: Device,
    pub mode: ServiceMode,
    pub customer_id: i64,
}

impl CachedDevice {
    /// Direct Mode devices hold one binding (a new one replaces it); trunks hold up to their own limit.
    pub fn max_contacts(&self) -> usize {
        match self.mode {
            ServiceMode::Direct => 1,
            ServiceMode::Trunk => usize::try_from(self.device.max_contacts.max(1)).unwrap_or(1),
        }
    }
}

impl switchboard_engine::auth::Account for CachedDevice {
    fn auth_id(&self) -> &str {
        &self.device.auth_id
    }
    fn realm(&self) -> &str {
        &self.device.credentials.realm
    }
    fn ha1(&self, alg: switchboard_sip_core::digest::Algorithm) -> &str {
        use switchboard_sip_core::digest::Algorithm;
        let c = &self.device.credentials;
        match alg {
            Algorithm::Md5 => &c.ha1_md5,
            Algorithm::Sha256 => &c.ha1_sha256,
            Algorithm::Sha512_256 => &c.ha1_sha512_256,
        }
    }
    fn digest(&self) -> switchboard_storage::DigestMode {
        self.device.digest
    }
    fn md5_from(&self) -> &[switchboard_storage::IpNet] {
        &self.device.md5_from
    }
}

/// A change for the core task: a device, number or the gateway list (re)loaded, or a removal.
#[derive(Debug)]
pub enum DeviceUpdate {
    Upsert(Box<CachedDevice>),
    Removed(i64),
    Number(Box<CachedNumber>),
    NumberRemoved(i64),
    /// The whole gateway list (stored and from the file), each with its resolved address.
    Gateways(Vec<(Gateway, Option<SocketAddr>)>),
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

/// A phone number with the customer that owns it (for caller ID checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedNumber {
    pub number: Number,
    pub customer_id: i64,
}

/// Every device in memory, found by Auth ID, id, service and trusted source address. Each lookup is a hash
/// probe: call setup never scans all devices.
#[derive(Debug, Default)]
pub struct DeviceCache {
    by_auth: HashMap<String, Arc<CachedDevice>>,
    by_id: HashMap<i64, Arc<CachedDevice>>,
    by_service: HashMap<i64, Vec<i64>>,
    by_trusted_ip: HashMap<IpAddr, i64>,
}

impl DeviceCache {
    /// Reads every device and its service's mode.
    pub async fn load(store: &dyn Store) -> Result<Self, switchboard_storage::StoreError> {
        let services: HashMap<i64, (ServiceMode, i64)> =
            store.list_services(None).await?.into_iter().map(|s| (s.id, (s.mode, s.customer_id))).collect();
        let mut cache = DeviceCache::default();
        for device in store.list_devices(None).await? {
            let (mode, customer_id) = services.get(&device.service_id).copied().unwrap_or((ServiceMode::Direct, 0));
            cache.upsert(CachedDevice { device, mode, customer_id });
        }
        Ok(cache)
    }

    pub fn get(&self, auth_id: &str) -> Option<Arc<CachedDevice>> {
        self.by_auth.get(auth_id).cloned()
    }

    pub fn by_id(&self, id: i64) -> Option<&Arc<CachedDevice>> {
        self.by_id.get(&id)
    }

    /// The ids of a service's devices.
    pub fn of_service(&self, service_id: i64) -> &[i64] {
        self.by_service.get(&service_id).map_or(&[], Vec::as_slice)
    }

    /// The device trusted at `source` (a PBX trunk by address), if any: the IP must match, and the port too
    /// when the device's trusted address names one other than 5060.
    pub fn trusted_at(&self, source: SocketAddr) -> Option<&Arc<CachedDevice>> {
        let d = self.by_id.get(self.by_trusted_ip.get(&source.ip())?)?;
        let addr = trusted_addr(&d.device)?;
        (addr.port() == 5060 || addr.port() == source.port()).then_some(d)
    }

    pub fn len(&self) -> usize {
        self.by_auth.len()
    }

    pub fn upsert(&mut self, d: CachedDevice) {
        let id = d.device.id;
        self.remove(id);
        if let Some(addr) = trusted_addr(&d.device) {
            self.by_trusted_ip.insert(addr.ip(), id);
        }
        self.by_service.entry(d.device.service_id).or_default().push(id);
        let d = Arc::new(d);
        self.by_auth.insert(d.device.auth_id.clone(), d.clone());
        self.by_id.insert(id, d);
    }

    pub fn remove(&mut self, id: i64) {
        let Some(old) = self.by_id.remove(&id) else { return };
        self.by_auth.remove(&old.device.auth_id);
        if let Some(ids) = self.by_service.get_mut(&old.device.service_id) {
            ids.retain(|&i| i != id);
        }
        if let Some(addr) = trusted_addr(&old.device)
            && self.by_trusted_ip.get(&addr.ip()) == Some(&id)
        {
            self.by_trusted_ip.remove(&addr.ip());
        }
    }
}

/// A device's trusted address, as stored (`ip:port`).
pub fn trusted_addr(d: &Device) -> Option<SocketAddr> {
    d.trusted_address.as_deref().and_then(|a| a.parse().ok())
}

/// Every phone number in memory, by E.164.
#[derive(Debug, Default)]
pub struct NumberCache {
    by_e164: HashMap<String, Arc<CachedNumber>>,
    e164_by_id: HashMap<i64, String>,
}

impl NumberCache {
    pub async fn load(store: &dyn Store) -> Result<Self, switchboard_storage::StoreError> {
        let customers: HashMap<i64, i64> =
            store.list_services(None).await?.into_iter().map(|s| (s.id, s.customer_id)).collect();
        let mut cache = NumberCache::default();
        for number in store.list_numbers(None).await? {
            let customer_id = customers.get(&number.service_id).copied().unwrap_or(0);
            cache.upsert(CachedNumber { number, customer_id });
        }
        Ok(cache)
    }

    pub fn get(&self, e164: &str) -> Option<&Arc<CachedNumber>> {
        self.by_e164.get(e164)
    }

    pub fn len(&self) -> usize {
        self.by_e164.len()
    }

    pub fn upsert(&mut self, n: CachedNumber) {
        self.remove(n.number.id);
        self.e164_by_id.insert(n.number.id, n.number.number.clone());
        self.by_e164.insert(n.number.number.clone(), Arc::new(n));
    }

    pub fn remove(&mut self, id: i64) {
        if let Some(e164) = self.e164_by_id.remove(&id) {
            self.by_e164.remove(&e164);
        }
    }
}

/// Follows the change log from `after` and sends device updates to the core until shutdown.
pub async fn follow_changes(
    store: Arc<dyn Store>,
    mut after: i64,
    every: Duration,
    file_gateways: Vec<Gateway>,
    tx: mpsc::Sender<DeviceUpdate>,
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
                            Ok(Some(n)) => DeviceUpdate::Number(Box::new(n)),
                            Ok(None) => DeviceUpdate::NumberRemoved(ch.entity_id),
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
                                if tx.send(DeviceUpdate::Gateways(resolved)).await.is_err() {
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
                        Ok(Some(d)) => DeviceUpdate::Upsert(Box::new(d)),
                        Ok(None) => DeviceUpdate::Removed(id),
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
    let (mode, customer_id) =
        store.service(device.service_id).await?.map_or((ServiceMode::Direct, 0), |s| (s.mode, s.customer_id));
    Ok(Some(CachedDevice { device, mode, customer_id }))
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
