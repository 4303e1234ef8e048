//! Symmetric RTP with probation: where the relay sends a phone's media, and whose packets it takes.
//!
//! A phone behind NAT announces its private address in SDP and sends from its public one; the relay learns the
//! public one from the packets and sends back there (symmetric RTP, RFC 4961). Learning from any packet would let
//! anyone who can reach the relay port take the stream ("RTP bleed"), so:
//! - a source that is the SDP address itself is taken at once;
//! - any other source must send `probation` packets in a row with consecutive sequence numbers, and only within
//!   `window_ms` of the first packet after the stream was (re)negotiated (phones start sending when the call is
//!   answered, which may be long after the offer);
//! - once a source is learned, only its packets are taken; within the window the SDP address may still replace
//!   a source learned on probation (the real phone beats a faster stranger);
//! - nothing learned within the window: only the SDP address can still be learned.
//!
//! A re-INVITE or UPDATE reopens learning (a new window from its first packet).

use std::net::SocketAddr;

/// What to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// From the learned source: forward it.
    Forward,
    /// This packet taught the relay where the phone is: forward it, and send to the phone there from now on.
    Learned,
    /// From anyone else, or a candidate still on probation: drop it.
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatchConfig {
    /// Consecutive packets a source other than the SDP address must send before it is learned.
    pub probation: u8,
    /// How long after (re)negotiation a new source may be learned, milliseconds.
    pub window_ms: u64,
}

impl Default for LatchConfig {
    fn default() -> Self {
        LatchConfig { probation: 4, window_ms: 3000 }
    }
}

/// The latching state of one direction of one stream.
#[derive(Debug, Clone)]
pub struct Latch {
    config: LatchConfig,
    /// Where the SDP says the phone receives.
    announced: Option<SocketAddr>,
    learned: Option<SocketAddr>,
    /// A source on probation: the last sequence number seen and how many in a row so far.
    candidate: Option<(SocketAddr, u16, u8)>,
    /// End of the learning window; `None` until the first packet after (re)negotiation.
    open_until: Option<u64>,
}

impl Latch {
    pub fn new(config: LatchConfig, announced: Option<SocketAddr>) -> Self {
        Latch { config, announced, learned: None, candidate: None, open_until: None }
    }

