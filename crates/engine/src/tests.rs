//! The engine on virtual time: messages in as text, outputs read back, time advanced by hand. No sockets, no
//! clock, no database.

use std::net::{IpAddr, SocketAddr};

use switchboard_model::records::{
    ActiveCallOp, BindingOp, CdrDirection, CdrDisposition, Credentials, Device, Gateway, Number, ServiceMode,
};
use switchboard_model::{DigestMode, DivertReason, DivertWhen};
use switchboard_registrar::Registrar;
use switchboard_sip_core::digest::{Algorithm, Challenge, ClientAuth, ClientSecret, client_response, ha1};
use switchboard_sip_core::transport::{FlowId, Peer, Proto};
use switchboard_sip_core::{HeaderName, Message, parse_datagram};

use crate::auth::{AuthSettings, Authenticator};
use crate::directory::{CachedDevice, CachedNumber, DeviceCache, NumberCache};
use crate::{CallLimits, Engine, Loaded, MediaSettings, Network, Output, OverloadConfig, Persist, Settings};
use switchboard_media_core::relay::{Command, Event, Remote, SessionStats, Side};

const DOMAIN: &str = "sb.example";
const T0: u64 = 1_800_000_000_000;
const US: &str = "192.0.2.10:5060";
const ALICE: &str = "198.51.100.7:5062";
const CARRIER: &str = "203.0.113.1:5060";
const SPARE_CARRIER: &str = "203.0.113.2:5060";
const PBX: &str = "198.51.100.50:5060";
const DID: &str = "+61299990001";
/// Another node of the cluster, and the secret the nodes share.
const NODE2: &str = "192.0.2.20:5060";
const CLUSTER_SECRET: &str = "the-secret-of-this-test-cluster";

struct FakeNet;

impl Network for FakeNet {
    fn sent_by(&mut self, _peer: IpAddr, _proto: Proto) -> SocketAddr {
        addr(US)
    }
    fn flow_for(&self, _addr: SocketAddr) -> Option<FlowId> {
        None
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn udp(s: &str) -> Peer {
    Peer { addr: addr(s), proto: Proto::Udp, flow: None }
}

fn device(id: i64, auth_id: &str, trusted: Option<&str>) -> CachedDevice {
    let password = "correct horse";
    let device = Device {
        id,
        service_id: id * 10,
        name: format!("{auth_id} phone"),
        auth_id: auth_id.into(),
        credentials: Credentials {
            realm: DOMAIN.into(),
            ha1_md5: ha1(Algorithm::Md5, auth_id, DOMAIN, password),
            ha1_sha256: ha1(Algorithm::Sha256, auth_id, DOMAIN, password),
            ha1_sha512_256: ha1(Algorithm::Sha512_256, auth_id, DOMAIN, password),
        },
        caller_id: Some(DID.into()),
        call_types: vec!["local".into(), "national".into(), "mobile".into()],
        max_contacts: 4,
        trusted_address: trusted.map(str::to_owned),
        digest: DigestMode::Modern,
        md5_from: Vec::new(),
        require_tls: false,
        created_at: 0,
        updated_at: 0,
    };
    let mode = if trusted.is_some() { ServiceMode::Trunk } else { ServiceMode::Direct };
    CachedDevice { device, mode, customer_id: id, service_tls: false }
}

fn gateway(id: i64, address: &str) -> (Gateway, Option<SocketAddr>) {
    let gw = Gateway {
        id,
        name: format!("carrier{id}"),
        address: address.into(),
        transport: "udp".into(),
        priority: id,
        enabled: true,
        created_at: 0,
    };
    (gw, Some(addr(address)))
}

struct Rig {
    engine: Engine,
    now: u64,
    sent: Vec<(Peer, Message)>,
    persisted: Vec<Persist>,
    events: Vec<crate::DeviceEvent>,
    relay: Vec<Command>,
    emails: Vec<switchboard_model::records::NewEmail>,
}

fn limits() -> CallLimits {
    CallLimits {
        gateway_check_secs: 30,
        max_per_device: 4,
        max_per_service: 10,
        max_inbound_per_service: 30,
        max_calls: 5000,
        max_diversions: 5,
    }
}

fn rig_with(limits: CallLimits) -> Rig {
    rig_full(limits, None)
}

fn rig_full(limits: CallLimits, media: Option<MediaSettings>) -> Rig {
    let mut devices = DeviceCache::default();
    devices.upsert(device(1, "alice", None));
    devices.upsert(device(2, "pbx", Some(PBX)));
    let mut numbers = NumberCache::default();
    let number = Number {
        id: 1,
        service_id: 10,
        number: DID.into(),
        device_id: Some(1),
        divert_when: DivertWhen::NoAnswer,
        divert_to: Some("+61400000009".into()),
        no_answer_secs: 60,
        offline_alert: Some("owner@customer.test".into()),
        created_at: 0,
        updated_at: 0,
    };
    numbers.upsert(CachedNumber { number, customer_id: 1 });
    let registrar = Registrar::new(switchboard_registrar::Config {
        keepalive_interval_ms: 3_600_000,
        ..switchboard_registrar::Config::default()
    });
    let settings = Settings {
        domain: DOMAIN.into(),
        node: "n1".into(),
        server_header: "Switchboard/test".into(),
        t1_ms: 500,
        keepalive_timeout_ms: 5_000,
        overload: OverloadConfig { target_us: 100_000, interval_us: 100_000 },
        retry_after_secs: 5,
        calls: switchboard_b2bua::CallConfig::default(),
        limits,
        voicemail: None,
        media,
        alerts: crate::alerts::AlertSettings { grace_ms: 120_000, flap_window_ms: 1_800_000, flap_count: 3 },
        cluster_secret: CLUSTER_SECRET.into(),
    };
    let loaded = Loaded {
        registrar,
        auth: Authenticator::new(DOMAIN, &AuthSettings::default(), [7; 32], [8; 32]),
        devices,
        numbers,
        gateways: vec![gateway(1, CARRIER), gateway(2, SPARE_CARRIER)],
        auth_seen: Vec::new(),
        seed: 42,
    };
    let engine = Engine::new(settings, loaded, Box::new(FakeNet));
    Rig {
        engine,
        now: T0,
        sent: Vec::new(),
        persisted: Vec::new(),
        events: Vec::new(),
        relay: Vec::new(),
        emails: Vec::new(),
    }
}

fn rig() -> Rig {
    rig_with(limits())
}

impl Rig {
    fn collect(&mut self) {
        for out in self.engine.drain_outputs() {
            match out {
                Output::Send { peer, bytes } => {
                    let msg = parse_datagram(&bytes, &Default::default()).expect("the engine sends what parses");
                    self.sent.push((peer, msg));
                }
                Output::Persist(p) => self.persisted.push(p),
                Output::Device(e) => self.events.push(e),
                Output::Media(c) => self.relay.push(c),
                Output::Email(e) => self.emails.push(e),
            }
        }
    }

    /// Delivers a message written with bare newlines in its head (its body is sent as written).
    fn deliver(&mut self, from: &str, text: &str) {
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let text = format!("{}\r\n\r\n{body}", head.replace('\n', "\r\n"));
        let msg = parse_datagram(text.as_bytes(), &Default::default()).expect("test message parses");
        self.engine.on_message(msg, udp(from), addr(US), self.now);
        self.collect();
    }

    /// Moves virtual time on by `ms`, firing every deadline on the way at its own time.
    fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        while let Some(at) = self.engine.poll_timeout().filter(|&t| t <= end) {
            self.now = self.now.max(at);
            self.engine.on_timeout(self.now);
            self.collect();
        }
        self.now = end;
    }

    fn take_sent(&mut self) -> Vec<(Peer, Message)> {
        std::mem::take(&mut self.sent)
    }

    /// The one message sent since the last look, which must be a response with `status`.
    fn response(&mut self, status: u16) -> Message {
        let sent = self.take_sent();
        let found: Vec<&Message> = sent.iter().map(|(_, m)| m).filter(|m| m.status().is_some()).collect();
        assert_eq!(found.len(), 1, "one response expected: {sent:?}");
        assert_eq!(found[0].status(), Some(status), "{:?}", found[0]);
        found[0].clone()
    }

    fn register_text(&self, cseq: u32, branch: &str, authorization: Option<&str>) -> String {
        let auth = authorization.map(|a| format!("Authorization: {a}\n")).unwrap_or_default();
        format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bK{branch}\n\
             From: <sip:alice@{DOMAIN}>;tag=a1\nTo: <sip:alice@{DOMAIN}>\nCall-ID: reg-1@{ALICE}\n\
             CSeq: {cseq} REGISTER\nContact: <sip:alice@{ALICE}>\nExpires: 120\nMax-Forwards: 70\n\
             User-Agent: TestPhone 1.0\n{auth}Content-Length: 0\n\n"
        )
    }

