//! Calls in the engine: INVITE admission (carrier gateways by source address, PBX trunks by address, devices
//! by digest), routing to a [`Plan`], the [`Call`] machines and their deadlines, carrier gateway health checks,
//! concurrency limits, and the records (CDRs, active calls) each call leaves.
//!
//! Calls run in the same task as the registrar: they share its transaction layer and its view of bindings and
//! liveness, and every lookup on the way (number, device, bindings, gateway) is a hash probe, so call setup costs
//! the same with 10 or 100,000 registered devices.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use switchboard_b2bua::{
    Action, Call, CallConfig, Disposition, DivertPlan, DivertReason, Hop, Mode, Plan, Record, Target, token_of_tag,
};
use switchboard_model::records::{
    ActiveCall, ActiveCallOp, CdrDirection, CdrDisposition, Gateway, NewCdr, ServiceMode,
};
use switchboard_routing::{
    CallType, CallerId, DialContext, DivertTo, DivertWhen, NumberRules, Presence, RoutePlan, caller_id, check_allowed,
    classify, classify_on_net, decide, normalise_cli,
};
use switchboard_sip_core::divert::{diversion_allowed, diversions};
use switchboard_sip_core::header::NameAddr;
use switchboard_sip_core::transaction::{self, Key};
use switchboard_sip_core::transport::{Peer, Proto};
use switchboard_sip_core::uri::{Uri, unescape};
use switchboard_sip_core::validate::Essentials;
use switchboard_sip_core::{HeaderName, Message, Method};

use crate::auth::{Asking, AuthOutcome};
use crate::cluster::RELAY_HEADER;
use crate::directory::{CachedDevice, CachedNumber, trusted_addr};
use crate::dispatch::{ALLOW, Engine, Reply};
use crate::records::{Persist, stored_millis};

/// The voicemail feature code a device dials to reach its mailbox.
const VOICEMAIL_CODE: &str = "777";
/// The header that tells the voicemail which mailboxes a `777` caller may open (numbers, comma-separated). The
/// voicemail takes calls from the daemon alone, so the header cannot be forged by a caller.
pub(crate) const MAILBOX_HEADER: &str = "X-Switchboard-Mailbox";

/// How many calls may be up at once, and the call rules the server's configuration sets (`[calls]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallLimits {
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
    /// Most diversions a call may have been through (its Diversion counters) before we divert it again.
    pub max_diversions: u32,
}

/// Where a leg goes, and our address as seen from there.
#[derive(Debug, Clone)]
pub(crate) struct SipHop {
    pub peer: Peer,
    /// `ip:port` of ours, for Via and Contact.
    pub sent_by: Arc<str>,
}

impl Hop for SipHop {
    fn via(&self, branch: &str) -> String {
        format!("SIP/2.0/{} {};branch={branch};rport", self.peer.proto.via_name(), self.sent_by)
    }
    fn contact(&self) -> String {
        self.peer.proto.contact(&self.sent_by)
    }
    fn reliable(&self) -> bool {
        self.peer.proto.is_reliable()
    }
}

/// What the records need of a call beyond what the machine keeps.
#[derive(Debug)]
struct Meta {
    direction: CdrDirection,
    service_id: Option<i64>,
    /// The calling device (outbound, on-net) or the number's pinned device (inbound).
    device_id: Option<i64>,
    /// The calling device and its service, counted against the concurrency limits.
    counted: Option<(i64, i64)>,
    /// The called service, counted against its inbound channels.
    inbound_service: Option<i64>,
    /// Counted against the node's call limit until the call ends.
    live: bool,
    caller: String,
    callee: String,
    call_type: Option<&'static str>,
    /// Targets are gateways: the record names the one used.
    via_gateway: bool,
    /// Writes a CDR and an active-call row: not for a call relayed to us by another node, which records it.
    record: bool,
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) call: Call<SipHop>,
    meta: Meta,
    /// Client transactions the call started, abandoned if still alive when the call is dropped.
    keys: Vec<Key>,
}

#[derive(Debug)]
struct GatewayState {
    gw: Gateway,
    addr: SocketAddr,
    up: bool,
}

impl CallTable {
    /// Each gateway's name and whether its last health check passed.
    pub(crate) fn gateway_health(&self) -> Vec<(String, bool)> {
        self.gateways.iter().map(|g| (g.gw.name.clone(), g.up)).collect()
    }
}

/// Every live call, indexed by what finds it: its token (from our tags), the caller's INVITE transaction (for
/// CANCEL) and each client transaction it started.
#[derive(Debug)]
pub(crate) struct CallTable {
    pub cfg: CallConfig,
    pub limits: CallLimits,
    pub voicemail: Option<SocketAddr>,
    calls: HashMap<u64, Entry>,
    by_invite: HashMap<Key, u64>,
    by_request: HashMap<Key, (u64, u32)>,
    deadlines: BTreeSet<(u64, u64)>,
    due: HashMap<u64, u64>,
    per_device: HashMap<i64, u32>,
    per_service: HashMap<i64, u32>,
    inbound_per_service: HashMap<i64, u32>,
    /// Calls started and not yet ended (the node-wide limit).
    live: u32,
    gateways: Vec<GatewayState>,
    gateway_probes: HashMap<Key, i64>,
    next_gateway_check: u64,
    /// Active-call rows changed since the last flush (None: the call ended), and the rows the store holds. A
    /// call that starts and ends between two flushes never reaches the store; `switchboard calls` lags by at
    /// most one flush interval.
    active_dirty: HashMap<String, Option<ActiveCall>>,
    active_stored: std::collections::HashSet<String>,
}

impl CallTable {
    pub fn new(
        cfg: CallConfig,
        limits: CallLimits,
        voicemail: Option<SocketAddr>,
        gateways: Vec<(Gateway, Option<SocketAddr>)>,
    ) -> Self {
        let mut t = CallTable {
            cfg,
            limits,
            voicemail,
            calls: HashMap::new(),
            by_invite: HashMap::new(),
            by_request: HashMap::new(),
            deadlines: BTreeSet::new(),
            due: HashMap::new(),
            per_device: HashMap::new(),
            per_service: HashMap::new(),
            inbound_per_service: HashMap::new(),
            live: 0,
            gateways: Vec::new(),
            gateway_probes: HashMap::new(),
            next_gateway_check: 0,
            active_dirty: HashMap::new(),
            active_stored: std::collections::HashSet::new(),
        };
        t.set_gateways(gateways);
        t
    }

