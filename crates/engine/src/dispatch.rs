//! The engine: one state machine that owns the transaction layer, the registrar, the authenticator, the
//! directory, the keepalive prober and the call table, and turns each event (a message, a directory change, the
//! passing of time) into outputs (bytes to send, records to persist, device events).
//!
//! It never waits and never touches a socket, the clock or the database: `now` (Unix milliseconds) comes with
//! every event, and what the network must answer (our address as a peer sees it, a device's TCP connection)
//! comes through [`Network`]. The server's event loop feeds it; tests feed it on virtual time.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use switchboard_model::records::{BindingOp, DeviceAuth, DeviceState, Gateway};
use switchboard_registrar::{
    Binding, OfflineReason, Output as RegistrarOutput, RegisterRequest, RegisterResult, Registrar,
};
use switchboard_sip_core::header::{contacts, parse_delta_seconds, top_via};
use switchboard_sip_core::transaction::{self, AnswerMemory, Incoming, TimerConfig, TransactionLayer};
use switchboard_sip_core::transport::{FlowId, Peer, Proto};
use switchboard_sip_core::validate::{Essentials, check_request, check_response, response_to};
use switchboard_sip_core::{HeaderName, Headers, Message, Method};

use crate::auth::{Asking, AuthOutcome, Authenticator, Why};
use crate::calls::{CallLimits, CallTable};
use crate::directory::{CachedDevice, Change, DeviceCache, NumberCache};
use crate::overload::{Overload, OverloadConfig, Transition, is_new_work};
use crate::prober::{ProbeEvent, Prober};
use crate::records::{Persist, stored_millis, to_stored};
use crate::responses::response_peer;
use switchboard_sip_core::rng::Rng;

pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, MESSAGE, NOTIFY, REGISTER, SUBSCRIBE";
/// The reason phrase for a device that must use TLS and did not.
pub(crate) const TLS_REQUIRED: &str = "TLS Required";
/// Option tags we support (RFC 3327 Path).
const SUPPORTED: &[&str] = &["path"];

/// What the engine needs to know of the network it cannot decide itself.
pub trait Network: Send {
    /// Our `ip:port` as a peer at `peer` sees it over `proto` (the TLS and WebSocket listeners have their own
    /// ports): for Via, Contact and the sent-by of requests we originate.
    fn sent_by(&mut self, peer: IpAddr, proto: Proto) -> SocketAddr;
    /// The open TCP connection from `addr`, if any (a device registered over TCP is reached through it).
    fn flow_for(&self, addr: SocketAddr) -> Option<FlowId>;
}

/// A device came online or went offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    pub device_id: i64,
    pub online: bool,
    /// Unix milliseconds.
    pub at: u64,
    pub reason: Option<OfflineReason>,
}

/// What the engine asks of the world.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // drained at once after each event; boxing would add an allocation per REGISTER
pub enum Output {
    /// Bytes for a peer (over TCP, its connection when still open).
    Send { peer: Peer, bytes: Vec<u8> },
    /// A change for the store, in order (write-behind).
    Persist(Persist),
    /// For whoever listens (offline divert, alert email).
    Device(DeviceEvent),
    /// For the media relay.
    Media(switchboard_media_core::relay::Command),
    /// For the outbox (offline alerts).
    Email(switchboard_model::records::NewEmail),
}

/// The engine's settings, in its own terms (the server maps its configuration to them).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Our SIP domain: the realm, and the host of the URIs we make.
    pub domain: String,
    /// This node's name, in the records it writes.
    pub node: String,
    /// The Server and User-Agent header value.
    pub server_header: String,
    /// RFC 3261 T1, milliseconds.
    pub t1_ms: u64,
    /// How long a keepalive probe waits for any answer, milliseconds.
    pub keepalive_timeout_ms: u64,
    pub overload: OverloadConfig,
    /// Seconds a client is asked to wait in a 503 (overload, node call limit).
    pub retry_after_secs: u32,
    pub calls: switchboard_b2bua::CallConfig,
    pub limits: CallLimits,
    /// Where calls diverted to voicemail go, if voicemail is configured.
    pub voicemail: Option<SocketAddr>,
    /// Media anchoring; `None`: SDP passes through and media flows end to end.
    pub media: Option<crate::media::MediaSettings>,
    pub alerts: crate::alerts::AlertSettings,
    /// The secret the nodes of the cluster share (`cluster.secret`); empty: no calls are relayed either way.
    pub cluster_secret: String,
}