    /// Registers alice through a challenge; returns the authenticated REGISTER's text.
    fn register_alice(&mut self) -> String {
        self.deliver(ALICE, &self.register_text(1, "r1", None));
        let challenge = self.response(401);
        let offered: Vec<Challenge> =
            challenge.headers.get_all(&HeaderName::WwwAuthenticate).map(|v| Challenge::parse(v).unwrap()).collect();
        let ch = offered.iter().find(|c| c.algorithm == Algorithm::Sha256).expect("SHA-256 offered");
        let auth = ClientAuth {
            username: "alice",
            secret: ClientSecret::Password("correct horse"),
            method: "REGISTER",
            uri: &format!("sip:{DOMAIN}"),
            cnonce: b"0123456789abcdef",
            nc: 1,
        };
        let value = client_response(ch, &auth).unwrap();
        let text = self.register_text(2, "r2", Some(&value));
        self.deliver(ALICE, &text);
        text
    }

    fn invite_text(&self, from_number: &str, to: &str, source: &str, branch: &str) -> String {
        self.invite_with_sdp(from_number, to, source, branch, "")
    }

    fn invite_with_sdp(&self, from_number: &str, to: &str, source: &str, branch: &str, sdp: &str) -> String {
        format!(
            "INVITE sip:{to}@{US} SIP/2.0\nVia: SIP/2.0/UDP {source};branch=z9hG4bK{branch}\n\
             From: <sip:{from_number}@{source}>;tag=c{branch}\nTo: <sip:{to}@{DOMAIN}>\nCall-ID: call-{branch}\n\
             CSeq: 1 INVITE\nContact: <sip:{from_number}@{source}>\nMax-Forwards: 70\n\
             Content-Type: application/sdp\nContent-Length: {}\n\n{sdp}",
            sdp.len()
        )
    }

    /// The relay session id of the one call the relay was told of.
    fn relay_id(&self) -> u64 {
        match self.relay.first() {
            Some(Command::Open { id, .. }) => *id,
            other => panic!("no session opened: {other:?}"),
        }
    }

    fn cdrs(&self) -> Vec<&switchboard_model::records::NewCdr> {
        self.persisted.iter().filter_map(|p| if let Persist::Cdr(c) = p { Some(c) } else { None }).collect()
    }
}

fn requests_to<'a>(sent: &'a [(Peer, Message)], to: &str, method: &str) -> Vec<&'a Message> {
    sent.iter()
        .filter(|(p, m)| p.addr == addr(to) && m.method().is_some_and(|x| x.as_str() == method))
        .map(|(_, m)| m)
        .collect()
}

#[test]
fn a_register_is_challenged_then_bound_persisted_and_announced() {
    let mut r = rig();
    r.register_alice();
    let ok = r.response(200);
    assert!(ok.headers.get(&HeaderName::Contact).is_some_and(|c| c.contains("expires=120")), "{ok:?}");
    let binding = r.persisted.iter().any(|p| matches!(p, Persist::Binding(BindingOp::Upsert(b)) if b.device_id == 1));
    let auth = r.persisted.iter().any(|p| {
        matches!(p, Persist::Auth(a) if a.algorithm == "SHA-256"
        && a.user_agent.as_deref() == Some("TestPhone 1.0") && a.source == "198.51.100.7")
    });
    let state = r.persisted.iter().any(|p| matches!(p, Persist::State(s) if s.device_id == 1 && s.online));
    assert!(binding && auth && state, "{:?}", r.persisted);
    assert_eq!(r.events.len(), 1);
    assert!(r.events[0].online && r.events[0].device_id == 1 && r.events[0].at == T0);
}

