//! The event loop: one task that feeds the engine messages, directory changes and time, and carries out what it
//! asks for (sends, persistence, device events).
//!
//! Nothing in this task waits on the network or the database: sends are non-blocking and persistence is queued
//! to the write-behind task, so one slow peer or a slow disk cannot stall registration for everyone else.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use switchboard_engine::directory::Change;
use switchboard_engine::{DeviceEvent, Engine, Network, Output};
use switchboard_sip_core::transport::{FlowId, Proto};
use switchboard_sip_io::{Inbound, Transport};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::writer::WriteQueue;

/// The loop's state: the engine and the ends of the world it talks to.
pub(crate) struct Driver {
    pub engine: Engine,
    pub transport: Arc<Transport>,
    pub writer: WriteQueue,
    pub events: broadcast::Sender<DeviceEvent>,
    pub clock: Clock,
    /// How often the status line is logged.
    pub stats_every_secs: u64,
    /// The media relay, when media is anchored.
    pub relay: Option<switchboard_media_io::Relay>,
    /// Where alert emails are queued.
    pub store: Arc<dyn switchboard_storage::Store>,
    /// Wakes the email sender (`None`: this node sends no email).
    pub mail: Option<switchboard_notify::Waker>,
    /// Where the metrics snapshot goes.
    pub metrics: crate::metrics::Metrics,
}

/// What the engine learns of the network: our address as each peer sees it (a route lookup, cached), and the
/// transport's TCP connections.
pub(crate) struct SocketView {
    transport: Arc<Transport>,
    local_ips: HashMap<IpAddr, IpAddr>,
}

impl SocketView {
    pub(crate) fn new(transport: Arc<Transport>) -> Self {
        SocketView { transport, local_ips: HashMap::new() }
    }
}

impl Network for SocketView {
    fn sent_by(&mut self, peer: IpAddr, proto: Proto) -> SocketAddr {
        let own = match proto {
            Proto::Tls => self.transport.tls_addr(),
            Proto::Wss => self.transport.wss_addr(),
            _ => None,
        };
        let local = own.unwrap_or_else(|| self.transport.local_addr());
        if !local.ip().is_unspecified() {
            return local;
        }
        if self.local_ips.len() >= 4096 && !self.local_ips.contains_key(&peer) {
            // One entry per peer address: bounded, so a flood of sources cannot grow it without end.
            self.local_ips.clear();
        }
        let ip = *self.local_ips.entry(peer).or_insert_with(|| route_source(peer).unwrap_or(local.ip()));
        SocketAddr::new(ip, local.port())
    }

    fn flow_for(&self, addr: SocketAddr) -> Option<FlowId> {
        self.transport.flow_for(addr)
    }
}

