//! The daemon's configuration: every key has a default, so an empty file (or none) runs a working node.
//! Unknown keys are refused at start (`deny_unknown_fields`), so a typo cannot silently leave a default in place.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub node: NodeConfig,
    pub cluster: ClusterConfig,
    pub sip: SipConfig,
    pub tls: TlsConfig,
    pub registrar: RegistrarConfig,
    pub keepalive: KeepaliveConfig,
    pub auth: AuthConfig,
    pub calls: CallsConfig,
    pub media: MediaConfig,
    pub voicemail: VoicemailConfig,
    pub smtp: SmtpConfig,
    pub alerts: AlertsConfig,
    /// Carrier gateways from the file, used beside those added with `switchboard gateway add`.
    #[serde(rename = "gateway")]
    pub gateways: Vec<GatewayConfig>,
    pub database: DatabaseConfig,
    pub api: ApiConfig,
    pub log: LogConfig,
}

/// The media relay (`[media]`).
/// The offline alert (`[alerts]`): numbers with `offline_alert` set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Every device of a number offline this long before its address is emailed, seconds.
    pub grace_secs: u64,
    /// Outages within this many seconds of each other count towards "unstable".
    pub flap_window_secs: u64,
    /// That many outages within the window: one "unstable" email, then quiet until steady for a window.
    pub flap_count: u32,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig { grace_secs: 120, flap_window_secs: 1800, flap_count: 3 }
    }
}

/// Email (`[smtp]`): voicemail to email and device alerts go through this server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// The SMTP server. Empty: this node sends no email (emails stay queued for a node that does).
    pub host: String,
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    pub tls: String,
    /// Empty: no authentication.
    pub username: String,
    pub password: String,
    /// The sender of every email.
    pub from: String,
    pub timeout_secs: u64,
    /// The first retry of a failed email waits this long, each next one twice as long up to `retry_max_secs`.
    pub retry_min_secs: u64,
    pub retry_max_secs: u64,
    /// Attempts before an email is given up (shown as failed in `switchboard outbox`).
    pub max_attempts: u32,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 25,
            tls: "none".into(),
            username: String::new(),
            password: String::new(),
            from: "Switchboard <switchboard@localhost>".into(),
            timeout_secs: 30,
            retry_min_secs: 60,
            retry_max_secs: 3600,
            max_attempts: 12,
        }
    }
}

/// The built-in voicemail (`[voicemail]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoicemailConfig {
    /// Answer calls diverted to voicemail here. Off (or `calls.voicemail_uri` set): they go to
    /// `calls.voicemail_uri`, or are answered 480 without one.
    pub enabled: bool,
    /// Where messages are kept: `<dir>/<number digits>/<time>-<id>.wav`, 8 kHz 16-bit mono.
    pub dir: String,
    /// The longest message, seconds.
    pub max_secs: u64,
    /// Messages shorter than this are discarded, milliseconds.
    pub min_ms: u64,
    /// This long without speech ends a message, seconds.
    pub silence_secs: u64,
    /// Wrong PINs in a row, across calls, that lock a mailbox against 777.
    pub pin_lock_after: u32,
    /// How long a locked mailbox stays locked, seconds.
    pub pin_lock_secs: u64,
    /// Local time for announcing when messages came, minutes east of UTC (600: Sydney standard time).
    pub utc_offset_mins: i32,
}

impl Default for VoicemailConfig {
    fn default() -> Self {
        VoicemailConfig {
            enabled: true,
            dir: "./data/voicemail".into(),
            max_secs: 180,
            min_ms: 1000,
            silence_secs: 10,
            pin_lock_after: 5,
            pin_lock_secs: 900,
            utc_offset_mins: 600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// `always`: every call's media goes through the daemon (SDP rewritten, symmetric RTP for phones behind
    /// NAT, media timeout); `never`: SDP passes through and media flows end to end.
    pub anchor: String,
    /// The relay's UDP port range; each anchored call takes two pairs (RTP and RTCP for each side).
    pub port_min: u16,
    pub port_max: u16,
    /// The address SDP names for the relay. Empty: our address as each side sees it (as in Via).
    pub advertise: String,
    /// No RTP from either side for this long (and neither on hold): the call is hung up. Seconds; 0 for never.
    pub timeout_secs: u64,
    /// Packets in a row a phone must send from an address other than its SDP's before media goes there.
    pub probation: u8,
    /// How long after a stream's first packet a new source may still be learned, milliseconds.
    pub latch_window_ms: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            anchor: "always".into(),
            port_min: 10_000,
            port_max: 20_000,
            advertise: String::new(),
            timeout_secs: 60,
            probation: 4,
            latch_window_ms: 3000,
        }
    }
}