/// A retransmitted REGISTER (its 200 lost) gets the same bytes again and is not applied twice.
#[test]
fn a_retransmitted_register_gets_the_same_answer_and_is_not_applied_again() {
    let mut r = rig();
    let text = r.register_alice();
    let first = r.response(200);
    let writes = r.persisted.len();
    r.advance(500);
    r.deliver(ALICE, &text);
    let again = r.response(200);
    assert_eq!(first.to_bytes(), again.to_bytes());
    assert_eq!(r.persisted.len(), writes, "nothing written for a retransmission");
    assert_eq!(r.engine.stats().retransmissions_answered, 1);
}

/// Registration expiry runs on the clock it is given: the binding is still there a millisecond before it is due,
/// and gone (removed from the store, the device offline) at its expiry.
#[test]
fn a_registration_expires_to_the_millisecond() {
    let mut r = rig();
    r.register_alice();
    r.response(200);
    r.persisted.clear();
    r.advance(120_000 - 1);
    assert!(r.persisted.is_empty(), "{:?}", r.persisted);
    assert_eq!(r.engine.stats().bindings, 1);
    r.advance(1);
    assert_eq!(r.engine.stats().bindings, 0);
    assert!(r.persisted.iter().any(|p| matches!(p, Persist::Binding(BindingOp::Remove { device_id: 1, .. }))));
    assert!(r.events.last().is_some_and(|e| !e.online && e.at == T0 + 120_000), "{:?}", r.events);
}

/// A carrier's call to a number rings its device; unanswered, it diverts to the number's external target
/// exactly when the number's no-answer time (60 s) is up, through a carrier, with a Diversion header.
#[test]
fn an_unanswered_inbound_call_diverts_at_exactly_the_no_answer_time() {
    let mut r = rig();
    r.register_alice();
    r.response(200);
    r.deliver(CARRIER, &r.invite_text("+61400000001", DID, CARRIER, "i1"));
    let sent = r.take_sent();
    let rung = requests_to(&sent, ALICE, "INVITE");
    assert_eq!(rung.len(), 1, "{sent:?}");
    assert_eq!(rung[0].request_uri(), Some(format!("sip:alice@{ALICE}").as_str()));
    assert!(sent.iter().any(|(p, m)| p.addr == addr(CARRIER) && m.status() == Some(100)));
    // The device rings, and says so.
    let ringing = rung[0].clone();
    r.deliver(ALICE, &answer(&ringing, 180, "Ringing", "phone", ""));
    r.take_sent();
    r.advance(60_000 - 1);
    let before = r.take_sent();
    assert!(requests_to(&before, ALICE, "CANCEL").is_empty(), "no divert before 60 s: {before:?}");
    r.advance(1);
    let after = r.take_sent();
    assert_eq!(requests_to(&after, ALICE, "CANCEL").len(), 1, "{after:?}");
    let diverted = requests_to(&after, CARRIER, "INVITE");
    assert_eq!(diverted.len(), 1, "{after:?}");
    assert!(diverted[0].request_uri().is_some_and(|u| u.starts_with("sip:+61400000009@")));
    let diversion = diverted[0].headers.get(&HeaderName::Diversion).expect("Diversion header");
    assert!(diversion.contains(DID) && diversion.contains("reason=no-answer"), "{diversion}");
}

/// A service's inbound channels are limited: the call past the limit is answered 486 and recorded.
#[test]
fn inbound_calls_past_the_service_channel_limit_are_busy() {
    let mut r = rig_with(CallLimits { max_inbound_per_service: 1, ..limits() });
    r.register_alice();
    r.response(200);
    r.deliver(CARRIER, &r.invite_text("+61400000001", DID, CARRIER, "i1"));
    r.take_sent();
    r.deliver(CARRIER, &r.invite_text("+61400000002", DID, CARRIER, "i2"));
    r.response(486);
    let cdrs = r.cdrs();
    assert_eq!(cdrs.len(), 1);
    assert_eq!(
        (cdrs[0].direction, cdrs[0].disposition, cdrs[0].sip_status),
        (CdrDirection::Inbound, CdrDisposition::Rejected, Some(486))
    );
}

/// Past the node's call limit a new call gets 503 with the configured Retry-After.
#[test]
fn calls_past_the_node_limit_get_503_with_retry_after() {
    let mut r = rig_with(CallLimits { max_calls: 1, ..limits() });
    r.deliver(PBX, &r.invite_text(DID, "0299990000", PBX, "o1"));
    r.take_sent();
    r.deliver(PBX, &r.invite_text(DID, "0299990001", PBX, "o2"));
    let refused = r.response(503);
    assert_eq!(refused.headers.get(&HeaderName::RetryAfter), Some("5"));
}

/// A trusted PBX's outbound call hunts the gateways by priority; after a gateway misses a health check, it is
/// tried last until it answers again.
#[test]
fn a_gateway_that_misses_its_health_check_is_tried_last() {
    let mut r = rig();
    r.deliver(PBX, &r.invite_text(DID, "0299990000", PBX, "o1"));
    let sent = r.take_sent();
    assert_eq!(requests_to(&sent, CARRIER, "INVITE").len(), 1, "priority 1 first: {sent:?}");
    assert!(requests_to(&sent, SPARE_CARRIER, "INVITE").is_empty());
    // The first check is one interval after start; the spare answers it, the first carrier does not.
    r.advance(30_000);
    let checks = r.take_sent();
    let spare = requests_to(&checks, SPARE_CARRIER, "OPTIONS");
    assert_eq!(spare.len(), 1, "{checks:?}");
    assert_eq!(requests_to(&checks, CARRIER, "OPTIONS").len(), 1);
    let check = spare[0].clone();
    r.deliver(SPARE_CARRIER, &answer(&check, 200, "OK", "gw", ""));
    // Timer F (64*T1 = 32 s) ends the unanswered check.
    r.advance(32_000);
    r.take_sent();
    r.deliver(PBX, &r.invite_text(DID, "0299990001", PBX, "o2"));
    let sent = r.take_sent();
    assert_eq!(requests_to(&sent, SPARE_CARRIER, "INVITE").len(), 1, "healthy gateway first: {sent:?}");
    assert!(requests_to(&sent, CARRIER, "INVITE").is_empty());
}