/// What the server loaded before the engine starts.
#[derive(Debug)]
pub struct Loaded {
    /// With the stored bindings restored.
    pub registrar: Registrar,
    pub auth: Authenticator,
    pub devices: DeviceCache,
    pub numbers: NumberCache,
    /// Each gateway with the address its name resolved to (off the engine).
    pub gateways: Vec<(Gateway, Option<SocketAddr>)>,
    /// Each device's last successful authentication, as stored.
    pub auth_seen: Vec<DeviceAuth>,
    /// Seeds tags, Call-IDs and branches (unique, not secret).
    pub seed: u64,
}

/// How a request is answered: through its server transaction, or statelessly straight to the peer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reply {
    Transaction(transaction::Key),
    /// To this peer; the second field identifies the request in the memory of stateless answers (0: none).
    Stateless(Peer, u64),
}

/// Counters for the periodic status line (and metrics later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub devices: usize,
    pub bindings: usize,
    pub transactions: usize,
    pub calls: usize,
    pub probes_in_flight: usize,
    pub nonces_tracked: usize,
    pub retransmissions_answered: u64,
    pub overload_episodes: u64,
    pub shed_requests: u64,
    /// Relay port pairs held by calls (two per anchored call).
    pub media_port_pairs: usize,
    /// Message-waiting subscriptions held.
    pub mwi_subscriptions: usize,
    /// Devices with at least one live binding that answers.
    pub devices_online: usize,
    /// Other nodes of the cluster that are up.
    pub cluster_nodes: usize,
    /// Devices bound on other nodes (calls to them are relayed there).
    pub remote_devices: usize,
    /// Each gateway's name and whether its last health check passed.
    pub gateways: Vec<(String, bool)>,
    pub counters: crate::counters::Counters,
}

pub struct Engine {
    pub(crate) settings: Settings,
    pub(crate) net: Box<dyn Network>,
    pub(crate) registrar: Registrar,
    pub(crate) tx: TransactionLayer<Peer>,
    pub(crate) auth: Authenticator,
    pub(crate) devices: DeviceCache,
    pub(crate) numbers: NumberCache,
    pub(crate) calls: CallTable,
    pub(crate) prober: Prober,
    pub(crate) rng: Rng,
    pub(crate) media: Option<crate::media::Media>,
    pub(crate) mwi: crate::mwi::Mwi,
    pub(crate) alerts: crate::alerts::Alerts,
    pub(crate) counters: crate::counters::Counters,
    pub(crate) cluster: crate::cluster::Cluster,
    /// Keys the hash behind To tags of stateless responses.
    tag_key: u64,
    /// What each recent stateless answer was, so a retransmission gets it again.
    answers: AnswerMemory,
    /// Sheds new work when messages queue too long.
    overload: Overload,
    /// Each device's last successful authentication, as stored (written again only when it changes).
    pub(crate) auth_seen: HashMap<i64, DeviceAuth>,
    pub(crate) out: Vec<Output>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("node", &self.settings.node).finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(settings: Settings, loaded: Loaded, net: Box<dyn Network>) -> Self {
        let Loaded { registrar, mut auth, devices, numbers, gateways, auth_seen, seed } = loaded;
        for a in &auth_seen {
            if let (Some(d), Ok(ip)) = (devices.by_id(a.device_id), a.source.parse()) {
                auth.seed_last_good(&d.device.auth_id, ip);
            }
        }
        let mut rng = Rng::new(seed);
        let timers = TimerConfig { t1: settings.t1_ms, ..TimerConfig::default() };
        Engine {
            registrar,
            tx: TransactionLayer::new(timers),
            auth,
            devices,
            numbers,
            calls: CallTable::new(settings.calls.clone(), settings.limits.clone(), settings.voicemail, gateways),
            prober: Prober::new(settings.t1_ms, settings.keepalive_timeout_ms),
            media: settings.media.as_ref().map(crate::media::Media::new),
            mwi: crate::mwi::Mwi::default(),
            alerts: crate::alerts::Alerts::new(settings.alerts),
            counters: crate::counters::Counters::default(),
            cluster: crate::cluster::Cluster::new(&settings.cluster_secret, &settings.node),
            tag_key: rng.next_u64(),
            rng,
            // Timer J's 64*T1, bounded in count: at full load it still spans the first retransmissions.
            answers: AnswerMemory::new(32_768, 64 * settings.t1_ms),
            overload: Overload::new(settings.overload),
            auth_seen: auth_seen.into_iter().map(|a| (a.device_id, a)).collect(),
            out: Vec::new(),
            net,
            settings,
        }
    }