    /// Replaces the gateway list (from the store and the file, each with the address its name resolved to off
    /// this task), keeping what is known of each one's health.
    pub fn set_gateways(&mut self, list: Vec<(Gateway, Option<SocketAddr>)>) {
        let mut next = Vec::with_capacity(list.len());
        for (gw, addr) in list.into_iter().filter(|(g, _)| g.enabled) {
            let Some(addr) = addr else {
                tracing::warn!(gateway = %gw.name, address = %gw.address, "gateway address does not resolve; skipped");
                continue;
            };
            let up = self.gateways.iter().find(|g| g.gw.id == gw.id).is_none_or(|g| g.up);
            next.push(GatewayState { gw, addr, up });
        }
        next.sort_by_key(|g| (g.gw.priority, g.gw.id));
        self.gateways = next;
        self.next_gateway_check = 0;
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub(crate) fn entry_mut(&mut self, token: u64) -> Option<&mut Entry> {
        self.calls.get_mut(&token)
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        let call = self.deadlines.first().map(|&(at, _)| at);
        let gw = (!self.gateways.is_empty()).then_some(self.next_gateway_check);
        [call, gw].into_iter().flatten().min()
    }

    fn gateway_at(&self, source: SocketAddr) -> Option<&GatewayState> {
        self.gateways.iter().find(|g| g.addr.ip() == source.ip())
    }

    /// Enabled gateways to hunt through: healthy ones first, each group by priority.
    fn hunt_order(&self) -> Vec<&GatewayState> {
        let mut list: Vec<&GatewayState> = self.gateways.iter().collect();
        list.sort_by_key(|g| (!g.up, g.gw.priority, g.gw.id));
        list
    }

    fn schedule(&mut self, token: u64) {
        if let Some(old) = self.due.remove(&token) {
            self.deadlines.remove(&(old, token));
        }
        if let Some(at) = self.calls.get(&token).and_then(|e| e.call.poll_timeout()) {
            self.deadlines.insert((at, token));
            self.due.insert(token, at);
        }
    }
}

/// The user part of a URI, unescaped.
pub(crate) fn user_of(uri: &str) -> Option<String> {
    Uri::parse(uri).ok()?.user.map(|u| unescape(&u))
}

/// The user part of a From/To/PPI header value.
fn header_user(value: &str, header: &'static str) -> Option<String> {
    user_of(&NameAddr::parse(value, header).ok()?.uri)
}

impl Engine {
    /// A new INVITE (no To tag) on server transaction `key`.
    pub(crate) fn on_invite(&mut self, key: Key, msg: Message, ess: Essentials, peer: Peer, now: u64) {
        if ess.to.tag().is_some() {
            return self.on_dialog_request(key, msg, now);
        }
        if msg.headers.get(&HeaderName::MaxForwards).and_then(|v| v.trim().parse::<u32>().ok()) == Some(0) {
            return self.call_reply(key, &msg, 483, "Too Many Hops", Vec::new(), now);
        }
        if let Some(relay) = msg.headers.get(&HeaderName::Other(RELAY_HEADER.into())) {
            let relay = relay.to_owned();
            return self.relayed(key, msg, ess, peer, &relay, now);
        }
        if let Some(gw) = self.calls.gateway_at(peer.addr) {
            let name = gw.gw.name.clone();
            return self.inbound(key, msg, ess, peer, &name, now);
        }
        if let Some(dev) = self.device_asking(key, &msg, &ess, peer, "INVITE", now) {
            self.outbound(key, msg, ess, peer, dev, now);
        }
    }

    /// The device behind a request that needs one (INVITE, SUBSCRIBE): a trunk trusted by its address, or a
    /// device by digest (RFC 3261 §22.3, 407). `None`: the request has been answered (challenge, throttle).
    pub(crate) fn device_asking(
        &mut self,
        key: Key,
        msg: &Message,
        ess: &Essentials,
        peer: Peer,
        method: &'static str,
        now: u64,
    ) -> Option<Arc<CachedDevice>> {
        let dev = self.device_checked(key, msg, ess, peer, method, now)?;
        if dev.requires_tls() && !peer.proto.is_secure() {
            tracing::info!(device = %dev.device.name, method, source = %peer.addr, "request over an insecure transport refused");
            self.call_reply(key, msg, 403, crate::dispatch::TLS_REQUIRED, Vec::new(), now);
            return None;
        }
        Some(dev)
    }

    /// [`Engine::device_asking`] before the transport check.
    fn device_checked(
        &mut self,
        key: Key,
        msg: &Message,
        ess: &Essentials,
        peer: Peer,
        method: &'static str,
        now: u64,
    ) -> Option<Arc<CachedDevice>> {
        if let Some(dev) = self.devices.trusted_at(peer.addr).cloned() {
            return Some(dev);
        }
        let devices = &self.devices;
        // INVITE retransmissions are absorbed by the transaction layer before they get here.
        let asking = Asking { method, source: peer.addr, call_id: &ess.call_id, request: 0 };
        let outcome = self.auth.check(
            msg.headers.get_all(&HeaderName::ProxyAuthorization),
            asking,
            |id| devices.get(id),
            |_| false,
            now,
        );
        self.counters.on_auth(&outcome, false);
        match outcome {
            AuthOutcome::Authenticated(d, algorithm) => {
                self.note_auth(&d, algorithm, msg, peer.addr, now);
                Some(d)
            }
            AuthOutcome::Retransmission(d) => Some(d),
            AuthOutcome::Challenge { stale, .. } => {
                let first = msg.headers.get(&HeaderName::ProxyAuthorization).is_none();
                tracing::debug!(method, stale, first, source = %peer.addr, "challenged");
                let named = self.named_device(ess);
                let extra = self
                    .auth
                    .challenges(stale, first, asking, named.as_deref(), now)
                    .into_iter()
                    .map(|c| (HeaderName::ProxyAuthenticate, c))
                    .collect();
                self.call_reply(key, msg, 407, "Proxy Authentication Required", extra, now);
                None
            }
            AuthOutcome::Throttled => {
                self.call_reply(key, msg, 403, "Too Many Failed Attempts", Vec::new(), now);
                None
            }
            AuthOutcome::Malformed(reason) => {
                self.call_reply(key, msg, 400, reason, Vec::new(), now);
                None
            }
        }
    }