/// A call's records: the active-call row appears on the next flush and goes when the call ends; the CDR says
/// what happened. Here the device never answers the INVITE at all (not even 100 Trying): when Timer B gives its
/// leg up, every leg has failed, and the call diverts as unreachable ("offline", 3GPP CFNRc), not as unanswered.
#[test]
fn an_ended_call_leaves_one_cdr_and_no_active_row() {
    let mut r = rig();
    r.register_alice();
    r.response(200);
    r.deliver(CARRIER, &r.invite_text("+61400000001", DID, CARRIER, "i1"));
    r.engine.flush_active_calls();
    r.collect();
    assert!(r.persisted.iter().any(|p| matches!(p, Persist::Active(ActiveCallOp::Upsert(a)) if a.callee == DID)));
    // Nobody answers the divert target either: the call ends when that leg is given up too.
    r.advance(10 * 60_000);
    r.engine.flush_active_calls();
    r.collect();
    assert!(r.persisted.iter().any(|p| matches!(p, Persist::Active(ActiveCallOp::Remove { .. }))));
    let cdrs = r.cdrs();
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!(cdrs[0].direction, CdrDirection::Inbound);
    assert_eq!(cdrs[0].divert_reason, Some(DivertReason::Offline));
    assert_eq!(cdrs[0].diverted_to.as_deref(), Some("+61400000009"));
    assert_eq!(r.engine.stats().calls, 0);
}

fn sdp(ip: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
}

fn media_settings(port_max: u16) -> Option<MediaSettings> {
    Some(MediaSettings { port_min: 20_000, port_max, advertise: None, reserved: Vec::new() })
}

/// The response to a request the engine sent, as the far end would write it (with `body` as SDP, if any).
fn answer(req: &Message, status: u16, reason: &str, tag: &str, body: &str) -> String {
    let h = |n: HeaderName| req.headers.get(&n).unwrap().to_owned();
    let ct = if body.is_empty() { String::new() } else { "Content-Type: application/sdp\n".to_owned() };
    format!(
        "SIP/2.0 {status} {reason}\nVia: {}\nFrom: {}\nTo: {};tag={tag}\nCall-ID: {}\nCSeq: {}\n\
         Contact: <sip:alice@{ALICE}>\n{ct}Content-Length: {}\n\n{body}",
        h(HeaderName::Via),
        h(HeaderName::From),
        h(HeaderName::To),
        h(HeaderName::CallId),
        h(HeaderName::CSeq),
        body.len()
    )
}

/// With media anchored, each side is told the relay's address and its own side's ports, the relay is told where
/// each side receives, a media timeout hangs up both sides, and the ports come back once the relay has closed.
#[test]
fn an_anchored_call_puts_the_relay_in_both_sdps_and_frees_its_ports() {
    let mut r = rig_full(limits(), media_settings(20_010));
    r.register_alice();
    r.response(200);
    let offer = sdp("203.0.113.1", 30_000);
    r.deliver(CARRIER, &r.invite_with_sdp("+61400000001", DID, CARRIER, "m1", &offer));
    let sent = r.take_sent();
    let invite = requests_to(&sent, ALICE, "INVITE")[0].clone();
    let body = String::from_utf8(invite.body.clone()).unwrap();
    assert_eq!(body, offer.replace("203.0.113.1", "192.0.2.10").replace("30000", "20002"));
    let carrier: SocketAddr = "203.0.113.1:30000".parse().unwrap();
    assert_eq!(
        r.relay,
        vec![
            Command::Open {
                id: r.relay_id(),
                a_port: 20_000,
                b_port: 20_002,
                a: Remote::default(),
                b: Remote::default()
            },
            Command::Remote {
                id: r.relay_id(),
                side: Side::A,
                remote: Remote { rtp: Some(carrier), rtcp: None, hold: false }
            },
        ]
    );
    assert_eq!(r.engine.stats().media_port_pairs, 2);
    // The phone answers from behind NAT (its SDP names 127.0.0.9): the carrier is told the relay's A ports.
    let phone_sdp = sdp("127.0.0.9", 4000);
    r.deliver(ALICE, &answer(&invite, 200, "OK", "phone", &phone_sdp));
    let sent = r.take_sent();
    let ok = sent.iter().map(|(_, m)| m).find(|m| m.status() == Some(200)).expect("200 to the carrier");
    let body = String::from_utf8(ok.body.clone()).unwrap();
    assert_eq!(body, phone_sdp.replace("127.0.0.9", "192.0.2.10").replace("4000", "20000"));
    let phone: SocketAddr = "127.0.0.9:4000".parse().unwrap();
    assert_eq!(
        r.relay.last(),
        Some(&Command::Remote {
            id: r.relay_id(),
            side: Side::B,
            remote: Remote { rtp: Some(phone), rtcp: None, hold: false }
        })
    );
    // Nothing flows: the relay reports silence, and both sides hear BYE.
    let id = r.relay_id();
    r.engine.on_media(Event::Silent { id }, r.now);
    r.collect();
    let sent = r.take_sent();
    assert_eq!(requests_to(&sent, ALICE, "BYE").len(), 1, "{sent:?}");
    assert_eq!(requests_to(&sent, CARRIER, "BYE").len(), 1, "{sent:?}");
    assert_eq!(r.relay.last(), Some(&Command::Close { id }));
    assert_eq!(r.cdrs().last().and_then(|c| c.end_reason.as_deref()), Some("media_timeout"));
    assert_eq!(r.engine.stats().media_port_pairs, 2, "held until the relay says its sockets are closed");
    r.engine.on_media(Event::Closed { id, stats: SessionStats::default() }, r.now);
    assert_eq!(r.engine.stats().media_port_pairs, 0);
}

/// Every relay port in use: a new call is refused with 503 and Retry-After, and recorded.
#[test]
fn calls_past_the_relay_ports_are_refused() {
    let mut r = rig_full(limits(), media_settings(20_003));
    r.deliver(PBX, &r.invite_with_sdp(DID, "0299990000", PBX, "o1", &sdp("198.51.100.50", 4000)));
    assert!(requests_to(&r.take_sent(), CARRIER, "INVITE").len() == 1);
    r.deliver(PBX, &r.invite_with_sdp(DID, "0299990001", PBX, "o2", &sdp("198.51.100.50", 4002)));
    let refused = r.response(503);
    assert!(refused.to_bytes().starts_with(b"SIP/2.0 503 No Media Ports Available\r\n"));
    assert_eq!(refused.headers.get(&HeaderName::RetryAfter), Some("5"));
    assert_eq!(r.cdrs().last().map(|c| c.sip_status), Some(Some(503)));
}