/// The local address the kernel would use to reach `peer` (a connected UDP socket sends nothing).
fn route_source(peer: IpAddr) -> Option<IpAddr> {
    let any: SocketAddr =
        if peer.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let s = std::net::UdpSocket::bind(any).ok()?;
    s.connect(SocketAddr::new(peer, 9)).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

/// What feeds the engine besides time.
#[derive(Debug)]
pub(crate) struct Feeds {
    /// SIP messages from the transport.
    pub(crate) inbound: mpsc::Receiver<Inbound>,
    /// Directory changes from the change-log follower.
    pub(crate) changes: mpsc::Receiver<Change>,
    /// The media relay's events.
    pub(crate) media: mpsc::UnboundedReceiver<switchboard_media_io::Event>,
    /// Mailbox counts from the voicemail, for the message-waiting lamp.
    pub(crate) mailboxes: mpsc::UnboundedReceiver<switchboard_voicemail::service::MailboxCounts>,
    /// The other nodes and where their devices are bound (only when calls are relayed).
    pub(crate) cluster: mpsc::Receiver<switchboard_engine::cluster::ClusterView>,
}

pub(crate) async fn run(mut d: Driver, feeds: Feeds, shutdown: CancellationToken) {
    let Feeds { mut inbound, mut changes, mut media, mut mailboxes, mut cluster } = feeds;
    let mut batch = Vec::with_capacity(64);
    let mut stats = tokio::time::interval(std::time::Duration::from_secs(d.stats_every_secs));
    stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut active_calls = tokio::time::interval(std::time::Duration::from_millis(500));
    active_calls.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut metrics = tokio::time::interval(std::time::Duration::from_secs(1));
    metrics.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        // The database is behind: wait for room before taking more work (see the writer module).
        if d.writer.is_backed_up() {
            d.writer.drain().await;
        }
        let deadline = d.engine.poll_timeout().map(|t| d.clock.instant_at(t));
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            n = inbound.recv_many(&mut batch, 64) => {
                if n == 0 {
                    break;
                }
                for m in batch.drain(..) {
                    d.on_inbound(m);
                }
            }
            Some(c) = changes.recv() => d.engine.on_change(c, d.clock.now()),
            Some(e) = media.recv() => d.engine.on_media(e, d.clock.now()),
            Some(m) = mailboxes.recv() => {
                if m.initial {
                    d.engine.on_mailbox_initial(&m.number, m.new, m.saved);
                } else {
                    d.engine.on_mailbox(&m.number, m.new, m.saved, d.clock.now());
                }
            }
            Some(v) = cluster.recv() => d.engine.on_cluster(v, d.clock.now()),
            _ = sleep_until(deadline) => d.engine.on_timeout(d.clock.now()),
            _ = stats.tick() => d.log_stats(),
            _ = active_calls.tick() => d.engine.flush_active_calls(),
            _ = metrics.tick() => d.publish_metrics(),
        }
        d.carry_out();
    }
    d.engine.shutdown(d.clock.now());
    d.carry_out();
    d.writer.drain().await;
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    fn on_inbound(&mut self, m: Inbound) {
        let Inbound { msg, peer, local, received } = m;
        // How long the message waited between the socket and here: the overload controller's measure.
        let now = tokio::time::Instant::now();
        let waited = u64::try_from(now.saturating_duration_since(received).as_micros()).unwrap_or(u64::MAX);
        let now_us = u64::try_from(now.duration_since(self.clock.start()).as_micros()).unwrap_or(u64::MAX);
        self.engine.on_queue_delay(waited, now_us);
        self.engine.on_message(msg, peer, local, self.clock.now());
        // Sent as they come, so a batch of 64 answers does not wait for its last one.
        self.carry_out();
    }

    /// Carries out what the engine asked for.
    fn carry_out(&mut self) {
        for out in self.engine.drain_outputs() {
            match out {
                Output::Send { peer, bytes } => self.transport.send(&peer, bytes),
                Output::Persist(p) => self.writer.push(p),
                Output::Device(e) => {
                    let _ = self.events.send(e);
                }
                Output::Email(email) => {
                    // Off the loop: a slow database never holds up SIP.
                    let (store, mail) = (self.store.clone(), self.mail.clone());
                    tokio::spawn(async move {
                        match store.enqueue_email(&email).await {
                            Ok(_) => {
                                if let Some(w) = mail {
                                    w.wake();
                                }
                            }
                            Err(e) => tracing::error!(error = %e, kind = %email.kind, "cannot queue an alert email"),
                        }
                    });
                }
                Output::Media(command) => {
                    if !self.relay.as_ref().is_some_and(|r| r.send(command)) {
                        tracing::warn!("the media relay's queue is full; a media command was dropped");
                    }
                }
            }
        }
    }

    fn publish_metrics(&self) {
        let families = crate::metrics::families(crate::metrics::Sources {
            stats: self.engine.stats(),
            transport: &self.transport,
            write_queue: self.writer.depth(),
            write_stalls: self.writer.stalls(),
            relay: self.relay.as_ref(),
        });
        self.metrics.publish(families);
    }

    /// A periodic summary of what the engine holds, for operators and capacity planning.
    fn log_stats(&self) {
        let s = self.engine.stats();
        tracing::info!(
            devices = s.devices,
            bindings = s.bindings,
            transactions = s.transactions,
            calls = s.calls,
            probes_in_flight = s.probes_in_flight,
            nonces_tracked = s.nonces_tracked,
            tcp_flows = self.transport.flow_count(),
            dropped_datagrams = self.transport.dropped(),
            unsent_datagrams = self.transport.send_dropped(),
            retransmissions_answered = s.retransmissions_answered,
            overload_episodes = s.overload_episodes,
            shed_requests = s.shed_requests,
            write_queue = self.writer.depth(),
            write_stalls = self.writer.stalls(),
            media_port_pairs = s.media_port_pairs,
            mwi_subscriptions = s.mwi_subscriptions,
            media_sessions = self.relay.as_ref().map_or(0, |r| r.counters().sessions.load(Ordering::Relaxed)),
            media_forwarded = self.relay.as_ref().map_or(0, |r| r.counters().forwarded.load(Ordering::Relaxed)),
            media_dropped = self.relay.as_ref().map_or(0, |r| r.counters().dropped.load(Ordering::Relaxed)),
            "registrar status"
        );
    }
}
