//! Calls across nodes. Every node of a cluster shares one database, but a device's flow (its NAT binding, its TCP
//! connection) ends at the node it registered with, so only that node can reach it. A call that lands elsewhere
//! (a carrier's INVITE, an on-net call, a divert) is relayed to that node, which rings the device over its own
//! flow.
//!
//! - **Where devices are:** the server reads the bindings other nodes hold (changed since its last look) and the
//!   nodes that are up, and hands them here as a [`ClusterView`]. A node whose heartbeat has lapsed is not in
//!   the view: its bindings are stale, and calls are no longer relayed to it.
//! - **Trust:** a relayed INVITE carries [`RELAY_HEADER`]: the device, the dialled number, the sending node and
//!   the time, signed with HMAC-SHA256 under `cluster.secret`. It is taken only from a live node's cluster
//!   address, signed by that node, and at most [`FRESH_MS`] old; anything else gets 403.
//! - **No loops:** a relayed call rings only the bindings the receiving node holds itself; it is never relayed
//!   again. Max-Forwards still falls by one on each leg.
//! - **Records once:** the node the call landed on writes its CDR and active-call row; the relaying leg writes
//!   neither.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use switchboard_model::records::Located;

/// The header that marks a relayed INVITE and carries its signature.
pub const RELAY_HEADER: &str = "X-Switchboard-Relay";
/// How old a relayed INVITE's signature may be (clocks of the nodes included), milliseconds.
pub const FRESH_MS: u64 = 30_000;

/// What the server read of the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    /// The other nodes that are up, each with the address it takes relayed calls on.
    pub nodes: Vec<(String, SocketAddr)>,
    /// Bindings other nodes hold: those changed since the last view, or all of them when `full`.
    pub bindings: Vec<Located>,
    pub full: bool,
}

/// A binding another node holds.
#[derive(Debug, Clone)]
struct Remote {
    key: String,
    node: Arc<str>,
    expires_at: u64,
}

/// What a new view changed.
#[derive(Debug, Default)]
pub(crate) struct Updated {
    /// Every binding the view names, as `(device, key, updated_at)`: local copies of moved ones are dropped.
    pub seen: Vec<(i64, String, u64)>,
    /// Nodes up in the last view and not in this one.
    pub stopped: Vec<Arc<str>>,
}

/// A relayed INVITE that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relayed {
    pub device_id: i64,
    pub number: String,
    pub node: String,
}

/// The cluster as this node sees it.
pub(crate) struct Cluster {
    mac: Option<Hmac<Sha256>>,
    node: String,
    nodes: HashMap<Arc<str>, SocketAddr>,
    peers: HashMap<SocketAddr, Arc<str>>,
    located: HashMap<i64, Vec<Remote>>,
    /// Devices this node reported offline because their node stopped; watched until bound again somewhere.
    marked: HashSet<i64>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("nodes", &self.nodes).field("devices", &self.located.len()).finish()
    }
}

