//! Sans-IO registrar: the REGISTER rules of RFC 3261 §10.3, the location service (bindings per device) and
//! liveness (keepalive probes, expiry, online/offline state).
//!
//! The [`Registrar`] owns all bindings in memory. Callers feed it authenticated REGISTERs with
//! [`Registrar::on_register`], probe results with [`Registrar::on_probe_result`] and time with
//! [`Registrar::on_timeout`]; it answers with [`Output`]s to carry out (persist a change, send a probe, publish a
//! device state change) and tells when it next needs the clock through [`Registrar::poll_timeout`].
//!
//! Invariants:
//! - A device's bindings never exceed its `max_contacts`; in Direct Mode (`max_contacts == 1`, replace) a new
//!   contact replaces the old one.
//! - Every binding has exactly one pending expiry deadline and at most one pending probe deadline.
//! - A device is online while it has at least one binding whose probes have not failed `max_misses` times in a
//!   row; every transition is reported once as [`Output::DeviceOnline`] or [`Output::DeviceOffline`].
//! - Time is Unix milliseconds, passed in.

mod location;
mod register;

pub use location::{Binding, DeviceBindings};
pub use register::{RegisterRequest, RegisterResult};

use std::collections::{BTreeSet, HashMap};

/// Unix time in milliseconds.
pub type Millis = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Shortest registration accepted; shorter ones get 423 (RFC 3261 §10.3 step 7).
    pub min_expires: u32,
    /// Longest registration granted; longer requests are cut to this.
    pub max_expires: u32,
    /// Used when the REGISTER names no expiry.
    pub default_expires: u32,
    /// Interval between keepalive probes to each binding.
    pub keepalive_interval_ms: u64,
    /// Consecutive failed probes after which a binding counts as dead.
    pub max_misses: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            keepalive_interval_ms: 30_000,
            max_misses: 2,
        }
    }
}

/// Why a device went offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineReason {
    /// Its last binding expired or was removed by the device.
    Unregistered,
    /// Its bindings stopped answering keepalives.
    NoKeepalive,
    /// The node holding its registration stopped (its heartbeat lapsed), and no other node holds one.
    NodeStopped,
}

/// What the caller must carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Store (or replace) this binding.
    Upsert(Binding),
    /// Remove one binding of a device.
    Remove {
        device_id: i64,
        contact: String,
    },
    /// Send a keepalive to this binding and report back with [`Registrar::on_probe_result`].
    Probe(Binding),
    DeviceOnline {
        device_id: i64,
        at: Millis,
    },
    DeviceOffline {
        device_id: i64,
        at: Millis,
        reason: OfflineReason,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Expiry,
    Probe,
}

/// A pending deadline: (when, what, device, contact key). Deadlines are never searched for and removed (that would
/// cost a scan); a deadline that no longer applies is recognised and dropped when it fires.
type Deadline = (Millis, TimerKind, i64, String);

#[derive(Debug, Default)]
pub struct Registrar {
    config: Config,
    devices: HashMap<i64, DeviceBindings>,
    deadlines: BTreeSet<Deadline>,
    outputs: Vec<Output>,
}

