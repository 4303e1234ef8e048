//! Overload control by queueing delay.
//!
//! Every message waits in the inbound queue between the socket and the core. While the core keeps up that wait
//! is a few hundred microseconds, whatever the rate; once the offered load exceeds what the core can do, the
//! queue fills and every message waits longer and longer. Past T1 (500 ms) clients retransmit, which adds load
//! exactly when there is none to spare, and answers arrive after the client gave up: work is done for nothing.
//!
//! So, as CoDel does for packet queues (RFC 8289), the controller watches the *smallest* wait seen in each
//! interval: a burst makes some messages wait, a standing queue makes all of them wait. When even the smallest
//! wait of an interval exceeds the target, the daemon is overloaded until an interval's smallest wait falls
//! below half the target. While overloaded, new work ([`is_new_work`]) is refused at once with 503 and
//! Retry-After (RFC 3261 §21.5.4), which costs far less than doing it, so the queue drains and the requests that
//! finish work already begun (answers to our challenges, requests inside dialogs, responses, CANCEL, ACK) are
//! still served in time. Nothing is counted against any client, so overload never turns into a lock-out.

use switchboard_sip_core::header::NameAddr;
use switchboard_sip_core::{HeaderName, Message, Method};

/// Tuning of the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverloadConfig {
    /// The queueing delay (microseconds) that, exceeded by every message of an interval, means overload. 0 turns
    /// overload control off.
    pub target_us: u64,
    /// The length of an observation interval, microseconds.
    pub interval_us: u64,
}

impl Default for OverloadConfig {
    fn default() -> Self {
        OverloadConfig { target_us: 100_000, interval_us: 100_000 }
    }
}

/// The controller: feed it each message's queueing delay, ask it whether to shed.
#[derive(Debug)]
pub struct Overload {
    cfg: OverloadConfig,
    overloaded: bool,
    /// Start of the current interval (µs, caller's clock).
    window_start: u64,
    /// Smallest delay seen in the current interval.
    window_min: Option<u64>,
    /// When the current overload began.
    since: Option<u64>,
    shed: u64,
    episodes: u64,
}

/// A change of state, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Overload began: the smallest delay of the last interval (µs).
    Began { min_delay_us: u64 },
    /// Overload ended after `lasted_us`, having shed `shed` requests.
    Ended { lasted_us: u64, shed: u64 },
}

impl Overload {
    pub fn new(cfg: OverloadConfig) -> Self {
        Overload { cfg, overloaded: false, window_start: 0, window_min: None, since: None, shed: 0, episodes: 0 }
    }

    /// Call for every message taken off the inbound queue, with how long it waited (`delay_us`) and the time now
    /// (`now_us`, any monotonic microsecond clock). Returns a transition when the state changed.
    pub fn on_dequeue(&mut self, delay_us: u64, now_us: u64) -> Option<Transition> {
        if self.cfg.target_us == 0 {
            return None;
        }
        self.window_min = Some(self.window_min.map_or(delay_us, |m| m.min(delay_us)));
        if now_us.saturating_sub(self.window_start) < self.cfg.interval_us {
            return None;
        }
        let min = self.window_min.take().unwrap_or(0);
        self.window_start = now_us;
        match (self.overloaded, min) {
            (false, m) if m > self.cfg.target_us => {
                self.overloaded = true;
                self.since = Some(now_us);
                self.episodes += 1;
                Some(Transition::Began { min_delay_us: m })
            }
            (true, m) if m < self.cfg.target_us / 2 => {
                self.overloaded = false;
                let lasted_us = self.since.take().map_or(0, |s| now_us.saturating_sub(s));
                Some(Transition::Ended { lasted_us, shed: self.shed })
            }
            _ => None,
        }
    }

    /// Whether new work is being shed now.
    pub fn is_overloaded(&self) -> bool {
        self.overloaded
    }

    /// Counts one request shed.
    pub fn on_shed(&mut self) {
        self.shed += 1;
    }

    /// Requests shed since start.
    pub fn shed(&self) -> u64 {
        self.shed
    }

    /// Overload episodes since start.
    pub fn episodes(&self) -> u64 {
        self.episodes
    }
}