    /// A call from a carrier gateway to one of our numbers.
    fn inbound(&mut self, key: Key, msg: Message, ess: Essentials, peer: Peer, gateway: &str, now: u64) {
        let dialled =
            ess.request_uri.user.as_deref().map(unescape).or_else(|| user_of(&ess.to.uri)).unwrap_or_default();
        let caller = user_of(&ess.from.uri).unwrap_or_else(|| "anonymous".into());
        let Some(number) = normalise_cli(&dialled).and_then(|e| self.numbers.get(&e).cloned()) else {
            tracing::info!(%dialled, gateway, "inbound call to a number we do not host");
            self.reject_cdr(CdrDirection::Inbound, None, None, &caller, &dialled, None, 404, now);
            return self.call_reply(key, &msg, 404, "Not Found", Vec::new(), now);
        };
        let withheld = privacy_id(&msg) || caller.eq_ignore_ascii_case("anonymous");
        let from = presented(ess.from.display.as_deref(), &caller, withheld, &self.settings.domain);
        // A diverted call goes back out to a carrier asserting the original caller (RFC 3325).
        let cid = CallerId { e164: normalise_cli(&caller), withheld, substituted: false };
        let identity = identity_headers(&cid, &self.settings.domain).1;
        let service = number.number.service_id;
        if self.node_full() {
            self.reject_cdr(CdrDirection::Inbound, Some(service), None, &caller, &number.number.number, None, 503, now);
            return self.refuse_node_full(key, &msg, now);
        }
        let channels = self.calls.inbound_per_service.get(&service).copied().unwrap_or(0);
        if channels >= self.calls.limits.max_inbound_per_service {
            tracing::info!(service, channels, "inbound channel limit of the service reached");
            self.reject_cdr(CdrDirection::Inbound, Some(service), None, &caller, &number.number.number, None, 486, now);
            return self.call_reply(key, &msg, 486, "Busy Here", Vec::new(), now);
        }
        let meta = Meta {
            direction: CdrDirection::Inbound,
            service_id: Some(service),
            device_id: number.number.device_id,
            counted: None,
            inbound_service: Some(service),
            live: true,
            caller,
            callee: number.number.number.clone(),
            call_type: None,
            via_gateway: false,
            record: true,
        };
        self.deliver(key, msg, peer, &number, (from, identity), meta, now);
    }

    /// A call from one of our devices (authenticated, or a trunk trusted by address).
    fn outbound(&mut self, key: Key, msg: Message, ess: Essentials, peer: Peer, dev: Arc<CachedDevice>, now: u64) {
        let d = &dev.device;
        let dialled = ess.request_uri.user.as_deref().map(unescape).unwrap_or_default();
        let sent = msg
            .headers
            .get(&HeaderName::PPreferredIdentity)
            .and_then(|v| header_user(v, "P-Preferred-Identity"))
            .or_else(|| user_of(&ess.from.uri));
        let numbers = &self.numbers;
        let cid = caller_id(
            sent.as_deref(),
            |e| numbers.get(e).is_some_and(|n| n.customer_id == dev.customer_id),
            d.caller_id.as_deref(),
            privacy_id(&msg),
        );
        let caller = cid.e164.clone().unwrap_or_else(|| sent.clone().unwrap_or_default());
        let service = Some(d.service_id);
        if dialled == VOICEMAIL_CODE {
            return self.retrieve_voicemail(key, msg, peer, &dev, caller, now);
        }
        let ctx = DialContext::from_caller(d.caller_id.as_deref().unwrap_or_default());
        let dialled_type = match classify(&dialled, &ctx) {
            Ok(c) => c,
            Err(e) => {
                self.reject_cdr(CdrDirection::Outbound, service, Some(d.id), &caller, &dialled, None, e.status(), now);
                return self.call_reply(key, &msg, e.status(), e.reason(), Vec::new(), now);
            }
        };
        let geographic = dialled_type.call_type;
        // Records name the callee in E.164 whenever the number has one, refused or not.
        let callee_e164 = dialled_type.e164.clone().unwrap_or_else(|| dialled_type.dialled_digits.clone());
        let classified = classify_on_net(dialled_type, |e| self.numbers.get(e).is_some());
        let call_type = classified.call_type;
        let type_name = Some(call_type.as_str());
        // A call to a number we host may go through if on-net calls are enabled, or if the device may call that
        // kind of number anyway (its national, local or mobile type).
        let allowed = check_allowed(call_type, &d.call_types)
            .or_else(|b| if call_type == CallType::OnNet { check_allowed(geographic, &d.call_types) } else { Err(b) });
        if let Err(b) = allowed {
            tracing::info!(device = %d.name, %dialled, call_type = %call_type, "call type not enabled");
            self.reject_cdr(CdrDirection::Outbound, service, Some(d.id), &caller, &callee_e164, type_name, 403, now);
            return self.call_reply(key, &msg, 403, b.reason, Vec::new(), now);
        }
        let emergency = call_type == CallType::Emergency;
        let device_calls = self.calls.per_device.get(&d.id).copied().unwrap_or(0);
        let service_calls = self.calls.per_service.get(&d.service_id).copied().unwrap_or(0);
        if !emergency
            && (device_calls >= self.calls.limits.max_per_device || service_calls >= self.calls.limits.max_per_service)
        {
            tracing::warn!(device = %d.name, device_calls, service_calls, "concurrent call limit reached");
            self.reject_cdr(CdrDirection::Outbound, service, Some(d.id), &caller, &callee_e164, type_name, 403, now);
            return self.call_reply(key, &msg, 403, "Concurrent Call Limit Reached", Vec::new(), now);
        }
        if !emergency && self.node_full() {
            self.reject_cdr(CdrDirection::Outbound, service, Some(d.id), &caller, &callee_e164, type_name, 503, now);
            return self.refuse_node_full(key, &msg, now);
        }
        let callee = classified.e164.clone().unwrap_or_else(|| classified.dialled_digits.clone());
        let counted = (!emergency).then_some((d.id, d.service_id));
        let on_net = (call_type == CallType::OnNet).then(|| self.numbers.get(&callee).cloned()).flatten();
        let meta = Meta {
            direction: if on_net.is_some() { CdrDirection::OnNet } else { CdrDirection::Outbound },
            service_id: service,
            device_id: Some(d.id),
            counted,
            inbound_service: None,
            live: true,
            caller,
            callee,
            call_type: type_name,
            via_gateway: on_net.is_none(),
            record: true,
        };
        if let Some(number) = on_net {
            let from = presented(None, cid.e164.as_deref().unwrap_or("anonymous"), cid.withheld, &self.settings.domain);
            let identity = identity_headers(&cid, &self.settings.domain).1;
            return self.deliver(key, msg, peer, &number, (from, identity), meta, now);
        }
        let (from, extra) = identity_headers(&cid, &self.settings.domain);
        let targets = self.gateway_targets(&meta.callee, &from, &extra);
        if targets.is_empty() {
            tracing::warn!("outbound call with no carrier gateway configured");
            self.reject_cdr(meta.direction, service, Some(d.id), &meta.caller, &meta.callee, type_name, 503, now);
            return self.call_reply(key, &msg, 503, "No Carrier Gateway Available", Vec::new(), now);
        }
        self.start_call(key, msg, peer, Plan::ring(Mode::Hunt, targets), meta, now);
    }

