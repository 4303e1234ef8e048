//! The registrar driver: one task that owns the transaction layer, the registrar, the authenticator, the device
//! directory and the keepalive prober, and feeds them messages, device updates and time.
//!
//! Nothing in this task waits on the network or the database: sends are non-blocking and persistence is queued
//! to the write-behind task, so one slow peer or a slow disk cannot stall registration for everyone else.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use switchboard_engine::overload::Transition;
use switchboard_engine::responses::response_peer;
use switchboard_engine::{Overload, is_new_work};
use switchboard_registrar::{Binding, OfflineReason, Output, RegisterRequest, RegisterResult, Registrar};
use switchboard_sip_core::header::{contacts, parse_delta_seconds, top_via};
use switchboard_sip_core::transaction::{self, AnswerMemory, Incoming, TransactionLayer};
use switchboard_sip_core::validate::{Essentials, check_request, check_response, response_to};
use switchboard_sip_core::{HeaderName, Headers, Message, Method};
use switchboard_sip_io::{Inbound, Peer, Proto, Transport};
use switchboard_storage::{BindingOp, DeviceAuth, DeviceState};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::calls::CallTable;
use crate::clock::Clock;
use crate::devices::{CachedDevice, DeviceCache, DeviceUpdate, NumberCache};
use crate::writer::{WriteOp, WriteQueue};
use crate::{DeviceEvent, Rng, httpdate};
use switchboard_engine::auth::{Asking, AuthOutcome, Authenticator, Why};
use switchboard_engine::prober::{ProbeEvent, Prober};

pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, MESSAGE, NOTIFY, REGISTER";
/// Option tags we support (RFC 3327 Path).
const SUPPORTED: &[&str] = &["path"];

/// How a request is answered: through its server transaction, or statelessly straight to the peer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reply {
    Transaction(transaction::Key),
    /// To this peer; the second field identifies the request in the memory of stateless answers (0: none).
    Stateless(Peer, u64),
}

pub(crate) struct Core {
    pub domain: String,
    pub node: String,
    pub server_header: String,
    pub transport: Arc<Transport>,
    pub registrar: Registrar,
    pub tx: TransactionLayer<Peer>,
    pub auth: Authenticator,
    pub devices: DeviceCache,
    pub numbers: NumberCache,
    pub calls: CallTable,
    pub prober: Prober,
    pub writer: WriteQueue,
    pub events: broadcast::Sender<DeviceEvent>,
    pub clock: Clock,
    pub rng: Rng,
    /// Our address as seen from each peer address (route lookup), for Via in requests we originate.
    pub local_ips: HashMap<IpAddr, IpAddr>,
    /// How often the status line is logged.
    pub stats_every_secs: u64,
    /// Keys the hash behind To tags of stateless responses.
    pub tag_key: std::collections::hash_map::RandomState,
    /// What each recent stateless answer was, so a retransmission gets it again.
    pub answers: AnswerMemory,
    /// Sheds new work when messages queue too long.
    pub overload: Overload,
    /// Seconds a client is asked to wait in a 503 sent under overload.
    pub retry_after_secs: u32,
    /// Each device's last successful authentication, as stored (written again only when it changes).
    pub auth_seen: HashMap<i64, DeviceAuth>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("node", &self.node).finish_non_exhaustive()
    }
}

