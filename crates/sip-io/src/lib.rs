//! SIP over UDP and TCP on one address (RFC 3261 §18): sockets, stream framing, the connection table (flows),
//! and the transport-level duties that need no upper layer:
//! - a request that cannot be parsed is answered here (400 with the defect as reason phrase, 505, 513) and never
//!   reaches the server;
//! - the top Via of every request is stamped with `received`/`rport` (§18.2.1, RFC 3581);
//! - a CRLFCRLF keepalive on a stream is answered with CRLF (RFC 5626 §3.5.1).
//!
//! Everything else is handed up as [`Inbound`] on a bounded channel. Sending never blocks the caller: UDP uses
//! `try_send_to`; a stream flow has its own bounded writer queue.

mod tcp;
mod tls;
mod ws;

pub use tls::{TlsSettings, key_exchange_groups, server_config};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use switchboard_sip_core::header::{HeaderError, response_target, stamp_received, top_via};
use switchboard_sip_core::validate::response_to;
use switchboard_sip_core::{Limits, Message, ParseError, parse_datagram};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use switchboard_sip_core::transport::{FlowId, Peer, Proto};

/// A parsed message handed to the server.
#[derive(Debug)]
pub struct Inbound {
    pub msg: Message,
    pub peer: Peer,
    pub local: SocketAddr,
    /// When the message was read off the socket: the server measures how long it queued (overload control).
    pub received: tokio::time::Instant,
}

#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// UDP and TCP are both bound here.
    pub listen: SocketAddr,
    pub limits: Limits,
    /// A stream connection with no traffic either way for this long is closed.
    pub tcp_idle: Duration,
    /// Stream connections held at once; further ones are refused at accept.
    pub max_connections: usize,
    /// Capacity of the channel to the server; UDP datagrams beyond it are dropped (the sender retransmits).
    pub inbound_queue: usize,
    /// SIP over TLS on its own listener, when set.
    pub tls: Option<TlsSettings>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            limits: Limits::default(),
            tcp_idle: Duration::from_secs(600),
            max_connections: 10_000,
            inbound_queue: 8192,
            tls: None,
        }
    }
}

#[derive(Debug)]
struct Flow {
    tx: mpsc::Sender<Vec<u8>>,
}

/// The bound sockets and the table of live stream connections.
#[derive(Debug)]
pub struct Transport {
    udp: Arc<UdpSocket>,
    local: SocketAddr,
    flows: DashMap<FlowId, Flow>,
    flow_by_addr: DashMap<SocketAddr, FlowId>,
    next_flow: AtomicU64,
    config: TransportConfig,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    dropped: AtomicU64,
    send_dropped: AtomicU64,
    tls: Option<tls::TlsState>,
}

impl Transport {
    /// Binds UDP and TCP on `config.listen` (port 0 picks one free port for both) and starts the receive tasks.
    pub async fn bind(
        config: TransportConfig,
        inbound: mpsc::Sender<Inbound>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> std::io::Result<Arc<Transport>> {
        let (udp, listener) = bind_pair(config.listen).await?;
        let local = udp.local_addr()?;
        let (tls, tls_listener, wss_listener) = match &config.tls {
            Some(settings) => {
                let listener = TcpListener::bind(settings.listen).await?;
                let wss = match settings.wss_listen {
                    Some(a) => Some(TcpListener::bind(a).await?),
                    None => None,
                };
                let wss_addr = wss.as_ref().map(TcpListener::local_addr).transpose()?;
                let state = tls::TlsState::new(listener.local_addr()?, wss_addr, settings.clone())
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                (Some(state), Some(listener), wss)
            }
            None => (None, None, None),
        };
        let t = Arc::new(Transport {
            udp: Arc::new(udp),
            local,
            flows: DashMap::new(),
            flow_by_addr: DashMap::new(),
            next_flow: AtomicU64::new(1),
            config,
            inbound,
            shutdown,
            tracker: tracker.clone(),
            dropped: AtomicU64::new(0),
            send_dropped: AtomicU64::new(0),
            tls,
        });
        tracker.spawn(udp_loop(t.clone()));
        tracker.spawn(tcp::accept_loop(t.clone(), listener));
        if let Some(l) = tls_listener {
            tracker.spawn(tls::accept_loop(t.clone(), l, Proto::Tls));
        }
        if let Some(l) = wss_listener {
            tracker.spawn(tls::accept_loop(t.clone(), l, Proto::Wss));
        }
        Ok(t)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Where SIP over TLS listens, if it does.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|t| t.local)
    }

