//! The back-to-back user agent, sans-IO: one [`Call`] per INVITE that reaches us, with its caller leg (A) and the
//! legs it starts towards devices, PBXs, carrier gateways or voicemail (B).
//!
//! The driver owns the transaction layer and the sockets. It hands the call what arrived on its transactions and
//! dialogs, with `now` in milliseconds, and carries out the [`Action`]s the call queues: answer a server
//! transaction, start a client transaction (telling the call its key), send an ACK directly. Routing decides the
//! [`Plan`] before the call exists; the call runs it:
//!
//! 1. **Ring**: fork to every target at once, or hunt through them in order (gateways: the next on timeout, 408
//!    or 5xx), relaying 180/183 to the caller.
//! 2. **Divert** (no-answer timer, busy, every ring leg failing, or at once): CANCEL the ring legs and hunt
//!    through the divert targets, each INVITE carrying `Diversion` (RFC 5806) and `History-Info` (RFC 7044).
//! 3. **Answered**: the first 2xx wins; other legs are cancelled, a late 2xx is acknowledged and hung up. BYE,
//!    re-INVITE, UPDATE and INFO pass between the legs; in-dialog OPTIONS probe both legs for dead calls; the
//!    call is cut at its maximum duration.
//!
//! Each leg has its own Call-ID, tags and CSeq space, and only our own Via, Contact and Route go out: neither
//! side learns the other's addresses (topology hiding). SDP passes through unchanged.

mod call;
mod dialog;

#[cfg(test)]
mod tests;

pub use call::{ALLOW, Action, Call, CallConfig, Disposition, EndReason, Record, token_of_tag};

pub use switchboard_media_core::relay::{Remote, Side as MediaSide};
pub use switchboard_media_core::sdp::Anchor;
pub use switchboard_model::DivertReason;
use switchboard_sip_core::HeaderName;

/// Where a leg's messages go and how we appear there: the driver's notion of a next hop (address, transport,
/// connection) and our address as seen from it.
pub trait Hop: Clone + std::fmt::Debug {
    /// The Via header value for a request we send on this hop, with `branch`.
    fn via(&self, branch: &str) -> String;
    /// Our Contact URI as the peer on this hop must reach us.
    fn contact(&self) -> String;
    /// A reliable (stream) transport: no 2xx retransmissions.
    fn reliable(&self) -> bool;
}

/// One destination to ring.
#[derive(Debug, Clone)]
pub struct Target<H> {
    pub request_uri: String,
    /// The To header value, without tag.
    pub to: String,
    /// The From header value, without tag: the caller as this leg presents it.
    pub from: String,
    pub hop: H,
    /// Route headers (a registered contact's Path).
    pub route: Vec<String>,
    /// Further headers for this INVITE (P-Asserted-Identity, Privacy).
    pub extra: Vec<(HeaderName, String)>,
    /// What the records call this target (a device name, a gateway name, `voicemail`).
    pub label: String,
    /// The device behind this target, if any.
    pub device_id: Option<i64>,
}

/// How the ring stage reaches its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// All at once (the live bindings of a number's devices).
    Fork,
    /// One after another (carrier gateways in priority order).
    Hunt,
}

/// Where a diverted call goes, and the headers that say so.
#[derive(Debug, Clone)]
pub struct DivertPlan<H> {
    /// The number being diverted from, as a SIP URI: the Diversion URI and the first History-Info entry.
    pub diverting_uri: String,
    /// Tried in order, like gateways. Empty: the divert target is not available (voicemail not configured),
    /// and the caller gets 480.
    pub targets: Vec<Target<H>>,
    /// `Diversion` values the caller's INVITE already carried; ours goes above them.
    pub previous: Vec<String>,
    /// The counter our Diversion entry carries.
    pub counter: u32,
    /// What the records call the divert destination (`voicemail` or the number).
    pub label: String,
}

/// What to do with a new call, decided by routing.
#[derive(Debug, Clone)]
pub struct Plan<H> {
    pub mode: Mode,
    pub ring: Vec<Target<H>>,
    /// Divert after ringing this long without an answer.
    pub no_answer_ms: Option<u64>,
    /// A busy answer (486, 600) from a ring leg diverts at once.
    pub divert_on_busy: bool,
    pub divert: Option<DivertPlan<H>>,
    /// Divert before ringing anything, for this reason.
    pub divert_now: Option<DivertReason>,
    /// Media goes through the relay: SDP towards each side names the relay's address and ports for that side.
    pub media: Option<MediaPlan>,
}

/// Where the relay receives each side's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaPlan {
    /// What the caller is told (the relay's A side).
    pub a: Anchor,
    /// What every callee leg is told (the relay's B side).
    pub b: Anchor,
}

impl<H> Plan<H> {
    /// Ring `targets` (fork or hunt) with no divert.
    pub fn ring(mode: Mode, ring: Vec<Target<H>>) -> Self {
        Plan { mode, ring, no_answer_ms: None, divert_on_busy: false, divert: None, divert_now: None, media: None }
    }
}