fn notifies(sent: &[(Peer, Message)]) -> Vec<&Message> {
    sent.iter().map(|(_, m)| m).filter(|m| m.method().is_some_and(|x| x.as_str() == "NOTIFY")).collect()
}

fn summary(m: &Message) -> String {
    assert_eq!(m.headers.get(&HeaderName::Event), Some("message-summary"));
    assert_eq!(m.headers.get(&HeaderName::ContentType), Some("application/simple-message-summary"));
    String::from_utf8(m.body.clone()).unwrap()
}

impl Rig {
    fn subscribe_text(&self, cseq: u32, branch: &str, to_tag: &str, expires: u32, extra: &str) -> String {
        format!(
            "SUBSCRIBE sip:alice@{DOMAIN} SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bK{branch}\n\
             From: <sip:alice@{DOMAIN}>;tag=s1\nTo: <sip:alice@{DOMAIN}>{to_tag}\nCall-ID: sub-1@{ALICE}\n\
             CSeq: {cseq} SUBSCRIBE\nContact: <sip:alice@{ALICE}>\nEvent: message-summary\nExpires: {expires}\n\
             Accept: application/simple-message-summary\nMax-Forwards: 70\n{extra}Content-Length: 0\n\n"
        )
    }

    /// Alice subscribes through a 407; returns the 200.
    fn subscribe_alice(&mut self, expires: u32) -> Message {
        self.deliver(ALICE, &self.subscribe_text(1, "s1", "", expires, ""));
        let challenge = self.response(407);
        let offered: Vec<Challenge> =
            challenge.headers.get_all(&HeaderName::ProxyAuthenticate).map(|v| Challenge::parse(v).unwrap()).collect();
        let ch = offered.iter().find(|c| c.algorithm == Algorithm::Sha256).expect("SHA-256 offered");
        let auth = ClientAuth {
            username: "alice",
            secret: ClientSecret::Password("correct horse"),
            method: "SUBSCRIBE",
            uri: &format!("sip:alice@{DOMAIN}"),
            cnonce: b"0123456789abcdef",
            nc: 1,
        };
        let value = client_response(ch, &auth).unwrap();
        let text = self.subscribe_text(2, "s2", "", expires, &format!("Proxy-Authorization: {value}\n"));
        self.deliver(ALICE, &text);
        let sent = self.take_sent();
        let ok = sent.iter().map(|(_, m)| m).find(|m| m.status() == Some(200)).expect("200 to SUBSCRIBE").clone();
        // The first NOTIFY follows at once (RFC 6665 §4.2.1.1).
        let n = notifies(&sent);
        assert_eq!(n.len(), 1, "{sent:?}");
        self.answer_notifies(&sent);
        ok
    }

    /// The phone answers every NOTIFY in `sent` with 200 (or `status`).
    fn answer_notifies_with(&mut self, sent: &[(Peer, Message)], status: u16) {
        for n in notifies(sent) {
            let text = format!(
                "SIP/2.0 {status} Whatever\nVia: {}\nFrom: {}\nTo: {}\nCall-ID: {}\nCSeq: {}\nContent-Length: 0\n\n",
                n.headers.get(&HeaderName::Via).unwrap(),
                n.headers.get(&HeaderName::From).unwrap(),
                n.headers.get(&HeaderName::To).unwrap(),
                n.call_id().unwrap(),
                n.headers.get(&HeaderName::CSeq).unwrap(),
            );
            self.deliver(ALICE, &text);
        }
    }

    fn answer_notifies(&mut self, sent: &[(Peer, Message)]) {
        self.answer_notifies_with(sent, 200);
    }
}

/// Unsolicited: a Direct Mode device whose number uses voicemail hears its lamp on every change; unchanged
/// counts tell nobody; a trunk is never told unasked.
#[test]
fn the_lamp_is_told_unsolicited_on_change() {
    let mut r = rig();
    // Alice's number diverts elsewhere and has no messages: her phone is not bothered.
    r.register_alice();
    assert!(notifies(&r.take_sent()).is_empty(), "a number that does not use voicemail sends no NOTIFY");
    r.engine.on_mailbox(DID, 1, 0, r.now);
    r.collect();
    let sent = r.take_sent();
    let n = notifies(&sent);
    assert_eq!(n.len(), 1, "{sent:?}");
    assert_eq!(
        summary(n[0]),
        format!("Messages-Waiting: yes\r\nMessage-Account: sip:{DID}@{DOMAIN}\r\nVoice-Message: 1/0 (0/0)\r\n")
    );
    assert_eq!(n[0].request_uri(), Some(format!("sip:alice@{ALICE}").as_str()));
    assert!(n[0].headers.get(&HeaderName::To).is_some_and(|t| !t.contains("tag=")), "outside any dialog");
    r.engine.on_mailbox(DID, 0, 1, r.now);
    r.collect();
    let sent = r.take_sent();
    let n = notifies(&sent);
    assert_eq!(n.len(), 1);
    assert!(summary(n[0]).starts_with("Messages-Waiting: no\r\n") && summary(n[0]).contains("0/1"));
    r.engine.on_mailbox(DID, 0, 1, r.now);
    r.collect();
    assert!(r.take_sent().is_empty(), "unchanged counts tell nobody");
    // A trunk (PBX) runs its own voicemail: never unsolicited.
    r.engine.on_mailbox("+61299990099", 3, 0, r.now);
    r.collect();
    assert!(r.take_sent().is_empty());
}

/// Counts found at start tell nobody at once (no burst after a restart); the next REGISTER hears them.
#[test]
fn the_lamp_after_a_restart_comes_with_the_next_register() {
    let mut r = rig();
    r.engine.on_mailbox_initial(DID, 2, 0);
    r.collect();
    assert!(r.take_sent().is_empty(), "no burst at start");
    r.register_alice();
    let sent = r.take_sent();
    let n = notifies(&sent);
    assert_eq!(n.len(), 1, "{sent:?}");
    assert!(summary(n[0]).contains("Voice-Message: 2/0"));
}