impl MediaConfig {
    pub fn anchored(&self) -> bool {
        self.anchor == "always"
    }

    /// The advertised address, if one is set (validated at start).
    pub fn advertise_ip(&self) -> Option<std::net::IpAddr> {
        self.advertise.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's name, recorded on the bindings it holds.
    pub name: String,
    /// The region this node serves.
    pub region: String,
    /// The SIP address phones in this region point at (`sip.example.net` or `host:port`), shown in the portal's
    /// region choice and by `switchboard nodes`. Empty: `sip.domain`, with the port when it is not 5060.
    pub advertise: String,
    /// How often this node writes its heartbeat to the database; it counts as stale after three missed.
    pub heartbeat_secs: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig { name: "node1".into(), region: "default".into(), advertise: String::new(), heartbeat_secs: 10 }
    }
}

/// Calls across nodes (`[cluster]`): a call that lands on this node for a device registered on another is relayed
/// there, and the other way round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The secret every node of the cluster shares; it signs relayed calls. Empty: no calls are relayed either
    /// way (a single node, or nodes that each reach only the devices registered on them).
    pub secret: String,
    /// The `ip:port` other nodes relay calls to. Empty: `sip.listen`, which must then name an address.
    pub address: String,
}

impl Config {
    /// The address other nodes relay calls to, when relaying is on (`cluster.secret` set).
    pub fn cluster_address(&self) -> Option<SocketAddr> {
        if self.cluster.secret.is_empty() {
            return None;
        }
        match self.cluster.address.trim() {
            "" => Some(self.sip.listen).filter(|a| !a.ip().is_unspecified()),
            a => a.parse().ok(),
        }
    }

    /// The SIP address this node tells customers to use.
    pub fn advertised_sip(&self) -> String {
        if !self.node.advertise.trim().is_empty() {
            return self.node.advertise.trim().to_owned();
        }
        match self.sip.listen.port() {
            5060 => self.sip.domain.clone(),
            port => format!("{}:{port}", self.sip.domain),
        }
    }
}