impl Registrar {
    pub fn new(config: Config) -> Self {
        Registrar { config, ..Default::default() }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Replaces the timing configuration; applies to deadlines scheduled from now on.
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    /// The bindings of a device (empty if none).
    pub fn bindings(&self, device_id: i64) -> &[Binding] {
        self.devices.get(&device_id).map(|d| d.bindings.as_slice()).unwrap_or_default()
    }

    pub fn is_online(&self, device_id: i64) -> bool {
        self.devices.get(&device_id).is_some_and(|d| d.online)
    }

    /// Devices online now.
    pub fn online_count(&self) -> usize {
        self.devices.values().filter(|d| d.online).count()
    }

    /// Total bindings held.
    pub fn binding_count(&self) -> usize {
        self.devices.values().map(|d| d.bindings.len()).sum()
    }

    /// Restores bindings loaded from storage at start; expired ones are dropped (and reported for removal).
    /// Restored devices start online (they were when we stopped) and get a first probe soon, so a device that died
    /// while we were down is found within one keepalive interval plus misses.
    pub fn restore(&mut self, bindings: Vec<Binding>, now: Millis) {
        for b in bindings {
            if b.expires_at <= now {
                self.outputs.push(Output::Remove { device_id: b.device_id, contact: b.contact.clone() });
                continue;
            }
            let dev = self.devices.entry(b.device_id).or_default();
            if !dev.online {
                dev.online = true;
                dev.since = now;
            }
            let mut b = b;
            b.next_probe = now + self.config.keepalive_interval_ms.min(5_000);
            b.expiry_due = b.expires_at;
            self.deadlines.insert((b.expires_at, TimerKind::Expiry, b.device_id, b.key.clone()));
            self.deadlines.insert((b.next_probe, TimerKind::Probe, b.device_id, b.key.clone()));
            dev.bindings.push(b);
        }
    }

    /// Forgets a device entirely (it was deleted; storage removed its bindings with it). Reports it offline if it
    /// was online. Deadlines left behind find no binding when they fire and are dropped then.
    pub fn remove_device(&mut self, device_id: i64, now: Millis) {
        if let Some(dev) = self.devices.remove(&device_id)
            && dev.online
        {
            self.outputs.push(Output::DeviceOffline { device_id, at: now, reason: OfflineReason::Unregistered });
        }
    }

    /// Deadlines held (one expiry and one probe per binding).
    pub fn deadline_count(&self) -> usize {
        self.deadlines.len()
    }

    /// Forgets the deadlines of a binding that is going: they would otherwise stay in the set until they fire
    /// (up to an hour), one pair for each contact a device ever registered, which under a high registration rate
    /// with changing contacts (new source ports) grows by the hundred thousand.
    pub(crate) fn drop_deadlines(&mut self, device_id: i64, b: &Binding) {
        self.deadlines.remove(&(b.expiry_due, TimerKind::Expiry, device_id, b.key.clone()));
        self.deadlines.remove(&(b.next_probe, TimerKind::Probe, device_id, b.key.clone()));
    }

    /// Removes the bindings of `device_id` that `keep` refuses, reporting each removal and the device offline if
    /// none is left (a device set to TLS only loses its bindings over UDP and TCP).
    pub fn retain_bindings(&mut self, device_id: i64, now: Millis, keep: impl Fn(&Binding) -> bool) {
        let gone = self.take_bindings(device_id, |b| !keep(b));
        if gone.is_empty() {
            return;
        }
        for b in gone {
            self.outputs.push(Output::Remove { device_id, contact: b.contact });
        }
        self.update_online(device_id, now, OfflineReason::Unregistered);
    }

    /// Takes the bindings of `device_id` that `take` picks out, with their deadlines, and reports nothing.
    fn take_bindings(&mut self, device_id: i64, take: impl Fn(&Binding) -> bool) -> Vec<Binding> {
        let Some(dev) = self.devices.get_mut(&device_id) else { return Vec::new() };
        let (gone, kept): (Vec<Binding>, Vec<Binding>) =
            std::mem::take(&mut dev.bindings).into_iter().partition(|b| take(b));
        dev.bindings = kept;
        for b in &gone {
            self.drop_deadlines(device_id, b);
        }
        gone
    }

    /// Drops a binding that moved to another node (the device registered there since, with the same contact), if
    /// it is older than `newer_than`. Nothing is reported: the row is the other node's now, and so is the device's
    /// liveness. Returns whether a binding was dropped.
    pub fn forget(&mut self, device_id: i64, key: &str, newer_than: Millis) -> bool {
        let gone = self.take_bindings(device_id, |b| b.key == key && b.updated_at < newer_than);
        if self.devices.get(&device_id).is_some_and(|d| d.bindings.is_empty()) {
            self.devices.remove(&device_id);
        }
        !gone.is_empty()
    }

    /// The earliest deadline, if any: call [`Registrar::on_timeout`] then.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.deadlines.first().map(|d| d.0)
    }

