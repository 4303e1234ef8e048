//! Server transactions: INVITE (RFC 3261 §17.2.1, RFC 6026 §8.5-§8.7) and non-INVITE (§17.2.2).

use super::{Class, Step, Timer, TimerConfig, Timers, TransactionError, at};
use crate::message::{HeaderName, Message};
use crate::validate::response_to;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    Proceeding,
    Completed,
    Confirmed,
    /// RFC 6026: the TU sent a 2xx; its retransmissions pass through, ACKs go up, until Timer L.
    Accepted,
    Terminated,
}

/// The server INVITE transaction (RFC 3261 Figure 7 as amended by RFC 6026 Figure 7).
#[derive(Debug, Clone)]
pub struct ServerInvite {
    state: ServerInviteState,
    reliable: bool,
    /// Proceeding: the latest provisional (at first our own 100 Trying). Completed: the non-2xx final response.
    last: Option<Box<[u8]>>,
    /// The current Timer G interval.
    interval: u64,
    timers: Timers,
}

impl ServerInvite {
    /// Starts the transaction for a new INVITE (which the owner passes up to the TU). Nothing is sent yet:
    /// a 100 Trying is prepared and goes out when Timer `Trying` fires (200 ms) unless the TU responded first
    /// (§17.2.1), or at once if the INVITE is retransmitted.
    pub fn new(invite: &Message, reliable: bool, cfg: &TimerConfig, now: u64) -> ServerInvite {
        let mut trying = response_to(&invite.headers, 100, "Trying", None);
        // §8.2.6.1: a Timestamp in the request is copied into the 100 (Trying).
        if let Some(ts) = invite.header(&HeaderName::Timestamp) {
            trying.headers.push(HeaderName::Timestamp, ts);
        }
        let mut tx = ServerInvite {
            state: ServerInviteState::Proceeding,
            reliable,
            last: Some(trying.to_bytes().into_boxed_slice()),
            interval: 0,
            timers: Timers::default(),
        };
        if let Some(d) = cfg.initial(Timer::Trying, reliable) {
            tx.timers.arm(Timer::Trying, at(now, d));
        }
        tx
    }

    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    pub fn timers(&self) -> &Timers {
        &self.timers
    }

    /// A retransmission of the INVITE arrived.
    pub fn on_request(&mut self) -> Step {
        match self.state {
            // §17.2.1: resend the latest provisional; a 100 not yet sent goes out now (the client is waiting).
            ServerInviteState::Proceeding => {
                self.timers.cancel(Timer::Trying);
                self.last.as_deref().map(Step::send).unwrap_or_default()
            }
            ServerInviteState::Completed => self.last.as_deref().map(Step::send).unwrap_or_default(),
            // Confirmed absorbs; RFC 6026 §8.7: Accepted absorbs too (the TU retransmits the 2xx).
            _ => Step::default(),
        }
    }

    /// An ACK matched this transaction.
    pub fn on_ack(&mut self, cfg: &TimerConfig, now: u64) -> Step {
        match self.state {
            ServerInviteState::Completed => {
                self.state = ServerInviteState::Confirmed;
                self.timers.clear();
                self.last = None;
                match cfg.initial(Timer::I, self.reliable) {
                    Some(i) if i > 0 => self.timers.arm(Timer::I, at(now, i)),
                    _ => self.terminate(),
                }
                Step::default()
            }
            // RFC 6026 §8.7: an ACK in Accepted goes to the TU.
            ServerInviteState::Accepted => Step::pass_up(),
            _ => Step::default(),
        }
    }

    /// The TU sends `response` through this transaction.
    pub fn on_response(&mut self, response: &Message, cfg: &TimerConfig, now: u64) -> Result<Step, TransactionError> {
        let code = response.status().ok_or(TransactionError::NotAResponse)?;
        use ServerInviteState::*;
        match (self.state, Class::of(code)) {
            (Proceeding, Class::Provisional) => {
                self.timers.cancel(Timer::Trying);
                let bytes = response.to_bytes();
                self.last = Some(bytes.clone().into_boxed_slice());
                Ok(Step { send: Some(bytes), ..Step::default() })
            }
            (Proceeding, Class::Success) => {
                // RFC 6026 §8.5: Accepted with Timer L; the 2xx is not kept, the TU retransmits it.
                self.state = Accepted;
                self.timers.clear();
                self.last = None;
                if let Some(l) = cfg.initial(Timer::L, self.reliable) {
                    self.timers.arm(Timer::L, at(now, l));
                }
                Ok(Step { send: Some(response.to_bytes()), ..Step::default() })
            }
            (Proceeding, Class::NonSuccess) => {
                let bytes = response.to_bytes();
                self.state = Completed;
                self.timers.clear();
                if let Some(g) = cfg.initial(Timer::G, self.reliable) {
                    self.interval = g;
                    self.timers.arm(Timer::G, at(now, g));
                }
                if let Some(h) = cfg.initial(Timer::H, self.reliable) {
                    self.timers.arm(Timer::H, at(now, h));
                }
                self.last = Some(bytes.clone().into_boxed_slice());
                Ok(Step { send: Some(bytes), ..Step::default() })
            }
            // RFC 6026 §8.6: 2xx retransmissions from the TU pass through in Accepted.
            (Accepted, Class::Success) => Ok(Step { send: Some(response.to_bytes()), ..Step::default() }),
            _ => Err(TransactionError::InvalidState),
        }
    }