    /// `777`: the device reaches the mailboxes of the numbers that ring it (a number pinned to it, or any number
    /// of its service pinned to no device; a trunk has every number of its service). The voicemail is told which
    /// in `X-Switchboard-Mailbox`, and asks for one when there are several.
    fn retrieve_voicemail(&mut self, key: Key, msg: Message, peer: Peer, dev: &CachedDevice, caller: String, now: u64) {
        let d = &dev.device;
        let service = Some(d.service_id);
        let Some(addr) = self.calls.voicemail else {
            tracing::info!(device = %d.name, "777 dialled, but voicemail is not configured");
            self.reject_cdr(CdrDirection::OnNet, service, Some(d.id), &caller, VOICEMAIL_CODE, None, 480, now);
            return self.call_reply(key, &msg, 480, "Voicemail Not Available", Vec::new(), now);
        };
        let mut mailboxes: Vec<String> = self.numbers.ringing(d).map(|n| n.number.number.clone()).collect();
        mailboxes.sort();
        if mailboxes.is_empty() {
            tracing::info!(device = %d.name, "777 dialled by a device with no number");
            self.reject_cdr(CdrDirection::OnNet, service, Some(d.id), &caller, VOICEMAIL_CODE, None, 404, now);
            return self.call_reply(key, &msg, 404, "No Mailbox", Vec::new(), now);
        }
        let target = Target {
            request_uri: format!("sip:{VOICEMAIL_CODE}@{addr}"),
            to: format!("<sip:{VOICEMAIL_CODE}@{}>", self.settings.domain),
            from: format!("<sip:{caller}@{}>", self.settings.domain),
            hop: self.hop(Peer { addr, proto: Proto::Udp, flow: None }),
            route: Vec::new(),
            extra: vec![(HeaderName::Other(MAILBOX_HEADER.into()), mailboxes.join(", "))],
            label: "voicemail".into(),
            device_id: None,
        };
        let meta = Meta {
            direction: CdrDirection::OnNet,
            service_id: service,
            device_id: Some(d.id),
            counted: None,
            inbound_service: None,
            live: true,
            caller,
            callee: VOICEMAIL_CODE.to_owned(),
            call_type: None,
            via_gateway: false,
            record: true,
        };
        self.start_call(key, msg, peer, Plan::ring(Mode::Fork, vec![target]), meta, now);
    }

    /// Rings a number: its rules, the presence of its devices and the divert target make the plan. `caller` is
    /// the From the callee sees and the identity headers (P-Asserted-Identity, Privacy) a diverted leg to a
    /// carrier carries.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        key: Key,
        msg: Message,
        peer: Peer,
        number: &CachedNumber,
        caller: (String, Vec<(HeaderName, String)>),
        meta: Meta,
        now: u64,
    ) {
        let (from, identity) = caller;
        let n = &number.number;
        let device_ids = self.devices.ringing(n);
        let mut ring = Vec::new();
        let mut online = false;
        let to = format!("<sip:{}@{}>", n.number, self.settings.domain);
        for id in device_ids {
            let Some(dev) = self.devices.by_id(id).cloned() else { continue };
            online |= self.registrar.is_online(id);
            let local = self.local_targets(&dev, &n.number, &to, &from);
            let held_here = !local.is_empty();
            ring.extend(local);
            // Bindings other nodes hold: the call is relayed to each such node that is up.
            let relays = self.relay_targets(&dev, &n.number, &to, &from, now);
            online |= !relays.is_empty();
            let relayed = !relays.is_empty();
            ring.extend(relays);
            // A PBX trusted by address that does not register is reached at that address.
            if !held_here
                && !relayed
                && !dev.requires_tls()
                && let Some(addr) = trusted_addr(&dev.device)
            {
                online = true;
                ring.push(Target {
                    request_uri: format!("sip:{}@{addr}", n.number),
                    to: to.clone(),
                    from: from.clone(),
                    hop: self.hop(Peer { addr, proto: Proto::Udp, flow: None }),
                    route: Vec::new(),
                    extra: Vec::new(),
                    label: dev.device.name.clone(),
                    device_id: Some(id),
                });
            }
        }
        let divert_to = n.divert_to.as_deref().map(|t| match t {
            "voicemail" => DivertTo::Voicemail,
            e164 => DivertTo::External(e164.to_owned()),
        });
        // A call that has been diverted too often elsewhere is not diverted again (loop protection); one whose
        // Diversion headers cannot be read counts as at the limit. Only a carrier's Diversion headers are
        // trusted and passed on: a device could otherwise forge a diversion history towards the carrier.
        let (previous, may_divert) = if meta.direction == CdrDirection::Inbound {
            let previous: Vec<String> = msg.headers.get_list(&HeaderName::Diversion).map(str::to_owned).collect();
            let allowed = diversions(&msg.headers)
                .is_ok_and(|parsed| diversion_allowed(&parsed, self.calls.limits.max_diversions));
            (previous, allowed)
        } else {
            (Vec::new(), true)
        };
        let divert_when = n.divert_when;
        let rules = NumberRules {
            divert_when: if may_divert { divert_when } else { DivertWhen::Never },
            divert_to: divert_to.clone(),
            no_answer_secs: u32::try_from(n.no_answer_secs).unwrap_or(u32::MAX),
        };
        let presence = Presence { any_device_online: online, live_bindings: ring.len() };
        let route = decide(&rules, &presence);
        let divert_plan = |core: &mut Engine, to: &DivertTo| {
            let diverting_uri = format!("sip:{}@{}", n.number, core.settings.domain);
            let (targets, label) = match to {
                DivertTo::Voicemail => (core.voicemail_targets(&n.number, &from), "voicemail".to_owned()),
                DivertTo::External(e164) => (core.gateway_targets(e164, &from, &identity), e164.clone()),
            };
            // Our entry stands for our one diversion (RFC 5806 §4); the history so far is in `previous`.
            DivertPlan { diverting_uri, targets, previous: previous.clone(), counter: 1, label }
        };
        let plan = match route {
            RoutePlan::Reject { code, reason } => {
                let m = &meta;
                self.reject_cdr(m.direction, m.service_id, m.device_id, &m.caller, &m.callee, m.call_type, code, now);
                return self.call_reply(key, &msg, code, reason, Vec::new(), now);
            }
            RoutePlan::Divert(to) => {
                let reason = match divert_when {
                    DivertWhen::All => DivertReason::All,
                    _ => DivertReason::Offline,
                };
                let mut p = Plan::ring(Mode::Fork, Vec::new());
                p.divert = Some(divert_plan(self, &to));
                p.divert_now = Some(reason);
                p
            }
            RoutePlan::Ring { no_answer, on_busy } => {
                let mut p = Plan::ring(Mode::Fork, ring);
                if let Some((secs, to)) = no_answer {
                    p.no_answer_ms = Some(u64::from(secs) * 1000);
                    p.divert = Some(divert_plan(self, &to));
                }
                if let Some(to) = on_busy {
                    p.divert_on_busy = true;
                    if p.divert.is_none() {
                        p.divert = Some(divert_plan(self, &to));
                    }
                }
                p
            }
        };
        self.start_call(key, msg, peer, plan, meta, now);
    }