/// Solicited: alice subscribes (authenticated), gets NOTIFYs in the subscription and no unsolicited ones; the
/// subscription expires with a last NOTIFY; a NOTIFY the phone refuses ends it.
#[test]
fn a_subscription_is_notified_refreshed_and_expires() {
    let mut r = rig();
    r.register_alice();
    r.take_sent();
    let ok = r.subscribe_alice(600);
    assert_eq!(ok.headers.get(&HeaderName::Expires), Some("600"));
    let to = ok.headers.get(&HeaderName::To).unwrap().to_owned();
    let tag = to.split("tag=").nth(1).unwrap().to_owned();
    r.engine.on_mailbox(DID, 2, 0, r.now);
    r.collect();
    let sent = r.take_sent();
    let n = notifies(&sent);
    assert_eq!(n.len(), 1, "only in the subscription: {sent:?}");
    assert_eq!(n[0].call_id(), Some(format!("sub-1@{ALICE}").as_str()));
    assert!(n[0].headers.get(&HeaderName::From).unwrap().contains(&tag));
    assert!(n[0].headers.get(&HeaderName::To).unwrap().contains("tag=s1"));
    let state = n[0].headers.get(&HeaderName::Other("Subscription-State".into())).unwrap();
    assert!(state.starts_with("active;expires="), "{state}");
    assert!(summary(n[0]).contains("Voice-Message: 2/0"));
    r.answer_notifies(&sent);
    assert_eq!(r.engine.stats().mwi_subscriptions, 1);
    // Re-registering does not also send an unsolicited NOTIFY.
    r.register_alice();
    assert!(notifies(&r.take_sent()).is_empty());
    // A refresh in the dialog.
    r.deliver(ALICE, &r.subscribe_text(3, "s3", &format!(";tag={tag}"), 600, ""));
    let sent = r.take_sent();
    assert_eq!(sent.iter().filter(|(_, m)| m.status() == Some(200)).count(), 1);
    assert_eq!(notifies(&sent).len(), 1);
    r.answer_notifies(&sent);
    // It lapses: a last NOTIFY says so, and the lamp goes back to unsolicited.
    r.advance(600_000);
    let sent = r.take_sent();
    let last = notifies(&sent);
    assert!(last.iter().any(|m| {
        m.headers.get(&HeaderName::Other("Subscription-State".into())).is_some_and(|s| s.starts_with("terminated"))
    }));
    assert_eq!(r.engine.stats().mwi_subscriptions, 0);
    // A subscription whose NOTIFY the phone refuses (481) is dropped.
    r.subscribe_alice(600);
    r.engine.on_mailbox(DID, 3, 0, r.now);
    r.collect();
    let sent = r.take_sent();
    assert_eq!(r.engine.stats().mwi_subscriptions, 1);
    r.answer_notifies_with(&sent, 481);
    assert_eq!(r.engine.stats().mwi_subscriptions, 0);
}

#[test]
fn other_event_packages_and_strangers_are_refused() {
    let mut r = rig();
    let text = r.subscribe_text(1, "p1", "", 600, "").replace("Event: message-summary", "Event: presence");
    r.deliver(ALICE, &text);
    let refused = r.response(489);
    assert_eq!(refused.headers.get(&HeaderName::AllowEvents), Some("message-summary"));
    // An in-dialog SUBSCRIBE for a subscription we do not hold.
    r.deliver(ALICE, &r.subscribe_text(1, "p2", ";tag=nope", 600, ""));
    assert!(matches!(r.take_sent().iter().find_map(|(_, m)| m.status()), Some(481)));
    // The PBX trunk (trusted by address) has no mailbox.
    let from_pbx = r.subscribe_text(1, "p3", "", 600, "").replace(ALICE, PBX);
    r.deliver(PBX, &from_pbx);
    r.response(404);
}

fn kinds(emails: &[switchboard_model::records::NewEmail]) -> Vec<&str> {
    emails.iter().map(|e| e.kind.as_str()).collect()
}

/// Alice's registration (120 s) lapses: her number (offline alert set) is down. The email waits out the grace
/// period (120 s), goes once, with the dedupe key of the outage; her next registration sends "back online".
#[test]
fn an_outage_past_the_grace_is_emailed_once_and_its_end_too() {
    let mut r = rig();
    r.register_alice();
    r.advance(120_000);
    assert!(r.events.iter().any(|e| !e.online), "alice went offline");
    let down_at = r.events.iter().find(|e| !e.online).unwrap().at;
    r.advance(119_999);
    assert!(r.emails.is_empty(), "not before the grace is over");
    r.advance(1);
    assert_eq!(kinds(&r.emails), ["offline"]);
    let e = &r.emails[0];
    assert_eq!(e.recipient, "owner@customer.test");
    assert_eq!(e.dedupe.as_deref(), Some(format!("offline:1:{down_at}").as_str()));
    assert!(e.subject.contains(DID) && e.body.contains("alice phone"), "{}", e.body);
    assert!(e.body.contains("registration expired") && e.body.contains("198.51.100.7 (TestPhone 1.0)"), "{}", e.body);
    assert!(e.body.contains("calls divert to +61400000009"), "{}", e.body);
    r.advance(3_600_000);
    assert_eq!(r.emails.len(), 1, "once");
    r.take_sent();
    r.register_alice();
    assert_eq!(kinds(&r.emails), ["offline", "online"]);
    assert!(r.emails[1].body.contains("lasted 62 minutes"), "{}", r.emails[1].body);
}

/// Shorter than the grace: nobody is bothered.
#[test]
fn a_short_outage_sends_nothing() {
    let mut r = rig();
    r.register_alice();
    r.advance(120_000);
    r.advance(60_000);
    r.take_sent();
    r.register_alice();
    r.advance(110_000); // well past where the first outage's grace would have ended
    assert!(r.emails.is_empty(), "{:?}", kinds(&r.emails));
}

/// Outage after outage: the third within the window sends one "unstable" email instead of its own, and the
/// ones that follow while it keeps flapping send nothing.
#[test]
fn a_flapping_number_sends_one_unstable_email() {
    let mut r = rig();
    for _ in 0..5 {
        r.take_sent();
        r.register_alice();
        r.advance(120_000); // expires: down
        r.advance(130_000); // past the grace
    }
    r.take_sent();
    r.register_alice();
    assert_eq!(kinds(&r.emails), ["offline", "online", "offline", "online", "unstable"]);
}