    /// When the engine next needs [`Engine::on_timeout`], if ever.
    pub fn poll_timeout(&self) -> Option<u64> {
        [
            self.registrar.poll_timeout(),
            self.tx.poll_timeout(),
            self.prober.poll_timeout(),
            self.calls.poll_timeout(),
            self.mwi.poll_timeout(),
            self.alerts.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// What the engine asked for since the last call, in order.
    pub fn drain_outputs(&mut self) -> std::vec::Drain<'_, Output> {
        self.out.drain(..)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            devices: self.devices.len(),
            bindings: self.registrar.binding_count(),
            transactions: self.tx.len(),
            calls: self.calls.len(),
            probes_in_flight: self.prober.in_flight(),
            nonces_tracked: self.auth.nonces_tracked(),
            retransmissions_answered: self.answers.recalled(),
            overload_episodes: self.overload.episodes(),
            shed_requests: self.overload.shed(),
            media_port_pairs: self.media.as_ref().map_or(0, crate::media::Media::in_use),
            mwi_subscriptions: self.mwi.subscriptions(),
            devices_online: self.registrar.online_count(),
            cluster_nodes: self.cluster.live_nodes(),
            remote_devices: self.cluster.remote_devices(),
            gateways: self.calls.gateway_health(),
            counters: self.counters.clone(),
        }
    }

    /// How long a message waited between the socket and the engine (`waited_us`), at `now_us` on any monotonic
    /// scale: feeds the overload controller.
    pub fn on_queue_delay(&mut self, waited_us: u64, now_us: u64) {
        match self.overload.on_dequeue(waited_us, now_us) {
            Some(Transition::Began { min_delay_us }) => tracing::warn!(
                queued_ms = min_delay_us / 1000,
                retry_after_secs = self.settings.retry_after_secs,
                "overloaded: requests queue too long; new requests are refused with 503 until the queue drains"
            ),
            Some(Transition::Ended { lasted_us, shed }) => {
                tracing::warn!(lasted_ms = lasted_us / 1000, shed_so_far = shed, "overload over");
            }
            None => {}
        }
    }

    /// A message from `peer`, read on our socket `local`.
    pub fn on_message(&mut self, msg: Message, peer: Peer, local: SocketAddr, now: u64) {
        self.on_inbound(msg, peer, local, now);
        self.flush(now);
    }

    /// Fires whatever is due at `now`.
    pub fn on_timeout(&mut self, now: u64) {
        self.tx.on_timeout(now);
        self.flush_transactions(now);
        self.on_call_timeouts(now);
        self.mwi_timeouts(now);
        self.registrar.on_timeout(now);
        self.alert_timeouts(now);
        for e in self.prober.on_timeout(now) {
            match e {
                ProbeEvent::Resend { peer, bytes } => self.send(peer, bytes),
                ProbeEvent::Failed { device_id, key } => {
                    self.registrar.on_probe_result(device_id, &key, false, now);
                }
            }
        }
        self.flush(now);
    }

    /// What the server read of the other nodes: the live ones, and where their devices are bound. A binding this
    /// node holds that has since been made on another node (the device moved) is dropped here, quietly: its row
    /// and the device's liveness are the other node's now.
    ///
    /// When a node stops, the first live node by name reports its stranded devices offline (state and alerts),
    /// and watches them until they are bound again somewhere.
    pub fn on_cluster(&mut self, view: crate::cluster::ClusterView, now: u64) {
        let crate::cluster::Updated { seen, stopped } = self.cluster.update(view, now);
        for (device_id, key, updated_at) in seen {
            if self.registrar.forget(device_id, &key, updated_at) {
                tracing::info!(device = device_id, "binding re-registered on another node; dropped here");
            }
        }
        if !stopped.is_empty() {
            tracing::warn!(nodes = ?stopped, "nodes stopped (heartbeat lapsed): their bindings are stale");
            if self.cluster.leads() {
                for device_id in self.cluster.stranded(&stopped) {
                    if self.registrar.bindings(device_id).is_empty() {
                        self.cluster.mark(device_id);
                        self.device_state(device_id, false, now, Some(OfflineReason::NodeStopped));
                    }
                }
            }
        }
        for device_id in self.cluster.back() {
            // Bound on a live node again: a new one, or its own node back after its heartbeat lapsed (a slow
            // database). The state written here as offline is made right, and the alert watch ends.
            self.device_state(device_id, true, now, None);
        }
        self.flush(now);
    }

