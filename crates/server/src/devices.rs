//! The in-memory device directory the registrar authenticates against, and the task that keeps it current.
//!
//! Every device is loaded at start, so authenticating a REGISTER never waits on the database. Edits made by the
//! CLI or API (on any node) reach the running daemon through the store's change log, polled every
//! `database.poll_ms`: changed devices are re-read and sent to the core task as [`DeviceUpdate`]s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_storage::{Device, Entity, ServiceMode, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A device with what the registrar needs from its service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedDevice {
    pub device: Device,
    pub mode: ServiceMode,
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

/// A change for the core task: a device (re)loaded, or removed.
#[derive(Debug)]
pub enum DeviceUpdate {
    Upsert(Box<CachedDevice>),
    Removed(i64),
}

#[derive(Debug, Default)]
pub struct DeviceCache {
    by_auth: HashMap<String, Arc<CachedDevice>>,
    auth_by_id: HashMap<i64, String>,
}

impl DeviceCache {
    /// Reads every device and its service's mode.
    pub async fn load(store: &dyn Store) -> Result<Self, switchboard_storage::StoreError> {
        let modes: HashMap<i64, ServiceMode> =
            store.list_services(None).await?.into_iter().map(|s| (s.id, s.mode)).collect();
        let mut cache = DeviceCache::default();
        for device in store.list_devices(None).await? {
            let mode = modes.get(&device.service_id).copied().unwrap_or(ServiceMode::Direct);
            cache.upsert(CachedDevice { device, mode });
        }
        Ok(cache)
    }

    pub fn get(&self, auth_id: &str) -> Option<Arc<CachedDevice>> {
        self.by_auth.get(auth_id).cloned()
    }

    pub fn len(&self) -> usize {
        self.by_auth.len()
    }

    pub fn upsert(&mut self, d: CachedDevice) {
        let id = d.device.id;
        if let Some(old_auth) = self.auth_by_id.get(&id)
            && *old_auth != d.device.auth_id
        {
            self.by_auth.remove(old_auth);
        }
        self.auth_by_id.insert(id, d.device.auth_id.clone());
        self.by_auth.insert(d.device.auth_id.clone(), Arc::new(d));
    }

    pub fn remove(&mut self, id: i64) {
        if let Some(auth) = self.auth_by_id.remove(&id) {
            self.by_auth.remove(&auth);
        }
    }
}

/// Follows the change log from `after` and sends device updates to the core until shutdown.
pub async fn follow_changes(
    store: Arc<dyn Store>,
    mut after: i64,
    every: Duration,
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
                    Entity::Device => vec![ch.entity_id],
                    // A service change (mode) affects all of its devices.
                    Entity::Service => match store.list_devices(Some(ch.entity_id)).await {
                        Ok(list) => list.into_iter().map(|d| d.id).collect(),
                        Err(_) => Vec::new(),
                    },
                    Entity::Customer | Entity::Number | Entity::Gateway => Vec::new(),
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
    let mode = store.service(device.service_id).await?.map_or(ServiceMode::Direct, |s| s.mode);
    Ok(Some(CachedDevice { device, mode }))
}