    /// A target for each binding of `dev` this node holds, reached over the device's own flow. A trunk's contact
    /// is addressed to the dialled `number`.
    fn local_targets(&mut self, dev: &CachedDevice, number: &str, to: &str, from: &str) -> Vec<Target<SipHop>> {
        let trunk = dev.mode == ServiceMode::Trunk;
        let id = dev.device.id;
        let bindings = self.registrar.bindings(id).to_vec();
        let mut ring = Vec::with_capacity(bindings.len());
        for b in &bindings {
            let Ok(addr) = b.source.parse::<SocketAddr>() else { continue };
            let proto = Proto::parse(&b.transport);
            if dev.requires_tls() && !proto.is_secure() {
                // Bound before the device was set to TLS only: not rung in clear.
                continue;
            }
            let flow = if proto.is_reliable() { self.net.flow_for(addr) } else { None };
            if flow.is_none() && proto.is_secure() {
                // Reached over its own encrypted connection only; with that gone, it is not reachable here.
                continue;
            }
            let request_uri = if trunk { with_user(&b.contact, number) } else { b.contact.clone() };
            ring.push(Target {
                request_uri,
                to: to.to_owned(),
                from: from.to_owned(),
                hop: self.hop(Peer { addr, proto, flow }),
                route: b.path.clone(),
                extra: Vec::new(),
                label: dev.device.name.clone(),
                device_id: Some(id),
            });
        }
        ring
    }

    /// A target for each live node that holds a binding of `dev` this node does not: the INVITE goes to that
    /// node's cluster address, signed, and it rings the device.
    fn relay_targets(
        &mut self,
        dev: &CachedDevice,
        number: &str,
        to: &str,
        from: &str,
        now: u64,
    ) -> Vec<Target<SipHop>> {
        if !self.cluster.enabled() {
            return Vec::new();
        }
        let id = dev.device.id;
        let local: Vec<&str> = self.registrar.bindings(id).iter().map(|b| b.key.as_str()).collect();
        let nodes = self.cluster.nodes_holding(id, &local, now);
        nodes
            .into_iter()
            .map(|(node, addr)| Target {
                request_uri: format!("sip:{number}@{addr}"),
                to: to.to_owned(),
                from: from.to_owned(),
                hop: self.hop(Peer { addr, proto: Proto::Udp, flow: None }),
                route: Vec::new(),
                extra: vec![(HeaderName::Other(RELAY_HEADER.into()), self.cluster.sign(id, number, now))],
                label: format!("{} via {node}", dev.device.name),
                device_id: Some(id),
            })
            .collect()
    }

    /// An INVITE another node relayed to us for a device whose binding we hold: checked (its node's address, its
    /// signature, its age), then it rings that device's bindings here, and nothing else: no divert (the node the
    /// call landed on diverts), no relaying on (no loops), no records (that node writes them).
    fn relayed(&mut self, key: Key, msg: Message, ess: Essentials, peer: Peer, value: &str, now: u64) {
        let relay = match self.cluster.verify(value, peer.addr, now) {
            Ok(r) => r,
            Err(why) => {
                tracing::warn!(source = %peer.addr, why, "relayed INVITE refused");
                return self.call_reply(key, &msg, 403, "Relay Not Trusted", Vec::new(), now);
            }
        };
        let Some(dev) = self.devices.by_id(relay.device_id).cloned() else {
            return self.call_reply(key, &msg, 404, "Not Found", Vec::new(), now);
        };
        if self.node_full() {
            return self.refuse_node_full(key, &msg, now);
        }
        let from = name_addr(ess.from.display.as_deref(), &ess.from.uri);
        let to = format!("<sip:{}@{}>", relay.number, self.settings.domain);
        let ring = self.local_targets(&dev, &relay.number, &to, &from);
        if ring.is_empty() {
            tracing::info!(device = %dev.device.name, node = %relay.node, "relayed call for a device no longer bound here");
            return self.call_reply(key, &msg, 480, "Temporarily Unavailable", Vec::new(), now);
        }
        tracing::debug!(device = %dev.device.name, node = %relay.node, "relayed call");
        let meta = Meta {
            direction: CdrDirection::Inbound,
            service_id: Some(dev.device.service_id),
            device_id: Some(dev.device.id),
            counted: None,
            inbound_service: None,
            live: true,
            caller: user_of(&ess.from.uri).unwrap_or_else(|| "anonymous".into()),
            callee: relay.number,
            call_type: None,
            via_gateway: false,
            record: false,
        };
        self.start_call(key, msg, peer, Plan::ring(Mode::Fork, ring), meta, now);
    }

    fn voicemail_targets(&mut self, number: &str, from: &str) -> Vec<Target<SipHop>> {
        let Some(addr) = self.calls.voicemail else {
            tracing::warn!(number, "call diverted to voicemail, but voicemail is not configured (calls.voicemail_uri)");
            return Vec::new();
        };
        vec![Target {
            request_uri: format!("sip:{number}@{addr}"),
            to: format!("<sip:{number}@{}>", self.settings.domain),
            from: from.to_owned(),
            hop: self.hop(Peer { addr, proto: Proto::Udp, flow: None }),
            route: Vec::new(),
            extra: Vec::new(),
            label: "voicemail".into(),
            device_id: None,
        }]
    }

    fn gateway_targets(&mut self, number: &str, from: &str, extra: &[(HeaderName, String)]) -> Vec<Target<SipHop>> {
        let order: Vec<(String, SocketAddr, Proto)> = self
            .calls
            .hunt_order()
            .into_iter()
            .map(|g| (g.gw.name.clone(), g.addr, if g.gw.transport == "tcp" { Proto::Tcp } else { Proto::Udp }))
            .collect();
        order
            .into_iter()
            .map(|(name, addr, proto)| Target {
                request_uri: format!("sip:{number}@{addr}"),
                to: format!("<sip:{number}@{addr}>"),
                from: from.to_owned(),
                hop: self.hop(Peer { addr, proto, flow: None }),
                route: Vec::new(),
                extra: extra.to_vec(),
                label: name,
                device_id: None,
            })
            .collect()
    }