    /// Drains what the caller must carry out.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() { None } else { Some(self.outputs.remove(0)) }
    }

    /// Drains every pending output at once (cheaper than repeated `poll_output`).
    pub fn drain_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    /// Fires every deadline due at `now`.
    pub fn on_timeout(&mut self, now: Millis) {
        while self.deadlines.first().is_some_and(|d| d.0 <= now) {
            let Some((due, kind, device_id, key)) = self.deadlines.pop_first() else { break };
            match kind {
                TimerKind::Expiry => self.expire(device_id, &key, due, now),
                TimerKind::Probe => self.probe(device_id, &key, due, now),
            }
        }
    }

    /// Reports the outcome of a probe sent for `Output::Probe`. `ok` is any response to OPTIONS (even an error
    /// status proves the device is there) or a healthy stream flow.
    pub fn on_probe_result(&mut self, device_id: i64, key: &str, ok: bool, now: Millis) {
        let Some(dev) = self.devices.get_mut(&device_id) else { return };
        let Some(b) = dev.bindings.iter_mut().find(|b| b.key == key) else { return };
        if ok {
            b.misses = 0;
        } else {
            b.misses = b.misses.saturating_add(1);
        }
        self.update_online(device_id, now, OfflineReason::NoKeepalive);
    }

    fn expire(&mut self, device_id: i64, key: &str, due: Millis, now: Millis) {
        let Some(dev) = self.devices.get_mut(&device_id) else { return };
        let Some(pos) = dev.bindings.iter().position(|b| b.key == key) else { return };
        if let Some(b) = dev.bindings.get_mut(pos)
            && b.expires_at > now
        {
            // Refreshed since this deadline was set: if it is the binding's own deadline, re-arm it at the new
            // expiry; otherwise it is a stale one (the binding was remade) and is dropped.
            if b.expiry_due == due {
                b.expiry_due = b.expires_at;
                self.deadlines.insert((b.expires_at, TimerKind::Expiry, device_id, key.to_owned()));
            }
            return;
        }
        let b = dev.bindings.remove(pos);
        // Its expiry deadline just fired; its probe deadline goes with it.
        self.deadlines.remove(&(b.next_probe, TimerKind::Probe, device_id, b.key.clone()));
        self.outputs.push(Output::Remove { device_id, contact: b.contact });
        self.update_online(device_id, now, OfflineReason::Unregistered);
    }

    /// A probe deadline fires only if it is still the binding's current one (a binding removed and made again
    /// has a new deadline; the old entry is stale).
    fn probe(&mut self, device_id: i64, key: &str, due: Millis, now: Millis) {
        let interval = self.config.keepalive_interval_ms;
        let Some(b) = self.devices.get_mut(&device_id).and_then(|d| d.bindings.iter_mut().find(|b| b.key == key))
        else {
            return;
        };
        if b.next_probe != due {
            return;
        }
        b.next_probe = now + interval;
        self.outputs.push(Output::Probe(b.clone()));
        self.deadlines.insert((b.next_probe, TimerKind::Probe, device_id, key.to_owned()));
    }

    /// Recomputes a device's online state and reports a transition.
    fn update_online(&mut self, device_id: i64, now: Millis, reason_if_offline: OfflineReason) {
        let max_misses = self.config.max_misses;
        let Some(dev) = self.devices.get_mut(&device_id) else { return };
        let alive = dev.bindings.iter().any(|b| b.misses < max_misses);
        if alive != dev.online {
            dev.online = alive;
            dev.since = now;
            self.outputs.push(if alive {
                Output::DeviceOnline { device_id, at: now }
            } else {
                Output::DeviceOffline { device_id, at: now, reason: reason_if_offline }
            });
        }
        if dev.bindings.is_empty() && !dev.online {
            self.devices.remove(&device_id);
        }
    }
}

#[cfg(test)]
mod tests;
