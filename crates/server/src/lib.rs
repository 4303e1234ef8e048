//! The running daemon as a library: binds the transport, loads the device directory and the stored bindings,
//! and runs the event loop that feeds the engine (every decision is made there), the write-behind task and the
//! change-log follower until shutdown.
//!
//! Tests start it in-process on `127.0.0.1:0`; the binary starts it from the configuration file.

pub mod config;

mod clock;
mod cluster;
mod devices;
mod event_loop;
mod metrics;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use config::Config;
pub use metrics::Metrics;
pub use switchboard_engine::DeviceEvent;
pub use switchboard_engine::date::civil_from_days;
pub use switchboard_engine::directory::CachedDevice;
use switchboard_sip_io::{Transport, TransportConfig};
use switchboard_storage::{DeviceState, Store, StoreError};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot bind SIP on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no randomness available: {0}")]
    Random(String),
}

/// Tells the running daemon a mailbox's counts changed outside a call (the API deleted or saved a message): it
/// updates the message-waiting lamp of the number's devices. Sends nothing once the daemon has stopped.
#[derive(Debug, Clone)]
pub struct Mailboxes(mpsc::UnboundedSender<switchboard_voicemail::service::MailboxCounts>);

impl Mailboxes {
    pub fn changed(&self, number: &str, new: u32, saved: u32) {
        let counts =
            switchboard_voicemail::service::MailboxCounts { number: number.to_owned(), new, saved, initial: false };
        let _ = self.0.send(counts);
    }
}

/// A started daemon. Dropping it does not stop it: call [`Running::shutdown`].
#[derive(Debug)]
pub struct Running {
    sip_addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    writer: tokio::task::JoinHandle<()>,
    events: broadcast::Sender<DeviceEvent>,
    transport: Arc<Transport>,
    mailboxes: mpsc::UnboundedSender<switchboard_voicemail::service::MailboxCounts>,
    metrics: Metrics,
}

impl Running {
    /// The daemon's metrics, refreshed every second.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// A handle that tells the daemon of mailbox changes made outside a call.
    pub fn mailboxes(&self) -> Mailboxes {
        Mailboxes(self.mailboxes.clone())
    }

    /// The address SIP is bound to (UDP and TCP).
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip_addr
    }

    /// Where SIP over TLS listens, if it does.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.transport.tls_addr()
    }

    /// Where SIP over secure WebSocket listens, if it does.
    pub fn wss_addr(&self) -> Option<SocketAddr> {
        self.transport.wss_addr()
    }

    /// Reads the TLS certificate and key again (SIGHUP). On error the ones in use stay.
    pub fn reload_tls(&self) -> Result<(), String> {
        self.transport.reload_tls()
    }

    /// Device online/offline events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DeviceEvent> {
        self.events.subscribe()
    }

    /// Datagrams dropped because the registrar's queue was full (overload indicator).
    pub fn dropped_datagrams(&self) -> u64 {
        self.transport.dropped()
    }

    /// Stops accepting, finishes the registrar task, then flushes every queued write before returning.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        let _ = self.writer.await;
    }
}

