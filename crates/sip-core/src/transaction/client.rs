//! Client transactions: INVITE (RFC 3261 §17.1.1, RFC 6026 §8.4) and non-INVITE (§17.1.2).

use super::{Class, Step, Timer, TimerConfig, Timers, at};
use crate::header::CSeq;
use crate::message::{HeaderName, Message, Method};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    Calling,
    Proceeding,
    Completed,
    /// RFC 6026: a 2xx arrived; further 2xx go up to the TU until Timer M.
    Accepted,
    Terminated,
}

/// The client INVITE transaction (RFC 3261 Figure 5 as amended by RFC 6026 Figure 5).
#[derive(Debug, Clone)]
pub struct ClientInvite {
    state: ClientInviteState,
    reliable: bool,
    /// The INVITE while it may be retransmitted (Calling), then the ACK (Completed).
    bytes: Option<Box<[u8]>>,
    /// The ACK for a non-2xx final response less its To header (§17.1.1.3), until it is needed.
    ack: Option<Box<Message>>,
    /// The current Timer A interval.
    interval: u64,
    timers: Timers,
}

impl ClientInvite {
    /// Starts the transaction: the INVITE goes out, Timer A (unreliable only) and Timer B are armed.
    pub fn new(request: &Message, reliable: bool, cfg: &TimerConfig, now: u64) -> (ClientInvite, Step) {
        let bytes = request.to_bytes();
        let mut tx = ClientInvite {
            state: ClientInviteState::Calling,
            reliable,
            bytes: None,
            ack: Some(Box::new(ack_template(request))),
            interval: 0,
            timers: Timers::default(),
        };
        if let Some(a) = cfg.initial(Timer::A, reliable) {
            tx.interval = a;
            tx.timers.arm(Timer::A, at(now, a));
            // Only kept when it may have to be sent again.
            tx.bytes = Some(bytes.clone().into_boxed_slice());
        }
        if let Some(b) = cfg.initial(Timer::B, reliable) {
            tx.timers.arm(Timer::B, at(now, b));
        }
        (tx, Step { send: Some(bytes), ..Step::default() })
    }

    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    pub fn timers(&self) -> &Timers {
        &self.timers
    }

    pub fn on_response(&mut self, response: &Message, cfg: &TimerConfig, now: u64) -> Step {
        let Some(code) = response.status() else {
            return Step::default();
        };
        use ClientInviteState::*;
        match (self.state, Class::of(code)) {
            (Calling | Proceeding, Class::Provisional) => {
                // §17.1.1.2: no more retransmissions once a provisional arrived; Timer B only guards Calling.
                self.state = Proceeding;
                self.timers.clear();
                self.bytes = None;
                Step::pass_up()
            }
            (Calling | Proceeding, Class::Success) => {
                // RFC 6026 §8.4: Accepted, Timer M, the 2xx goes up.
                self.enter(Accepted);
                if let Some(m) = cfg.initial(Timer::M, self.reliable) {
                    self.timers.arm(Timer::M, at(now, m));
                }
                Step::pass_up()
            }
            (Calling | Proceeding, Class::NonSuccess) => {
                // §17.1.1.2: ACK, pass up, Completed with Timer D (zero on reliable transports).
                let ack = self.ack.take().map(|mut t| {
                    if let Some(to) = response.header(&HeaderName::To) {
                        t.headers.set(HeaderName::To, to);
                    }
                    t.to_bytes()
                });
                self.enter(Completed);
                let send = ack.clone();
                match cfg.initial(Timer::D, self.reliable) {
                    Some(d) if d > 0 => {
                        self.bytes = ack.map(Vec::into_boxed_slice);
                        self.timers.arm(Timer::D, at(now, d));
                    }
                    _ => self.enter(Terminated),
                }
                Step { send, pass_up: true, timeout: false }
            }
            // §17.1.1.2: every retransmitted non-2xx final gets the ACK again, and is not passed up.
            (Completed, Class::NonSuccess) => self.bytes.as_deref().map(Step::send).unwrap_or_default(),
            // RFC 6026 §8.4: each 2xx in Accepted goes up (the TU ACKs it; retransmissions and forks alike).
            (Accepted, Class::Success) => Step::pass_up(),
            _ => Step::default(),
        }
    }

    pub fn on_timer(&mut self, timer: Timer, cfg: &TimerConfig, now: u64) -> Step {
        if self.timers.get(timer).is_none() {
            return Step::default();
        }
        use ClientInviteState::*;
        match (self.state, timer) {
            (Calling, Timer::A) => {
                self.interval = cfg.backoff(Timer::A, self.interval);
                self.timers.arm(Timer::A, at(now, self.interval));
                self.bytes.as_deref().map(Step::send).unwrap_or_default()
            }
            (Calling, Timer::B) => {
                self.enter(Terminated);
                Step::timeout()
            }
            (Completed, Timer::D) | (Accepted, Timer::M) => {
                self.enter(Terminated);
                Step::default()
            }
            _ => {
                self.timers.cancel(timer);
                Step::default()
            }
        }
    }

