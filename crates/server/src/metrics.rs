//! The daemon's metrics: once a second the event loop copies what the engine, the transport, the write-behind
//! queue and the media relay hold into a shared snapshot, which the management API renders at `/metrics`. A
//! scrape never waits for the event loop, and the event loop never waits for a scrape.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use switchboard_engine::Stats;
use switchboard_model::metrics::{Family, Kind};

/// The latest snapshot, shared with whoever renders it.
#[derive(Debug, Clone, Default)]
pub struct Metrics(Arc<Mutex<Vec<Family>>>);

impl Metrics {
    /// The families as of the last snapshot (at most a second old).
    pub fn families(&self) -> Vec<Family> {
        self.0.lock().map(|f| f.clone()).unwrap_or_default()
    }

    pub(crate) fn publish(&self, families: Vec<Family>) {
        if let Ok(mut f) = self.0.lock() {
            *f = families;
        }
    }
}

/// Everything the event loop knows, as metric families.
pub(crate) struct Sources<'a> {
    pub stats: Stats,
    pub transport: &'a switchboard_sip_io::Transport,
    pub write_queue: usize,
    pub write_stalls: u64,
    pub relay: Option<&'a switchboard_media_io::Relay>,
}

pub(crate) fn families(s: Sources<'_>) -> Vec<Family> {
    use Kind::{Counter, Gauge};
    let st = &s.stats;
    let n = |v: usize| v as f64;
    let c = |v: u64| v as f64;
    let mut out = vec![
        Family::single("switchboard_devices", "Devices provisioned.", Gauge, n(st.devices)),
        Family::single(
            "switchboard_devices_online",
            "Devices with a live binding that answers.",
            Gauge,
            n(st.devices_online),
        ),
        Family::single("switchboard_bindings", "Registration bindings held.", Gauge, n(st.bindings)),
        Family::single(
            "switchboard_tcp_flows",
            "Stream connections open (TCP and TLS).",
            Gauge,
            n(s.transport.flow_count()),
        ),
        Family::single(
            "switchboard_tls_handshakes_failed_total",
            "TLS handshakes that failed or timed out.",
            Counter,
            c(s.transport.tls_counts().0),
        ),
        Family::single(
            "switchboard_tls_connections_refused_total",
            "TLS connections closed at once: too many handshakes in progress, or the connection limit.",
            Counter,
            c(s.transport.tls_counts().1),
        ),
        Family::single("switchboard_sip_transactions", "SIP transactions held.", Gauge, n(st.transactions)),
        Family::single("switchboard_calls_active", "Calls in progress on this node.", Gauge, n(st.calls)),
        Family::single(
            "switchboard_cluster_nodes_up",
            "Other nodes of the cluster that are up.",
            Gauge,
            n(st.cluster_nodes),
        ),
        Family::single(
            "switchboard_remote_devices",
            "Devices bound on other nodes (their calls are relayed there).",
            Gauge,
            n(st.remote_devices),
        ),
        Family::single(
            "switchboard_mwi_subscriptions",
            "Message-waiting subscriptions held.",
            Gauge,
            n(st.mwi_subscriptions),
        ),
        Family::single(
            "switchboard_nonces_tracked",
            "Digest nonces tracked for replay protection.",
            Gauge,
            n(st.nonces_tracked),
        ),
        Family::single(
            "switchboard_auth_failures_total",
            "Requests with wrong credentials.",
            Counter,
            c(st.counters.auth_failures),
        ),
        Family::single(
            "switchboard_auth_throttled_total",
            "Requests refused because their source or account failed too often.",
            Counter,
            c(st.counters.auth_throttled),
        ),
        Family::single(
            "switchboard_overload_episodes_total",
            "Times the daemon began shedding load.",
            Counter,
            c(st.overload_episodes),
        ),
        Family::single(
            "switchboard_shed_requests_total",
            "Requests refused with 503 while overloaded.",
            Counter,
            c(st.shed_requests),
        ),
        Family::single(
            "switchboard_datagrams_dropped_total",
            "Datagrams dropped because the engine's queue was full.",
            Counter,
            c(s.transport.dropped()),
        ),
        Family::single(
            "switchboard_write_queue",
            "Database writes queued behind the event loop (bindings, call records, states).",
            Gauge,
            n(s.write_queue),
        ),
        Family::single(
            "switchboard_write_stalls_total",
            "Times the event loop waited for the database.",
            Counter,
            c(s.write_stalls),
        ),
        Family::single(
            "switchboard_media_port_pairs",
            "Relay port pairs held by calls.",
            Gauge,
            n(st.media_port_pairs),
        ),
    ];
    let mut regs = Family::new("switchboard_registrations_total", "REGISTER requests by outcome.", Counter);
    for outcome in ["ok", "challenged", "failed", "throttled", "refused"] {
        regs.push(&[("outcome", outcome)], c(st.counters.registrations.get(outcome).copied().unwrap_or(0)));
    }
    out.push(regs);
    let mut calls =
        Family::new("switchboard_calls_total", "Finished call attempts by direction and disposition.", Counter);
    for ((direction, disposition), v) in &st.counters.calls {
        calls.push(&[("direction", direction), ("disposition", disposition)], c(*v));
    }
    out.push(calls);
    let mut diverts = Family::new("switchboard_diverts_total", "Calls diverted, by reason.", Counter);
    for reason in ["no_answer", "busy", "all", "offline"] {
        diverts.push(&[("reason", reason)], c(st.counters.diverts.get(reason).copied().unwrap_or(0)));
    }
    out.push(diverts);
    let mut gateways = Family::new("switchboard_gateway_up", "1 when the gateway passed its last health check.", Gauge);
    for (name, up) in &st.gateways {
        gateways.push(&[("gateway", name)], if *up { 1.0 } else { 0.0 });
    }
    out.push(gateways);
    if let Some(r) = s.relay {
        let k = r.counters();
        out.push(Family::single(
            "switchboard_media_sessions",
            "Relay sessions open.",
            Gauge,
            n(k.sessions.load(Ordering::Relaxed)),
        ));
        out.push(Family::single(
            "switchboard_media_packets_relayed_total",
            "RTP packets forwarded by the relay.",
            Counter,
            c(k.forwarded.load(Ordering::Relaxed)),
        ));
        out.push(Family::single(
            "switchboard_media_packets_dropped_total",
            "RTP packets the relay dropped (strangers, before latching, errors).",
            Counter,
            c(k.dropped.load(Ordering::Relaxed)),
        ));
    }
    out
}