/// Starts the daemon on `store` with `config`.
pub async fn start(config: Config, store: Arc<dyn Store>) -> Result<Running, ServerError> {
    config.validate().map_err(ServerError::Config)?;
    let clock = clock::Clock::new();
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();

    // The change log position is read before the devices, so no edit made in between is missed.
    let last_change = store.last_change().await?;
    let devices = devices::load_devices(store.as_ref()).await?;
    let numbers = devices::load_numbers(store.as_ref()).await?;
    let mut gateways = store.list_gateways().await?;
    gateways.extend(config.file_gateways());
    let gateways = devices::resolve_gateways(gateways).await;
    let cleared = store.clear_active_calls(&config.node.name).await?;
    if cleared > 0 {
        tracing::warn!(calls = cleared, "calls this node held when it stopped were lost");
    }
    let auth_seen = store.device_auths().await?;
    let mut registrar = switchboard_registrar::Registrar::new(registrar_config(&config));
    let now = clock.now();
    // This node's own bindings: another node's are reached through that node (or are stale with it). A binding
    // of a node that never announced itself (a database from before nodes did) is taken as ours.
    let known: std::collections::HashSet<String> =
        store.live_nodes(0).await?.into_iter().map(|n| n.name).filter(|n| *n != config.node.name).collect();
    let (ours, elsewhere): (Vec<_>, Vec<_>) =
        store.list_bindings().await?.into_iter().partition(|b| !known.contains(&b.node));
    if !elsewhere.is_empty() {
        tracing::info!(bindings = elsewhere.len(), "bindings held by other nodes left to them");
    }
    registrar.restore(ours.into_iter().map(switchboard_engine::records::from_stored).collect(), now);
    // Devices the database still shows online but that hold no live binding went away while we were down.
    let mut stale_states = Vec::new();
    // Devices offline now (as stored, or found so just above): the offline alert watches their numbers again.
    let mut offline = Vec::new();
    for s in store.device_states().await? {
        if s.online && !registrar.is_online(s.device_id) {
            stale_states.push(DeviceState { device_id: s.device_id, online: false, since: now as i64 });
        } else if !s.online && !registrar.is_online(s.device_id) {
            offline.push(s);
        }
    }
    offline.extend(stale_states.iter().cloned());
    tracing::info!(
        devices = devices.len(),
        numbers = numbers.len(),
        gateways = gateways.len(),
        bindings = registrar.binding_count(),
        "loaded directory and bindings"
    );

    let (writer_tx, writer_rx) = mpsc::channel(writer::QUEUE);
    let mut writes = writer::WriteQueue::new(writer_tx);
    for s in stale_states {
        writes.push(writer::WriteOp::State(s));
    }
    let writer = tokio::spawn(writer::run(store.clone(), writer_rx));

    let (inbound_tx, inbound_rx) = mpsc::channel(8192);
    let tcfg = TransportConfig {
        listen: config.sip.listen,
        limits: switchboard_sip_core::Limits {
            max_message: config.sip.max_message_bytes,
            max_headers: config.sip.max_headers,
        },
        tcp_idle: Duration::from_secs(config.sip.tcp_idle_secs),
        max_connections: config.sip.max_connections,
        inbound_queue: 8192,
        tls: config.tls.enabled().then(|| switchboard_sip_io::TlsSettings {
            listen: config.tls.listen,
            cert: config.tls.cert.clone().into(),
            key: config.tls.key.clone().into(),
            handshake_timeout: Duration::from_millis(config.tls.handshake_timeout_ms),
            max_handshakes: config.tls.max_handshakes,
            wss_listen: config.tls.wss_addr(),
        }),
    };
    if config.tls.enabled() {
        // Checked first, so a bad file is named as such rather than as a failure to bind.
        switchboard_sip_io::server_config(config.tls.cert.as_ref(), config.tls.key.as_ref())
            .map_err(|e| ServerError::Config(format!("tls: {e}")))?;
    }
    let transport = Transport::bind(tcfg, inbound_tx, shutdown.clone(), tracker.clone())
        .await
        .map_err(|source| ServerError::Bind { addr: config.sip.listen, source })?;
    let sip_addr = transport.local_addr();

    let (events, _) = broadcast::channel(1024);
    let (updates_tx, updates_rx) = mpsc::channel(1024);
    tracker.spawn(devices::follow_changes(
        store.clone(),
        last_change,
        Duration::from_millis(config.database.poll_ms),
        config.file_gateways(),
        updates_tx,
        shutdown.clone(),
    ));

    let (counts_tx, counts_rx) = mpsc::unbounded_channel();
    let (sent_tx, sent_rx) = mpsc::unbounded_channel();
    let mail = start_mail(&config, store.clone(), sent_tx, shutdown.clone(), &tracker)?;
    let mail_waker = mail.clone();
    let links = switchboard_voicemail::service::Links { counts: counts_tx.clone(), mail, emailed: sent_rx };
    let voicemail = match config.calls.voicemail_addr().map_err(ServerError::Config)? {
        Some(external) => Some(external),
        None if config.voicemail.enabled => {
            Some(start_voicemail(&config, store.clone(), links, sip_addr, shutdown.clone(), &tracker).await?)
        }
        None => None,
    };
    let (media_tx, media_rx) = mpsc::unbounded_channel();
    let relay = if config.media.anchored() {
        let relay_config = switchboard_media_io::RelayConfig {
            bind: config.sip.listen.ip(),
            latch: switchboard_media_core::latch::LatchConfig {
                probation: config.media.probation,
                window_ms: config.media.latch_window_ms,
            },
            timeout_ms: config.media.timeout_secs * 1000,
        };
        let (relay, _thread) = switchboard_media_io::Relay::start(relay_config, media_tx)
            .map_err(|e| ServerError::Config(format!("cannot start the media relay: {e}")))?;
        Some(relay)
    } else {
        None
    };
    let auth = switchboard_engine::auth::Authenticator::new(
        &config.sip.domain,
        &config.auth.settings(),
        random_key()?,
        random_key()?,
    );
    let loaded = switchboard_engine::Loaded {
        registrar,
        auth,
        devices,
        numbers,
        gateways,
        auth_seen,
        seed: u64::from_le_bytes(random_key()?.get(..8).and_then(|b| b.try_into().ok()).unwrap_or([1; 8])),
    };
    let mut engine = switchboard_engine::Engine::new(
        engine_settings(&config, voicemail),
        loaded,
        Box::new(event_loop::SocketView::new(transport.clone())),
    );
    engine.restore_outages(&offline, clock.now());
    let metrics = Metrics::default();
    let driver = event_loop::Driver {
        engine,
        transport: transport.clone(),
        writer: writes,
        events: events.clone(),
        clock,
        stats_every_secs: config.log.status_every_secs.max(1),
        relay,
        store: store.clone(),
        mail: mail_waker,
        metrics: metrics.clone(),
    };
    let (cluster_tx, cluster_rx) = mpsc::channel(4);
    if let Some(addr) = config.cluster_address() {
        tracing::info!(%addr, "calls are relayed to and from the other nodes of the cluster");
        tracker.spawn(cluster::follow(store.clone(), &config, cluster_tx, shutdown.clone()));
    }
    let feeds = event_loop::Feeds {
        inbound: inbound_rx,
        changes: updates_rx,
        media: media_rx,
        mailboxes: counts_rx,
        cluster: cluster_rx,
    };
    tracker.spawn(event_loop::run(driver, feeds, shutdown.clone()));
    tracker.spawn(heartbeat(store.clone(), &config, shutdown.clone()));
    tracing::info!(%sip_addr, domain = %config.sip.domain, "SIP listening on UDP and TCP");
    if let Some(tls) = transport.tls_addr() {
        tracing::info!(%tls, "SIP listening on TLS");
    }
    if let Some(wss) = transport.wss_addr() {
        tracing::info!(%wss, "SIP listening on secure WebSocket");
    }
    Ok(Running { sip_addr, shutdown, tracker, writer, events, transport, mailboxes: counts_tx, metrics })
}

