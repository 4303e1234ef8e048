//! Row-by-row tests of the four state machines (RFC 3261 §17 Figures 5-8, RFC 6026 Figures 5 and 7) and of the
//! layer's matching, in virtual time.

mod client_invite;
mod client_non_invite;
mod layer;
mod layer_client;
mod server_invite;
mod server_non_invite;

use super::{ClientInvite, ClientNonInvite, ServerInvite, ServerNonInvite, Step, Timer, TimerConfig, Timers};
use crate::message::{HeaderName, Message};
use crate::parse::{Limits, parse_datagram};
use crate::validate::response_to;

pub(super) const CFG: TimerConfig = TimerConfig { t1: 500, t2: 4_000, t4: 5_000 };
pub(super) const BRANCH: &str = "z9hG4bK74bf9";

/// Parses literal text, written with `\n` line ends, as a datagram.
pub(super) fn parse(text: &str) -> Message {
    parse_datagram(text.replace('\n', "\r\n").as_bytes(), &Limits::default()).expect("test message parses")
}

pub(super) fn via(branch: &str) -> String {
    format!("SIP/2.0/UDP client.example.com:5060;branch={branch}")
}

/// A request as it arrives on the wire, with the given top Via value and CSeq number (method as the request's).
pub(super) fn req(method: &str, via: &str, cseq: u32, to_tag: Option<&str>) -> Message {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    parse(&format!(
        "{method} sip:bob@example.com SIP/2.0\n\
         Via: {via}\n\
         Max-Forwards: 70\n\
         From: Alice <sip:alice@example.com>;tag=1928301774\n\
         To: Bob <sip:bob@example.com>{to_tag}\n\
         Call-ID: a84b4c76e66710@pc33.example.com\n\
         CSeq: {cseq} {method}\n\
         Content-Length: 0\n\n"
    ))
}

/// The response the peer would send to `request`, reparsed from the wire.
pub(super) fn resp(request: &Message, code: u16, to_tag: Option<&str>) -> Message {
    let bytes = response_to(&request.headers, code, "Reason", to_tag).to_bytes();
    parse_datagram(&bytes, &Limits::default()).expect("response parses")
}

/// Parses bytes a machine or layer asked to send.
pub(super) fn wire(bytes: &[u8]) -> Message {
    parse_datagram(bytes, &Limits::default()).expect("sent bytes parse")
}

pub(super) fn status_of(bytes: &[u8]) -> Option<u16> {
    wire(bytes).status()
}

pub(super) fn header(msg: &Message, name: HeaderName) -> String {
    msg.header(&name).unwrap_or_default().to_owned()
}

/// The four machines, seen alike by the timer-driving helper.
pub(super) trait Fire {
    fn armed(&self) -> Timers;
    fn fire(&mut self, timer: Timer, now: u64) -> Step;
}

impl Fire for ClientInvite {
    fn armed(&self) -> Timers {
        *self.timers()
    }
    fn fire(&mut self, timer: Timer, now: u64) -> Step {
        self.on_timer(timer, &CFG, now)
    }
}

impl Fire for ClientNonInvite {
    fn armed(&self) -> Timers {
        *self.timers()
    }
    fn fire(&mut self, timer: Timer, now: u64) -> Step {
        self.on_timer(timer, &CFG, now)
    }
}

impl Fire for ServerInvite {
    fn armed(&self) -> Timers {
        *self.timers()
    }
    fn fire(&mut self, timer: Timer, now: u64) -> Step {
        self.on_timer(timer, &CFG, now)
    }
}

impl Fire for ServerNonInvite {
    fn armed(&self) -> Timers {
        *self.timers()
    }
    fn fire(&mut self, timer: Timer, _now: u64) -> Step {
        self.on_timer(timer)
    }
}

/// Fires timers in deadline order, each at its deadline, up to and including `until`.
pub(super) fn run_until(m: &mut impl Fire, until: u64) -> Vec<(u64, Timer, Step)> {
    let mut fired = Vec::new();
    while let Some((timer, at)) = m.armed().iter().min_by_key(|&(t, at)| (at, t)) {
        if at > until {
            break;
        }
        let step = m.fire(timer, at);
        fired.push((at, timer, step));
        assert!(fired.len() < 1_000, "timers keep firing");
    }
    fired
}

/// The instants at which `fired` sent something.
pub(super) fn send_times(fired: &[(u64, Timer, Step)]) -> Vec<u64> {
    fired.iter().filter(|(_, _, s)| s.send.is_some()).map(|(at, _, _)| *at).collect()
}