    /// Where the relay sends this phone's media: the learned source, else the SDP address.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.learned.or(self.announced)
    }

    pub fn learned(&self) -> Option<SocketAddr> {
        self.learned
    }

    /// The SDP was renegotiated: learning opens again, with a new window from the next packet. Until something
    /// is learned again, media goes to the new SDP address. The first SDP of a side (none before) keeps what
    /// its packets already taught: phones send as soon as they answer, often before their answer reaches the
    /// relay.
    pub fn renegotiated(&mut self, announced: Option<SocketAddr>) {
        let first = self.announced.is_none();
        if announced != self.announced && !first {
            self.learned = None;
            self.candidate = None;
        }
        self.announced = announced;
        if !first {
            self.open_until = None;
        }
    }

    /// A packet from `source` with RTP sequence number `seq` (RTCP: pass the RTP stream's last one, or any
    /// counter; probation only needs it to step by one).
    pub fn on_packet(&mut self, source: SocketAddr, seq: u16, now: u64) -> Verdict {
        if self.learned == Some(source) {
            return Verdict::Forward;
        }
        let until = *self.open_until.get_or_insert(now + self.config.window_ms);
        let open = now < until;
        if self.announced == Some(source) && (self.learned.is_none() || open) {
            return self.learn(source);
        }
        if self.learned.is_some() || !open {
            return Verdict::Drop;
        }
        let count = match self.candidate {
            Some((s, last, n)) if s == source && seq == last.wrapping_add(1) => n.saturating_add(1),
            _ => 1,
        };
        self.candidate = Some((source, seq, count));
        if count >= self.config.probation.max(1) { self.learn(source) } else { Verdict::Drop }
    }

    fn learn(&mut self, source: SocketAddr) -> Verdict {
        self.learned = Some(source);
        self.candidate = None;
        Verdict::Learned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// The NAT case: SDP names 127.0.0.9 (nobody there), the phone sends from 127.0.0.1.
    #[test]
    fn a_phone_behind_nat_is_learned_after_probation() {
        let mut l = Latch::new(LatchConfig::default(), Some(a("127.0.0.9:4000")));
        assert_eq!(l.destination(), Some(a("127.0.0.9:4000")));
        let phone = a("127.0.0.1:4000");
        let verdicts: Vec<Verdict> = (100..104).map(|seq| l.on_packet(phone, seq, 20 * u64::from(seq - 100))).collect();
        assert_eq!(verdicts, vec![Verdict::Drop, Verdict::Drop, Verdict::Drop, Verdict::Learned]);
        assert_eq!(l.destination(), Some(phone));
        assert_eq!(l.on_packet(phone, 104, 100), Verdict::Forward);
    }

    #[test]
    fn the_announced_address_is_taken_at_once() {
        let phone = a("127.0.0.1:4000");
        let mut l = Latch::new(LatchConfig::default(), Some(phone));
        assert_eq!(l.on_packet(phone, 7, 10), Verdict::Learned);
        assert_eq!(l.on_packet(phone, 8, 30), Verdict::Forward);
    }

    /// A stranger spraying the relay port mid-call does not take the stream, whatever it sends.
    #[test]
    fn a_stranger_after_the_window_never_takes_the_stream() {
        let phone = a("127.0.0.1:4000");
        let stranger = a("127.0.0.66:9999");
        let mut l = Latch::new(LatchConfig::default(), Some(phone));
        l.on_packet(phone, 1, 10);
        for seq in 0..1000u16 {
            assert_eq!(l.on_packet(stranger, seq, 10_000 + u64::from(seq)), Verdict::Drop);
        }
        assert_eq!(l.destination(), Some(phone));
    }

    /// Inside the window, a stranger who sends fewer than `probation` consecutive packets does not take it; once
    /// the phone is learned, nobody else does, even inside the window; a renegotiation reopens learning.
    #[test]
    fn probation_needs_consecutive_packets_from_one_source() {
        let phone = a("127.0.0.1:4000");
        let stranger = a("127.0.0.66:9999");
        let mut l = Latch::new(LatchConfig::default(), Some(a("127.0.0.9:4000")));
        for seq in [1u16, 2, 4, 5, 6] {
            assert_eq!(l.on_packet(stranger, seq, 5), Verdict::Drop, "gap at 3 restarts the count");
        }
        for seq in 10..14u16 {
            l.on_packet(phone, seq, 50);
        }
        assert_eq!(l.learned(), Some(phone));
        for seq in 7..20u16 {
            assert_eq!(l.on_packet(stranger, seq, 60), Verdict::Drop, "learned and window over for others");
        }
        // A re-INVITE from the phone with a new address: learning opens again.
        l.renegotiated(Some(a("127.0.0.1:5000")));
        assert_eq!(l.on_packet(a("127.0.0.1:5000"), 1, 20_010), Verdict::Learned);
    }

    /// The window starts with the first packet: a caller whose phone sends only once the call is answered, a
    /// minute after its offer, is still learned.
    #[test]
    fn the_window_starts_with_the_first_packet() {
        let mut l = Latch::new(LatchConfig::default(), Some(a("127.0.0.9:4000")));
        let phone = a("127.0.0.1:4000");
        for seq in 0..4u16 {
            l.on_packet(phone, seq, 60_000 + u64::from(seq) * 20);
        }
        assert_eq!(l.learned(), Some(phone));
    }

    /// Nothing learned within the window: no stranger can be learned later; the SDP address still can.
    #[test]
    fn after_an_empty_window_only_the_announced_address_is_learned() {
        let announced = a("127.0.0.1:4000");
        let stranger = a("127.0.0.66:9999");
        let mut l = Latch::new(LatchConfig::default(), Some(announced));
        assert_eq!(l.on_packet(stranger, 1, 0), Verdict::Drop);
        for seq in 2..100u16 {
            assert_eq!(l.on_packet(stranger, seq, 3000 + u64::from(seq)), Verdict::Drop);
        }
        assert_eq!(l.on_packet(announced, 1, 10_000), Verdict::Learned);
    }

    /// A stranger faster than the phone wins probation inside the window; the phone sending from its SDP address
    /// within the window takes the stream back, and then keeps it.
    #[test]
    fn the_announced_address_beats_a_stranger_learned_on_probation() {
        let announced = a("127.0.0.1:4000");
        let stranger = a("127.0.0.66:9999");
        let mut l = Latch::new(LatchConfig::default(), Some(announced));
        for seq in 0..4u16 {
            l.on_packet(stranger, seq, u64::from(seq));
        }
        assert_eq!(l.learned(), Some(stranger));
        assert_eq!(l.on_packet(announced, 50, 100), Verdict::Learned);
        for seq in 4..20u16 {
            assert_eq!(l.on_packet(stranger, seq, 200), Verdict::Drop);
        }
        assert_eq!(l.destination(), Some(announced));
    }

    /// A phone's first packets can reach the relay before its answer SDP does: what they taught is kept.
    #[test]
    fn packets_before_the_first_sdp_count_towards_probation() {
        let phone = a("127.0.0.1:4000");
        let mut l = Latch::new(LatchConfig::default(), None);
        assert_eq!(l.on_packet(phone, 0, 0), Verdict::Drop);
        l.renegotiated(Some(a("127.0.0.9:4000")));
        let got: Vec<Verdict> = (1..4u16).map(|s| l.on_packet(phone, s, 20 * u64::from(s))).collect();
        assert_eq!(got, vec![Verdict::Drop, Verdict::Drop, Verdict::Learned]);
        // A later SDP naming a new address is a renegotiation: learning starts over.
        l.renegotiated(Some(a("127.0.0.9:5000")));
        assert_eq!(l.learned(), None);
        assert_eq!(l.destination(), Some(a("127.0.0.9:5000")));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let phone = a("127.0.0.1:4000");
        let mut l = Latch::new(LatchConfig { probation: 3, window_ms: 3000 }, None);
        assert_eq!(l.destination(), None);
        let got: Vec<Verdict> = [65_534u16, 65_535, 0].iter().map(|&s| l.on_packet(phone, s, 1)).collect();
        assert_eq!(got.last(), Some(&Verdict::Learned));
    }
}