/// After a restart the store says alice has been offline for 200 s: the outage is past its grace, so the email
/// is queued at once with the same dedupe key it had (the outbox drops it if it was sent before).
#[test]
fn a_restart_finds_the_outage_and_keeps_its_key() {
    let mut r = rig();
    let since = T0 - 200_000;
    let states = [switchboard_model::records::DeviceState { device_id: 1, online: false, since: since as i64 }];
    r.engine.restore_outages(&states, T0);
    r.collect();
    assert_eq!(kinds(&r.emails), ["offline"]);
    assert_eq!(r.emails[0].dedupe.as_deref(), Some(format!("offline:1:{since}").as_str()));
    assert!(r.emails[0].body.contains("offline when the switch started"), "{}", r.emails[0].body);
}

/// Tells the rig that node `n2` is up at [`NODE2`] and holds `bindings` (device, contact, updated_at).
fn cluster_view(r: &mut Rig, bindings: &[(i64, &str, u64)]) {
    let bindings = bindings
        .iter()
        .map(|&(device_id, contact, updated_at)| switchboard_model::records::Located {
            device_id,
            contact: contact.into(),
            node: "n2".into(),
            updated_at: updated_at as i64,
            expires_at: (r.now + 3_600_000) as i64,
        })
        .collect();
    let view = crate::cluster::ClusterView { nodes: vec![("n2".into(), addr(NODE2))], bindings, full: true };
    r.engine.on_cluster(view, r.now);
    r.collect();
}

/// Node n2 as the rig sees it (so it can sign and check what n1 sends).
fn node2() -> crate::cluster::Cluster {
    let mut n2 = crate::cluster::Cluster::new(CLUSTER_SECRET, "n2");
    n2.update(crate::cluster::ClusterView { nodes: vec![("n1".into(), addr(US))], ..Default::default() }, 0);
    n2
}

/// A carrier's call for a device registered on another node goes to that node, signed, addressed to the
/// dialled number; this node keeps the call (and its record) and still diverts when no one answers.
#[test]
fn a_call_for_a_device_bound_on_another_node_is_relayed_there() {
    let mut r = rig();
    cluster_view(&mut r, &[(1, &format!("sip:alice@{ALICE}"), T0)]);
    r.deliver(CARRIER, &r.invite_text("+61400000001", DID, CARRIER, "x1"));
    let sent = r.take_sent();
    assert!(requests_to(&sent, ALICE, "INVITE").is_empty(), "not rung from here: {sent:?}");
    let relayed = requests_to(&sent, NODE2, "INVITE");
    assert_eq!(relayed.len(), 1, "{sent:?}");
    assert_eq!(relayed[0].request_uri(), Some(format!("sip:{DID}@{NODE2}").as_str()));
    assert_eq!(relayed[0].headers.get(&HeaderName::MaxForwards), Some("69"));
    let header = relayed[0].headers.get(&HeaderName::Other("X-Switchboard-Relay".into())).expect("signed");
    let checked = node2().verify(header, addr(US), r.now).expect("n2 takes it");
    assert_eq!((checked.device_id, checked.number.as_str(), checked.node.as_str()), (1, DID, "n1"));
    // n2 rings; nobody answers: the divert happens here, at the number's no-answer time.
    r.deliver(NODE2, &answer(relayed[0], 180, "Ringing", "n2leg", ""));
    r.take_sent();
    r.advance(60_000);
    let after = r.take_sent();
    assert_eq!(requests_to(&after, NODE2, "CANCEL").len(), 1, "{after:?}");
    assert_eq!(requests_to(&after, CARRIER, "INVITE").len(), 1, "diverted through the carrier: {after:?}");
}

/// A node whose heartbeat lapsed is not in the view: its bindings are stale, the device counts as offline, and
/// the number's "offline" rules apply (here: no device online, no divert on offline: 480).
#[test]
fn bindings_of_a_node_that_stopped_are_not_relayed_to() {
    let mut r = rig();
    cluster_view(&mut r, &[(1, &format!("sip:alice@{ALICE}"), T0)]);
    let stopped = crate::cluster::ClusterView { nodes: Vec::new(), bindings: Vec::new(), full: false };
    r.engine.on_cluster(stopped, r.now);
    r.deliver(CARRIER, &r.invite_text("+61400000001", DID, CARRIER, "x2"));
    let sent = r.take_sent();
    assert!(requests_to(&sent, NODE2, "INVITE").is_empty(), "{sent:?}");
    assert!(requests_to(&sent, ALICE, "INVITE").is_empty(), "{sent:?}");
}

/// An INVITE relayed by a live node, correctly signed, rings the device's bindings held here and nothing else;
/// this node writes no CDR and no active-call row for it (the node the call landed on does).
#[test]
fn a_relayed_invite_rings_the_local_binding_and_records_nothing() {
    let mut r = rig();
    r.register_alice();
    r.response(200);
    cluster_view(&mut r, &[]);
    r.persisted.clear();
    let signed = node2().sign(1, DID, r.now);
    let text = r
        .invite_text("+61400000001", DID, NODE2, "y1")
        .replace("Max-Forwards: 70\n", &format!("Max-Forwards: 69\nX-Switchboard-Relay: {signed}\n"));
    r.deliver(NODE2, &text);
    let sent = r.take_sent();
    let rung = requests_to(&sent, ALICE, "INVITE");
    assert_eq!(rung.len(), 1, "{sent:?}");
    assert!(rung[0].headers.get(&HeaderName::Other("X-Switchboard-Relay".into())).is_none(), "not passed on");
    assert_eq!(rung[0].headers.get(&HeaderName::MaxForwards), Some("68"));
    assert!(sent.iter().all(|(p, _)| p.addr != addr(CARRIER)), "no divert, no relaying on: {sent:?}");
    r.deliver(ALICE, &answer(rung[0], 486, "Busy Here", "al", ""));
    r.engine.flush_active_calls();
    r.collect();
    assert!(r.take_sent().iter().any(|(p, m)| p.addr == addr(NODE2) && m.status() == Some(486)));
    assert!(r.cdrs().is_empty(), "{:?}", r.persisted);
    assert!(!r.persisted.iter().any(|p| matches!(p, Persist::Active(_))), "{:?}", r.persisted);
}