    /// Where SIP over secure WebSocket listens, if it does.
    pub fn wss_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|t| t.wss)
    }

    /// Reads the TLS certificate and key files again (SIGHUP): new connections get them, live ones keep theirs.
    /// On error the ones in use stay, and the error says what is wrong.
    pub fn reload_tls(&self) -> Result<(), String> {
        match &self.tls {
            Some(t) => t.reload(),
            None => Err("TLS is not configured".into()),
        }
    }

    /// TLS handshakes that failed or timed out, and TLS connections refused (too many handshakes at once, or
    /// the connection limit).
    pub fn tls_counts(&self) -> (u64, u64) {
        self.tls.as_ref().map_or((0, 0), |t| (t.failed.load(Ordering::Relaxed), t.refused.load(Ordering::Relaxed)))
    }

    /// Datagrams dropped because the server's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Datagrams not sent because the socket's send buffer was full.
    pub fn send_dropped(&self) -> u64 {
        self.send_dropped.load(Ordering::Relaxed)
    }

    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Whether a stream flow is still open.
    pub fn flow_alive(&self, flow: FlowId) -> bool {
        self.flows.contains_key(&flow)
    }

    /// Sends bytes to a peer without waiting. Over TCP the peer's own flow is used when it is still open (RFC 3261
    /// §18.2.2, RFC 5626); otherwise a connection to the address is opened in the background.
    pub fn send(self: &Arc<Self>, peer: &Peer, bytes: Vec<u8>) {
        match peer.proto {
            Proto::Udp => self.send_datagram(peer.addr, &bytes),
            Proto::Tcp | Proto::Tls | Proto::Wss => {
                let flow = peer
                    .flow
                    .filter(|f| self.flows.contains_key(f))
                    .or_else(|| self.flow_by_addr.get(&peer.addr).map(|f| *f));
                let sent = flow.and_then(|f| self.flows.get(&f).map(|fl| fl.tx.try_send(bytes.clone())));
                match sent {
                    Some(Ok(())) => {}
                    Some(Err(e)) => tracing::warn!(addr = %peer.addr, error = %e, "stream flow queue full; dropped"),
                    None if peer.proto == Proto::Tcp => tcp::connect_and_send(self.clone(), peer.addr, bytes),
                    // A TLS or WebSocket peer is reached over the connection it made, or not at all: we open no
                    // encrypted connections ourselves.
                    None => {
                        tracing::debug!(addr = %peer.addr, proto = peer.proto.as_str(), "its connection is gone; not sent")
                    }
                }
            }
        }
    }

    /// Like [`Transport::send`] for bytes the caller keeps: over UDP nothing is copied.
    pub fn send_slice(self: &Arc<Self>, peer: &Peer, bytes: &[u8]) {
        match peer.proto {
            Proto::Udp => self.send_datagram(peer.addr, bytes),
            _ => self.send(peer, bytes.to_vec()),
        }
    }

    /// A full socket send buffer drops the datagram, as the network would: the peer retransmits, and nothing
    /// queues up in memory behind a slow link.
    fn send_datagram(&self, addr: SocketAddr, bytes: &[u8]) {
        match self.udp.try_send_to(bytes, addr) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.send_dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(%addr, error = %e, "udp send failed"),
        }
    }

    /// Forgets a stream flow that ended (unless `addr` has since been taken by a newer flow).
    fn drop_flow(&self, id: FlowId, addr: SocketAddr) {
        self.flows.remove(&id);
        self.flow_by_addr.remove_if(&addr, |_, v| *v == id);
    }

    /// The open stream flow from `addr`, if any.
    pub fn flow_for(&self, addr: SocketAddr) -> Option<FlowId> {
        self.flow_by_addr.get(&addr).map(|f| *f).filter(|f| self.flows.contains_key(f))
    }

    /// Hands a parsed message up, or answers a request that could not be parsed.
    fn deliver(self: &Arc<Self>, result: Result<Message, ParseError>, peer: Peer) -> Option<Inbound> {
        match result {
            Ok(mut msg) => {
                if msg.is_request() {
                    let ip = peer.addr.ip();
                    match stamp_received(&mut msg.headers, ip, peer.addr.port()) {
                        Ok(()) => {}
                        // Without a Via a response has nowhere to go (RFC 3261 §18.2.2): drop the request.
                        Err(HeaderError::Missing(_)) => {
                            tracing::debug!(addr = %peer.addr, "request without Via dropped");
                            return None;
                        }
                        Err(e) => {
                            let reply = response_to(&msg.headers, 400, &e.to_string(), None);
                            self.reply_malformed(reply, peer);
                            return None;
                        }
                    }
                }
                Some(Inbound { msg, peer, local: self.local, received: tokio::time::Instant::now() })
            }
            Err(e) => {
                tracing::debug!(addr = %peer.addr, error = %e, "unparseable message");
                if let (true, Some(headers)) = (e.is_request, e.headers.as_ref())
                    && headers.get(&switchboard_sip_core::HeaderName::Via).is_some()
                {
                    let reply = response_to(headers, e.status(), &e.kind.to_string(), None);
                    self.reply_malformed(reply, peer);
                }
                None
            }
        }
    }

    /// Sends an error response built from a broken request: over UDP to the Via's target when it can be read,
    /// else straight back to the source.
    fn reply_malformed(self: &Arc<Self>, reply: Message, peer: Peer) {
        let mut to = peer;
        // Only answer the source itself: a forged Via must not turn us into a reflector.
        if peer.proto == Proto::Udp
            && let Some(t) = top_via(&reply.headers).ok().as_ref().and_then(response_target)
            && t.ip() == peer.addr.ip()
        {
            to.addr = t;
        }
        self.send(&to, reply.to_bytes());
    }
}

/// Binds UDP and TCP to the same address; with port 0, retries until one port is free for both.
async fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last_err = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr).await?;
        let bound = udp.local_addr()?;
        match TcpListener::bind(bound).await {
            Ok(l) => return Ok((udp, l)),
            Err(e) if addr.port() == 0 => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("no free port for UDP and TCP")))
}

async fn udp_loop(t: Arc<Transport>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (len, addr) = tokio::select! {
            _ = t.shutdown.cancelled() => return,
            r = t.udp.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP port unreachable surfaces here on some systems; it is not fatal.
                    tracing::debug!(error = %e, "udp recv error");
                    continue;
                }
            },
        };
        let data = buf.get(..len).unwrap_or_default();
        if data.iter().all(|&b| b == b'\r' || b == b'\n' || b == 0) {
            continue; // NAT keepalive datagram
        }
        let peer = Peer { addr, proto: Proto::Udp, flow: None };
        if let Some(inbound) = t.deliver(parse_datagram(data, &t.config.limits), peer)
            && t.inbound.try_send(inbound).is_err()
        {
            t.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
