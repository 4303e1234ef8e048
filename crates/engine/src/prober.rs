//! Keepalive probes: an OPTIONS to every binding, over UDP or over the device's own TCP connection (see
//! `Engine::probe` for why not a CRLF ping).
//!
//! Probes do not go through the general client transaction layer on purpose: a transaction's Timer F is 32 s,
//! longer than the default keepalive interval, and a silent device must be found within about a minute. A probe
//! is retransmitted on the RFC 3261 Timer E schedule (T1, 2·T1, ...) and fails after `timeout_ms`. Any response
//! at all, even an error status, proves the device is there.

use std::collections::{BTreeSet, HashMap};

use switchboard_sip_core::transport::Peer;

#[derive(Debug)]
struct Pending {
    device_id: i64,
    key: String,
    peer: Peer,
    bytes: Vec<u8>,
    deadline: u64,
    next_retransmit: u64,
    interval: u64,
}

/// What the driver must do after a timeout pass.
#[derive(Debug, PartialEq, Eq)]
pub enum ProbeEvent {
    Resend { peer: Peer, bytes: Vec<u8> },
    Failed { device_id: i64, key: String },
}

#[derive(Debug)]
pub struct Prober {
    pending: HashMap<String, Pending>,
    deadlines: BTreeSet<(u64, String)>,
    t1: u64,
    timeout: u64,
}

impl Prober {
    pub fn new(t1_ms: u64, timeout_ms: u64) -> Self {
        Prober { pending: HashMap::new(), deadlines: BTreeSet::new(), t1: t1_ms.max(1), timeout: timeout_ms }
    }

    /// Records a probe just sent with Via branch `branch`.
    /// Over a reliable transport the probe is not retransmitted (RFC 3261 §17.1.2.2); it only times out.
    pub fn sent(&mut self, branch: String, device_id: i64, key: String, peer: Peer, bytes: Vec<u8>, now: u64) {
        let next = if peer.proto.is_reliable() { now + self.timeout } else { now + self.t1 };
        self.deadlines.insert((next, branch.clone()));
        let p = Pending {
            device_id,
            key,
            peer,
            bytes,
            deadline: now + self.timeout,
            next_retransmit: next,
            interval: self.t1,
        };
        self.pending.insert(branch, p);
    }

    /// A response arrived with this top-Via branch: if it answers a probe, returns the binding it proves alive.
    pub fn on_response(&mut self, branch: &str) -> Option<(i64, String)> {
        self.pending.remove(branch).map(|p| (p.device_id, p.key))
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        self.deadlines.first().map(|d| d.0)
    }

    pub fn on_timeout(&mut self, now: u64) -> Vec<ProbeEvent> {
        let mut events = Vec::new();
        while self.deadlines.first().is_some_and(|d| d.0 <= now) {
            let Some((due, branch)) = self.deadlines.pop_first() else { break };
            let Some(p) = self.pending.get_mut(&branch) else { continue };
            if p.next_retransmit != due && p.deadline != due {
                continue;
            }
            if now >= p.deadline {
                if let Some(p) = self.pending.remove(&branch) {
                    events.push(ProbeEvent::Failed { device_id: p.device_id, key: p.key });
                }
                continue;
            }
            events.push(ProbeEvent::Resend { peer: p.peer, bytes: p.bytes.clone() });
            p.interval = (p.interval * 2).min(4000);
            p.next_retransmit = now + p.interval;
            let next = p.next_retransmit.min(p.deadline);
            if next == p.deadline {
                p.next_retransmit = p.deadline;
            }
            self.deadlines.insert((next, branch));
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sip_core::transport::Proto;

    fn peer() -> Peer {
        Peer { addr: "127.0.0.1:5070".parse().unwrap(), proto: Proto::Udp, flow: None }
    }

    #[test]
    fn retransmits_then_fails_at_timeout() {
        let mut p = Prober::new(500, 5000);
        p.sent("b1".into(), 7, "k".into(), peer(), b"OPTIONS".to_vec(), 0);
        let mut resends = Vec::new();
        let mut failed_at = None;
        while let Some(t) = p.poll_timeout() {
            for e in p.on_timeout(t) {
                match e {
                    ProbeEvent::Resend { .. } => resends.push(t),
                    ProbeEvent::Failed { device_id, .. } => {
                        assert_eq!(device_id, 7);
                        failed_at = Some(t);
                    }
                }
            }
        }
        assert_eq!(resends, vec![500, 1500, 3500]);
        assert_eq!(failed_at, Some(5000));
    }

    #[test]
    fn tcp_probes_are_not_retransmitted() {
        let mut p = Prober::new(500, 5000);
        let tcp = Peer { addr: "127.0.0.1:5070".parse().unwrap(), proto: Proto::Tcp, flow: Some(3) };
        p.sent("b1".into(), 7, "k".into(), tcp, b"OPTIONS".to_vec(), 0);
        assert_eq!(p.poll_timeout(), Some(5000));
        assert_eq!(p.on_timeout(5000), vec![ProbeEvent::Failed { device_id: 7, key: "k".into() }]);
    }

    #[test]
    fn any_response_settles_the_probe() {
        let mut p = Prober::new(500, 5000);
        p.sent("b1".into(), 7, "k".into(), peer(), b"OPTIONS".to_vec(), 0);
        assert_eq!(p.on_response("b1"), Some((7, "k".into())));
        assert_eq!(p.on_response("b1"), None);
        assert!(p.on_timeout(10_000).is_empty());
    }
}
