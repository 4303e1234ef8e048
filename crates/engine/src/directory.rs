//! The device and number directory in memory: what authentication, admission and routing look up. Every device and
//! number is held, found by a hash probe (Auth ID, id, service, trusted source address, E.164), so call setup
//! never scans all devices and never waits on the database. The server loads it at start and keeps it current
//! from the store's change log ([`Change`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use switchboard_model::records::{Device, Gateway, Number, ServiceMode};

/// A device with what the registrar needs from its service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedDevice {
    pub device: Device,
    pub mode: ServiceMode,
    pub customer_id: i64,
    /// Its service requires TLS of every device.
    pub service_tls: bool,
}

impl CachedDevice {
    /// Accepted and reached over TLS (or secure WebSocket) only: set on the device or on its service.
    pub fn requires_tls(&self) -> bool {
        self.device.require_tls || self.service_tls
    }

    /// Direct Mode devices hold one binding (a new one replaces it); trunks hold up to their own limit.
    pub fn max_contacts(&self) -> usize {
        match self.mode {
            ServiceMode::Direct => 1,
            ServiceMode::Trunk => usize::try_from(self.device.max_contacts.max(1)).unwrap_or(1),
        }
    }
}

impl crate::auth::Account for CachedDevice {
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
    fn digest(&self) -> switchboard_model::DigestMode {
        self.device.digest
    }
    fn md5_from(&self) -> &[switchboard_model::IpNet] {
        &self.device.md5_from
    }
}

/// A change to the directory: a device, number or the gateway list (re)loaded, or a removal.
#[derive(Debug)]
pub enum Change {
    Upsert(Box<CachedDevice>),
    Removed(i64),
    Number(Box<CachedNumber>),
    NumberRemoved(i64),
    /// The whole gateway list (stored and from the file), each with its resolved address.
    Gateways(Vec<(Gateway, Option<SocketAddr>)>),
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

    /// The devices a number rings: the one it is pinned to, or every device of its service.
    pub fn ringing(&self, n: &Number) -> Vec<i64> {
        match n.device_id {
            Some(id) => vec![id],
            None => self.of_service(n.service_id).to_vec(),
        }
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

    pub fn is_empty(&self) -> bool {
        self.by_auth.is_empty()
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
    /// Each service's numbers (E.164), in no particular order.
    by_service: HashMap<i64, Vec<String>>,
}

impl NumberCache {
    pub fn get(&self, e164: &str) -> Option<&Arc<CachedNumber>> {
        self.by_e164.get(e164)
    }

    pub fn len(&self) -> usize {
        self.by_e164.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_e164.is_empty()
    }

    pub fn by_id(&self, id: i64) -> Option<&Arc<CachedNumber>> {
        self.e164_by_id.get(&id).and_then(|e| self.by_e164.get(e))
    }

    /// The numbers of a service.
    pub fn of_service(&self, service_id: i64) -> impl Iterator<Item = &Arc<CachedNumber>> + '_ {
        self.by_service.get(&service_id).into_iter().flatten().filter_map(|e| self.by_e164.get(e))
    }

    /// The numbers that ring a device (of its service, pinned to it or to no device): the mailboxes it opens
    /// with 777, whose lamp it shows and whose outages it makes.
    pub fn ringing(&self, d: &Device) -> impl Iterator<Item = &Arc<CachedNumber>> + '_ {
        let device_id = d.id;
        self.of_service(d.service_id).filter(move |n| n.number.device_id.is_none_or(|owner| owner == device_id))
    }

    pub fn upsert(&mut self, n: CachedNumber) {
        self.remove(n.number.id);
        self.e164_by_id.insert(n.number.id, n.number.number.clone());
        self.by_service.entry(n.number.service_id).or_default().push(n.number.number.clone());
        self.by_e164.insert(n.number.number.clone(), Arc::new(n));
    }

    pub fn remove(&mut self, id: i64) {
        if let Some(e164) = self.e164_by_id.remove(&id)
            && let Some(old) = self.by_e164.remove(&e164)
            && let Some(list) = self.by_service.get_mut(&old.number.service_id)
        {
            list.retain(|e| *e != e164);
            if list.is_empty() {
                self.by_service.remove(&old.number.service_id);
            }
        }
    }
}
