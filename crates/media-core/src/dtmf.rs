//! DTMF: RFC 4733 telephone-events in RTP, and SIP INFO bodies (`application/dtmf-relay`, `application/dtmf`) as
//! the fallback.
//!
//! One key press is sent as several event packets with the same RTP timestamp: the first with the marker bit,
//! then updates with a growing duration, then (usually three) end packets. Senders differ: some never set the
//! marker, some lose the start, SIPp reuses SSRC and timestamps between digits. The detector therefore starts a
//! new digit on a new timestamp, a marker bit or a new event code, reports each digit once however many of its
//! packets arrive, and ignores repeated end packets.

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// 0-9, 10 `*`, 11 `#`, 12-15 `A`-`D`.
    pub code: u8,
    pub end: bool,
    /// Power level in -dBm0 (0-63).
    pub volume: u8,
    /// In timestamp units since the event began.
    pub duration: u16,
}

impl Event {
    /// Reads the first event of a payload (a payload may carry several; RFC 4733 §2.5.1.5 lets receivers read
    /// the first alone).
    pub fn decode(payload: &[u8]) -> Option<Event> {
        let [code, flags, d0, d1, ..] = *payload else { return None };
        Some(Event { code, end: flags & 0x80 != 0, volume: flags & 0x3F, duration: u16::from_be_bytes([d0, d1]) })
    }

    pub fn encode(&self) -> [u8; 4] {
        let flags = (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3F);
        let [d0, d1] = self.duration.to_be_bytes();
        [self.code, flags, d0, d1]
    }
}

/// The key of an event code, if it is one of the sixteen DTMF events.
pub fn key_of(code: u8) -> Option<char> {
    match code {
        0..=9 => char::from_digit(u32::from(code), 10),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => char::from_u32(u32::from(b'A') + u32::from(code - 12)),
        _ => None,
    }
}

/// The event code of a key.
pub fn code_of(key: char) -> Option<u8> {
    match key.to_ascii_uppercase() {
        d @ '0'..='9' => d.to_digit(10).and_then(|v| u8::try_from(v).ok()),
        '*' => Some(10),
        '#' => Some(11),
        l @ 'A'..='D' => u8::try_from(u32::from(l) - u32::from('A')).ok().map(|v| v + 12),
        _ => None,
    }
}

/// Turns the telephone-event packets of one stream into key presses, each reported once.
#[derive(Debug, Default)]
pub struct Detector {
    /// The event being received: its timestamp and code, whether it has been reported, whether it ended.
    current: Option<(u32, u8)>,
}

impl Detector {
    pub fn new() -> Self {
        Detector::default()
    }

    /// One telephone-event packet (already known to carry the negotiated telephone-event payload type). Returns
    /// the key when this packet begins a new press.
    pub fn on_packet(&mut self, marker: bool, timestamp: u32, payload: &[u8]) -> Option<char> {
        let event = Event::decode(payload)?;
        let key = key_of(event.code)?;
        let same = self.current == Some((timestamp, event.code));
        if same && !marker {
            return None; // an update or a repeated end packet of the press already reported
        }
        self.current = Some((timestamp, event.code));
        Some(key)
    }
}

