//! Transaction timers (RFC 3261 §17 and Table 4 of Appendix A, RFC 6026 §8.4 for L and M).

/// The base timer values, in milliseconds (RFC 3261 §17.1.1.1 and Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate.
    pub t1: u64,
    /// Maximum retransmission interval for non-INVITE requests and INVITE responses.
    pub t2: u64,
    /// Maximum time a message stays in the network.
    pub t4: u64,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig { t1: 500, t2: 4_000, t4: 5_000 }
    }
}

/// How long the server INVITE transaction waits for the TU's first response before sending 100 Trying itself
/// (RFC 3261 §17.2.1).
pub const TRYING_DELAY_MS: u64 = 200;

/// Timer D on unreliable transports: "at least 32 seconds" (RFC 3261 §17.1.1.2).
pub const TIMER_D_UNRELIABLE_MS: u64 = 32_000;

/// The timers of RFC 3261 Table 4 (C is the proxy's and does not live here) plus RFC 6026's L and M.
/// `Trying` is the 200 ms wait of §17.2.1 before the transaction answers an INVITE with 100 Trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// INVITE request retransmission (client, Calling).
    A,
    /// INVITE transaction timeout (client, Calling).
    B,
    /// Wait for response retransmissions (client INVITE, Completed).
    D,
    /// Non-INVITE request retransmission (client, Trying/Proceeding).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE final response retransmission (server, Completed).
    G,
    /// Wait for ACK (server INVITE, Completed).
    H,
    /// Wait for ACK retransmissions (server INVITE, Confirmed).
    I,
    /// Wait for non-INVITE request retransmissions (server, Completed).
    J,
    /// Wait for response retransmissions (client non-INVITE, Completed).
    K,
    /// Wait for INVITE retransmissions after a 2xx (server, Accepted; RFC 6026).
    L,
    /// Wait for 2xx retransmissions (client INVITE, Accepted; RFC 6026).
    M,
    /// 100 Trying after 200 ms without a TU response (server INVITE, Proceeding).
    Trying,
}

impl TimerConfig {
    /// 64*T1, the transaction timeout of B, F, H, J, L and M.
    pub fn timeout(&self) -> u64 {
        self.t1.saturating_mul(64)
    }

    /// The initial value of `timer`. `None`: the timer is not used on this transport (retransmission timers on
    /// reliable transports). `Some(0)`: the state it guards is left at once.
    pub fn initial(&self, timer: Timer, reliable: bool) -> Option<u64> {
        match (timer, reliable) {
            (Timer::A | Timer::E | Timer::G, true) => None,
            (Timer::A | Timer::E | Timer::G, false) => Some(self.t1.max(1)),
            (Timer::B | Timer::F | Timer::H | Timer::L | Timer::M, _) => Some(self.timeout()),
            (Timer::D | Timer::I | Timer::J | Timer::K, true) => Some(0),
            (Timer::D, false) => Some(TIMER_D_UNRELIABLE_MS),
            (Timer::I | Timer::K, false) => Some(self.t4),
            (Timer::J, false) => Some(self.timeout()),
            (Timer::Trying, _) => Some(TRYING_DELAY_MS),
        }
    }

    /// The next interval of a retransmission timer that just fired after `interval` ms: Timer A doubles without
    /// bound (§17.1.1.2), E and G double up to T2 (§17.1.2.2, §17.2.1).
    pub fn backoff(&self, timer: Timer, interval: u64) -> u64 {
        let doubled = interval.saturating_mul(2);
        let next = match timer {
            Timer::A => doubled,
            _ => doubled.min(self.t2),
        };
        // A zero interval would fire forever at the same instant.
        next.max(1)
    }
}

/// The (at most two) timers a machine has armed, with their deadlines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timers([Option<(Timer, u64)>; 2]);

impl Timers {
    /// Arms `timer` to fire at `at`, replacing an earlier arming of the same timer.
    pub(crate) fn arm(&mut self, timer: Timer, at: u64) {
        self.cancel(timer);
        if let Some(slot) = self.0.iter_mut().find(|s| s.is_none()) {
            *slot = Some((timer, at));
        }
    }

    pub(crate) fn cancel(&mut self, timer: Timer) {
        for slot in &mut self.0 {
            if matches!(slot, Some((t, _)) if *t == timer) {
                *slot = None;
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.0 = [None, None];
    }

    /// The deadline of `timer`, if armed.
    pub fn get(&self, timer: Timer) -> Option<u64> {
        self.iter().find(|(t, _)| *t == timer).map(|(_, at)| at)
    }

    /// Every armed timer with its deadline.
    pub fn iter(&self) -> impl Iterator<Item = (Timer, u64)> + '_ {
        self.0.iter().flatten().copied()
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.iter().map(|(_, at)| at).min()
    }
}