    /// A device, number or the gateway list changed in the store.
    pub fn on_change(&mut self, change: Change, now: u64) {
        match change {
            Change::Upsert(d) => {
                tracing::debug!(auth_id = %d.device.auth_id, "device updated");
                if d.requires_tls() {
                    let secure = |b: &Binding| Proto::parse(&b.transport).is_secure();
                    self.registrar.retain_bindings(d.device.id, now, secure);
                }
                self.devices.upsert(*d);
            }
            Change::Removed(id) => {
                tracing::debug!(device = id, "device removed");
                self.devices.remove(id);
                self.registrar.remove_device(id, now);
            }
            Change::Number(n) => {
                tracing::debug!(number = %n.number.number, "number updated");
                self.numbers.upsert(*n);
            }
            Change::NumberRemoved(id) => self.numbers.remove(id),
            Change::Gateways(list) => {
                tracing::info!(gateways = list.len(), "gateway list reloaded");
                self.calls.set_gateways(list);
            }
        }
        self.flush(now);
    }

    /// The daemon is stopping: every call ends (callers and callees hear BYE or a final response) and the
    /// active-call rows are written.
    pub fn shutdown(&mut self, now: u64) {
        self.end_all_calls(now);
        self.flush_active_calls();
        self.flush(now);
    }

    fn on_inbound(&mut self, msg: Message, peer: Peer, local: SocketAddr, now: u64) {
        if msg.is_request() {
            let reply_peer = response_peer(&msg, peer);
            // REGISTER is answered without transaction state (a stateless UAS, RFC 3261 §8.2.7): a challenge
            // needs none, and a retransmitted REGISTER is recognised (see below and the auth module) and
            // answered again without being applied. At 15,000 registrations a second over UDP, Timer J would
            // otherwise hold half a million transactions.
            if msg.method() == Some(&Method::Register) && top_via(&msg.headers).is_ok() {
                // A retransmission gets the answer the original got, without being looked at again. The source
                // (with its port, and its connection over TCP) is part of the identity: two connections from one
                // address are two clients.
                let memo = self.answers.key(peer, &msg.headers).unwrap_or(0);
                if let Some(answer) = self.answers.recall(memo, now) {
                    let bytes = answer.to_vec();
                    return self.send(reply_peer, bytes);
                }
                return self.on_request(Reply::Stateless(reply_peer, memo), msg, peer, local, now);
            }
            match self.tx.on_request(msg, reply_peer, peer.proto.is_reliable(), now) {
                Some(Incoming::Request { key, msg }) => {
                    tracing::trace!(method = ?msg.method(), source = %peer.addr, "request");
                    self.on_request(Reply::Transaction(key), msg, peer, local, now);
                }
                Some(Incoming::Cancel { key, invite, msg }) => {
                    if !invite.is_some_and(|inv| self.on_call_cancel(key, inv, &msg, now)) {
                        self.on_request(Reply::Transaction(key), msg, peer, local, now);
                    }
                }
                // An ACK for a 2xx of ours (RFC 6026 §8.7), or a stray one.
                Some(Incoming::StrayAck(msg)) => self.on_dialog_ack(msg, now),
                Some(_) | None => {}
            }
        } else {
            // RFC 3261 §8.1.3.3, §18.1.2: a malformed response, or one with more than one Via, is not for us.
            if let Err(e) = check_response(&msg) {
                tracing::debug!(source = %peer.addr, error = %e, "response dropped");
                return;
            }
            if msg.headers.get_list(&HeaderName::Via).count() > 1 {
                tracing::debug!(source = %peer.addr, "response with several Vias dropped");
                return;
            }
            let branch = top_via(&msg.headers).ok().and_then(|v| v.branch().map(str::to_owned));
            if let Some((device_id, key)) = branch.and_then(|b| self.prober.on_response(&b)) {
                self.registrar.on_probe_result(device_id, &key, true, now);
                return;
            }
            match self.tx.on_response(msg, now) {
                // A response to an MWI NOTIFY is taken by the guard; any other goes to the calls.
                Some(Incoming::Response { key, msg }) if !self.mwi_response(key, msg.status()) => {
                    self.on_call_response(key, msg, now);
                }
                Some(Incoming::StrayResponse(m)) => {
                    tracing::debug!(status = ?m.status(), source = %peer.addr, "response matching no transaction dropped");
                }
                _ => {}
            }
        }
    }