/// The key a SIP INFO body carries: `Signal=5` (`application/dtmf-relay`, the de facto form) or a bare key
/// (`application/dtmf`). `None` for other content types or bodies.
pub fn from_info(content_type: &str, body: &[u8]) -> Option<char> {
    let ct = content_type.split(';').next().unwrap_or_default().trim();
    let text = std::str::from_utf8(body).ok()?;
    let value = if ct.eq_ignore_ascii_case("application/dtmf-relay") {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?
    } else if ct.eq_ignore_ascii_case("application/dtmf") {
        text.trim()
    } else {
        return None;
    };
    let mut chars = value.chars();
    let key = chars.next()?;
    // Some phones send the event number (`Signal=10` for `*`).
    match (chars.next(), value.parse::<u8>()) {
        (None, _) => code_of(key).and_then(key_of),
        (Some(_), Ok(code)) => key_of(code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: u8, end: bool, duration: u16) -> [u8; 4] {
        Event { code, end, volume: 10, duration }.encode()
    }

    #[test]
    fn events_round_trip_through_their_four_bytes() {
        let e = Event { code: 11, end: true, volume: 63, duration: 1600 };
        assert_eq!(e.encode(), [11, 0xBF, 0x06, 0x40]);
        assert_eq!(Event::decode(&e.encode()), Some(e));
        assert_eq!(Event::decode(&[1, 2, 3]), None);
    }

    #[test]
    fn keys_and_codes() {
        let keys: String = (0..16).filter_map(key_of).collect();
        assert_eq!(keys, "0123456789*#ABCD");
        for (code, key) in keys.chars().enumerate() {
            assert_eq!(code_of(key), Some(u8::try_from(code).unwrap()));
        }
        assert_eq!(key_of(16), None);
        assert_eq!(code_of('x'), None);
    }

    /// baresip's shape: marker on the first packet, updates, three end packets; each press once.
    #[test]
    fn one_press_is_reported_once_despite_updates_and_repeated_ends() {
        let mut d = Detector::new();
        let mut keys = String::new();
        for (ts, code) in [(1000u32, 1u8), (2000, 2), (3000, 3)] {
            keys.extend(d.on_packet(true, ts, &packet(code, false, 160)));
            for dur in [320, 480, 640] {
                keys.extend(d.on_packet(false, ts, &packet(code, false, dur)));
            }
            for _ in 0..3 {
                keys.extend(d.on_packet(false, ts, &packet(code, true, 800)));
            }
        }
        assert_eq!(keys, "123");
    }

    /// The same key pressed twice: a new timestamp makes the second press new even without a marker.
    #[test]
    fn a_repeated_key_is_two_presses() {
        let mut d = Detector::new();
        let mut keys = String::new();
        for ts in [1000u32, 2600] {
            keys.extend(d.on_packet(false, ts, &packet(5, false, 160)));
            keys.extend(d.on_packet(false, ts, &packet(5, true, 800)));
        }
        assert_eq!(keys, "55");
    }

    /// SIPp's recorded digits share one timestamp: the code change, or the marker for the same code, separates
    /// them.
    #[test]
    fn shared_timestamps_are_separated_by_code_or_marker() {
        let mut d = Detector::new();
        let mut keys = String::new();
        keys.extend(d.on_packet(true, 13_280, &packet(1, false, 160)));
        keys.extend(d.on_packet(false, 13_280, &packet(1, true, 800)));
        keys.extend(d.on_packet(true, 13_280, &packet(2, false, 160)));
        keys.extend(d.on_packet(true, 13_280, &packet(2, false, 160)));
        assert_eq!(keys, "122");
    }

    /// A press whose start packets were lost is still reported, from its first end packet.
    #[test]
    fn a_press_seen_only_by_its_end_is_reported() {
        let mut d = Detector::new();
        let mut keys = String::new();
        for _ in 0..3 {
            keys.extend(d.on_packet(false, 4000, &packet(11, true, 800)));
        }
        assert_eq!(keys, "#");
        assert_eq!(d.on_packet(true, 5000, &[200, 0, 0, 160]), None, "not a DTMF event");
    }

    #[test]
    fn info_bodies() {
        assert_eq!(from_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"), Some('5'));
        assert_eq!(from_info("Application/DTMF-Relay; x=y", b"signal= #\r\nDuration=160"), Some('#'));
        assert_eq!(from_info("application/dtmf-relay", b"Signal=10\r\n"), Some('*'));
        assert_eq!(from_info("application/dtmf", b"7"), Some('7'));
        assert_eq!(from_info("application/sdp", b"Signal=5"), None);
        assert_eq!(from_info("application/dtmf-relay", b"Duration=160"), None);
        assert_eq!(from_info("application/dtmf-relay", b"Signal=99"), None);
    }
}