/// Whether a request starts new work, the kind that is shed under overload: a request outside any dialog that
/// carries no credentials. Requests carrying credentials answer a challenge of ours (work half done), and
/// requests inside a dialog, CANCEL and ACK belong to calls already admitted.
pub fn is_new_work(msg: &Message) -> bool {
    let Some(method) = msg.method() else { return false };
    if matches!(method, Method::Ack | Method::Cancel | Method::Bye | Method::Prack) {
        return false;
    }
    let in_dialog = msg
        .headers
        .get(&HeaderName::To)
        .and_then(|to| NameAddr::parse(to, "To").ok())
        .is_some_and(|to| to.tag().is_some());
    if in_dialog {
        return false;
    }
    let credentials = match method {
        Method::Register => msg.headers.get(&HeaderName::Authorization).is_some(),
        _ => msg.headers.get(&HeaderName::ProxyAuthorization).is_some(),
    };
    !credentials
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000;

    fn controller() -> Overload {
        Overload::new(OverloadConfig { target_us: 100 * MS, interval_us: 100 * MS })
    }

    /// Feeds one message every millisecond from `from` to `to` (ms) with the delay `delay(t)` (ms).
    fn feed(o: &mut Overload, from: u64, to: u64, delay: impl Fn(u64) -> u64) -> Vec<(u64, Transition)> {
        (from..to).filter_map(|t| o.on_dequeue(delay(t) * MS, t * MS).map(|x| (t, x))).collect()
    }

    #[test]
    fn bursts_are_not_overload() {
        let mut o = controller();
        // Every tenth message waits 400 ms (a burst behind a slow write), the rest 1 ms.
        let changes = feed(&mut o, 0, 5_000, |t| if t % 10 == 0 { 400 } else { 1 });
        assert!(changes.is_empty(), "{changes:?}");
        assert!(!o.is_overloaded());
    }

    #[test]
    fn a_standing_queue_is_overload_within_two_intervals_and_ends_when_it_drains() {
        let mut o = controller();
        feed(&mut o, 0, 1_000, |_| 2);
        // From 1 s on every message waits 150 ms: overload is declared by the end of the second interval.
        let changes = feed(&mut o, 1_000, 2_000, |_| 150);
        let began = changes.first().copied().expect("overload declared");
        assert!(began.0 <= 1_200, "{changes:?}");
        assert_eq!(began.1, Transition::Began { min_delay_us: 150 * MS });
        assert!(o.is_overloaded());
        o.on_shed();
        // A wait between half the target and the target keeps it (hysteresis) ...
        assert!(feed(&mut o, 2_000, 3_000, |_| 70).is_empty());
        assert!(o.is_overloaded());
        // ... and the queue draining ends it.
        let changes = feed(&mut o, 3_000, 3_500, |_| 1);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(matches!(changes[0].1, Transition::Ended { shed: 1, .. }));
        assert!(changes[0].0 <= 3_200);
        assert_eq!(o.episodes(), 1);
    }

    #[test]
    fn a_zero_target_turns_control_off() {
        let mut o = Overload::new(OverloadConfig { target_us: 0, interval_us: 100 * MS });
        assert!(feed(&mut o, 0, 2_000, |_| 10_000).is_empty());
        assert!(!o.is_overloaded());
    }

    fn parse(text: &str) -> Message {
        switchboard_sip_core::parse_datagram(text.replace('\n', "\r\n").as_bytes(), &Default::default()).unwrap()
    }

    #[test]
    fn new_work_is_what_starts_something_without_credentials() {
        let base = "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\nFrom: <sip:a@x>;tag=1\nCall-ID: c\nMax-Forwards: 70\nContent-Length: 0\n";
        let req = |line: &str, to: &str, cseq: &str, extra: &str| {
            parse(&format!("{line} SIP/2.0\n{base}To: {to}\nCSeq: {cseq}\n{extra}\n"))
        };
        assert!(is_new_work(&req("REGISTER sip:x", "<sip:a@x>", "1 REGISTER", "")));
        assert!(!is_new_work(&req(
            "REGISTER sip:x",
            "<sip:a@x>",
            "2 REGISTER",
            "Authorization: Digest username=\"a\"\n"
        )));
        assert!(is_new_work(&req("INVITE sip:b@x", "<sip:b@x>", "1 INVITE", "")));
        assert!(!is_new_work(&req(
            "INVITE sip:b@x",
            "<sip:b@x>",
            "2 INVITE",
            "Proxy-Authorization: Digest username=\"a\"\n"
        )));
        assert!(!is_new_work(&req("INVITE sip:b@x", "<sip:b@x>;tag=9", "3 INVITE", "")), "re-INVITE");
        assert!(!is_new_work(&req("BYE sip:b@x", "<sip:b@x>;tag=9", "4 BYE", "")));
        assert!(!is_new_work(&req("CANCEL sip:b@x", "<sip:b@x>", "1 CANCEL", "")));
        assert!(!is_new_work(&req("ACK sip:b@x", "<sip:b@x>", "1 ACK", "")));
        assert!(is_new_work(&req("OPTIONS sip:x", "<sip:x>", "1 OPTIONS", "")));
        assert!(is_new_work(&req("SUBSCRIBE sip:x", "<sip:x>", "1 SUBSCRIBE", "")));
    }
}