    fn on_request(&mut self, key: Reply, msg: Message, peer: Peer, local: SocketAddr, now: u64) {
        let method = msg.method().cloned().unwrap_or(Method::Extension(String::new()));
        if method == Method::Ack {
            return; // an ACK outside any transaction of ours: nothing to do
        }
        let ess = match check_request(&msg) {
            Ok(e) => e,
            Err(rej) => return self.reply(key, &msg, rej.code, &rej.reason, Vec::new(), now),
        };
        // RFC 3261 §8.2.2.3: refuse extensions we do not support (never for CANCEL).
        if method != Method::Cancel {
            let unsupported: Vec<&str> = msg
                .headers
                .get_list(&HeaderName::Require)
                .filter(|t| !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(t)))
                .collect();
            if !unsupported.is_empty() {
                let extra = vec![(HeaderName::Unsupported, unsupported.join(", "))];
                return self.reply(key, &msg, 420, "Bad Extension", extra, now);
            }
        }
        if self.overload.is_overloaded() && is_new_work(&msg) {
            self.overload.on_shed();
            let extra = vec![(HeaderName::RetryAfter, self.settings.retry_after_secs.to_string())];
            return self.reply(key, &msg, 503, "Service Unavailable", extra, now);
        }
        let in_dialog = ess.to.tag().is_some();
        match (method, key) {
            (Method::Register, _) => self.on_register(key, &msg, ess, peer, local, now),
            (Method::Invite, Reply::Transaction(k)) => self.on_invite(k, msg, ess, peer, now),
            (Method::Subscribe, Reply::Transaction(k)) if !in_dialog || self.is_mwi_dialog(&ess) => {
                self.on_subscribe(k, msg, ess, peer, now);
            }
            (
                Method::Bye
                | Method::Info
                | Method::Update
                | Method::Message
                | Method::Notify
                | Method::Options
                | Method::Prack
                | Method::Refer
                | Method::Subscribe,
                Reply::Transaction(k),
            ) if in_dialog => self.on_dialog_request(k, msg, now),
            (Method::Options, _) => {
                let extra = vec![
                    (HeaderName::Allow, ALLOW.to_owned()),
                    (HeaderName::Accept, "application/sdp".to_owned()),
                    (HeaderName::Supported, SUPPORTED.join(", ")),
                ];
                self.reply(key, &msg, 200, "OK", extra, now);
            }
            (Method::Cancel | Method::Bye, _) => {
                self.reply(key, &msg, 481, "Call/Transaction Does Not Exist", Vec::new(), now);
            }
            (Method::Extension(_), _) => self.reply(key, &msg, 501, "Not Implemented", Vec::new(), now),
            _ => {
                let extra = vec![(HeaderName::Allow, ALLOW.to_owned())];
                self.reply(key, &msg, 405, "Method Not Allowed", extra, now);
            }
        }
    }

    fn on_register(&mut self, key: Reply, msg: &Message, ess: Essentials, peer: Peer, local: SocketAddr, now: u64) {
        let devices = &self.devices;
        let registrar = &self.registrar;
        let request = match key {
            Reply::Stateless(_, memo) => memo,
            Reply::Transaction(_) => 0,
        };
        let asking = Asking { method: "REGISTER", source: peer.addr, call_id: &ess.call_id, request };
        let outcome = self.auth.check(
            msg.headers.get_all(&HeaderName::Authorization),
            asking,
            |id| devices.get(id),
            |d| registrar.bindings(d.device.id).iter().any(|b| b.call_id == ess.call_id && b.cseq == ess.cseq.seq),
            now,
        );
        self.counters.on_auth(&outcome, true);
        let device = match outcome {
            AuthOutcome::Authenticated(d, algorithm) => {
                self.note_auth(&d, algorithm, msg, peer.addr, now);
                if d.requires_tls() && !peer.proto.is_secure() {
                    // Told only once the credentials are right: a stranger learns nothing of the device.
                    tracing::info!(device = %d.device.name, source = %peer.addr, "REGISTER over an insecure transport refused");
                    return self.reply(key, msg, 403, TLS_REQUIRED, Vec::new(), now);
                }
                d
            }
            AuthOutcome::Retransmission(d) => {
                // The request was applied when it first came: answer with the bindings as they are.
                let extra = self.binding_headers(d.device.id, &msg.headers, now);
                return self.reply(key, msg, 200, "OK", extra, now);
            }
            AuthOutcome::Challenge { stale, why } => {
                let first = msg.headers.get(&HeaderName::Authorization).is_none();
                if why != Why::NoCredentials {
                    tracing::debug!(?why, call_id = %ess.call_id, source = %peer.addr, "REGISTER challenged again");
                }
                let named = self.named_device(&ess);
                let extra = self
                    .auth
                    .challenges(stale, first, asking, named.as_deref(), now)
                    .into_iter()
                    .map(|c| (HeaderName::WwwAuthenticate, c))
                    .collect();
                return self.reply(key, msg, 401, "Unauthorized", extra, now);
            }
            AuthOutcome::Throttled => return self.reply(key, msg, 403, "Too Many Failed Attempts", Vec::new(), now),
            AuthOutcome::Malformed(reason) => return self.reply(key, msg, 400, reason, Vec::new(), now),
        };
        let contacts = match contacts(&msg.headers) {
            Ok(c) => c,
            Err(e) => {
                self.counters.registration("refused");
                return self.reply(key, msg, 400, &e.to_string(), Vec::new(), now);
            }
        };
        let expires = match msg.headers.get(&HeaderName::Expires) {
            None => None,
            Some(v) => match parse_delta_seconds(v) {
                Some(e) => Some(e),
                None => {
                    self.counters.registration("refused");
                    return self.reply(key, msg, 400, "Malformed Expires Header", Vec::new(), now);
                }
            },
        };
        let path: Vec<String> = msg.headers.get_list(&HeaderName::Path).map(str::to_owned).collect();
        let req = RegisterRequest {
            device_id: device.device.id,
            max_contacts: device.max_contacts(),
            aor: ess.to.uri.clone(),
            call_id: ess.call_id.clone(),
            cseq: ess.cseq.seq,
            contacts,
            expires,
            source: peer.addr.to_string(),
            transport: peer.proto.as_str().to_owned(),
            local: local.to_string(),
            path,
            user_agent: msg.headers.get(&HeaderName::UserAgent).map(str::to_owned),
        };
        match self.registrar.on_register(req, now) {
            RegisterResult::Ok(_) => {
                self.counters.registration("ok");
                let extra = self.binding_headers(device.device.id, &msg.headers, now);
                self.reply(key, msg, 200, "OK", extra, now);
            }
            RegisterResult::IntervalTooBrief(min) => {
                self.counters.registration("refused");
                let extra = vec![(HeaderName::MinExpires, min.to_string())];
                self.reply(key, msg, 423, "Interval Too Brief", extra, now);
            }
            RegisterResult::Rejected { code, reason } => {
                self.counters.registration("refused");
                self.reply(key, msg, code, reason, Vec::new(), now);
            }
        }
    }

    /// The device a request names: the user of its To URI (a REGISTER's address-of-record), else of its From.
    /// Only a hint for which challenge to offer; nothing is revealed by it (see the auth module).
    pub(crate) fn named_device(&self, ess: &Essentials) -> Option<Arc<CachedDevice>> {
        [&ess.to, &ess.from].into_iter().find_map(|addr| self.devices.get(&crate::calls::user_of(&addr.uri)?))
    }

    /// Records what a device authenticated with (algorithm, User-Agent, address), writing it only when it
    /// changed: `device show` and `registrations` tell the operator which devices still use MD5.
    pub(crate) fn note_auth(
        &mut self,
        d: &CachedDevice,
        algorithm: switchboard_sip_core::digest::Algorithm,
        msg: &Message,
        source: SocketAddr,
        now: u64,
    ) {
        // Every authentication passes here: compare first, allocate only for a change.
        // At most 200 characters of the User-Agent are kept.
        let user_agent = msg
            .headers
            .get(&HeaderName::UserAgent)
            .map(|u| u.char_indices().nth(200).and_then(|(end, _)| u.get(..end)).unwrap_or(u));
        let same = self.auth_seen.get(&d.device.id).is_some_and(|a| {
            a.algorithm == algorithm.as_str()
                && a.user_agent.as_deref() == user_agent
                && a.source.parse::<IpAddr>().is_ok_and(|ip| ip == source.ip())
        });
        if same {
            return;
        }
        let record = DeviceAuth {
            device_id: d.device.id,
            algorithm: algorithm.as_str().to_owned(),
            user_agent: user_agent.map(str::to_owned),
            source: source.ip().to_string(),
            since: stored_millis(now),
        };
        tracing::info!(
            auth_id = %d.device.auth_id, algorithm = %record.algorithm, user_agent = ?record.user_agent,
            source = %record.source, "device authenticates differently from before"
        );
        self.auth_seen.insert(d.device.id, record.clone());
        self.persist(Persist::Auth(record));
    }

    /// The headers of a 200 to REGISTER (RFC 3261 §10.3 step 8): every current binding with its remaining expiry,
    /// the Path the request carried (RFC 3327 §5.3), and the Date.
    fn binding_headers(&self, device_id: i64, req: &Headers, now: u64) -> Vec<(HeaderName, String)> {
        let mut extra: Vec<(HeaderName, String)> =
            self.registrar.bindings(device_id).iter().map(|b| (HeaderName::Contact, b.contact_value(now))).collect();
        extra.extend(req.get_list(&HeaderName::Path).map(|p| (HeaderName::Path, p.to_owned())));
        extra.push((HeaderName::Date, crate::date::httpdate(now)));
        extra
    }

    /// RFC 3261 §8.2.7: a stateless UAS gives a retransmitted request the same To tag, so the tag is a keyed hash
    /// of what identifies the request.
    fn stateless_tag(&self, h: &Headers) -> String {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut hasher = DefaultHasher::new();
        self.tag_key.hash(&mut hasher);
        for name in [HeaderName::CallId, HeaderName::CSeq, HeaderName::From] {
            h.get(&name).hash(&mut hasher);
        }
        top_via(h).ok().and_then(|v| v.branch().map(str::to_owned)).hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }

    pub(crate) fn reply(
        &mut self,
        key: Reply,
        req: &Message,
        code: u16,
        reason: &str,
        extra: Vec<(HeaderName, String)>,
        now: u64,
    ) {
        let tag = match key {
            Reply::Transaction(_) => self.rng.token(),
            Reply::Stateless(..) => self.stateless_tag(&req.headers),
        };
        let mut resp = response_to(&req.headers, code, reason, Some(&tag));
        for (name, value) in extra {
            resp.headers.push(name, value);
        }
        resp.headers.push(HeaderName::Server, self.settings.server_header.clone());
        match key {
            Reply::Transaction(key) => {
                if let Err(e) = self.tx.respond(key, resp, now) {
                    tracing::debug!(error = %e, "response not sent");
                }
            }
            Reply::Stateless(peer, memo) => {
                let bytes = resp.to_bytes();
                if memo != 0 {
                    self.answers.remember(memo, bytes.as_slice(), now);
                }
                self.send(peer, bytes);
            }
        }
    }

    pub(crate) fn send(&mut self, peer: Peer, bytes: Vec<u8>) {
        self.out.push(Output::Send { peer, bytes });
    }

    pub(crate) fn persist(&mut self, p: Persist) {
        if let Persist::Cdr(cdr) = &p {
            self.counters.on_cdr(cdr);
        }
        self.out.push(Output::Persist(p));
    }

    /// Turns what the cores queued into outputs: sends, persistence, probes and device events.
    pub(crate) fn flush(&mut self, now: u64) {
        self.flush_transactions(now);
        for out in self.registrar.drain_outputs() {
            match out {
                RegistrarOutput::Upsert(b) => {
                    let stored = to_stored(&b, &self.settings.node);
                    self.persist(Persist::Binding(BindingOp::Upsert(stored)));
                    self.mwi_on_register(&b, now);
                }
                RegistrarOutput::Remove { device_id, contact } => {
                    let node = self.settings.node.clone();
                    self.persist(Persist::Binding(BindingOp::Remove { device_id, contact, node }));
                }
                RegistrarOutput::Probe(b) => self.probe(&b, now),
                RegistrarOutput::DeviceOnline { device_id, at } => self.device_state(device_id, true, at, None),
                RegistrarOutput::DeviceOffline { device_id, at, reason } => {
                    self.device_state(device_id, false, at, Some(reason));
                }
            }
        }
        // What the registrar's outputs started (MWI NOTIFYs after a REGISTER) goes out now.
        self.flush_transactions(now);
    }

    /// Sends what the transaction layer queued and tells calls of timeouts and ended transactions (which may
    /// queue more).
    pub(crate) fn flush_transactions(&mut self, now: u64) {
        while let Some(out) = self.tx.poll_output() {
            match out {
                transaction::Output::Send { peer, bytes, .. } => self.send(peer, bytes),
                transaction::Output::Timeout { key } => {
                    if !self.mwi_response(key, None) {
                        self.on_call_request_timeout(key, now);
                    }
                }
                transaction::Output::Terminated { key } => {
                    self.mwi_transaction_ended(key);
                    self.on_transaction_ended(key);
                }
            }
        }
    }

    fn device_state(&mut self, device_id: i64, online: bool, at: u64, reason: Option<OfflineReason>) {
        tracing::info!(device = device_id, online, ?reason, "device state changed");
        self.persist(Persist::State(DeviceState { device_id, online, since: stored_millis(at) }));
        self.out.push(Output::Device(DeviceEvent { device_id, online, at, reason }));
        self.alert_on_device(device_id, online, at, reason);
    }

    /// Sends a keepalive OPTIONS to a binding, over UDP or over the device's own TCP connection. Any response
    /// proves the device is there. On TCP this is used rather than a CRLF ping (RFC 5626 §3.5.1) because only
    /// clients that negotiated outbound answer pings, while every UA must answer OPTIONS; a device whose TCP
    /// connection is gone is a miss at once.
    fn probe(&mut self, b: &Binding, now: u64) {
        let Ok(addr) = b.source.parse::<SocketAddr>() else { return };
        let Some(peer) = self.binding_peer(b) else {
            return self.registrar.on_probe_result(b.device_id, &b.key, false, now);
        };
        let branch = transaction::new_branch(self.rng.next_u64());
        let sent_by = self.net.sent_by(addr.ip(), peer.proto);
        let proto = peer.proto.via_name();
        let mut m = Message::request(Method::Options, b.contact.clone());
        let domain = &self.settings.domain;
        let h = &mut m.headers;
        h.push(HeaderName::Via, format!("SIP/2.0/{proto} {sent_by};branch={branch};rport"));
        h.push(HeaderName::MaxForwards, "70");
        // RFC 3327 §5.2: requests to a registered contact carry its Path as Route.
        for p in &b.path {
            h.push(HeaderName::Route, p.clone());
        }
        h.push(HeaderName::To, format!("<{}>", b.contact));
        h.push(HeaderName::From, format!("<sip:keepalive@{domain}>;tag={}", self.rng.token()));
        h.push(HeaderName::CallId, format!("{}@{domain}", self.rng.token()));
        h.push(HeaderName::CSeq, "1 OPTIONS");
        h.push(HeaderName::UserAgent, self.settings.server_header.clone());
        let bytes = m.to_bytes();
        self.send(peer, bytes.clone());
        self.prober.sent(branch, b.device_id, b.key.clone(), peer, bytes, now);
    }

    /// Where requests to a binding go: its source over UDP, or its own connection (TCP, TLS, WebSocket). `None`:
    /// a stream binding whose connection is gone, or a source that does not parse.
    pub(crate) fn binding_peer(&self, b: &Binding) -> Option<Peer> {
        let addr = b.source.parse::<SocketAddr>().ok()?;
        let proto = Proto::parse(&b.transport);
        if proto.is_reliable() {
            let flow = self.net.flow_for(addr)?;
            Some(Peer { addr, proto, flow: Some(flow) })
        } else {
            Some(Peer { addr, proto: Proto::Udp, flow: None })
        }
    }

    /// Where a leg to `peer` goes, and our address as seen from there.
    pub(crate) fn hop(&mut self, peer: Peer) -> crate::calls::SipHop {
        let sent_by = self.net.sent_by(peer.addr.ip(), peer.proto);
        crate::calls::SipHop { peer, sent_by: sent_by.to_string().into() }
    }
}
