//! What the engine tells the media relay, and what the relay reports back: plain data, so the engine stays
//! sans-IO and the relay (`media-io`) stays free of decisions.

use std::net::SocketAddr;

/// The two sides of a call: the caller's (A) and the callee's (B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// Where one side's media is announced (its SDP) and whether it is on hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Remote {
    /// The SDP's RTP address (c= and m= port).
    pub rtp: Option<SocketAddr>,
    /// The SDP's RTCP address (`a=rtcp`, else the RTP port + 1).
    pub rtcp: Option<SocketAddr>,
    /// The side asked for no media from us (`sendonly`, `inactive`, c=0.0.0.0): silence is expected.
    pub hold: bool,
}

/// What the relay is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Binds `rtp_port` and `rtp_port + 1` for each side on the relay's address and starts forwarding.
    Open { id: u64, a_port: u16, b_port: u16, a: Remote, b: Remote },
    /// A side's SDP changed (re-INVITE, UPDATE, an answer arriving): new addresses reopen latching.
    Remote { id: u64, side: Side, remote: Remote },
    /// The call ended: its sockets are closed and its ports are free again.
    Close { id: u64 },
}

/// What the relay reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A port of session `id` could not be bound (another process holds it).
    BindFailed { id: u64, port: u16 },
    /// A side was found sending from `from` (symmetric RTP): media to it goes there now.
    Latched { id: u64, side: Side, from: SocketAddr },
    /// No RTP from either side for the media timeout while neither is on hold.
    Silent { id: u64 },
    /// Session `id` is closed (its ports are free again); its counters.
    Closed { id: u64, stats: SessionStats },
}

/// A session's counters, reported when it closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionStats {
    /// Packets forwarded from A to B, and from B to A.
    pub forwarded: [u64; 2],
    /// Packets dropped: from sources not latched, malformed, or with nowhere to go yet.
    pub dropped: u64,
}