/// A relay header from anywhere but a live node's cluster address, or not signed with the cluster's secret, is
/// refused with 403 before anything rings: a device or a stranger cannot use it to skip authentication.
#[test]
fn a_forged_relay_is_refused() {
    let mut r = rig();
    r.register_alice();
    r.response(200);
    cluster_view(&mut r, &[]);
    let forged = crate::cluster::Cluster::new("not-the-cluster-secret", "n2").sign(1, DID, r.now);
    for (source, value) in [(NODE2, forged), (ALICE, node2().sign(1, DID, r.now))] {
        let text = r
            .invite_text("+61400000001", DID, source, "z1")
            .replace("Max-Forwards: 70\n", &format!("Max-Forwards: 70\nX-Switchboard-Relay: {value}\n"));
        r.deliver(source, &text);
        let sent = r.take_sent();
        assert!(requests_to(&sent, ALICE, "INVITE").is_empty(), "{sent:?}");
        let refused: Vec<_> = sent.iter().filter(|(_, m)| m.status() == Some(403)).collect();
        assert_eq!(refused.len(), 1, "{sent:?}");
    }
}

/// The device registered again on another node with the same contact: the copy here is dropped without a
/// word (no removal written, no offline event), and calls go to the node that holds it now.
#[test]
fn a_binding_that_moved_to_another_node_is_dropped_here_quietly() {
    let mut r = rig();
    r.register_alice();
    r.response(200);
    r.persisted.clear();
    r.events.clear();
    r.advance(1_000);
    let now = r.now;
    cluster_view(&mut r, &[(1, &format!("sip:alice@{ALICE}"), now)]);
    assert!(r.engine.registrar.bindings(1).is_empty());
    assert!(r.persisted.is_empty(), "the row is the other node's: {:?}", r.persisted);
    assert!(r.events.is_empty(), "{:?}", r.events);
    r.deliver(CARRIER, &r.invite_text("+61400000001", DID, CARRIER, "m1"));
    let sent = r.take_sent();
    assert_eq!(requests_to(&sent, NODE2, "INVITE").len(), 1, "{sent:?}");
    assert!(requests_to(&sent, ALICE, "INVITE").is_empty(), "{sent:?}");
}

/// A device set to TLS only: over UDP it is challenged like anyone (a stranger learns nothing), and with the
/// right password refused with 403 "TLS Required"; nothing is bound. Its calls out are refused the same way.
#[test]
fn a_tls_only_device_is_refused_over_udp_once_authenticated() {
    let mut r = rig();
    let mut alice = device(1, "alice", None);
    alice.device.require_tls = true;
    r.engine.on_change(crate::directory::Change::Upsert(Box::new(alice)), r.now);
    // Challenged as usual (register_alice checks the 401), then refused with the right password.
    r.register_alice();
    let refused = r.response(403);
    assert!(String::from_utf8_lossy(&refused.to_bytes()).starts_with("SIP/2.0 403 TLS Required\r\n"));
    assert!(r.engine.registrar.bindings(1).is_empty());
    assert!(!r.persisted.iter().any(|p| matches!(p, Persist::Binding(_))), "{:?}", r.persisted);
}

/// Node n2 holding alice's registration stops. The first live node by name (n1 here) reports her offline, with
/// the reason, and her number's offline alert goes out after the grace; a node that is not first says nothing.
#[test]
fn the_first_live_node_reports_the_devices_of_a_stopped_node_offline() {
    let mut r = rig();
    cluster_view(&mut r, &[(1, &format!("sip:alice@{ALICE}"), T0)]);
    r.persisted.clear();
    r.engine.on_cluster(crate::cluster::ClusterView { full: false, ..Default::default() }, r.now);
    r.collect();
    let down = r.events.iter().find(|e| e.device_id == 1 && !e.online).expect("reported offline");
    assert_eq!(down.reason, Some(switchboard_registrar::OfflineReason::NodeStopped));
    assert!(r.persisted.iter().any(|p| matches!(p, Persist::State(s) if s.device_id == 1 && !s.online)));
    r.advance(120_000);
    assert_eq!(kinds(&r.emails), ["offline"]);
    assert!(r.emails[0].body.contains("node it was registered with stopped"), "{}", r.emails[0].body);

    // Another cluster where "a0" (first by name) is up beside the stopped n2: n1 leaves it to a0.
    let mut r = rig();
    let view = |nodes: Vec<(String, SocketAddr)>| crate::cluster::ClusterView {
        nodes,
        bindings: vec![switchboard_model::records::Located {
            device_id: 1,
            contact: format!("sip:alice@{ALICE}"),
            node: "n2".into(),
            updated_at: T0 as i64,
            expires_at: (T0 + 3_600_000) as i64,
        }],
        full: true,
    };
    r.engine.on_cluster(view(vec![("a0".into(), addr(SPARE_CARRIER)), ("n2".into(), addr(NODE2))]), r.now);
    r.engine.on_cluster(view(vec![("a0".into(), addr(SPARE_CARRIER))]), r.now);
    r.collect();
    assert!(r.events.is_empty(), "{:?}", r.events);
}

/// Reported offline for its stopped node, the device registers with another live node within the grace: the
/// outage ends there, and no email goes out.
#[test]
fn a_stranded_device_bound_again_elsewhere_is_not_alerted() {
    let mut r = rig();
    cluster_view(&mut r, &[(1, &format!("sip:alice@{ALICE}"), T0)]);
    r.engine.on_cluster(crate::cluster::ClusterView { full: false, ..Default::default() }, r.now);
    r.advance(30_000);
    let now = r.now;
    let again = crate::cluster::ClusterView {
        nodes: vec![("n3".into(), addr(SPARE_CARRIER))],
        bindings: vec![switchboard_model::records::Located {
            device_id: 1,
            contact: "sip:alice@198.51.100.8:5062".into(),
            node: "n3".into(),
            updated_at: now as i64,
            expires_at: (now + 3_600_000) as i64,
        }],
        full: false,
    };
    r.persisted.clear();
    r.engine.on_cluster(again, now);
    r.collect();
    assert!(r.persisted.iter().any(|p| matches!(p, Persist::State(s) if s.device_id == 1 && s.online)), "made right");
    r.advance(600_000);
    assert!(r.emails.is_empty(), "{:?}", kinds(&r.emails));
}