pub(crate) async fn run(
    mut core: Core,
    mut inbound: mpsc::Receiver<Inbound>,
    mut updates: mpsc::Receiver<DeviceUpdate>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(64);
    let mut stats = tokio::time::interval(std::time::Duration::from_secs(core.stats_every_secs));
    stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut active_calls = tokio::time::interval(std::time::Duration::from_millis(500));
    active_calls.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        // The database is behind: wait for room before taking more work (see the writer module).
        if core.writer.is_backed_up() {
            core.writer.drain().await;
        }
        let next = [
            core.registrar.poll_timeout(),
            core.tx.poll_timeout(),
            core.prober.poll_timeout(),
            core.calls.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let deadline = next.map(|t| core.clock.instant_at(t));
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            n = inbound.recv_many(&mut batch, 64) => {
                if n == 0 {
                    break;
                }
                for m in batch.drain(..) {
                    core.on_inbound(m);
                }
            }
            Some(u) = updates.recv() => core.on_device_update(u),
            _ = sleep_until(deadline) => core.on_timeout(),
            _ = stats.tick() => core.log_stats(),
            _ = active_calls.tick() => core.flush_active_calls(),
        }
        core.flush();
    }
    core.end_all_calls();
    core.flush_active_calls();
    core.flush();
    core.writer.drain().await;
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Core {
    fn on_inbound(&mut self, m: Inbound) {
        let now = self.clock.now();
        let Inbound { msg, peer, local, received } = m;
        self.measure_queueing(received);
        if msg.is_request() {
            let reply_peer = response_peer(&msg, peer);
            // REGISTER is answered without transaction state (a stateless UAS, RFC 3261 §8.2.7): a challenge
            // needs none, and a retransmitted REGISTER is recognised by the registrar (same Call-ID and CSeq as a
            // binding it made) and answered again without being applied. At 15,000 registrations a second over
            // UDP, Timer J would otherwise hold half a million transactions.
            if msg.method() == Some(&Method::Register) && top_via(&msg.headers).is_ok() {
                // A retransmission gets the answer the original got, without being looked at again. The source
                // (with its port, and its connection over TCP) is part of the identity: two connections from one
                // address are two clients.
                let memo = self.answers.key(peer, &msg.headers).unwrap_or(0);
                if let Some(answer) = self.answers.recall(memo, now) {
                    return self.transport.send_slice(&reply_peer, answer);
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
                Some(Incoming::Response { key, msg }) => {
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
            let extra = vec![(HeaderName::RetryAfter, self.retry_after_secs.to_string())];
            return self.reply(key, &msg, 503, "Service Unavailable", extra, now);
        }
        let in_dialog = ess.to.tag().is_some();
        match (method, key) {
            (Method::Register, _) => self.on_register(key, &msg, ess, peer, local, now),
            (Method::Invite, Reply::Transaction(k)) => self.on_invite(k, msg, ess, peer, now),
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
        let device = match outcome {
            AuthOutcome::Authenticated(d, algorithm) => {
                self.note_auth(&d, algorithm, msg, peer.addr, now);
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
            Err(e) => return self.reply(key, msg, 400, &e.to_string(), Vec::new(), now),
        };
        let expires = match msg.headers.get(&HeaderName::Expires) {
            None => None,
            Some(v) => match parse_delta_seconds(v) {
                Some(e) => Some(e),
                None => return self.reply(key, msg, 400, "Malformed Expires Header", Vec::new(), now),
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
                let extra = self.binding_headers(device.device.id, &msg.headers, now);
                self.reply(key, msg, 200, "OK", extra, now);
            }
            RegisterResult::IntervalTooBrief(min) => {
                let extra = vec![(HeaderName::MinExpires, min.to_string())];
                self.reply(key, msg, 423, "Interval Too Brief", extra, now);
            }
            RegisterResult::Rejected { code, reason } => self.reply(key, msg, code, reason, Vec::new(), now),
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
            since: i64::try_from(now).unwrap_or(i64::MAX),
        };
        tracing::info!(
            auth_id = %d.device.auth_id, algorithm = %record.algorithm, user_agent = ?record.user_agent,
            source = %record.source, "device authenticates differently from before"
        );
        self.auth_seen.insert(d.device.id, record.clone());
        self.write(WriteOp::Auth(record));
    }

    /// The headers of a 200 to REGISTER (RFC 3261 §10.3 step 8): every current binding with its remaining expiry,
    /// the Path the request carried (RFC 3327 §5.3), and the Date.
    fn binding_headers(&self, device_id: i64, req: &Headers, now: u64) -> Vec<(HeaderName, String)> {
        let mut extra: Vec<(HeaderName, String)> =
            self.registrar.bindings(device_id).iter().map(|b| (HeaderName::Contact, b.contact_value(now))).collect();
        extra.extend(req.get_list(&HeaderName::Path).map(|p| (HeaderName::Path, p.to_owned())));
        extra.push((HeaderName::Date, httpdate(now)));
        extra
    }

    fn stateless_tag(&self, h: &Headers) -> String {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut hasher = self.tag_key.build_hasher();
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
            // RFC 3261 §8.2.7: a stateless UAS gives a retransmitted request the same To tag, so the tag is a
            // keyed hash of what identifies the request.
            Reply::Stateless(..) => self.stateless_tag(&req.headers),
        };
        let mut resp = response_to(&req.headers, code, reason, Some(&tag));
        for (name, value) in extra {
            resp.headers.push(name, value);
        }
        resp.headers.push(HeaderName::Server, self.server_header.clone());
        match key {
            Reply::Transaction(key) => {
                if let Err(e) = self.tx.respond(key, resp, now) {
                    tracing::debug!(error = %e, "response not sent");
                }
            }
            Reply::Stateless(peer, memo) => {
                let bytes = resp.to_bytes();
                if memo == 0 {
                    return self.transport.send(&peer, bytes);
                }
                self.transport.send_slice(&peer, &bytes);
                self.answers.remember(memo, bytes, now);
            }
        }
    }

    /// Feeds the overload controller how long a message waited between the socket and here.
    fn measure_queueing(&mut self, received: tokio::time::Instant) {
        let now = tokio::time::Instant::now();
        let waited = u64::try_from(now.saturating_duration_since(received).as_micros()).unwrap_or(u64::MAX);
        let now_us = u64::try_from(now.duration_since(self.clock.start()).as_micros()).unwrap_or(u64::MAX);
        match self.overload.on_dequeue(waited, now_us) {
            Some(Transition::Began { min_delay_us }) => tracing::warn!(
                queued_ms = min_delay_us / 1000,
                retry_after_secs = self.retry_after_secs,
                "overloaded: requests queue too long; new requests are refused with 503 until the queue drains"
            ),
            Some(Transition::Ended { lasted_us, shed }) => {
                tracing::warn!(lasted_ms = lasted_us / 1000, shed_so_far = shed, "overload over");
            }
            None => {}
        }
    }

    /// A periodic summary of what the registrar holds, for operators and capacity planning.
    fn log_stats(&self) {
        tracing::info!(
            devices = self.devices.len(),
            bindings = self.registrar.binding_count(),
            transactions = self.tx.len(),
            calls = self.calls.len(),
            probes_in_flight = self.prober.in_flight(),
            nonces_tracked = self.auth.nonces_tracked(),
            tcp_flows = self.transport.flow_count(),
            dropped_datagrams = self.transport.dropped(),
            unsent_datagrams = self.transport.send_dropped(),
            retransmissions_answered = self.answers.recalled(),
            overload_episodes = self.overload.episodes(),
            shed_requests = self.overload.shed(),
            write_queue = self.writer.depth(),
            write_stalls = self.writer.stalls(),
            "registrar status"
        );
    }

    fn on_timeout(&mut self) {
        let now = self.clock.now();
        self.tx.on_timeout(now);
        self.flush_transactions();
        self.on_call_timeouts(now);
        self.registrar.on_timeout(now);
        for e in self.prober.on_timeout(now) {
            match e {
                ProbeEvent::Resend { peer, bytes } => self.transport.send(&peer, bytes),
                ProbeEvent::Failed { device_id, key } => {
                    self.registrar.on_probe_result(device_id, &key, false, now);
                }
            }
        }
    }

    fn on_device_update(&mut self, u: DeviceUpdate) {
        match u {
            DeviceUpdate::Upsert(d) => {
                tracing::debug!(auth_id = %d.device.auth_id, "device updated");
                self.devices.upsert(*d);
            }
            DeviceUpdate::Removed(id) => {
                tracing::debug!(device = id, "device removed");
                self.devices.remove(id);
                self.registrar.remove_device(id, self.clock.now());
            }
            DeviceUpdate::Number(n) => {
                tracing::debug!(number = %n.number.number, "number updated");
                self.numbers.upsert(*n);
            }
            DeviceUpdate::NumberRemoved(id) => self.numbers.remove(id),
            DeviceUpdate::Gateways(list) => {
                tracing::info!(gateways = list.len(), "gateway list reloaded");
                self.calls.set_gateways(list);
            }
        }
    }

    /// Carries out what the cores asked for: sends, persistence, probes and device events.
    fn flush(&mut self) {
        self.flush_transactions();
        for out in self.registrar.drain_outputs() {
            match out {
                Output::Upsert(b) => self.write(WriteOp::Binding(BindingOp::Upsert(to_stored(&b, &self.node)))),
                Output::Remove { device_id, contact } => {
                    self.write(WriteOp::Binding(BindingOp::Remove { device_id, contact }));
                }
                Output::Probe(b) => self.probe(&b),
                Output::DeviceOnline { device_id, at } => self.device_state(device_id, true, at, None),
                Output::DeviceOffline { device_id, at, reason } => {
                    self.device_state(device_id, false, at, Some(reason));
                }
            }
        }
    }

    /// Sends what the transaction layer queued and tells calls of timeouts and ended transactions (which may
    /// queue more).
    fn flush_transactions(&mut self) {
        let now = self.clock.now();
        while let Some(out) = self.tx.poll_output() {
            match out {
                transaction::Output::Send { peer, bytes, .. } => self.transport.send(&peer, bytes),
                transaction::Output::Timeout { key } => self.on_call_request_timeout(key, now),
                transaction::Output::Terminated { key } => self.on_transaction_ended(key),
            }
        }
    }

    pub(crate) fn write(&mut self, op: WriteOp) {
        self.writer.push(op);
    }

    fn device_state(&mut self, device_id: i64, online: bool, at: u64, reason: Option<OfflineReason>) {
        let since = i64::try_from(at).unwrap_or(i64::MAX);
        tracing::info!(device = device_id, online, ?reason, "device state changed");
        self.write(WriteOp::State(DeviceState { device_id, online, since }));
        let _ = self.events.send(DeviceEvent { device_id, online, at, reason });
    }

    /// Sends a keepalive OPTIONS to a binding, over UDP or over the device's own TCP connection. Any response
    /// proves the device is there. On TCP this is used rather than a CRLF ping (RFC 5626 §3.5.1) because only
    /// clients that negotiated outbound answer pings, while every UA must answer OPTIONS; a device whose TCP
    /// connection is gone is a miss at once.
    fn probe(&mut self, b: &Binding) {
        let now = self.clock.now();
        let Ok(addr) = b.source.parse::<SocketAddr>() else { return };
        let peer = if b.transport == "tcp" {
            match self.transport.flow_for(addr) {
                Some(flow) => Peer { addr, proto: Proto::Tcp, flow: Some(flow) },
                None => return self.registrar.on_probe_result(b.device_id, &b.key, false, now),
            }
        } else {
            Peer { addr, proto: Proto::Udp, flow: None }
        };
        let branch = transaction::new_branch(self.rng.next());
        let local_ip = self.local_ip_for(addr.ip());
        let port = self.transport.local_addr().port();
        let proto = if peer.proto == Proto::Tcp { "TCP" } else { "UDP" };
        let mut m = Message::request(Method::Options, b.contact.clone());
        let h = &mut m.headers;
        h.push(HeaderName::Via, format!("SIP/2.0/{proto} {};branch={branch};rport", fmt_host_port(local_ip, port)));
        h.push(HeaderName::MaxForwards, "70");
        // RFC 3327 §5.2: requests to a registered contact carry its Path as Route.
        for p in &b.path {
            h.push(HeaderName::Route, p.clone());
        }
        h.push(HeaderName::To, format!("<{}>", b.contact));
        h.push(HeaderName::From, format!("<sip:keepalive@{}>;tag={}", self.domain, self.rng.token()));
        h.push(HeaderName::CallId, format!("{}@{}", self.rng.token(), self.domain));
        h.push(HeaderName::CSeq, "1 OPTIONS");
        h.push(HeaderName::UserAgent, self.server_header.clone());
        let bytes = m.to_bytes();
        self.transport.send(&peer, bytes.clone());
        self.prober.sent(branch, b.device_id, b.key.clone(), peer, bytes, now);
    }

    pub(crate) fn local_ip_for(&mut self, peer: IpAddr) -> IpAddr {
        let bound = self.transport.local_addr().ip();
        if !bound.is_unspecified() {
            return bound;
        }
        if self.local_ips.len() >= 4096 && !self.local_ips.contains_key(&peer) {
            // One entry per peer address: bounded, so a flood of sources cannot grow it without end.
            self.local_ips.clear();
        }
        *self.local_ips.entry(peer).or_insert_with(|| route_source(peer).unwrap_or(bound))
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

pub(crate) fn fmt_host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// The stored form of a binding.
pub(crate) fn to_stored(b: &Binding, node: &str) -> switchboard_storage::Binding {
    switchboard_storage::Binding {
        device_id: b.device_id,
        aor: b.aor.clone(),
        contact: b.contact.clone(),
        q: b.q.map(i64::from),
        expires_at: i64::try_from(b.expires_at).unwrap_or(i64::MAX),
        call_id: b.call_id.clone(),
        cseq: i64::from(b.cseq),
        source: b.source.clone(),
        transport: b.transport.clone(),
        local: b.local.clone(),
        path: b.path.clone(),
        instance_id: b.instance_id.clone(),
        reg_id: b.reg_id.map(i64::from),
        user_agent: b.user_agent.clone(),
        node: node.to_owned(),
        updated_at: i64::try_from(b.updated_at).unwrap_or(i64::MAX),
    }
}

/// A stored binding back in the registrar's form (at start).
pub(crate) fn from_stored(b: switchboard_storage::Binding) -> Binding {
    let key = switchboard_sip_core::uri::Uri::parse(&b.contact)
        .map(|u| u.comparison_key())
        .unwrap_or_else(|_| b.contact.clone());
    Binding {
        device_id: b.device_id,
        key,
        aor: b.aor,
        contact: b.contact,
        q: b.q.and_then(|q| u16::try_from(q).ok()),
        expires_at: u64::try_from(b.expires_at).unwrap_or(0),
        call_id: b.call_id,
        cseq: u32::try_from(b.cseq).unwrap_or(0),
        source: b.source,
        transport: b.transport,
        local: b.local,
        path: b.path,
        instance_id: b.instance_id,
        reg_id: b.reg_id.and_then(|r| u32::try_from(r).ok()),
        user_agent: b.user_agent,
        updated_at: u64::try_from(b.updated_at).unwrap_or(0),
        misses: 0,
        next_probe: 0,
        expiry_due: 0,
    }
}
