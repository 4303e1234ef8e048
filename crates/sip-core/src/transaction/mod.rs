//! The RFC 3261 §17 transaction layer, with the RFC 6026 `Accepted` states, sans-IO.
//!
//! Four machines ([`ClientInvite`], [`ClientNonInvite`], [`ServerInvite`], [`ServerNonInvite`]) each take inputs
//! with `now` (milliseconds, any epoch) and answer with a [`Step`]: bytes to send to the transaction's peer,
//! whether the input goes up to the TU, whether the TU must hear of a failure. Armed timers and their deadlines
//! are read back with `timers()`. [`TransactionLayer`] holds many machines, matches messages to them
//! (§17.1.3, §17.2.3), keeps deadlines in an ordered index and queues [`Output`]s for the driver.
//!
//! Decisions the driver and TU rely on:
//! * 100 Trying: a server INVITE transaction sends it by itself 200 ms after the INVITE unless the TU has sent a
//!   response by then, and at once when the INVITE is retransmitted before that (§17.2.1).
//! * ACK for a 2xx is not part of any transaction: it comes up as [`Incoming::StrayAck`], whether it matched
//!   nothing or matched a server INVITE transaction in `Accepted` (RFC 6026 §8.7). The TU sends its own ACKs
//!   for 2xx directly, not through [`TransactionLayer::send_request`].
//! * ACK for a non-2xx final response is built and sent by the client INVITE transaction (§17.1.1.3).
//! * Timer B, F (client) and H (server INVITE, no ACK) report [`Output::Timeout`]; the TU treats a client
//!   timeout as a 408 (§8.1.3.1).

mod answers;
mod client;
mod key;
mod layer;
mod server;
mod timer;

#[cfg(test)]
mod tests;

pub use answers::AnswerMemory;
pub use client::{ClientInvite, ClientInviteState, ClientNonInvite, ClientNonInviteState};
pub use layer::{Incoming, Output, TransactionLayer};
pub use server::{ServerInvite, ServerInviteState, ServerNonInvite, ServerNonInviteState};
pub use timer::{TIMER_D_UNRELIABLE_MS, TRYING_DELAY_MS, Timer, TimerConfig, Timers};

use std::fmt;

/// RFC 3261 §8.1.1.7: branch IDs of RFC 3261 elements start with this.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// A branch parameter for a new client transaction, from a random number the caller drew from the OS.
pub fn new_branch(random: u64) -> String {
    format!("{MAGIC_COOKIE}{random:016x}")
}

/// Identifies one transaction inside a [`TransactionLayer`]. Keys are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(u64);

impl Key {
    /// A key made up by a transaction user's own tests; a layer never hands out one it did not make.
    pub const fn from_raw(n: u64) -> Key {
        Key(n)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx-{}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    #[error("no such transaction")]
    UnknownTransaction,
    #[error("not a server transaction")]
    NotAServerTransaction,
    #[error("the transaction cannot take this message in its current state")]
    InvalidState,
    #[error("expected a response")]
    NotAResponse,
    #[error("expected a request")]
    NotARequest,
    #[error("ACK is not a transaction: send it directly")]
    AckIsNotATransaction,
    #[error("the top Via has no RFC 3261 branch")]
    MissingBranch,
    #[error("a transaction with this branch and method exists")]
    DuplicateTransaction,
}

/// What one input made a machine do. The owner carries it out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Step {
    /// Bytes to hand to the transport, towards the transaction's peer.
    pub send: Option<Vec<u8>>,
    /// The message that caused this step goes up to the TU.
    pub pass_up: bool,
    /// A failure the TU must hear of: Timer B or F (treat as 408) or Timer H (the ACK never came).
    pub timeout: bool,
}

impl Step {
    fn send(bytes: &[u8]) -> Step {
        Step { send: Some(bytes.to_vec()), ..Step::default() }
    }

    fn pass_up() -> Step {
        Step { pass_up: true, ..Step::default() }
    }

    fn timeout() -> Step {
        Step { timeout: true, ..Step::default() }
    }
}

/// The class of a status code, as the state tables use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Provisional,
    Success,
    NonSuccess,
}

impl Class {
    fn of(code: u16) -> Class {
        match code {
            0..=199 => Class::Provisional,
            200..=299 => Class::Success,
            _ => Class::NonSuccess,
        }
    }
}

/// `now + d`, saturating.
fn at(now: u64, d: u64) -> u64 {
    now.saturating_add(d)
}
