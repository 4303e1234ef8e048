//! RTP and RTCP packets (RFC 3550): reading the header of what the relay forwards, telling RTCP from RTP on a
//! muxed port (RFC 5761 §4), and building the packets the daemon sends itself (prompts, beeps, DTMF).
//!
//! Packets are read and built with `rtp-rs`. It has no setters, so the few fields a relay rewrites in place
//! (sequence number, timestamp, SSRC of a stream the daemon takes over) are written at their fixed offsets here.

use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

/// What the relay and the detectors need of an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub payload_type: u8,
    pub marker: bool,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

/// Why a datagram is not an RTP packet we take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRtp {
    /// Shorter than its header says, or not version 2.
    Malformed,
    /// An RTCP packet (payload types 64-95 with the marker bit, RFC 5761 §4).
    Rtcp,
}

/// Whether a datagram on a muxed port is RTCP: its second byte is 192-223 (RTCP packet types 200-204 and their
/// neighbours reserved by RFC 5761 so that they never collide with RTP payload types).
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.get(1).is_some_and(|b| (192..=223).contains(b))
}

/// Reads an RTP packet's header and payload.
pub fn read(packet: &[u8]) -> Result<(Header, &[u8]), NotRtp> {
    if is_rtcp(packet) {
        return Err(NotRtp::Rtcp);
    }
    let r = RtpReader::new(packet).map_err(|_| NotRtp::Malformed)?;
    if r.version() != 2 {
        return Err(NotRtp::Malformed);
    }
    let header = Header {
        payload_type: r.payload_type(),
        marker: r.mark(),
        seq: u16::from(r.sequence_number()),
        timestamp: r.timestamp(),
        ssrc: r.ssrc(),
    };
    Ok((header, r.payload()))
}

/// A packet with `header` and `payload`, no CSRCs, no padding, no extension.
pub fn build(header: &Header, payload: &[u8]) -> Vec<u8> {
    RtpPacketBuilder::new()
        .payload_type(header.payload_type & 0x7F)
        .marked(header.marker)
        .sequence(Seq::from(header.seq))
        .timestamp(header.timestamp)
        .ssrc(header.ssrc)
        .payload(payload)
        .build()
        // The builder fails only on a payload type above 127 or more than 15 CSRCs; neither is possible here.
        .unwrap_or_default()
}

/// Rewrites the sequence number, timestamp and SSRC of an RTP packet in place (RFC 3550 §5.1 offsets). `false`:
/// too short to be RTP.
pub fn rewrite(packet: &mut [u8], seq: u16, timestamp: u32, ssrc: u32) -> bool {
    let Some(fixed) = packet.get_mut(2..12) else { return false };
    let (seq_bytes, rest) = fixed.split_at_mut(2);
    let (ts_bytes, ssrc_bytes) = rest.split_at_mut(4);
    seq_bytes.copy_from_slice(&seq.to_be_bytes());
    ts_bytes.copy_from_slice(&timestamp.to_be_bytes());
    ssrc_bytes.copy_from_slice(&ssrc.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_packet_reads_back() {
        let h = Header { payload_type: 8, marker: true, seq: 65_535, timestamp: 0xDEAD_BEEF, ssrc: 0x0102_0304 };
        let bytes = build(&h, &[0xD5; 160]);
        assert_eq!(bytes.len(), 12 + 160);
        assert_eq!(&bytes[..2], &[0x80, 0x88]);
        let (got, payload) = read(&bytes).unwrap();
        assert_eq!(got, h);
        assert_eq!(payload, &[0xD5; 160][..]);
    }

    #[test]
    fn rtcp_and_garbage_are_not_taken_for_rtp() {
        // A receiver report (PT 201) on a muxed port.
        let rr = [0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4];
        assert!(is_rtcp(&rr));
        assert_eq!(read(&rr), Err(NotRtp::Rtcp));
        assert_eq!(read(&[0x80, 0x00, 0x00]), Err(NotRtp::Malformed));
        assert_eq!(read(&[0x40; 20]), Err(NotRtp::Malformed), "version 1");
        // CSRC count 15 with no room for them.
        assert_eq!(read(&[0x8F, 0x00, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0]), Err(NotRtp::Malformed));
    }

    #[test]
    fn rewriting_touches_only_the_three_fields() {
        let h = Header { payload_type: 0, marker: false, seq: 1, timestamp: 2, ssrc: 3 };
        let mut bytes = build(&h, b"payload");
        assert!(rewrite(&mut bytes, 500, 160_000, 77));
        let (got, payload) = read(&bytes).unwrap();
        assert_eq!(got, Header { seq: 500, timestamp: 160_000, ssrc: 77, ..h });
        assert_eq!(payload, b"payload");
        assert!(!rewrite(&mut [0u8; 11], 1, 1, 1));
    }
}