    fn start_call(&mut self, key: Key, msg: Message, peer: Peer, mut plan: Plan<SipHop>, meta: Meta, now: u64) {
        let mut token = self.rng.next_u64();
        while token == 0 || self.calls.calls.contains_key(&token) {
            token = self.rng.next_u64();
        }
        match self.open_media(token, peer.addr.ip(), &plan) {
            Ok(media) => plan.media = media,
            Err(()) => {
                tracing::warn!("no relay ports left; new call refused");
                let m = &meta;
                self.reject_cdr(m.direction, m.service_id, m.device_id, &m.caller, &m.callee, m.call_type, 503, now);
                let extra = vec![(HeaderName::RetryAfter, self.settings.retry_after_secs.to_string())];
                return self.call_reply(key, &msg, 503, "No Media Ports Available", extra, now);
            }
        }
        if let Some((device, service)) = meta.counted {
            *self.calls.per_device.entry(device).or_default() += 1;
            *self.calls.per_service.entry(service).or_default() += 1;
        }
        if let Some(service) = meta.inbound_service {
            *self.calls.inbound_per_service.entry(service).or_default() += 1;
        }
        if meta.live {
            self.calls.live += 1;
        }
        tracing::debug!(call = %format!("{token:016x}"), caller = %meta.caller, callee = %meta.callee, "call");
        if meta.record {
            let row = self.active_row(token, &meta, now, None);
            self.calls.active_dirty.insert(row.call_id.clone(), Some(row));
        }
        let hop = self.hop(peer);
        let call = Call::new(self.calls.cfg.clone(), token, key, msg, hop, plan, now);
        self.calls.by_invite.insert(key, token);
        self.calls.calls.insert(token, Entry { call, meta, keys: Vec::new() });
        self.pump(token, now);
    }

    fn active_row(&self, token: u64, meta: &Meta, started_at: u64, answered_at: Option<u64>) -> ActiveCall {
        ActiveCall {
            call_id: format!("{token:016x}"),
            node: self.settings.node.clone(),
            direction: meta.direction,
            service_id: meta.service_id,
            device_id: meta.device_id,
            caller: meta.caller.clone(),
            callee: meta.callee.clone(),
            state: if answered_at.is_some() { "answered" } else { "ringing" }.into(),
            started_at: stored_millis(started_at),
            answered_at: answered_at.map(stored_millis),
        }
    }