/// Announces this node in the shared database at start and every `node.heartbeat_secs`.
fn heartbeat(
    store: Arc<dyn Store>,
    config: &Config,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = ()> + use<> {
    let started_at = switchboard_model::date::now_ms();
    let mut node = switchboard_storage::Node {
        name: config.node.name.clone(),
        region: config.node.region.clone(),
        sip_address: config.advertised_sip(),
        cluster_address: config.cluster_address().map(|a| a.to_string()).unwrap_or_default(),
        started_at,
        heartbeat_at: started_at,
    };
    let every = Duration::from_secs(config.node.heartbeat_secs.max(1));
    async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    node.heartbeat_at = switchboard_model::date::now_ms();
                    if let Err(e) = store.heartbeat_node(&node).await {
                        tracing::warn!(error = %e, "cannot write this node's heartbeat");
                    }
                }
            }
        }
    }
}

/// The email sender, when `[smtp]` names a server.
fn start_mail(
    config: &Config,
    store: Arc<dyn Store>,
    sent: mpsc::UnboundedSender<switchboard_notify::Sent>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> Result<Option<switchboard_notify::Waker>, ServerError> {
    let m = &config.smtp;
    if m.host.is_empty() {
        tracing::info!("smtp.host is not set: this node sends no email (queued emails wait for a node that does)");
        return Ok(None);
    }
    let cfg = switchboard_notify::Config {
        host: m.host.clone(),
        port: m.port,
        tls: switchboard_notify::TlsMode::parse(&m.tls).unwrap_or(switchboard_notify::TlsMode::None),
        username: m.username.clone(),
        password: m.password.clone(),
        from: m.from.clone(),
        timeout: Duration::from_secs(m.timeout_secs),
        node: config.node.name.clone(),
        dir: config.voicemail.dir.clone().into(),
        retry_min: Duration::from_secs(m.retry_min_secs),
        retry_max: Duration::from_secs(m.retry_max_secs),
        max_attempts: i64::from(m.max_attempts),
    };
    switchboard_notify::start(cfg, store, sent, shutdown, tracker)
        .map(Some)
        .map_err(|e| ServerError::Config(e.to_string()))
}

/// The built-in voicemail, on the daemon's own address (a loopback one when SIP listens on every address): only
/// the daemon calls it, and the relay carries its media.
async fn start_voicemail(
    config: &Config,
    store: Arc<dyn Store>,
    links: switchboard_voicemail::service::Links,
    sip_addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> Result<SocketAddr, ServerError> {
    let listen = config.sip.listen.ip();
    let bind = match listen {
        ip if !ip.is_unspecified() => ip,
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    let v = &config.voicemail;
    let cfg = switchboard_voicemail::service::Config {
        dir: v.dir.clone().into(),
        deposit: switchboard_media_core::deposit::DepositConfig {
            max_ms: v.max_secs * 1000,
            min_ms: v.min_ms,
            silence_ms: v.silence_secs * 1000,
            ..Default::default()
        },
        retrieval: switchboard_media_core::retrieval::RetrievalConfig {
            utc_offset_mins: v.utc_offset_mins,
            ..Default::default()
        },
        pin_lock_after: i64::from(v.pin_lock_after),
        pin_lock_ms: i64::try_from(v.pin_lock_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        bind,
        advertise: bind,
        trusted: sip_addr,
        node: config.node.name.clone(),
        t1_ms: config.sip.t1_ms,
        server_header: format!("Switchboard/{}", env!("CARGO_PKG_VERSION")),
    };
    switchboard_voicemail::service::start(cfg, store, links, shutdown, tracker).await.map_err(|e| match e {
        switchboard_voicemail::service::StartError::Recover(e) => ServerError::Store(e),
        other => ServerError::Config(other.to_string()),
    })
}

fn registrar_config(c: &Config) -> switchboard_registrar::Config {
    switchboard_registrar::Config {
        min_expires: c.registrar.min_expires,
        max_expires: c.registrar.max_expires,
        default_expires: c.registrar.default_expires,
        keepalive_interval_ms: c.keepalive.interval_secs * 1000,
        max_misses: c.keepalive.max_misses,
    }
}

fn engine_settings(c: &Config, voicemail: Option<SocketAddr>) -> switchboard_engine::Settings {
    let k = &c.calls;
    switchboard_engine::Settings {
        domain: c.sip.domain.clone(),
        node: c.node.name.clone(),
        server_header: format!("Switchboard/{}", env!("CARGO_PKG_VERSION")),
        t1_ms: c.sip.t1_ms,
        keepalive_timeout_ms: c.keepalive.timeout_ms,
        overload: switchboard_engine::OverloadConfig {
            target_us: c.sip.overload_queue_ms * 1000,
            interval_us: 100_000,
        },
        retry_after_secs: c.sip.overload_retry_after_secs,
        calls: call_config(c),
        limits: switchboard_engine::CallLimits {
            gateway_check_secs: k.gateway_check_secs,
            max_per_device: k.max_per_device,
            max_per_service: k.max_per_service,
            max_inbound_per_service: k.max_inbound_per_service,
            max_calls: k.max_calls,
            max_diversions: k.max_diversions,
        },
        voicemail,
        alerts: switchboard_engine::alerts::AlertSettings {
            grace_ms: c.alerts.grace_secs * 1000,
            flap_window_ms: c.alerts.flap_window_secs * 1000,
            flap_count: c.alerts.flap_count as usize,
        },
        media: c.media.anchored().then(|| switchboard_engine::MediaSettings {
            port_min: c.media.port_min,
            port_max: c.media.port_max,
            advertise: c.media.advertise_ip(),
            reserved: vec![c.sip.listen.port(), c.api.listen.port()],
        }),
        cluster_secret: c.cluster.secret.clone(),
    }
}

fn call_config(c: &Config) -> switchboard_b2bua::CallConfig {
    let k = &c.calls;
    switchboard_b2bua::CallConfig {
        t1_ms: c.sip.t1_ms,
        t2_ms: 4000.max(c.sip.t1_ms),
        max_ring_ms: k.max_ring_secs * 1000,
        hunt_timeout_ms: k.gateway_timeout_ms,
        max_duration_ms: k.max_duration_secs * 1000,
        check_interval_ms: k.check_interval_secs * 1000,
        linger_ms: 64 * c.sip.t1_ms,
    }
}

fn random_key() -> Result<[u8; 32], ServerError> {
    let mut k = [0u8; 32];
    getrandom::fill(&mut k).map_err(|e| ServerError::Random(e.to_string()))?;
    Ok(k)
}