/// The binding's comparison key, as the registrar keys it.
pub(crate) fn key_of(contact: &str) -> String {
    switchboard_sip_core::uri::Uri::parse(contact).map(|u| u.comparison_key()).unwrap_or_else(|_| contact.to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

impl Cluster {
    /// `secret` empty: relaying is off.
    pub(crate) fn new(secret: &str, node: &str) -> Cluster {
        let mac = (!secret.is_empty()).then(|| Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()).flatten();
        Cluster {
            mac,
            node: node.to_owned(),
            nodes: HashMap::new(),
            peers: HashMap::new(),
            located: HashMap::new(),
            marked: HashSet::new(),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.mac.is_some()
    }

    /// Other nodes that are up.
    pub(crate) fn live_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Devices with a binding on another node.
    pub(crate) fn remote_devices(&self) -> usize {
        self.located.len()
    }

    /// Takes in a view.
    pub(crate) fn update(&mut self, view: ClusterView, now: u64) -> Updated {
        let before: Vec<Arc<str>> = self.nodes.keys().cloned().collect();
        self.nodes.clear();
        self.peers.clear();
        for (name, addr) in view.nodes {
            let name: Arc<str> = name.into();
            self.peers.insert(addr, name.clone());
            self.nodes.insert(name, addr);
        }
        if view.full {
            self.located.clear();
        }
        let mut seen = Vec::with_capacity(view.bindings.len());
        for b in view.bindings {
            let key = key_of(&b.contact);
            let updated_at = u64::try_from(b.updated_at).unwrap_or(0);
            seen.push((b.device_id, key.clone(), updated_at));
            let list = self.located.entry(b.device_id).or_default();
            list.retain(|r| r.key != key);
            let node =
                self.nodes.get_key_value(b.node.as_str()).map_or_else(|| b.node.as_str().into(), |(n, _)| n.clone());
            list.push(Remote { key, node, expires_at: u64::try_from(b.expires_at).unwrap_or(0) });
        }
        self.located.retain(|_, list| {
            list.retain(|r| r.expires_at > now);
            !list.is_empty()
        });
        let stopped = before.into_iter().filter(|n| !self.nodes.contains_key(n)).collect();
        Updated { seen, stopped }
    }

    /// Whether this node speaks for the cluster: its name is the first among the live nodes. One node writes
    /// what any could (the state of a stopped node's devices), so alerts go out once.
    pub(crate) fn leads(&self) -> bool {
        self.nodes.keys().all(|n| self.node.as_str() < &**n)
    }

    /// Whether `device_id` has an unexpired binding on a live node (as of the last view).
    pub(crate) fn bound_live(&self, device_id: i64) -> bool {
        self.located.get(&device_id).is_some_and(|list| list.iter().any(|r| self.nodes.contains_key(&r.node)))
    }

    /// Devices with a binding on one of the `stopped` nodes and none on a live one.
    pub(crate) fn stranded(&self, stopped: &[Arc<str>]) -> Vec<i64> {
        let mut out: Vec<i64> = self
            .located
            .iter()
            .filter(|(id, list)| list.iter().any(|r| stopped.contains(&r.node)) && !self.bound_live(**id))
            .map(|(id, _)| *id)
            .collect();
        out.sort_unstable();
        out
    }

    /// Remembers that this node reported `device_id` offline for its stopped node.
    pub(crate) fn mark(&mut self, device_id: i64) {
        self.marked.insert(device_id);
    }

    /// Devices reported offline earlier that are bound on a live node again; forgotten as they are returned.
    pub(crate) fn back(&mut self) -> Vec<i64> {
        let back: Vec<i64> = self.marked.iter().copied().filter(|&id| self.bound_live(id)).collect();
        for id in &back {
            self.marked.remove(id);
        }
        back
    }

    /// The live nodes holding a binding of `device_id` whose key is not in `local` (a binding this node holds
    /// itself is rung here), each once.
    pub(crate) fn nodes_holding(&self, device_id: i64, local: &[&str], now: u64) -> Vec<(Arc<str>, SocketAddr)> {
        let mut out: Vec<(Arc<str>, SocketAddr)> = Vec::new();
        let Some(list) = self.located.get(&device_id) else { return out };
        for r in list {
            if r.expires_at <= now || local.contains(&r.key.as_str()) || out.iter().any(|(n, _)| *n == r.node) {
                continue;
            }
            if let Some(addr) = self.nodes.get(&r.node) {
                out.push((r.node.clone(), *addr));
            }
        }
        out
    }

    fn tag(&self, device_id: i64, number: &str, node: &str, ts: u64) -> Option<Hmac<Sha256>> {
        let mut mac = self.mac.clone()?;
        mac.update(format!("v1|{device_id}|{number}|{node}|{ts}").as_bytes());
        Some(mac)
    }

    /// The [`RELAY_HEADER`] value for a call to `device_id` dialled as `number`, signed now.
    pub(crate) fn sign(&self, device_id: i64, number: &str, now: u64) -> String {
        let mac = self.tag(device_id, number, &self.node, now).map(|m| hex(&m.finalize().into_bytes()));
        format!("device={device_id};number={number};node={};ts={now};mac={}", self.node, mac.unwrap_or_default())
    }

    /// Checks a relayed INVITE's [`RELAY_HEADER`] from `source`.
    pub(crate) fn verify(&self, value: &str, source: SocketAddr, now: u64) -> Result<Relayed, &'static str> {
        let mut fields: HashMap<&str, &str> = HashMap::new();
        for part in value.split(';') {
            let (k, v) = part.trim().split_once('=').ok_or("malformed")?;
            fields.insert(k, v);
        }
        let get = |k: &str| fields.get(k).copied().ok_or("malformed");
        let device_id: i64 = get("device")?.parse().map_err(|_| "malformed")?;
        let number = get("number")?;
        let node = get("node")?;
        let ts: u64 = get("ts")?.parse().map_err(|_| "malformed")?;
        let mac = unhex(get("mac")?).ok_or("malformed")?;
        if self.mac.is_none() {
            return Err("relaying is off here (no cluster.secret)");
        }
        if self.peers.get(&source).is_none_or(|n| &**n != node) {
            return Err("not from that node's cluster address");
        }
        if ts.abs_diff(now) > FRESH_MS {
            return Err("stale signature");
        }
        let tag = self.tag(device_id, number, node, ts).ok_or("malformed")?;
        tag.verify_slice(&mac).map_err(|_| "bad signature")?;
        Ok(Relayed { device_id, number: number.to_owned(), node: node.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-cluster-secret-for-tests";

    fn pair() -> (Cluster, Cluster, SocketAddr) {
        let syd: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let mel: SocketAddr = "192.0.2.2:5060".parse().unwrap();
        let (mut a, mut b) = (Cluster::new(SECRET, "syd"), Cluster::new(SECRET, "mel"));
        a.update(ClusterView { nodes: vec![("mel".into(), mel)], ..Default::default() }, 0);
        b.update(ClusterView { nodes: vec![("syd".into(), syd)], ..Default::default() }, 0);
        (a, b, syd)
    }

    fn located(device_id: i64, contact: &str, node: &str, updated_at: i64) -> Located {
        Located { device_id, contact: contact.into(), node: node.into(), updated_at, expires_at: 60_000 }
    }

    #[test]
    fn a_signed_relay_is_taken_from_its_node_only() {
        let (syd, mel, syd_addr) = pair();
        let value = syd.sign(7, "+61299990001", 1_000);
        let got = mel.verify(&value, syd_addr, 2_000).unwrap();
        assert_eq!(got, Relayed { device_id: 7, number: "+61299990001".into(), node: "syd".into() });
        // From anywhere else, even a live node's other port.
        assert!(mel.verify(&value, "192.0.2.1:5070".parse().unwrap(), 2_000).is_err());
        assert!(mel.verify(&value, "198.51.100.9:5060".parse().unwrap(), 2_000).is_err());
        // Too old, or from the future.
        assert_eq!(mel.verify(&value, syd_addr, 1_000 + FRESH_MS + 1), Err("stale signature"));
        assert!(mel.verify(&value, syd_addr, 0).is_ok(), "a second of clock skew is fine");
        // Any field changed breaks the signature.
        for (from, to) in [("device=7", "device=8"), ("+61299990001", "+61299990002"), ("ts=1000", "ts=1001")] {
            assert_eq!(mel.verify(&value.replace(from, to), syd_addr, 2_000), Err("bad signature"), "{from}");
        }
        // Another secret, or none.
        let stranger = Cluster::new("another-secret-entirely", "syd");
        assert_eq!(mel.verify(&stranger.sign(7, "+61299990001", 1_000), syd_addr, 2_000), Err("bad signature"));
        let off = Cluster::new("", "mel");
        assert!(!off.enabled());
        assert!(off.verify(&value, syd_addr, 2_000).is_err());
        for junk in ["", "device=x", "device=7;number=1;node=syd;ts=1;mac=zz", "no equals sign"] {
            assert_eq!(mel.verify(junk, syd_addr, 2_000), Err("malformed"), "{junk:?}");
        }
    }

    #[test]
    fn only_live_nodes_are_relayed_to_and_local_bindings_win() {
        let (mut syd, _, _) = pair();
        let mel: SocketAddr = "192.0.2.2:5060".parse().unwrap();
        let view = ClusterView {
            nodes: vec![("mel".into(), mel)],
            bindings: vec![
                located(1, "sip:a@198.51.100.1:5060", "mel", 10),
                located(1, "sip:b@198.51.100.1:5062", "mel", 10),
                located(2, "sip:c@198.51.100.2", "dead", 10),
            ],
            full: true,
        };
        let Updated { seen, stopped } = syd.update(view, 0);
        assert_eq!(seen.len(), 3);
        assert!(stopped.is_empty());
        assert_eq!(syd.nodes_holding(1, &[], 0), vec![("mel".into(), mel)], "one relay per node");
        assert_eq!(syd.nodes_holding(2, &[], 0), vec![], "a node that is not up is not relayed to");
        let both = [key_of("sip:a@198.51.100.1:5060"), key_of("sip:b@198.51.100.1:5062")];
        let local: Vec<&str> = both.iter().map(String::as_str).collect();
        assert_eq!(syd.nodes_holding(1, &local, 0), vec![], "held here too: rung here");
        assert_eq!(syd.nodes_holding(1, &[], 60_000), vec![], "expired");
        // The next view drops the node: its bindings are stale, and its devices stranded.
        let stopped = syd.update(ClusterView::default(), 1).stopped;
        assert_eq!(stopped, vec![Arc::<str>::from("mel")]);
        assert_eq!(syd.stranded(&stopped), vec![1]);
        assert!(syd.leads(), "alone");
        assert_eq!(syd.nodes_holding(1, &[], 1), vec![]);
        assert_eq!(syd.remote_devices(), 2, "kept until they expire or a full read drops them");
        syd.update(ClusterView { full: true, ..Default::default() }, 1);
        assert_eq!(syd.remote_devices(), 0);
    }
}
