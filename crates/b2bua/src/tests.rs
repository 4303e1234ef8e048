//! The call machine stepped message by message on virtual time.

use switchboard_sip_core::parse::{Limits, parse_datagram};
use switchboard_sip_core::transaction::{Key, TimerConfig, TransactionLayer};
use switchboard_sip_core::validate::response_to;
use switchboard_sip_core::{HeaderName, Message, Method};

use crate::{Action, Call, CallConfig, Disposition, DivertPlan, DivertReason, EndReason, Hop, Mode, Plan, Target};

#[derive(Debug, Clone, PartialEq, Eq)]
struct FakeHop(&'static str, bool);

impl Hop for FakeHop {
    fn via(&self, branch: &str) -> String {
        format!("SIP/2.0/UDP 192.0.2.1:5060;branch={branch};rport")
    }
    fn contact(&self) -> String {
        "sip:sb@192.0.2.1:5060".into()
    }
    fn reliable(&self) -> bool {
        self.1
    }
}

const SDP: &str =
    "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

fn invite(body: bool) -> Message {
    let text = format!(
        "INVITE sip:+61299990000@sb.example SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bKcaller1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:+61400000001@carrier.example>;tag=c1\r\nTo: <sip:+61299990000@sb.example>\r\n\
         Call-ID: inbound-1@carrier\r\nCSeq: 10 INVITE\r\nContact: <sip:gw@203.0.113.9:5060>\r\n\
         Record-Route: <sip:edge.carrier.example;lr>\r\n{}\r\n{}",
        if body {
            format!("Content-Type: application/sdp\r\nContent-Length: {}\r\n", SDP.len())
        } else {
            "Content-Length: 0\r\n".into()
        },
        if body { SDP } else { "" }
    );
    parse_datagram(text.as_bytes(), &Limits::default()).unwrap()
}

fn target(name: &'static str, device: Option<i64>) -> Target<FakeHop> {
    Target {
        request_uri: format!("sip:{name}@198.51.100.20:5062"),
        to: "<sip:+61299990000@sb.example>".into(),
        from: "<sip:+61400000001@sb.example>".into(),
        hop: FakeHop(name, false),
        route: Vec::new(),
        extra: Vec::new(),
        label: name.into(),
        device_id: device,
    }
}

fn divert_plan(names: &[&'static str]) -> DivertPlan<FakeHop> {
    DivertPlan {
        diverting_uri: "sip:+61299990000@sb.example".into(),
        targets: names.iter().map(|n| target(n, None)).collect(),
        previous: Vec::new(),
        counter: 1,
        label: "+61255550000".into(),
    }
}

const A_KEY: Key = key(1000);

const fn key(n: u64) -> Key {
    Key::from_raw(n)
}

/// One call with what it asked for so far, split by kind.
struct Harness {
    call: Call<FakeHop>,
    /// Requests the call started: (req, message, hop).
    requests: Vec<(u32, Message, FakeHop)>,
    responses: Vec<(Key, Message)>,
    sent: Vec<(Message, FakeHop)>,
    answered: Option<u64>,
    record: Option<crate::Record>,
    /// What the relay would be told: each side's announced media.
    media: Vec<(crate::MediaSide, crate::Remote)>,
}

impl Harness {
    fn new(plan: Plan<FakeHop>, body: bool) -> Self {
        Self::with_config(plan, body, CallConfig::default())
    }

    fn with_config(plan: Plan<FakeHop>, body: bool, cfg: CallConfig) -> Self {
        Self::of(Call::new(cfg, 0xabcdef, A_KEY, invite(body), FakeHop("caller", false), plan, 0))
    }

    /// A harness around `call`, with what it asked for at its start collected.
    fn of(call: Call<FakeHop>) -> Self {
        let mut h = Harness {
            call,
            requests: Vec::new(),
            responses: Vec::new(),
            sent: Vec::new(),
            answered: None,
            record: None,
            media: Vec::new(),
        };
        h.collect();
        h
    }

    fn collect(&mut self) {
        for a in self.call.drain_actions() {
            match a {
                Action::Respond { key, msg } => self.responses.push((key, msg)),
                Action::Request { req, msg, hop } => self.requests.push((req, msg, hop)),
                Action::Send { msg, hop } => self.sent.push((msg, hop)),
                Action::Answered { at } => self.answered = Some(at),
                Action::Media { side, remote } => self.media.push((side, remote)),
                Action::Ended(r) => {
                    assert!(self.record.is_none(), "a call ends once");
                    self.record = Some(r);
                }
            }
        }
    }

    /// The INVITEs sent so far, by target name.
    fn invites(&self) -> Vec<(u32, Message, &'static str)> {
        self.requests
            .iter()
            .filter(|(_, m, _)| {
                m.method() == Some(&Method::Invite) && m.headers.get(&HeaderName::CSeq) == Some("1 INVITE")
            })
            .map(|(r, m, h)| (*r, m.clone(), h.0))
            .collect()
    }

    fn invite_to(&self, name: &str) -> (u32, Message) {
        let (r, m, _) = self.invites().into_iter().find(|(_, _, n)| *n == name).expect("an INVITE to the target");
        (r, m)
    }

    fn requests_of(&self, method: Method) -> Vec<(u32, Message, &'static str)> {
        self.requests
            .iter()
            .filter(|(_, m, _)| m.method() == Some(&method))
            .map(|(r, m, h)| (*r, m.clone(), h.0))
            .collect()
    }

    /// The target answers its INVITE with `code` (and our SDP for 2xx/183).
    fn answer(&mut self, name: &str, code: u16, now: u64) {
        let (req, inv) = self.invite_to(name);
        let mut r = response_to(&inv.headers, code, reason(code), Some(&format!("callee-{name}")));
        if (200..300).contains(&code) || code == 183 {
            r.headers.push(HeaderName::Contact, format!("<sip:{name}@198.51.100.20:5062>"));
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = SDP.replace("198.51.100.7", "198.51.100.20").into_bytes();
        }
        self.call.on_response(req, r, now);
        self.collect();
    }

    fn last_response_to_a(&self) -> &Message {
        &self.responses.iter().rev().find(|(k, _)| *k == A_KEY).expect("a response to the caller").1
    }

    fn codes_to_a(&self) -> Vec<u16> {
        self.responses.iter().filter(|(k, _)| *k == A_KEY).filter_map(|(_, m)| m.status()).collect()
    }

    /// A request from the caller inside the call, To-tagged with our tag.
    fn caller_sends(&mut self, method: &str, cseq: u32, body: Option<&str>, key: Key, now: u64) {
        let to_tag = self.our_tag_to_caller();
        let text = format!(
            "{method} sip:sb@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bKc{cseq}\r\n\
             From: <sip:+61400000001@carrier.example>;tag=c1\r\nTo: <sip:+61299990000@sb.example>;tag={to_tag}\r\n\
             Call-ID: inbound-1@carrier\r\nCSeq: {cseq} {method}\r\n{}\r\n{}",
            body.map(|b| format!("Content-Type: application/sdp\r\nContent-Length: {}\r\n", b.len()))
                .unwrap_or("Content-Length: 0\r\n".into()),
            body.unwrap_or("")
        );
        let m = parse_datagram(text.as_bytes(), &Limits::default()).unwrap();
        if method == "ACK" {
            self.call.on_ack(&m, now);
        } else {
            self.call.on_request(key, m, now);
        }
        self.collect();
    }

    fn our_tag_to_caller(&self) -> String {
        let to = self.last_response_to_a().headers.get(&HeaderName::To).unwrap();
        to.rsplit("tag=").next().unwrap().to_owned()
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        486 => "Busy Here",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

fn fork(names: &[&'static str]) -> Plan<FakeHop> {
    Plan::ring(Mode::Fork, names.iter().enumerate().map(|(i, n)| target(n, Some(i as i64 + 1))).collect())
}

#[test]
fn fork_rings_every_target_relays_ringing_and_bridges_the_first_answer() {
    let mut h = Harness::new(fork(&["dev1", "dev2"]), true);
    assert_eq!(h.codes_to_a(), [100]);
    let invites = h.invites();
    assert_eq!(invites.len(), 2);
    for (_, inv, _) in &invites {
        // Topology hiding: a fresh Call-ID and our own Via, Contact and tags only.
        assert_ne!(inv.call_id(), Some("inbound-1@carrier"));
        assert_eq!(inv.headers.count(&HeaderName::Via), 1);
        assert!(
            !inv.to_bytes().windows(9).any(|w| w == b"203.0.113"),
            "caller's addresses leak:\n{}",
            String::from_utf8_lossy(&inv.to_bytes())
        );
        assert_eq!(inv.headers.get(&HeaderName::MaxForwards), Some("69"));
        assert_eq!(inv.body, SDP.as_bytes());
    }
    h.answer("dev1", 180, 100);
    assert_eq!(h.codes_to_a(), [100, 180]);
    h.answer("dev2", 180, 150);
    h.answer("dev2", 200, 2000);
    assert_eq!(h.answered, Some(2000));
    // The winner is acknowledged, the other leg cancelled, the caller gets the winner's SDP.
    assert_eq!(h.sent.len(), 1);
    assert_eq!(h.sent[0].0.method(), Some(&Method::Ack));
    assert_eq!(h.sent[0].1.0, "dev2");
    let cancels = h.requests_of(Method::Cancel);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].2, "dev1");
    let (_, inv1) = h.invite_to("dev1");
    assert_eq!(
        cancels[0].1.headers.get(&HeaderName::Via),
        inv1.headers.get(&HeaderName::Via),
        "CANCEL reuses the INVITE's Via"
    );
    let ok = h.last_response_to_a().clone();
    assert_eq!(ok.status(), Some(200));
    assert!(String::from_utf8_lossy(&ok.body).contains("198.51.100.20"));
    assert!(ok.headers.get(&HeaderName::Contact).unwrap().contains("192.0.2.1"));
    // The caller hangs up: 200 to the caller, BYE to the callee, one record.
    h.caller_sends("ACK", 10, None, key(0), 2010);
    h.caller_sends("BYE", 11, None, key(2000), 5000);
    assert!(h.responses.iter().any(|(k, m)| *k == key(2000) && m.status() == Some(200)));
    let byes = h.requests_of(Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].2, "dev2");
    assert!(byes[0].1.headers.get(&HeaderName::To).unwrap().contains("tag=callee-dev2"));
    let r = h.record.clone().unwrap();
    assert_eq!(
        (r.disposition, r.end_reason, r.answered_at, r.ended_at),
        (Disposition::Answered, EndReason::CallerHangup, Some(2000), 5000)
    );
    assert_eq!(r.answered_device, Some(2));
    assert!(!h.call.is_finished(5000));
    assert!(h.call.is_finished(5000 + CallConfig::default().linger_ms));
}

#[test]
fn the_callee_hanging_up_sends_bye_to_the_caller() {
    let mut h = Harness::new(fork(&["dev1"]), true);
    h.answer("dev1", 200, 1000);
    let (_, inv) = h.invite_to("dev1");
    let mut bye = Message::request(Method::Bye, "sip:sb@192.0.2.1:5060");
    bye.headers.push(HeaderName::Via, "SIP/2.0/UDP 198.51.100.20:5062;branch=z9hG4bKcallee");
    bye.headers.push(HeaderName::From, "<sip:+61299990000@sb.example>;tag=callee-dev1");
    bye.headers.push(HeaderName::To, inv.headers.get(&HeaderName::From).unwrap());
    bye.headers.push(HeaderName::CallId, inv.call_id().unwrap());
    bye.headers.push(HeaderName::CSeq, "1 BYE");
    h.call.on_request(key(77), bye, 3000);
    h.collect();
    assert!(h.responses.iter().any(|(k, m)| *k == key(77) && m.status() == Some(200)));
    let byes = h.requests_of(Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].2, "caller");
    let b = &byes[0].1;
    assert_eq!(b.request_uri(), Some("sip:gw@203.0.113.9:5060"), "to the caller's Contact");
    assert_eq!(b.headers.get(&HeaderName::CallId), Some("inbound-1@carrier"));
    assert_eq!(b.headers.get(&HeaderName::Route), Some("<sip:edge.carrier.example;lr>"));
    assert!(b.headers.get(&HeaderName::To).unwrap().contains("tag=c1"));
    assert_eq!(h.record.unwrap().end_reason, EndReason::CalleeHangup);
}

fn no_answer_plan(secs: u64) -> Plan<FakeHop> {
    let mut p = fork(&["dev1"]);
    p.no_answer_ms = Some(secs * 1000);
    p.divert_on_busy = true;
    p.divert = Some(divert_plan(&["gw1", "gw2"]));
    p
}

#[test]
fn no_answer_diverts_at_exactly_the_configured_time_with_diversion_and_history_info() {
    let mut h = Harness::new(no_answer_plan(60), true);
    h.answer("dev1", 180, 50);
    assert_eq!(h.call.poll_timeout(), Some(60_000));
    h.call.on_timeout(59_999);
    h.collect();
    assert!(h.requests_of(Method::Cancel).is_empty());
    h.call.on_timeout(60_000);
    h.collect();
    assert_eq!(h.requests_of(Method::Cancel).len(), 1, "the device leg is cancelled");
    let (_, gw) = h.invite_to("gw1");
    let div = gw.headers.get(&HeaderName::Diversion).unwrap();
    assert_eq!(div, "<sip:+61299990000@sb.example>;reason=no-answer;counter=1;privacy=off");
    let hi = gw.headers.get(&HeaderName::HistoryInfo).unwrap();
    assert!(hi.starts_with("<sip:+61299990000@sb.example?Reason=SIP%3Bcause%3D408>;index=1,"), "{hi}");
    assert!(hi.contains(";index=1.1;mp=1"), "{hi}");
    assert_eq!(gw.body, SDP.as_bytes());
    h.answer("gw1", 200, 61_000);
    let r = h.record.clone();
    assert!(r.is_none());
    assert_eq!(h.answered, Some(61_000));
    h.caller_sends("BYE", 11, None, key(5), 70_000);
    let r = h.record.unwrap();
    assert_eq!(r.divert, Some(DivertReason::NoAnswer));
    assert_eq!(r.diverted_to.as_deref(), Some("+61255550000"));
    assert_eq!(r.target.as_deref(), Some("gw1"));
}

#[test]
fn busy_diverts_at_once_and_a_late_answer_from_a_cancelled_leg_is_hung_up() {
    let mut p = no_answer_plan(60);
    p.ring = vec![target("dev1", Some(1)), target("dev2", Some(2))];
    let mut h = Harness::new(p, true);
    h.answer("dev1", 180, 10);
    h.answer("dev2", 486, 20);
    let (_, gw) = h.invite_to("gw1");
    assert!(gw.headers.get(&HeaderName::Diversion).unwrap().contains("reason=user-busy"));
    assert_eq!(h.requests_of(Method::Cancel).len(), 1);
    // dev1 answers anyway (the CANCEL crossed its 200): acknowledged and hung up, the call is not bridged to it.
    h.answer("dev1", 200, 30);
    assert!(h.sent.iter().any(|(m, hop)| m.method() == Some(&Method::Ack) && hop.0 == "dev1"));
    assert!(h.requests_of(Method::Bye).iter().any(|(_, _, n)| *n == "dev1"));
    assert_eq!(h.answered, None);
}

#[test]
fn busy_without_a_divert_rule_reaches_the_caller() {
    let mut h = Harness::new(fork(&["dev1"]), true);
    h.answer("dev1", 486, 10);
    assert_eq!(h.codes_to_a(), [100, 486]);
    assert_eq!(h.record.unwrap().disposition, Disposition::Busy);
}

#[test]
fn caller_cancel_while_ringing() {
    let mut h = Harness::new(fork(&["dev1", "dev2"]), true);
    h.answer("dev1", 180, 10);
    let cancel = {
        let mut c = Message::request(Method::Cancel, "sip:+61299990000@sb.example");
        let inv = invite(true);
        for n in [HeaderName::Via, HeaderName::From, HeaderName::To, HeaderName::CallId] {
            c.headers.push(n.clone(), inv.headers.get(&n).unwrap());
        }
        c.headers.push(HeaderName::CSeq, "10 CANCEL");
        c
    };
    h.call.on_cancel(key(9), &cancel, 500);
    h.collect();
    assert!(h.responses.iter().any(|(k, m)| *k == key(9) && m.status() == Some(200)));
    assert_eq!(h.codes_to_a(), [100, 180, 487]);
    // dev1 rang, so it is cancelled now; dev2 is cancelled as soon as it may be (§9.1).
    assert_eq!(h.requests_of(Method::Cancel).len(), 1);
    h.answer("dev2", 100, 600);
    assert_eq!(h.requests_of(Method::Cancel).len(), 2);
    assert_eq!(h.record.unwrap().disposition, Disposition::Cancelled);
}

#[test]
fn hunt_fails_over_on_503_and_on_silence() {
    let gws = vec![target("gw1", None), target("gw2", None), target("gw3", None)];
    let mut h = Harness::new(Plan::ring(Mode::Hunt, gws), true);
    assert_eq!(h.invites().len(), 1);
    h.answer("gw1", 503, 100);
    assert_eq!(h.invites().len(), 2);
    let hunt = CallConfig::default().hunt_timeout_ms;
    assert_eq!(h.call.poll_timeout(), Some(100 + hunt));
    h.call.on_timeout(100 + hunt);
    h.collect();
    let (_, _) = h.invite_to("gw3");
    h.answer("gw3", 200, 5000);
    assert!(h.answered.is_some());
    // gw2 wakes up late and answers: it is hung up.
    h.answer("gw2", 200, 6000);
    assert!(h.requests_of(Method::Bye).iter().any(|(_, _, n)| *n == "gw2"));
}

#[test]
fn hunt_stops_at_a_refusal_and_relays_it() {
    let gws = vec![target("gw1", None), target("gw2", None)];
    let mut h = Harness::new(Plan::ring(Mode::Hunt, gws), true);
    h.answer("gw1", 404, 100);
    assert_eq!(h.invites().len(), 1);
    assert_eq!(h.codes_to_a(), [100, 404]);
    assert_eq!(h.record.unwrap().disposition, Disposition::Rejected);
}

#[test]
fn every_gateway_failing_gives_the_caller_the_failure() {
    let mut h = Harness::new(Plan::ring(Mode::Hunt, vec![target("gw1", None), target("gw2", None)]), true);
    h.answer("gw1", 503, 10);
    h.answer("gw2", 503, 20);
    // A 503 to the caller would say we are overloaded: the caller hears 500 (RFC 3261 §16.7 step 6).
    assert_eq!(h.codes_to_a(), [100, 500]);
}

#[test]
fn divert_now_to_an_unconfigured_voicemail_is_480() {
    let mut p = fork(&[]);
    p.divert = Some(divert_plan(&[]));
    p.divert_now = Some(DivertReason::All);
    let h = Harness::new(p, true);
    assert_eq!(h.codes_to_a(), [100, 480]);
    assert_eq!(h.record.unwrap().divert, Some(DivertReason::All));
}

#[test]
fn divert_now_is_unconditional() {
    let mut p = fork(&["dev1"]);
    p.divert = Some(divert_plan(&["gw1"]));
    p.divert_now = Some(DivertReason::All);
    let h = Harness::new(p, true);
    assert_eq!(h.invites().len(), 1, "the device is not rung");
    let (_, gw) = h.invite_to("gw1");
    assert!(gw.headers.get(&HeaderName::Diversion).unwrap().contains("reason=unconditional"));
}

#[test]
fn no_binding_and_no_divert_is_480() {
    let h = Harness::new(fork(&[]), true);
    assert_eq!(h.codes_to_a(), [100, 480]);
}

#[test]
fn our_2xx_is_retransmitted_over_udp_until_the_ack() {
    let mut h = Harness::new(fork(&["dev1"]), true);
    h.answer("dev1", 200, 1000);
    let count = |h: &Harness| h.codes_to_a().iter().filter(|&&c| c == 200).count();
    assert_eq!(count(&h), 1);
    assert_eq!(h.call.poll_timeout(), Some(1500));
    h.call.on_timeout(1500);
    h.collect();
    assert_eq!(count(&h), 2);
    assert_eq!(h.call.poll_timeout(), Some(2500));
    h.caller_sends("ACK", 10, None, key(0), 1600);
    assert_ne!(h.call.poll_timeout(), Some(2500));
    h.call.on_timeout(2500);
    h.collect();
    assert_eq!(count(&h), 2);
}

#[test]
fn late_offer_the_callers_ack_carries_the_answer_to_the_callee() {
    let mut h = Harness::new(fork(&["dev1"]), false);
    assert!(h.invite_to("dev1").1.body.is_empty());
    h.answer("dev1", 200, 1000);
    assert!(h.sent.is_empty(), "the ACK waits for the answer");
    h.caller_sends("ACK", 10, Some(SDP), key(0), 1100);
    assert_eq!(h.sent.len(), 1);
    assert_eq!(h.sent[0].0.body, SDP.as_bytes());
}

#[test]
fn re_invite_is_relayed_and_its_answer_comes_back() {
    let mut h = Harness::new(fork(&["dev1"]), true);
    h.answer("dev1", 200, 1000);
    h.caller_sends("ACK", 10, None, key(0), 1001);
    let hold = SDP.replace("t=0 0", "t=0 0\r\na=sendonly");
    h.caller_sends("INVITE", 11, Some(&hold), key(50), 2000);
    let reinv: Vec<_> = h
        .requests
        .iter()
        .filter(|(_, m, _)| m.method() == Some(&Method::Invite) && m.headers.get(&HeaderName::CSeq) == Some("2 INVITE"))
        .cloned()
        .collect();
    assert_eq!(reinv.len(), 1);
    let (req, m, hop) = &reinv[0];
    assert_eq!(hop.0, "dev1");
    assert_eq!(m.request_uri(), Some("sip:dev1@198.51.100.20:5062"));
    assert!(String::from_utf8_lossy(&m.body).contains("sendonly"));
    // A second offer while this one is out: 491.
    h.caller_sends("UPDATE", 12, Some(SDP), key(51), 2001);
    assert!(h.responses.iter().any(|(k, m)| *k == key(51) && m.status() == Some(491)));
    let mut ok = response_to(&m.headers, 200, "OK", None);
    ok.headers.push(HeaderName::ContentType, "application/sdp");
    ok.body = b"v=0 recvonly".to_vec();
    h.call.on_response(*req, ok, 2100);
    h.collect();
    let back = h.responses.iter().find(|(k, _)| *k == key(50)).unwrap().1.clone();
    assert_eq!(back.status(), Some(200));
    assert_eq!(back.body, b"v=0 recvonly");
    assert_eq!(back.headers.get(&HeaderName::CSeq), Some("11 INVITE"));
    assert!(
        h.sent.iter().any(|(m, _)| m.headers.get(&HeaderName::CSeq) == Some("2 ACK")),
        "the callee's 2xx is acknowledged"
    );
    // INFO passes through too.
    h.caller_sends("INFO", 13, None, key(52), 3000);
    assert!(h.requests_of(Method::Info).len() == 1);
}

#[test]
fn a_dead_leg_found_by_the_in_dialog_probe_ends_the_call() {
    let cfg = CallConfig { check_interval_ms: 30_000, ..CallConfig::default() };
    let mut h = Harness::with_config(fork(&["dev1"]), true, cfg);
    h.answer("dev1", 200, 1000);
    h.caller_sends("ACK", 10, None, key(0), 1001);
    h.call.on_timeout(31_000);
    h.collect();
    let probes = h.requests_of(Method::Options);
    assert_eq!(probes.len(), 2, "both legs are probed");
    let (req, m, _) = probes.iter().find(|(_, _, n)| *n == "dev1").unwrap().clone();
    h.call.on_response(req, response_to(&m.headers, 481, "Call/Transaction Does Not Exist", None), 31_100);
    h.collect();
    let r = h.record.clone().unwrap();
    assert_eq!(r.end_reason, EndReason::DeadLeg);
    assert!(h.requests_of(Method::Bye).iter().any(|(_, _, n)| *n == "caller"));
}

#[test]
fn an_answered_call_is_cut_at_its_maximum_duration() {
    let cfg = CallConfig { max_duration_ms: 3_600_000, check_interval_ms: 0, ..CallConfig::default() };
    let mut h = Harness::with_config(fork(&["dev1"]), true, cfg);
    h.answer("dev1", 200, 1000);
    h.caller_sends("ACK", 10, None, key(0), 1001);
    assert_eq!(h.call.poll_timeout(), Some(3_601_000));
    h.call.on_timeout(3_601_000);
    h.collect();
    assert_eq!(h.requests_of(Method::Bye).len(), 2);
    assert_eq!(h.record.unwrap().end_reason, EndReason::MaxDuration);
}

#[test]
fn ringing_gives_up_after_the_maximum_ring_time() {
    let cfg = CallConfig { max_ring_ms: 90_000, ..CallConfig::default() };
    let mut h = Harness::with_config(fork(&["dev1"]), true, cfg);
    h.answer("dev1", 180, 10);
    h.call.on_timeout(90_000);
    h.collect();
    assert_eq!(h.codes_to_a(), [100, 180, 480]);
    assert_eq!(h.record.unwrap().disposition, Disposition::NoAnswer);
}

#[test]
fn a_device_leg_timing_out_diverts_when_a_rule_exists() {
    let mut h = Harness::new(no_answer_plan(60), true);
    let (req, _) = h.invite_to("dev1");
    h.call.on_request_failed(req, 32_000);
    h.collect();
    let (_, gw) = h.invite_to("gw1");
    assert!(gw.headers.get(&HeaderName::Diversion).unwrap().contains("reason=unavailable"));
}

#[test]
fn a_bye_on_the_early_dialog_ends_the_attempt_like_a_cancel() {
    let mut h = Harness::new(fork(&["dev1"]), true);
    h.answer("dev1", 180, 10);
    h.caller_sends("BYE", 11, None, key(3), 20);
    assert!(h.responses.iter().any(|(k, m)| *k == key(3) && m.status() == Some(200)));
    assert_eq!(h.codes_to_a(), [100, 180, 487]);
    assert_eq!(h.requests_of(Method::Cancel).len(), 1);
    assert_eq!(h.record.unwrap().disposition, Disposition::Cancelled);
}

#[test]
fn dialog_creating_responses_to_the_caller_carry_its_record_route() {
    let mut h = Harness::new(fork(&["dev1"]), true);
    h.answer("dev1", 180, 10);
    h.answer("dev1", 200, 20);
    for code in [180, 200] {
        let r = h.responses.iter().find(|(k, m)| *k == A_KEY && m.status() == Some(code)).unwrap();
        assert_eq!(r.1.headers.get(&HeaderName::RecordRoute), Some("<sip:edge.carrier.example;lr>"), "{code}");
    }
}

#[test]
fn a_retransmitted_2xx_to_a_relayed_re_invite_is_acknowledged_again() {
    let mut h = Harness::new(fork(&["dev1"]), true);
    h.answer("dev1", 200, 1000);
    h.caller_sends("ACK", 10, None, key(0), 1001);
    h.caller_sends("INVITE", 11, Some(SDP), key(50), 2000);
    let (req, m, _) = h
        .requests_of(Method::Invite)
        .into_iter()
        .find(|(_, m, _)| m.headers.get(&HeaderName::CSeq) == Some("2 INVITE"))
        .unwrap();
    let mut ok = response_to(&m.headers, 200, "OK", None);
    ok.headers.push(HeaderName::ContentType, "application/sdp");
    ok.body = SDP.as_bytes().to_vec();
    h.call.on_response(req, ok.clone(), 2100);
    h.collect();
    let acks = |h: &Harness| h.sent.iter().filter(|(m, _)| m.headers.get(&HeaderName::CSeq) == Some("2 ACK")).count();
    assert_eq!(acks(&h), 1);
    h.call.on_response(req, ok, 2600);
    h.collect();
    assert_eq!(acks(&h), 2, "the retransmitted 2xx is acknowledged again");
}

#[test]
fn a_relayed_re_invite_that_never_completes_is_answered_408_and_frees_the_next_offer() {
    let mut h = Harness::new(fork(&["dev1"]), true);
    h.answer("dev1", 200, 1000);
    h.caller_sends("ACK", 10, None, key(0), 1001);
    h.caller_sends("INVITE", 11, Some(SDP), key(50), 2000);
    let (req, m, _) = h
        .requests_of(Method::Invite)
        .into_iter()
        .find(|(_, m, _)| m.headers.get(&HeaderName::CSeq) == Some("2 INVITE"))
        .unwrap();
    h.call.on_response(req, response_to(&m.headers, 180, "Ringing", None), 2100);
    let deadline = 2000 + 64 * CallConfig::default().t1_ms;
    h.call.on_timeout(deadline);
    h.collect();
    assert!(h.responses.iter().any(|(k, m)| *k == key(50) && m.status() == Some(408)));
    h.caller_sends("INVITE", 12, Some(SDP), key(51), deadline + 1);
    assert!(!h.responses.iter().any(|(k, m)| *k == key(51) && m.status() == Some(491)), "the next offer goes through");
}

#[test]
fn a_second_dialog_forked_further_on_is_acknowledged_and_hung_up() {
    let mut h = Harness::new(fork(&["dev1"]), true);
    h.answer("dev1", 200, 1000);
    let (req, inv) = h.invite_to("dev1");
    let mut other = response_to(&inv.headers, 200, "OK", Some("another-phone"));
    other.headers.push(HeaderName::Contact, "<sip:other@198.51.100.30>");
    h.call.on_response(req, other, 1100);
    h.collect();
    let ack = h.sent.iter().rev().find(|(m, _)| m.method() == Some(&Method::Ack)).unwrap();
    assert!(ack.0.headers.get(&HeaderName::To).unwrap().contains("tag=another-phone"));
    assert_eq!(ack.0.request_uri(), Some("sip:other@198.51.100.30"));
    let bye = h.requests_of(Method::Bye);
    assert_eq!(bye.len(), 1);
    assert!(bye[0].1.headers.get(&HeaderName::To).unwrap().contains("tag=another-phone"));
    assert!(h.record.is_none(), "the call itself goes on");
}

#[test]
fn a_gateway_answering_after_its_hunt_timeout_still_gets_the_call() {
    let mut h = Harness::new(Plan::ring(Mode::Hunt, vec![target("gw1", None), target("gw2", None)]), true);
    let hunt = CallConfig::default().hunt_timeout_ms;
    h.call.on_timeout(hunt);
    h.collect();
    assert_eq!(h.invites().len(), 2);
    h.answer("gw1", 200, hunt + 100);
    assert!(h.answered.is_some(), "the caller is still waiting: the late answer wins");
    assert!(h.requests_of(Method::Bye).is_empty());
}

#[test]
fn a_global_failure_from_one_fork_ends_the_search() {
    let mut h = Harness::new(fork(&["dev1", "dev2"]), true);
    h.answer("dev1", 180, 10);
    h.answer("dev2", 603, 20);
    assert_eq!(h.codes_to_a(), [100, 180, 603]);
    assert_eq!(h.requests_of(Method::Cancel).len(), 1, "the other fork is cancelled");
}

#[test]
fn failures_the_caller_could_misread_are_translated() {
    // A 503 would say we are overloaded; a gateway's challenge is not the caller's to answer.
    let mut h = Harness::new(Plan::ring(Mode::Hunt, vec![target("gw1", None), target("gw2", None)]), true);
    h.answer("gw1", 407, 10);
    assert_eq!(h.invites().len(), 2, "a challenging gateway is skipped");
    h.answer("gw2", 503, 20);
    let last = h.last_response_to_a();
    assert_eq!(last.status(), Some(500));
}

#[test]
fn over_a_stream_the_2xx_is_not_resent_but_a_missing_ack_still_ends_the_call() {
    let call = Call::new(CallConfig::default(), 7, A_KEY, invite(true), FakeHop("caller", true), fork(&["dev1"]), 0);
    let mut h = Harness::of(call);
    h.answer("dev1", 200, 1000);
    let until = 1000 + 64 * CallConfig::default().t1_ms;
    assert_eq!(h.call.poll_timeout(), Some(until));
    h.call.on_timeout(until);
    h.collect();
    assert_eq!(h.codes_to_a().iter().filter(|&&c| c == 200).count(), 1, "no resend over a stream");
    assert_eq!(h.record.unwrap().end_reason, EndReason::DeadLeg);
}

#[test]
fn calls_work_with_a_real_transaction_layer_key() {
    // Keys come from the driver's layer; the call only stores and hands them back.
    let mut layer: TransactionLayer<()> = TransactionLayer::new(TimerConfig::default());
    let Some(switchboard_sip_core::transaction::Incoming::Request { key, msg }) =
        layer.on_request(invite(true), (), false, 0)
    else {
        panic!("a new request")
    };
    let mut call = Call::new(CallConfig::default(), 1, key, msg, FakeHop("caller", false), fork(&["dev1"]), 0);
    let first: Vec<_> = call.drain_actions().collect();
    assert!(matches!(&first[0], Action::Respond { key: k, msg } if *k == key && msg.status() == Some(100)));
}

#[test]
fn a_re_invite_refreshes_the_remote_target() {
    let mut h = Harness::new(fork(&["dev1"]), true);
    h.answer("dev1", 200, 1000);
    h.caller_sends("ACK", 10, None, key(0), 1001);
    // The caller moves (a new Contact in its re-INVITE); our next request to it goes there.
    let to_tag = h.our_tag_to_caller();
    let text = format!(
        "INVITE sip:sb@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bKmove\r\n\
         From: <sip:+61400000001@carrier.example>;tag=c1\r\nTo: <sip:+61299990000@sb.example>;tag={to_tag}\r\n\
         Call-ID: inbound-1@carrier\r\nCSeq: 11 INVITE\r\nContact: <sip:moved@203.0.113.50:5060>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    let m = parse_datagram(text.as_bytes(), &Limits::default()).unwrap();
    h.call.on_request(key(60), m, 2000);
    h.collect();
    let (req, reinv, _) = h
        .requests_of(Method::Invite)
        .into_iter()
        .find(|(_, m, _)| m.headers.get(&HeaderName::CSeq) == Some("2 INVITE"))
        .unwrap();
    let mut ok = response_to(&reinv.headers, 200, "OK", None);
    ok.headers.push(HeaderName::Contact, "<sip:dev1-moved@198.51.100.21:5062>");
    ok.headers.push(HeaderName::ContentType, "application/sdp");
    ok.body = SDP.as_bytes().to_vec();
    h.call.on_response(req, ok, 2100);
    h.collect();
    h.caller_sends("BYE", 12, None, key(61), 3000);
    let bye = h.requests_of(Method::Bye);
    assert_eq!(bye[0].1.request_uri(), Some("sip:dev1-moved@198.51.100.21:5062"), "the callee's refreshed target");
}

#[test]
fn a_held_late_offer_ack_is_sent_before_hanging_up() {
    let mut h = Harness::new(fork(&["dev1"]), false);
    h.answer("dev1", 200, 1000);
    assert!(h.sent.is_empty());
    // The caller hangs up without ever acknowledging: the callee's 2xx is still acknowledged, then hung up.
    h.caller_sends("BYE", 11, None, key(7), 1500);
    assert_eq!(h.sent.len(), 1);
    assert_eq!(h.sent[0].0.method(), Some(&Method::Ack));
    assert_eq!(h.requests_of(Method::Bye).len(), 1);
}

fn anchored(names: &[&'static str]) -> Plan<FakeHop> {
    let anchor =
        |rtp_port: u16| crate::Anchor { address: "192.0.2.1".parse().unwrap(), rtp_port, rtcp_port: rtp_port + 1 };
    let mut plan = fork(names);
    plan.media = Some(crate::MediaPlan { a: anchor(10_000), b: anchor(10_002) });
    plan
}

fn remote(addr: &str, hold: bool) -> crate::Remote {
    crate::Remote { rtp: Some(addr.parse().unwrap()), rtcp: None, hold }
}

/// With media anchored: the callee is offered the relay's B side, the caller gets the relay's A side in the
/// answer (18x and 2xx), and the relay hears of each side's SDP; every other SDP line is untouched.
#[test]
fn anchored_offers_and_answers_name_the_relay_for_each_side() {
    let mut h = Harness::new(anchored(&["dev1"]), true);
    let (_, inv) = h.invite_to("dev1");
    assert_eq!(
        String::from_utf8(inv.body.clone()).unwrap(),
        SDP.replace("198.51.100.7", "192.0.2.1").replace("4000", "10002")
    );
    assert_eq!(h.media, vec![(crate::MediaSide::A, remote("198.51.100.7:4000", false))]);
    h.answer("dev1", 183, 500);
    h.answer("dev1", 200, 1000);
    let expected = SDP.replace("198.51.100.7", "192.0.2.1").replace("4000", "10000");
    let bodies: Vec<String> = h
        .responses
        .iter()
        .filter(|(k, m)| *k == A_KEY && !m.body.is_empty())
        .map(|(_, m)| String::from_utf8(m.body.clone()).unwrap())
        .collect();
    assert_eq!(bodies, vec![expected.clone(), expected]);
    assert_eq!(h.media.last(), Some(&(crate::MediaSide::B, remote("198.51.100.20:4000", false))));
}

/// A re-INVITE putting the caller on hold reaches the callee pointed at the relay, and the relay learns of the
/// hold; an INFO body (DTMF) passes untouched.
#[test]
fn anchored_re_invites_are_rewritten_and_info_bodies_are_not() {
    let mut h = Harness::new(anchored(&["dev1"]), true);
    h.answer("dev1", 200, 1000);
    h.caller_sends("ACK", 10, None, key(0), 1001);
    let hold = SDP.replace("t=0 0", "t=0 0\r\na=sendonly");
    h.caller_sends("INVITE", 11, Some(&hold), key(50), 2000);
    let reinv = h
        .requests_of(Method::Invite)
        .into_iter()
        .find(|(_, m, _)| m.headers.get(&HeaderName::CSeq) == Some("2 INVITE"))
        .unwrap();
    let body = String::from_utf8(reinv.1.body.clone()).unwrap();
    assert_eq!(body, hold.replace("198.51.100.7", "192.0.2.1").replace("4000", "10002"));
    assert_eq!(h.media.last(), Some(&(crate::MediaSide::A, remote("198.51.100.7:4000", true))));
    let before = h.media.len();
    let text = "INFO sip:sb@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bKi1\r\n\
                From: <sip:+61400000001@carrier.example>;tag=c1\r\nTo: <sip:+61299990000@sb.example>;tag=TAG\r\n\
                Call-ID: inbound-1@carrier\r\nCSeq: 12 INFO\r\nContent-Type: application/dtmf-relay\r\n\
                Content-Length: 24\r\n\r\nSignal=5\r\nDuration=160\r\n";
    let text = text.replace("TAG", &h.our_tag_to_caller());
    let m = parse_datagram(text.as_bytes(), &Limits::default()).unwrap();
    h.call.on_request(key(60), m, 3000);
    h.collect();
    let info = h.requests_of(Method::Info).pop().unwrap();
    assert_eq!(info.1.body, b"Signal=5\r\nDuration=160\r\n");
    assert_eq!(h.media.len(), before, "the relay hears nothing of an INFO");
}
