//! The running daemon as a library: binds the transport, loads the device directory and the stored bindings,
//! and runs the registrar driver, the write-behind task and the change-log follower until shutdown.
//!
//! Tests start it in-process on `127.0.0.1:0`; the binary starts it from the configuration file.

pub mod config;

mod calls;
mod clock;
mod core;
mod devices;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use config::Config;
pub use devices::CachedDevice;
use switchboard_registrar::OfflineReason;
use switchboard_sip_core::transaction::{TimerConfig, TransactionLayer};
use switchboard_sip_io::{Transport, TransportConfig};
use switchboard_storage::{DeviceState, Store, StoreError};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A device came online or went offline. Published for later capabilities (offline divert, alert email).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    pub device_id: i64,
    pub online: bool,
    /// Unix milliseconds.
    pub at: u64,
    pub reason: Option<OfflineReason>,
}

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

/// A started daemon. Dropping it does not stop it: call [`Running::shutdown`].
#[derive(Debug)]
pub struct Running {
    sip_addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    writer: tokio::task::JoinHandle<()>,
    events: broadcast::Sender<DeviceEvent>,
    transport: Arc<Transport>,
}

impl Running {
    /// The address SIP is bound to (UDP and TCP).
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip_addr
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
    let devices = devices::DeviceCache::load(store.as_ref()).await?;
    let numbers = devices::NumberCache::load(store.as_ref()).await?;
    let mut gateways = store.list_gateways().await?;
    gateways.extend(config.file_gateways());
    let gateways = devices::resolve_gateways(gateways).await;
    let cleared = store.clear_active_calls(&config.node.name).await?;
    if cleared > 0 {
        tracing::warn!(calls = cleared, "calls this node held when it stopped were lost");
    }
    let auth_seen: std::collections::HashMap<i64, switchboard_storage::DeviceAuth> =
        store.device_auths().await?.into_iter().map(|a| (a.device_id, a)).collect();
    let mut registrar = switchboard_registrar::Registrar::new(registrar_config(&config));
    let now = clock.now();
    registrar.restore(store.list_bindings().await?.into_iter().map(core::from_stored).collect(), now);
    // Devices the database still shows online but that hold no live binding went away while we were down.
    let mut stale_states = Vec::new();
    for s in store.device_states().await? {
        if s.online && !registrar.is_online(s.device_id) {
            stale_states.push(DeviceState { device_id: s.device_id, online: false, since: now as i64 });
        }
    }
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
    };
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

    let voicemail = config.calls.voicemail_addr().map_err(ServerError::Config)?;
    let timers = TimerConfig { t1: config.sip.t1_ms, ..TimerConfig::default() };
    let mut authenticator = switchboard_engine::auth::Authenticator::new(
        &config.sip.domain,
        &config.auth.settings(),
        random_key()?,
        random_key()?,
    );
    for a in auth_seen.values() {
        if let (Some(d), Ok(ip)) = (devices.by_id(a.device_id), a.source.parse()) {
            authenticator.seed_last_good(&d.device.auth_id, ip);
        }
    }
    let core = core::Core {
        domain: config.sip.domain.clone(),
        node: config.node.name.clone(),
        server_header: format!("Switchboard/{}", env!("CARGO_PKG_VERSION")),
        transport: transport.clone(),
        registrar,
        tx: TransactionLayer::new(timers),
        auth: authenticator,
        devices,
        numbers,
        calls: calls::CallTable::new(call_config(&config), config.calls.clone(), voicemail, gateways),
        prober: switchboard_engine::prober::Prober::new(config.sip.t1_ms, config.keepalive.timeout_ms),
        writer: writes,
        events: events.clone(),
        clock,
        rng: Rng::new()?,
        local_ips: Default::default(),
        stats_every_secs: config.log.status_every_secs.max(1),
        tag_key: std::collections::hash_map::RandomState::new(),
        // Timer J's 64*T1, bounded in count: at full load it still spans the first retransmissions.
        answers: switchboard_sip_core::transaction::AnswerMemory::new(32_768, 64 * config.sip.t1_ms),
        overload: switchboard_engine::Overload::new(switchboard_engine::OverloadConfig {
            target_us: config.sip.overload_queue_ms * 1000,
            interval_us: 100_000,
        }),
        retry_after_secs: config.sip.overload_retry_after_secs,
        auth_seen,
    };
    tracker.spawn(core::run(core, inbound_rx, updates_rx, shutdown.clone()));
    tracing::info!(%sip_addr, domain = %config.sip.domain, "SIP listening on UDP and TCP");
    Ok(Running { sip_addr, shutdown, tracker, writer, events, transport })
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

/// A fast non-cryptographic generator (xorshift64*) for tags, Call-IDs and branches, seeded from the OS. These
/// values must be unique, not secret; secrets (nonce keys) come from the OS directly.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    fn new() -> Result<Self, ServerError> {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).map_err(|e| ServerError::Random(e.to_string()))?;
        Ok(Rng(u64::from_le_bytes(b) | 1))
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A 16-hex-digit token.
    pub(crate) fn token(&mut self) -> String {
        format!("{:016x}", self.next())
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// RFC 1123 date as used in the SIP Date header (RFC 3261 §20.17), from Unix milliseconds.
pub(crate) fn httpdate(ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let wd = DAYS.get((days % 7) as usize).copied().unwrap_or("Thu");
    let mon = MONTHS.get((m - 1) as usize).copied().unwrap_or("Jan");
    format!("{wd}, {d:02} {mon} {y} {:02}:{:02}:{:02} GMT", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn httpdate_matches_known_dates() {
        assert_eq!(super::httpdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(super::httpdate(1_014_326_096_000), "Thu, 21 Feb 2002 21:14:56 GMT");
        assert_eq!(super::httpdate(1_795_651_200_000), "Thu, 26 Nov 2026 00:00:00 GMT");
    }
}