    /// Carries out what call `token` asked for, until it asks for nothing more.
    pub(crate) fn pump(&mut self, token: u64, now: u64) {
        loop {
            let Some(entry) = self.calls.calls.get_mut(&token) else { return };
            let actions: Vec<Action<SipHop>> = entry.call.drain_actions().collect();
            if actions.is_empty() {
                break;
            }
            let mut failed = Vec::new();
            for a in actions {
                match a {
                    Action::Respond { key, mut msg } => {
                        msg.headers.push(HeaderName::Server, self.settings.server_header.clone());
                        if let Err(e) = self.tx.respond(key, msg, now) {
                            tracing::debug!(error = %e, "call response not sent");
                        }
                    }
                    Action::Request { req, msg, hop } => {
                        match self.tx.send_request(msg, hop.peer, hop.reliable(), now) {
                            Ok(k) => {
                                self.calls.by_request.insert(k, (token, req));
                                if let Some(e) = self.calls.calls.get_mut(&token) {
                                    e.keys.push(k);
                                }
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "call request not sent");
                                failed.push(req);
                            }
                        }
                    }
                    Action::Send { msg, hop } => self.send(hop.peer, msg.to_bytes()),
                    Action::Answered { at } => {
                        if let Some(e) = self.calls.calls.get(&token).filter(|e| e.meta.record) {
                            let row = self.active_row(token, &e.meta, e.call.started_at(), Some(at));
                            self.calls.active_dirty.insert(row.call_id.clone(), Some(row));
                        }
                    }
                    Action::Media { side, remote } => {
                        let command = switchboard_media_core::relay::Command::Remote { id: token, side, remote };
                        self.out.push(crate::Output::Media(command));
                    }
                    Action::Ended(record) => {
                        self.close_media(token);
                        self.on_call_ended(token, record);
                    }
                }
            }
            if let Some(entry) = self.calls.calls.get_mut(&token) {
                for req in failed {
                    entry.call.on_request_failed(req, now);
                }
            }
        }
        let finished = self.calls.calls.get(&token).is_some_and(|e| e.call.is_finished(now));
        if finished && let Some(e) = self.calls.calls.remove(&token) {
            for k in e.keys {
                if self.tx.contains(k) {
                    self.tx.abandon(k);
                }
            }
        }
        self.calls.schedule(token);
    }

    fn on_call_ended(&mut self, token: u64, r: Record) {
        let Some(entry) = self.calls.calls.get(&token) else { return };
        let m = &entry.meta;
        let disposition = match r.disposition {
            Disposition::Answered => CdrDisposition::Answered,
            Disposition::Busy => CdrDisposition::Busy,
            Disposition::NoAnswer => CdrDisposition::NoAnswer,
            Disposition::Failed => CdrDisposition::Failed,
            Disposition::Cancelled => CdrDisposition::Cancelled,
            Disposition::Rejected => CdrDisposition::Rejected,
        };
        let divert_reason = r.divert;
        let ms = stored_millis;
        let gateway = if m.via_gateway || r.divert.is_some_and(|_| r.diverted_to.as_deref() != Some("voicemail")) {
            r.target.clone()
        } else {
            None
        };
        let cdr = NewCdr {
            call_id: format!("{token:016x}"),
            direction: m.direction,
            service_id: m.service_id,
            device_id: r.answered_device.filter(|_| m.direction == CdrDirection::Inbound).or(m.device_id),
            caller: m.caller.clone(),
            callee: m.callee.clone(),
            call_type: m.call_type.map(str::to_owned),
            started_at: ms(r.started_at),
            answered_at: r.answered_at.map(ms),
            ended_at: Some(ms(r.ended_at)),
            disposition,
            sip_status: Some(r.status),
            divert_reason,
            diverted_to: r.diverted_to.clone(),
            gateway,
            node: self.settings.node.clone(),
            end_reason: Some(end_reason_name(r.end_reason).to_owned()),
        };
        tracing::info!(
            call = %cdr.call_id, direction = m.direction.as_str(), caller = %m.caller, callee = %m.callee,
            disposition = disposition.as_str(), status = r.status, divert = ?r.divert, end = ?r.end_reason,
            "call ended"
        );
        let (counted, inbound, live) = (m.counted, m.inbound_service, m.live);
        if let Some((device, service)) = counted {
            release_count(&mut self.calls.per_device, device);
            release_count(&mut self.calls.per_service, service);
        }
        if m.record {
            self.calls.active_dirty.insert(cdr.call_id.clone(), None);
            self.persist(Persist::Cdr(cdr));
        }
        if let Some(service) = inbound {
            release_count(&mut self.calls.inbound_per_service, service);
        }
        if live {
            self.calls.live = self.calls.live.saturating_sub(1);
        }
        if let Some(e) = self.calls.calls.get_mut(&token) {
            e.meta.counted = None;
            e.meta.inbound_service = None;
            e.meta.live = false;
        }
    }

    /// A record of an attempt refused before any call started.
    #[allow(clippy::too_many_arguments)]
    fn reject_cdr(
        &mut self,
        direction: CdrDirection,
        service_id: Option<i64>,
        device_id: Option<i64>,
        caller: &str,
        callee: &str,
        call_type: Option<&str>,
        status: u16,
        now: u64,
    ) {
        let at = stored_millis(now);
        let cdr = NewCdr {
            call_id: format!("{:016x}", self.rng.next_u64()),
            direction,
            service_id,
            device_id,
            caller: caller.to_owned(),
            callee: callee.to_owned(),
            call_type: call_type.map(str::to_owned),
            started_at: at,
            answered_at: None,
            ended_at: Some(at),
            disposition: if status == 480 {
                CdrDisposition::NoAnswer
            } else if status >= 500 {
                CdrDisposition::Failed
            } else {
                CdrDisposition::Rejected
            },
            sip_status: Some(status),
            divert_reason: None,
            diverted_to: None,
            gateway: None,
            node: self.settings.node.clone(),
            end_reason: None,
        };
        self.persist(Persist::Cdr(cdr));
    }

    /// Whether this node carries as many calls as `calls.max_calls` allows.
    fn node_full(&self) -> bool {
        self.calls.live >= self.calls.limits.max_calls
    }

    /// 503 for a new call past the node's limit, with the same Retry-After as overload shedding.
    fn refuse_node_full(&mut self, key: Key, msg: &Message, now: u64) {
        tracing::warn!(calls = self.calls.live, "node call limit reached; new call refused");
        let extra = vec![(HeaderName::RetryAfter, self.settings.retry_after_secs.to_string())];
        self.call_reply(key, msg, 503, "Service Unavailable", extra, now);
    }

    /// A final answer to an INVITE outside any call.
    pub(crate) fn call_reply(
        &mut self,
        key: Key,
        req: &Message,
        code: u16,
        reason: &str,
        extra: Vec<(HeaderName, String)>,
        now: u64,
    ) {
        self.reply(Reply::Transaction(key), req, code, reason, extra, now);
    }

    /// A request with a To tag: for one of our calls, found by the token our tags start with.
    pub(crate) fn on_dialog_request(&mut self, key: Key, msg: Message, now: u64) {
        let token = msg
            .headers
            .get(&HeaderName::To)
            .and_then(|t| NameAddr::parse(t, "To").ok())
            .and_then(|n| n.tag().and_then(token_of_tag));
        match token.filter(|t| self.calls.calls.contains_key(t)) {
            Some(t) => {
                if let Some(e) = self.calls.calls.get_mut(&t) {
                    e.call.on_request(key, msg, now);
                }
                self.pump(t, now);
            }
            None if msg.method() == Some(&Method::Options) => {
                let extra = vec![(HeaderName::Allow, ALLOW.to_owned())];
                self.call_reply(key, &msg, 200, "OK", extra, now);
            }
            None => self.call_reply(key, &msg, 481, "Call/Transaction Does Not Exist", Vec::new(), now),
        }
    }

    /// An ACK for a 2xx (RFC 6026: outside any transaction).
    pub(crate) fn on_dialog_ack(&mut self, msg: Message, now: u64) {
        let token = msg
            .headers
            .get(&HeaderName::To)
            .and_then(|t| NameAddr::parse(t, "To").ok())
            .and_then(|n| n.tag().and_then(token_of_tag));
        if let Some(t) = token
            && let Some(e) = self.calls.calls.get_mut(&t)
        {
            e.call.on_ack(&msg, now);
            self.pump(t, now);
        }
    }

    /// A CANCEL whose INVITE transaction `invite` still exists. `false`: not one of our calls.
    pub(crate) fn on_call_cancel(&mut self, key: Key, invite: Key, msg: &Message, now: u64) -> bool {
        let Some(&t) = self.calls.by_invite.get(&invite) else { return false };
        if let Some(e) = self.calls.calls.get_mut(&t) {
            e.call.on_cancel(key, msg, now);
        }
        self.pump(t, now);
        true
    }

    /// A response a client transaction passed up. `false`: not for a call.
    pub(crate) fn on_call_response(&mut self, key: Key, msg: Message, now: u64) -> bool {
        if let Some(id) = self.calls.gateway_probes.get(&key).copied() {
            self.gateway_health(id, true);
            return true;
        }
        let Some(&(t, req)) = self.calls.by_request.get(&key) else { return false };
        if let Some(e) = self.calls.calls.get_mut(&t) {
            e.call.on_response(req, msg, now);
        }
        self.pump(t, now);
        true
    }

    /// Timer B/F for a client transaction.
    pub(crate) fn on_call_request_timeout(&mut self, key: Key, now: u64) {
        if let Some(id) = self.calls.gateway_probes.remove(&key) {
            return self.gateway_health(id, false);
        }
        let Some(&(t, req)) = self.calls.by_request.get(&key) else { return };
        if let Some(e) = self.calls.calls.get_mut(&t) {
            e.call.on_request_failed(req, now);
        }
        self.pump(t, now);
    }

    /// A transaction ended: forget what pointed at it.
    pub(crate) fn on_transaction_ended(&mut self, key: Key) {
        self.calls.gateway_probes.remove(&key);
        self.calls.by_invite.remove(&key);
        if let Some((t, req)) = self.calls.by_request.remove(&key)
            && let Some(e) = self.calls.calls.get_mut(&t)
        {
            e.call.on_request_ended(req);
        }
    }

    /// Fires call deadlines and gateway checks due at `now`.
    pub(crate) fn on_call_timeouts(&mut self, now: u64) {
        while let Some(&(at, t)) = self.calls.deadlines.first() {
            if at > now {
                break;
            }
            self.calls.deadlines.pop_first();
            self.calls.due.remove(&t);
            if let Some(e) = self.calls.calls.get_mut(&t) {
                e.call.on_timeout(now);
            }
            self.pump(t, now);
        }
        if !self.calls.gateways.is_empty() && self.calls.next_gateway_check <= now {
            // The first check comes one interval after start (or after the list changed): gateways start healthy.
            let first = self.calls.next_gateway_check == 0;
            self.calls.next_gateway_check = now + self.calls.limits.gateway_check_secs * 1000;
            if !first {
                self.check_gateways(now);
            }
        }
    }

    fn check_gateways(&mut self, now: u64) {
        let list: Vec<(i64, SocketAddr, Proto)> = self
            .calls
            .gateways
            .iter()
            .map(|g| (g.gw.id, g.addr, if g.gw.transport == "tcp" { Proto::Tcp } else { Proto::Udp }))
            .collect();
        for (id, addr, proto) in list {
            let hop = self.hop(Peer { addr, proto, flow: None });
            let branch = transaction::new_branch(self.rng.next_u64());
            let mut m = Message::request(Method::Options, format!("sip:{addr}"));
            let h = &mut m.headers;
            h.push(HeaderName::Via, hop.via(&branch));
            h.push(HeaderName::MaxForwards, "70");
            h.push(HeaderName::To, format!("<sip:{addr}>"));
            h.push(HeaderName::From, format!("<sip:ping@{}>;tag={}", self.settings.domain, self.rng.token()));
            h.push(HeaderName::CallId, format!("{}@{}", self.rng.token(), self.settings.domain));
            h.push(HeaderName::CSeq, "1 OPTIONS");
            h.push(HeaderName::UserAgent, self.settings.server_header.clone());
            if let Ok(k) = self.tx.send_request(m, hop.peer, proto.is_reliable(), now) {
                self.calls.gateway_probes.insert(k, id);
            }
        }
    }

    fn gateway_health(&mut self, id: i64, up: bool) {
        if let Some(g) = self.calls.gateways.iter_mut().find(|g| g.gw.id == id)
            && g.up != up
        {
            g.up = up;
            if up {
                tracing::info!(gateway = %g.gw.name, "gateway answers health checks again");
            } else {
                tracing::warn!(gateway = %g.gw.name, "gateway does not answer health checks; tried last");
            }
        }
    }

    /// Writes the active-call changes since the last flush (see `CallTable::active_dirty`).
    pub fn flush_active_calls(&mut self) {
        if self.calls.active_dirty.is_empty() {
            return;
        }
        let dirty = std::mem::take(&mut self.calls.active_dirty);
        for (call_id, row) in dirty {
            match row {
                Some(row) => {
                    self.calls.active_stored.insert(call_id);
                    self.persist(Persist::Active(ActiveCallOp::Upsert(row)));
                }
                None => {
                    if self.calls.active_stored.remove(&call_id) {
                        self.persist(Persist::Active(ActiveCallOp::Remove { call_id }));
                    }
                }
            }
        }
    }

    /// Ends every call (the daemon is stopping): callers and callees hear BYE or a final response.
    pub(crate) fn end_all_calls(&mut self, now: u64) {
        let tokens: Vec<u64> = self.calls.calls.keys().copied().collect();
        for t in tokens {
            if let Some(e) = self.calls.calls.get_mut(&t) {
                e.call.terminate(now);
            }
            self.pump(t, now);
        }
    }
}