    /// The transport could not deliver (§17.1.1.2, §17.1.4): the transaction ends.
    pub fn on_transport_error(&mut self) {
        self.enter(ClientInviteState::Terminated);
    }

    fn enter(&mut self, state: ClientInviteState) {
        self.state = state;
        self.timers.clear();
        self.bytes = None;
        if state != ClientInviteState::Calling && state != ClientInviteState::Proceeding {
            self.ack = None;
        }
    }
}

/// The ACK of §17.1.1.3 as far as it follows from the INVITE: Request-URI, one Via (the INVITE's top Via), Route,
/// Max-Forwards, From, To (replaced by the response's), Call-ID, and CSeq with the INVITE's number.
fn ack_template(invite: &Message) -> Message {
    let h = &invite.headers;
    let mut ack = Message::request(Method::Ack, invite.request_uri().unwrap_or_default());
    if let Some(via) = h.get_list(&HeaderName::Via).next() {
        ack.headers.push(HeaderName::Via, via);
    }
    for route in h.get_all(&HeaderName::Route) {
        ack.headers.push(HeaderName::Route, route);
    }
    ack.headers.push(HeaderName::MaxForwards, h.get(&HeaderName::MaxForwards).unwrap_or("70"));
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        if let Some(v) = h.get(&name) {
            ack.headers.push(name, v);
        }
    }
    let seq = h.get(&HeaderName::CSeq).map(|v| match CSeq::parse(v) {
        Ok(c) => c.seq.to_string(),
        Err(_) => v.split_whitespace().next().unwrap_or("1").to_owned(),
    });
    ack.headers.push(HeaderName::CSeq, format!("{} ACK", seq.as_deref().unwrap_or("1")));
    ack
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// The client non-INVITE transaction (RFC 3261 Figure 6).
#[derive(Debug, Clone)]
pub struct ClientNonInvite {
    state: ClientNonInviteState,
    reliable: bool,
    /// The request, kept while Timer E may resend it.
    bytes: Option<Box<[u8]>>,
    /// The current Timer E interval.
    interval: u64,
    timers: Timers,
}

impl ClientNonInvite {
    /// Starts the transaction: the request goes out, Timer E (unreliable only) and Timer F are armed.
    pub fn new(request: &Message, reliable: bool, cfg: &TimerConfig, now: u64) -> (ClientNonInvite, Step) {
        let bytes = request.to_bytes();
        let mut tx = ClientNonInvite {
            state: ClientNonInviteState::Trying,
            reliable,
            bytes: None,
            interval: 0,
            timers: Timers::default(),
        };
        if let Some(e) = cfg.initial(Timer::E, reliable) {
            tx.interval = e;
            tx.timers.arm(Timer::E, at(now, e));
            tx.bytes = Some(bytes.clone().into_boxed_slice());
        }
        if let Some(f) = cfg.initial(Timer::F, reliable) {
            tx.timers.arm(Timer::F, at(now, f));
        }
        (tx, Step { send: Some(bytes), ..Step::default() })
    }

    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    pub fn timers(&self) -> &Timers {
        &self.timers
    }

    pub fn on_response(&mut self, response: &Message, cfg: &TimerConfig, now: u64) -> Step {
        let Some(code) = response.status() else {
            return Step::default();
        };
        use ClientNonInviteState::*;
        match (self.state, Class::of(code)) {
            (Trying | Proceeding, Class::Provisional) => {
                self.state = Proceeding;
                Step::pass_up()
            }
            (Trying | Proceeding, Class::Success | Class::NonSuccess) => {
                self.state = Completed;
                self.timers.clear();
                self.bytes = None;
                match cfg.initial(Timer::K, self.reliable) {
                    Some(k) if k > 0 => self.timers.arm(Timer::K, at(now, k)),
                    _ => self.state = Terminated,
                }
                Step::pass_up()
            }
            // Completed: response retransmissions are absorbed until Timer K.
            _ => Step::default(),
        }
    }

    pub fn on_timer(&mut self, timer: Timer, cfg: &TimerConfig, now: u64) -> Step {
        if self.timers.get(timer).is_none() {
            return Step::default();
        }
        use ClientNonInviteState::*;
        match (self.state, timer) {
            (Trying | Proceeding, Timer::E) => {
                // §17.1.2.2: doubling up to T2 in Trying; once a provisional arrived, every T2.
                self.interval = match self.state {
                    Proceeding => cfg.t2.max(1),
                    _ => cfg.backoff(Timer::E, self.interval),
                };
                self.timers.arm(Timer::E, at(now, self.interval));
                self.bytes.as_deref().map(Step::send).unwrap_or_default()
            }
            (Trying | Proceeding, Timer::F) => {
                self.terminate();
                Step::timeout()
            }
            (Completed, Timer::K) => {
                self.terminate();
                Step::default()
            }
            _ => {
                self.timers.cancel(timer);
                Step::default()
            }
        }
    }

    /// The transport could not deliver (§17.1.2.2, §17.1.4): the transaction ends.
    pub fn on_transport_error(&mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        self.state = ClientNonInviteState::Terminated;
        self.timers.clear();
        self.bytes = None;
    }
}