    pub fn on_timer(&mut self, timer: Timer, cfg: &TimerConfig, now: u64) -> Step {
        if self.timers.get(timer).is_none() {
            return Step::default();
        }
        use ServerInviteState::*;
        match (self.state, timer) {
            (Proceeding, Timer::Trying) => {
                self.timers.cancel(Timer::Trying);
                self.last.as_deref().map(Step::send).unwrap_or_default()
            }
            (Completed, Timer::G) => {
                self.interval = cfg.backoff(Timer::G, self.interval);
                self.timers.arm(Timer::G, at(now, self.interval));
                self.last.as_deref().map(Step::send).unwrap_or_default()
            }
            // §17.2.1: Timer H means the ACK never came; the TU hears of the failure.
            (Completed, Timer::H) => {
                self.terminate();
                Step::timeout()
            }
            (Confirmed, Timer::I) | (Accepted, Timer::L) => {
                self.terminate();
                Step::default()
            }
            _ => {
                self.timers.cancel(timer);
                Step::default()
            }
        }
    }

    /// The transport could not deliver a response (§17.2.4): the transaction ends.
    pub fn on_transport_error(&mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        self.state = ServerInviteState::Terminated;
        self.timers.clear();
        self.last = None;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// The server non-INVITE transaction (RFC 3261 Figure 8). Kept small: a REGISTER over UDP lives here for
/// Timer J (64*T1) after its final response.
#[derive(Debug, Clone)]
pub struct ServerNonInvite {
    state: ServerNonInviteState,
    reliable: bool,
    /// The latest provisional (Proceeding) or the final response (Completed).
    last: Option<Box<[u8]>>,
    timers: Timers,
}

impl ServerNonInvite {
    pub fn new(reliable: bool) -> ServerNonInvite {
        ServerNonInvite { state: ServerNonInviteState::Trying, reliable, last: None, timers: Timers::default() }
    }

    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    pub fn timers(&self) -> &Timers {
        &self.timers
    }

    /// A retransmission of the request arrived: absorbed in Trying, answered with the stored response in
    /// Proceeding and Completed (§17.2.2).
    pub fn on_request(&mut self) -> Step {
        match self.state {
            ServerNonInviteState::Proceeding | ServerNonInviteState::Completed => {
                self.last.as_deref().map(Step::send).unwrap_or_default()
            }
            _ => Step::default(),
        }
    }

    /// The TU sends `response` through this transaction.
    pub fn on_response(&mut self, response: &Message, cfg: &TimerConfig, now: u64) -> Result<Step, TransactionError> {
        let code = response.status().ok_or(TransactionError::NotAResponse)?;
        use ServerNonInviteState::*;
        let bytes = match (self.state, Class::of(code)) {
            (Trying | Proceeding, Class::Provisional) => {
                self.state = Proceeding;
                let bytes = response.to_bytes();
                self.last = Some(bytes.clone().into_boxed_slice());
                bytes
            }
            (Trying | Proceeding, Class::Success | Class::NonSuccess) => {
                let bytes = response.to_bytes();
                self.state = Completed;
                match cfg.initial(Timer::J, self.reliable) {
                    Some(j) if j > 0 => {
                        self.timers.arm(Timer::J, at(now, j));
                        self.last = Some(bytes.clone().into_boxed_slice());
                    }
                    _ => self.terminate(),
                }
                bytes
            }
            // §17.2.2: further final responses from the TU are discarded in Completed.
            _ => return Err(TransactionError::InvalidState),
        };
        Ok(Step { send: Some(bytes), ..Step::default() })
    }

    pub fn on_timer(&mut self, timer: Timer) -> Step {
        if self.state == ServerNonInviteState::Completed && timer == Timer::J && self.timers.get(timer).is_some() {
            self.terminate();
        } else {
            self.timers.cancel(timer);
        }
        Step::default()
    }

    /// The transport could not deliver a response (§17.2.4): the transaction ends.
    pub fn on_transport_error(&mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        self.state = ServerNonInviteState::Terminated;
        self.timers.clear();
        self.last = None;
    }
}