/// Why a call ended, as its record stores it.
fn end_reason_name(r: switchboard_b2bua::EndReason) -> &'static str {
    use switchboard_b2bua::EndReason as E;
    match r {
        E::CallerHangup => "caller_hangup",
        E::CalleeHangup => "callee_hangup",
        E::CallerCancelled => "caller_cancelled",
        E::Unanswered => "unanswered",
        E::MaxDuration => "max_duration",
        E::DeadLeg => "dead_leg",
        E::Shutdown => "shutdown",
        E::MediaTimeout => "media_timeout",
    }
}

fn release_count(map: &mut HashMap<i64, u32>, id: i64) {
    if let Some(n) = map.get_mut(&id) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&id);
        }
    }
}

/// `Privacy: id` (RFC 3323/3325) asked for.
fn privacy_id(msg: &Message) -> bool {
    msg.headers.get_list(&HeaderName::Privacy).any(|p| p.split(';').any(|t| t.trim().eq_ignore_ascii_case("id")))
}

/// The From a callee sees: the caller's number at our domain, or anonymous.
fn presented(display: Option<&str>, user: &str, withheld: bool, domain: &str) -> String {
    if withheld {
        return "\"Anonymous\" <sip:anonymous@anonymous.invalid>".into();
    }
    let safe: String = user.chars().filter(|c| c.is_ascii_alphanumeric() || "+-.*#".contains(*c)).collect();
    name_addr(display, &format!("sip:{safe}@{domain}"))
}

/// A From value for `uri` with a display name, stripped of what could break out of its quotes.
fn name_addr(display: Option<&str>, uri: &str) -> String {
    match display.map(|d| d.replace(['"', '\\'], "")) {
        Some(d) if !d.is_empty() => format!("\"{d}\" <{uri}>"),
        _ => format!("<{uri}>"),
    }
}

/// From and identity headers for a call to a carrier: the asserted number in P-Asserted-Identity (RFC 3325), and
/// an anonymous From with `Privacy: id` when withheld.
fn identity_headers(cid: &CallerId, domain: &str) -> (String, Vec<(HeaderName, String)>) {
    let mut extra = Vec::new();
    let Some(e164) = &cid.e164 else {
        return ("\"Anonymous\" <sip:anonymous@anonymous.invalid>".into(), extra);
    };
    extra.push((HeaderName::PAssertedIdentity, format!("<sip:{e164}@{domain}>")));
    if cid.withheld {
        extra.push((HeaderName::Privacy, "id".into()));
        return ("\"Anonymous\" <sip:anonymous@anonymous.invalid>".into(), extra);
    }
    (format!("<sip:{e164}@{domain}>"), extra)
}

/// `uri` with its user part replaced by `user` (a trunk's contact, addressed to the dialled number).
fn with_user(uri: &str, user: &str) -> String {
    let Some((scheme, rest)) = uri.split_once(':') else { return uri.to_owned() };
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}:{user}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunk_contacts_are_addressed_to_the_dialled_number() {
        assert_eq!(
            with_user("sip:pbx@198.51.100.1:5070;transport=udp", "+61299990000"),
            "sip:+61299990000@198.51.100.1:5070;transport=udp"
        );
        assert_eq!(with_user("sip:198.51.100.1", "+61299990000"), "sip:+61299990000@198.51.100.1");
    }

    #[test]
    fn presented_identity_is_sanitised() {
        assert_eq!(
            presented(Some("Bob \"B\""), "+61400000001", false, "sb.example"),
            "\"Bob B\" <sip:+61400000001@sb.example>"
        );
        assert_eq!(presented(None, "+614>;x", false, "sb.example"), "<sip:+614x@sb.example>");
        assert!(presented(None, "+61400000001", true, "sb.example").contains("anonymous"));
    }

    /// `privacy: id` in lower case (or any case) is the same header (RFC 3261 §7.3.1).
    #[test]
    fn privacy_is_read_whatever_the_case_of_its_name() {
        for name in ["Privacy", "privacy", "PRIVACY"] {
            let text = format!(
                "INVITE sip:0299990000@x SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
                 From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
                 Max-Forwards: 70\r\n{name}: id\r\nContent-Length: 0\r\n\r\n"
            );
            let msg = switchboard_sip_core::parse_datagram(text.as_bytes(), &Default::default()).unwrap();
            assert!(privacy_id(&msg), "{name}");
        }
    }

    #[test]
    fn withheld_caller_id_keeps_the_asserted_number() {
        let cid = CallerId { e164: Some("+61299990000".into()), withheld: true, substituted: false };
        let (from, extra) = identity_headers(&cid, "sb.example");
        assert!(from.contains("anonymous"));
        assert!(extra.iter().any(|(_, v)| v == "<sip:+61299990000@sb.example>"));
        assert!(extra.iter().any(|(_, v)| v == "id"));
    }
}