/// SIP over TLS (`[tls]`): on when a certificate and key are given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Where SIP over TLS listens.
    pub listen: SocketAddr,
    /// PEM certificate chain, leaf first. Empty: no TLS.
    pub cert: String,
    /// PEM private key.
    pub key: String,
    /// A TLS handshake not done in this long is dropped, milliseconds.
    pub handshake_timeout_ms: u64,
    /// TLS handshakes in progress at once; a connection past this is closed at once.
    pub max_handshakes: usize,
    /// SIP over secure WebSocket (RFC 7118, for browser phones) listens here, with the same certificate. Empty:
    /// off.
    pub wss_listen: String,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 5061)),
            cert: String::new(),
            key: String::new(),
            handshake_timeout_ms: 5_000,
            max_handshakes: 256,
            wss_listen: String::new(),
        }
    }
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        !self.cert.is_empty()
    }

    /// Where secure WebSocket listens, when TLS is on and it is set (validated at start).
    pub fn wss_addr(&self) -> Option<SocketAddr> {
        if !self.enabled() {
            return None;
        }
        self.wss_listen.trim().parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// UDP and TCP are both bound here.
    pub listen: SocketAddr,
    /// The SIP domain; also the digest realm.
    pub domain: String,
    /// Largest message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Most header lines in one message.
    pub max_headers: usize,
    /// A TCP connection with no traffic for this long is closed.
    pub tcp_idle_secs: u64,
    /// Most TCP connections at once.
    pub max_connections: usize,
    /// RFC 3261 T1 (round-trip estimate), milliseconds.
    pub t1_ms: u64,
    /// Overload control: when every message of a 100 ms interval waited longer than this between the socket and
    /// the core, new requests are refused with 503 until the queue drains. Milliseconds; 0 turns it off.
    pub overload_queue_ms: u64,
    /// The Retry-After of those 503s, seconds.
    pub overload_retry_after_secs: u32,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            domain: "switchboard.local".into(),
            max_message_bytes: 65_535,
            max_headers: 128,
            tcp_idle_secs: 600,
            max_connections: 10_000,
            t1_ms: 500,
            overload_queue_ms: 100,
            overload_retry_after_secs: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrarConfig {
    /// Shortest registration accepted (shorter gets 423 Interval Too Brief).
    pub min_expires: u32,
    /// Longest registration granted.
    pub max_expires: u32,
    /// Granted when the device asks for no particular expiry.
    pub default_expires: u32,
    /// Contacts a Trunk Mode device may bind at once (Direct Mode devices always have one).
    pub trunk_max_contacts: u32,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig { min_expires: 60, max_expires: 3600, default_expires: 3600, trunk_max_contacts: 5 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeepaliveConfig {
    /// Seconds between OPTIONS keepalives to each binding (over TCP, on the device's own connection).
    pub interval_secs: u64,
    /// Keepalives missed in a row before the device counts as offline.
    pub max_misses: u32,
    /// How long an OPTIONS keepalive waits for any answer, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        KeepaliveConfig { interval_secs: 30, max_misses: 2, timeout_ms: 5000 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a nonce is accepted; after that the client is told `stale=true`.
    pub nonce_lifetime_secs: u64,
    /// Algorithms offered, in order of preference (one WWW-Authenticate each): `SHA-256`, `MD5`, `SHA-512-256`.
    pub algorithms: Vec<String>,
    /// Failed authentications from one source (or for one Auth ID from one source) before refusals start.
    pub max_failures: u32,
    /// The window in which failures are counted, seconds.
    pub failure_window_secs: u64,
    /// How long refusals last once the limit is hit, seconds.
    pub cooldown_secs: u64,
    /// Offer MD5 alone to a source that did not answer a challenge list holding SHA-256 (legacy stacks that fail
    /// on any algorithm they do not know).
    pub legacy_md5_fallback: bool,
}

impl AuthConfig {
    /// The engine's settings: milliseconds, and the algorithm names parsed (validated at start).
    pub fn settings(&self) -> switchboard_engine::auth::AuthSettings {
        switchboard_engine::auth::AuthSettings {
            nonce_lifetime_ms: self.nonce_lifetime_secs * 1000,
            algorithms: self.algorithms.iter().filter_map(|a| a.parse().ok()).collect(),
            max_failures: self.max_failures,
            failure_window_ms: self.failure_window_secs * 1000,
            cooldown_ms: self.cooldown_secs * 1000,
            legacy_md5_fallback: self.legacy_md5_fallback,
        }
    }
}

impl Default for AuthConfig {
    /// The engine's defaults, in the file's units: one place holds them.
    fn default() -> Self {
        let s = switchboard_engine::auth::AuthSettings::default();
        AuthConfig {
            nonce_lifetime_secs: s.nonce_lifetime_ms / 1000,
            algorithms: s.algorithms.iter().map(|a| a.as_str().to_owned()).collect(),
            max_failures: s.max_failures,
            failure_window_secs: s.failure_window_ms / 1000,
            cooldown_secs: s.cooldown_ms / 1000,
            legacy_md5_fallback: s.legacy_md5_fallback,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    /// Longest a call rings (per stage: the devices, then the divert target) before it is given up, seconds.
    pub max_ring_secs: u64,
    /// Longest an answered call lasts before both sides are hung up, seconds; 0 for no limit.
    pub max_duration_secs: u64,
    /// How often an answered call checks both sides with an in-dialog OPTIONS; a side that has lost the call
    /// (481) or does not answer ends it. Seconds; 0 turns the check off.
    pub check_interval_secs: u64,
    /// A carrier gateway that sends no response at all to an INVITE in this time is skipped for the next one,
    /// milliseconds.
    pub gateway_timeout_ms: u64,
    /// Seconds between OPTIONS health checks to each carrier gateway; a gateway that fails one is tried last
    /// until it answers again.
    pub gateway_check_secs: u64,
    /// Outbound calls one device may have up at once (toll-fraud limit).
    pub max_per_device: u32,
    /// Outbound calls all devices of one service may have up at once.
    pub max_per_service: u32,
    /// Inbound calls one service may receive at once (a trunk's channels); more get 486 Busy Here.
    pub max_inbound_per_service: u32,
    /// Calls this node carries at once, all directions; more get 503 with Retry-After (emergency calls excepted).
    pub max_calls: u32,
    /// Where calls diverted to voicemail go: `sip:HOST:PORT` of an external voicemail service. Empty: the
    /// built-in voicemail (`[voicemail]`), or, with that off, such calls are answered 480.
    pub voicemail_uri: String,
    /// Most diversions a call may have been through (its Diversion counters) before we divert it again.
    pub max_diversions: u32,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            max_ring_secs: 180,
            max_duration_secs: 14_400,
            check_interval_secs: 120,
            gateway_timeout_ms: 4000,
            gateway_check_secs: 30,
            max_per_device: 8,
            max_per_service: 30,
            max_inbound_per_service: 30,
            max_calls: 5000,
            voicemail_uri: String::new(),
            max_diversions: 5,
        }
    }
}

impl CallsConfig {
    /// The voicemail service's address, from `voicemail_uri`.
    pub fn voicemail_addr(&self) -> Result<Option<SocketAddr>, String> {
        if self.voicemail_uri.is_empty() {
            return Ok(None);
        }
        let bad = || format!("calls.voicemail_uri: expected sip:IP:PORT, got {:?}", self.voicemail_uri);
        let rest = self.voicemail_uri.strip_prefix("sip:").ok_or_else(bad)?;
        let host_port = rest.rsplit('@').next().unwrap_or(rest);
        let host_port = host_port.split(';').next().unwrap_or(host_port);
        host_port.parse::<SocketAddr>().map(Some).map_err(|_| bad())
    }
}

/// A carrier gateway named in the configuration file (`[[gateway]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    pub name: String,
    /// `IP:PORT` (or `HOST:PORT`, resolved when the daemon starts).
    pub address: String,
    /// `udp` or `tcp`.
    #[serde(default = "default_transport")]
    pub transport: String,
    /// Lower is tried first.
    #[serde(default = "default_priority")]
    pub priority: i64,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_transport() -> String {
    "udp".into()
}

fn default_priority() -> i64 {
    100
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (created and migrated at start) or `postgres://...`.
    pub url: String,
    /// Seconds between looks at the change log (CLI and API edits reach the running daemon this fast).
    pub poll_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { url: "sqlite://./data/switchboard.db".into(), poll_ms: 1000 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Management API listen address (HTTP). Loopback by default: put a TLS proxy in front to reach it from
    /// elsewhere.
    pub listen: SocketAddr,
    /// Serve the API from this node (`false`: SIP only; the CLI still works on the database).
    pub enabled: bool,
    /// Where customers reach the portal (`https://portal.example.net`): emailed links start with it. Empty:
    /// `http://` and `listen`.
    pub public_url: String,
    /// A portal session ends after this long unused...
    pub session_idle_secs: u64,
    /// ...and after this long in any case.
    pub session_max_secs: u64,
    /// How long an emailed sign-in link (register, invitation, password reset) works.
    pub link_secs: u64,
    /// Failed portal sign-ins from one address for one email before that pair waits `login_window_secs`
    /// (five times as many from one address for any email).
    pub login_failures: u32,
    pub login_window_secs: u64,
    /// The regions customers choose from, each with the SIP server address their phones point at. Empty: this
    /// node's region with `sip.domain`.
    pub regions: Vec<RegionConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    pub name: String,
    pub sip_address: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            enabled: true,
            public_url: String::new(),
            session_idle_secs: 1800,
            session_max_secs: 43_200,
            link_secs: 3600,
            login_failures: 5,
            login_window_secs: 900,
            regions: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `switchboard_server=debug,info`.
    pub level: String,
    /// Seconds between "registrar status" lines (bindings, transactions, queues, drops).
    pub status_every_secs: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: "text".into(), level: "info".into(), status_every_secs: 60 }
    }
}

impl Config {
    /// The file's gateways in the store's form. Their ids are negative, so they never meet a stored gateway's.
    pub fn file_gateways(&self) -> Vec<switchboard_storage::Gateway> {
        (1..)
            .zip(&self.gateways)
            .map(|(i, g)| switchboard_storage::Gateway {
                id: -i,
                name: g.name.clone(),
                address: g.address.clone(),
                transport: g.transport.clone(),
                priority: g.priority,
                enabled: g.enabled,
                created_at: 0,
            })
            .collect()
    }

    /// Checks what serde cannot: values that parse but make no sense. The error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let r = &self.registrar;
        if r.min_expires == 0 || r.min_expires > r.max_expires {
            return Err("registrar.min_expires must be between 1 and registrar.max_expires".into());
        }
        if r.default_expires < r.min_expires || r.default_expires > r.max_expires {
            return Err("registrar.default_expires must lie between min_expires and max_expires".into());
        }
        if !(1..=3600).contains(&self.sip.overload_retry_after_secs) {
            return Err("sip.overload_retry_after_secs must be between 1 and 3600".into());
        }
        if r.trunk_max_contacts == 0 {
            return Err("registrar.trunk_max_contacts must be at least 1".into());
        }
        if self.keepalive.interval_secs == 0 {
            return Err("keepalive.interval_secs must be at least 1".into());
        }
        if self.keepalive.max_misses == 0 {
            return Err("keepalive.max_misses must be at least 1".into());
        }
        if self.keepalive.timeout_ms == 0 || self.keepalive.timeout_ms > self.keepalive.interval_secs * 1000 {
            return Err("keepalive.timeout_ms must be between 1 and keepalive.interval_secs * 1000".into());
        }
        if self.node.heartbeat_secs == 0 || self.node.heartbeat_secs > 3600 {
            return Err("node.heartbeat_secs must be between 1 and 3600".into());
        }
        let t = &self.tls;
        if t.cert.is_empty() != t.key.is_empty() {
            return Err("tls.cert and tls.key go together: set both (TLS on) or neither".into());
        }
        if !(100..=60_000).contains(&t.handshake_timeout_ms) {
            return Err("tls.handshake_timeout_ms must be between 100 and 60000".into());
        }
        if t.max_handshakes == 0 {
            return Err("tls.max_handshakes must be at least 1".into());
        }
        if t.enabled() && t.listen == self.sip.listen {
            return Err("tls.listen must differ from sip.listen".into());
        }
        if !t.wss_listen.trim().is_empty() && t.wss_listen.trim().parse::<SocketAddr>().is_err() {
            return Err(format!("tls.wss_listen must be IP:PORT or empty, not {:?}", t.wss_listen));
        }
        let c = &self.cluster;
        if !c.secret.is_empty() && c.secret.len() < 16 {
            return Err("cluster.secret must be at least 16 characters (or empty: no calls relayed)".into());
        }
        if !c.address.trim().is_empty() && c.address.trim().parse::<SocketAddr>().is_err() {
            return Err(format!("cluster.address must be IP:PORT, not {:?}", c.address));
        }
        if !c.secret.is_empty() && self.cluster_address().is_none() {
            return Err("cluster.address must be set when sip.listen does not name an address".into());
        }
        let a = &self.api;
        let url = a.public_url.trim_end_matches('/');
        let scheme = url.starts_with("https://") || url.starts_with("http://");
        if (!url.is_empty() && !scheme) || url.contains(['?', '#', ' ']) {
            return Err(format!("api.public_url must be http(s)://HOST[:PORT][/PATH], not {:?}", a.public_url));
        }
        if a.session_idle_secs == 0 || a.session_max_secs == 0 || a.link_secs == 0 || a.login_window_secs == 0 {
            return Err(
                "api.session_idle_secs, session_max_secs, link_secs and login_window_secs must be at least 1".into()
            );
        }
        if a.login_failures == 0 {
            return Err("api.login_failures must be at least 1".into());
        }
        if a.regions.iter().any(|r| r.name.trim().is_empty() || r.sip_address.trim().is_empty()) {
            return Err("api.regions: every region needs a name and a sip_address".into());
        }
        let m = &self.media;
        if m.anchor != "always" && m.anchor != "never" {
            return Err(format!("media.anchor must be \"always\" or \"never\", not {:?}", m.anchor));
        }
        if m.port_min < 1024 || m.port_max < m.port_min.saturating_add(3) {
            return Err("media.port_min must be at least 1024 and media.port_max at least port_min + 3".into());
        }
        if !m.advertise.is_empty() && m.advertise_ip().is_none() {
            return Err(format!("media.advertise must be an IP address, not {:?}", m.advertise));
        }
        if m.probation == 0 {
            return Err("media.probation must be at least 1".into());
        }
        let v = &self.voicemail;
        if v.enabled && v.dir.trim().is_empty() {
            return Err("voicemail.dir must name a folder".into());
        }
        if !(1..=3600).contains(&v.max_secs) {
            return Err("voicemail.max_secs must be between 1 and 3600".into());
        }
        if v.min_ms > v.max_secs * 1000 {
            return Err("voicemail.min_ms must not exceed voicemail.max_secs * 1000".into());
        }
        if v.silence_secs == 0 {
            return Err("voicemail.silence_secs must be at least 1".into());
        }
        let a = &self.alerts;
        if a.flap_count < 2 || a.flap_window_secs == 0 {
            return Err("alerts.flap_count must be at least 2 and alerts.flap_window_secs at least 1".into());
        }
        let m = &self.smtp;
        if !matches!(m.tls.as_str(), "none" | "starttls" | "tls") {
            return Err(format!("smtp.tls must be \"none\", \"starttls\" or \"tls\", not {:?}", m.tls));
        }
        if !m.host.is_empty() && (m.port == 0 || m.from.trim().is_empty()) {
            return Err("smtp.port must not be 0 and smtp.from must be set when smtp.host is".into());
        }
        if m.retry_min_secs == 0 || m.retry_max_secs < m.retry_min_secs {
            return Err("smtp.retry_min_secs must be at least 1 and at most smtp.retry_max_secs".into());
        }
        if m.max_attempts == 0 || m.timeout_secs == 0 {
            return Err("smtp.max_attempts and smtp.timeout_secs must be at least 1".into());
        }
        if v.pin_lock_after == 0 {
            return Err("voicemail.pin_lock_after must be at least 1".into());
        }
        if !(-720..=840).contains(&v.utc_offset_mins) {
            return Err("voicemail.utc_offset_mins must be between -720 and 840".into());
        }
        if self.auth.algorithms.is_empty() {
            return Err("auth.algorithms must name at least one algorithm".into());
        }
        for a in &self.auth.algorithms {
            if a.parse::<switchboard_sip_core::digest::Algorithm>().is_err() {
                return Err(format!("auth.algorithms: unknown algorithm {a:?} (use SHA-256, MD5, SHA-512-256)"));
            }
        }
        if self.auth.max_failures == 0 {
            return Err("auth.max_failures must be at least 1".into());
        }
        if self.auth.nonce_lifetime_secs == 0 {
            return Err("auth.nonce_lifetime_secs must be at least 1".into());
        }
        if self.sip.domain.is_empty() || self.sip.domain.contains(['"', ' ', '\\']) {
            return Err("sip.domain must be a host name".into());
        }
        if self.sip.max_message_bytes < 1024 || self.sip.max_message_bytes > 65_535 {
            return Err("sip.max_message_bytes must be between 1024 and 65535".into());
        }
        if self.sip.max_headers < 16 {
            return Err("sip.max_headers must be at least 16".into());
        }
        if self.sip.t1_ms == 0 {
            return Err("sip.t1_ms must be at least 1".into());
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err("log.format must be \"text\" or \"json\"".into());
        }
        let c = &self.calls;
        if c.max_ring_secs == 0 {
            return Err("calls.max_ring_secs must be at least 1".into());
        }
        if c.gateway_timeout_ms == 0 {
            return Err("calls.gateway_timeout_ms must be at least 1".into());
        }
        if c.gateway_check_secs == 0 {
            return Err("calls.gateway_check_secs must be at least 1".into());
        }
        if c.max_per_device == 0 || c.max_per_service == 0 {
            return Err("calls.max_per_device and calls.max_per_service must be at least 1".into());
        }
        c.voicemail_addr()?;
        let mut names = std::collections::HashSet::new();
        for (i, g) in self.gateways.iter().enumerate() {
            let at = format!("gateway[{i}]");
            if g.name.trim().is_empty() || !names.insert(g.name.as_str()) {
                return Err(format!("{at}.name must be present and unique (got {:?})", g.name));
            }
            let port_ok =
                g.address.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                return Err(format!("{at}.address must be IP:PORT or HOST:PORT (got {:?})", g.address));
            }
            if !matches!(g.transport.as_str(), "udp" | "tcp") {
                return Err(format!("{at}.transport must be \"udp\" or \"tcp\" (got {:?})", g.transport));
            }
        }
        if self.database.poll_ms == 0 {
            return Err("database.poll_ms must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_gateways(text: &str) -> Result<(), String> {
        let c: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate()
    }

    #[test]
    fn file_gateways_are_validated_field_by_field() {
        assert!(with_gateways("[[gateway]]\nname = \"a\"\naddress = \"192.0.2.1:5060\"\n").is_ok());
        let no_port = with_gateways("[[gateway]]\nname = \"a\"\naddress = \"192.0.2.1\"\n").unwrap_err();
        assert!(no_port.starts_with("gateway[0].address"), "{no_port}");
        let twice = "[[gateway]]\nname = \"a\"\naddress = \"192.0.2.1:5060\"\n[[gateway]]\nname = \"a\"\naddress = \"192.0.2.2:5060\"\n";
        assert!(with_gateways(twice).unwrap_err().starts_with("gateway[1].name"));
        let sctp = "[[gateway]]\nname = \"a\"\naddress = \"192.0.2.1:5060\"\ntransport = \"sctp\"\n";
        assert!(with_gateways(sctp).unwrap_err().starts_with("gateway[0].transport"));
        let typo = with_gateways("[[gateway]]\nname = \"a\"\nadress = \"192.0.2.1:5060\"\n").unwrap_err();
        assert!(typo.contains("adress"), "{typo}");
    }

    #[test]
    fn portal_settings_are_validated() {
        assert!(with_gateways("[api]\npublic_url = \"https://portal.example.net/\"\n").is_ok());
        for bad in ["portal.example.net", "ftp://x", "https://x/?next=y"] {
            let e = with_gateways(&format!("[api]\npublic_url = \"{bad}\"\n")).unwrap_err();
            assert!(e.starts_with("api.public_url"), "{e}");
        }
        assert!(with_gateways("[api]\nlink_secs = 0\n").unwrap_err().contains("link_secs"));
        let region = "[api]\n[[api.regions]]\nname = \"syd\"\nsip_address = \"\"\n";
        assert!(with_gateways(region).unwrap_err().starts_with("api.regions"));
        let shipped: Config = toml::from_str(include_str!("../../../config/switchboard.toml")).unwrap();
        assert_eq!(shipped.api, ApiConfig::default(), "the shipped file says the defaults");
    }

    #[test]
    fn file_gateways_get_ids_no_stored_gateway_has() {
        let c: Config = toml::from_str(
            "[[gateway]]\nname = \"a\"\naddress = \"192.0.2.1:5060\"\n[[gateway]]\nname = \"b\"\naddress = \"192.0.2.2:5060\"\n",
        )
        .unwrap();
        let ids: Vec<i64> = c.file_gateways().iter().map(|g| g.id).collect();
        assert_eq!(ids, [-1, -2]);
    }
}
