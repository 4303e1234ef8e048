//! SDP (RFC 8866) as a media relay needs it: read what each stream offers or answers (address, ports, RTCP,
//! rtcp-mux, direction, codecs, telephone-event), and rewrite the addresses and ports to the relay's, keeping every
//! other line byte for byte (line endings included).
//!
//! Lines the relay makes untrue are removed: ICE candidates and credentials (RFC 8839) name the phone's own
//! addresses, which would let the far end bypass the relay.

use std::net::IpAddr;

/// Why a body is not SDP we can anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdpError {
    /// It does not start with `v=0`.
    NotSdp,
    /// More lines or streams than any call needs (limits against hostile bodies).
    TooLarge,
    /// A line the relay must understand is malformed (named).
    Malformed(&'static str),
}

impl std::fmt::Display for SdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SdpError::NotSdp => f.write_str("body is not SDP (no v=0)"),
            SdpError::TooLarge => f.write_str("SDP has too many lines or streams"),
            SdpError::Malformed(what) => write!(f, "malformed SDP {what} line"),
        }
    }
}

impl std::error::Error for SdpError {}

/// At most this many lines in one body.
const MAX_LINES: usize = 512;
/// At most this many m= lines.
pub const MAX_STREAMS: usize = 8;

/// RFC 3264 §6.1 directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn from_attribute(a: &str) -> Option<Direction> {
        match a {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// One m= section, as the relay sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// `audio`, `video`, ...
    pub kind: String,
    /// 0: the stream is disabled (rejected in an answer); the relay leaves it alone.
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP`, ...
    pub proto: String,
    /// Payload types listed on the m= line (for RTP protocols).
    pub formats: Vec<u8>,
    /// The media-level c= address, else the session's. `None` without any c=.
    pub address: Option<IpAddr>,
    /// `a=rtcp:` port and address (RFC 3605), if given.
    pub rtcp: Option<(u16, Option<IpAddr>)>,
    /// `a=rtcp-mux` (RFC 5761).
    pub rtcp_mux: bool,
    pub direction: Direction,
    /// `a=rtpmap` encoding names by payload type.
    pub rtpmap: Vec<(u8, String)>,
    /// The payload type mapped to `telephone-event/8000`, if any.
    pub telephone_event: Option<u8>,
}

impl Stream {
    /// On hold: the sender sends nothing (or asks for nothing), or the old RFC 2543 way, c=0.0.0.0.
    pub fn is_hold(&self) -> bool {
        matches!(self.direction, Direction::SendOnly | Direction::Inactive)
            || self.address.is_some_and(|a| a.is_unspecified())
    }
}

/// Where the relay receives one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    pub address: IpAddr,
    pub rtp_port: u16,
    pub rtcp_port: u16,
}

/// A parsed body: its lines as sent, and what they say.
#[derive(Debug, Clone)]
pub struct Sdp<'a> {
    /// Each line without its ending, and the ending (`\r\n`, `\n` or nothing on the last line).
    lines: Vec<(&'a [u8], &'a [u8])>,
    /// Index of the first line of each m= section.
    sections: Vec<usize>,
    streams: Vec<Stream>,
}

impl<'a> Sdp<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Sdp<'a>, SdpError> {
        let mut lines = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            if lines.len() >= MAX_LINES {
                return Err(SdpError::TooLarge);
            }
            let (line, eol, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let (with_cr, after) = (rest.get(..i).unwrap_or_default(), rest.get(i + 1..).unwrap_or_default());
                    match with_cr.strip_suffix(b"\r") {
                        Some(l) => (l, rest.get(i - 1..=i).unwrap_or_default(), after),
                        None => (with_cr, rest.get(i..=i).unwrap_or_default(), after),
                    }
                }
                None => (rest, &b""[..], &b""[..]),
            };
            lines.push((line, eol));
            rest = next;
        }
        if lines.first().map(|(l, _)| l.trim_ascii()) != Some(b"v=0") {
            return Err(SdpError::NotSdp);
        }
        let mut sdp = Sdp { lines, sections: Vec::new(), streams: Vec::new() };
        sdp.read_streams()?;
        Ok(sdp)
    }

    pub fn streams(&self) -> &[Stream] {
        &self.streams
    }

    fn read_streams(&mut self) -> Result<(), SdpError> {
        let mut session_address = None;
        let mut session_direction = Direction::SendRecv;
        let mut current: Option<Stream> = None;
        let mut current_direction: Option<Direction> = None;
        let mut streams = Vec::new();
        let mut sections = Vec::new();
        let finish = |s: Option<Stream>, dir: Option<Direction>, sd: Direction, out: &mut Vec<Stream>| {
            if let Some(mut s) = s {
                s.direction = dir.unwrap_or(sd);
                out.push(s);
            }
        };
        for (i, (raw, _)) in self.lines.iter().enumerate() {
            let Ok(line) = std::str::from_utf8(raw) else { continue };
            let Some((kind, value)) = line.split_once('=') else { continue };
            match kind {
                "m" => {
                    finish(current.take(), current_direction.take(), session_direction, &mut streams);
                    if sections.len() >= MAX_STREAMS {
                        return Err(SdpError::TooLarge);
                    }
                    sections.push(i);
                    current = Some(parse_media(value, session_address)?);
                }
                "c" => {
                    let address = parse_connection(value)?;
                    match current.as_mut() {
                        Some(s) => s.address = Some(address),
                        None => session_address = Some(address),
                    }
                }
                "a" => {
                    let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                    if let Some(d) = Direction::from_attribute(name) {
                        match current {
                            Some(_) => current_direction = Some(d),
                            None => session_direction = d,
                        }
                        continue;
                    }
                    let Some(s) = current.as_mut() else { continue };
                    match name {
                        "rtcp" => s.rtcp = Some(parse_rtcp(arg)?),
                        "rtcp-mux" => s.rtcp_mux = true,
                        "rtpmap" => {
                            let (pt, encoding) = arg.split_once(' ').ok_or(SdpError::Malformed("a=rtpmap"))?;
                            let pt: u8 = pt.trim().parse().map_err(|_| SdpError::Malformed("a=rtpmap"))?;
                            let name = encoding.trim().split('/').next().unwrap_or_default().to_owned();
                            if name.eq_ignore_ascii_case("telephone-event") {
                                s.telephone_event = Some(pt);
                            }
                            s.rtpmap.push((pt, name));
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        finish(current.take(), current_direction.take(), session_direction, &mut streams);
        self.streams = streams;
        self.sections = sections;
        Ok(())
    }

    /// The body with each stream that has an anchor (`anchors[i]` for the i-th m= line) pointed at the relay:
    /// its m= port, c= address, `a=rtcp` (to the relay's RTCP port, or its RTP port where the original named the
    /// RTP port, as rtcp-mux offers do), the session c= and the o= address. Disabled streams (port 0) and
    /// c=0.0.0.0 (hold) stay as they are; ICE lines are dropped. Every other line is kept byte for byte.
    pub fn rewrite(&self, anchors: &[Option<Anchor>]) -> Vec<u8> {
        let relay = anchors.iter().flatten().next().map(|a| a.address);
        let mut out = Vec::with_capacity(self.lines.iter().map(|(l, e)| l.len() + e.len()).sum::<usize>() + 64);
        let mut section: Option<usize> = None;
        for (i, (raw, eol)) in self.lines.iter().enumerate() {
            if let Some(pos) = self.sections.iter().position(|&s| s == i) {
                section = Some(pos);
            }
            let anchor = section.and_then(|s| anchors.get(s).copied().flatten());
            let stream = section.and_then(|s| self.streams.get(s));
            let line = std::str::from_utf8(raw).ok();
            let replaced = match (line, relay) {
                (Some(l), Some(relay)) => rewrite_line(l, relay, section.is_none(), anchor, stream),
                _ => Keep::Same,
            };
            match replaced {
                Keep::Same => out.extend_from_slice(raw),
                Keep::Drop => continue,
                Keep::New(text) => out.extend_from_slice(text.as_bytes()),
            }
            out.extend_from_slice(eol);
        }
        out
    }
}

enum Keep {
    Same,
    Drop,
    New(String),
}

fn rewrite_line(line: &str, relay: IpAddr, session: bool, anchor: Option<Anchor>, stream: Option<&Stream>) -> Keep {
    let Some((kind, value)) = line.split_once('=') else { return Keep::Same };
    match kind {
        "o" if session => {
            let fields: Vec<&str> = value.split(' ').collect();
            match fields.as_slice() {
                [user, id, version, net, _, _] => {
                    Keep::New(format!("o={user} {id} {version} {net} {} {relay}", addr_type(relay)))
                }
                _ => Keep::Same,
            }
        }
        "c" => {
            let unspecified = parse_connection(value).is_ok_and(|a| a.is_unspecified());
            if unspecified || (!session && anchor.is_none()) {
                return Keep::Same;
            }
            let address = anchor.map_or(relay, |a| a.address);
            Keep::New(format!("c=IN {} {address}", addr_type(address)))
        }
        "m" => match anchor {
            Some(a) if stream.is_some_and(|s| s.port != 0) => {
                let mut parts = value.splitn(3, ' ');
                let (media, _port, rest) = (parts.next(), parts.next(), parts.next());
                match (media, rest) {
                    (Some(media), Some(rest)) => Keep::New(format!("m={media} {} {rest}", a.rtp_port)),
                    _ => Keep::Same,
                }
            }
            _ => Keep::Same,
        },
        "a" => {
            let (name, arg) = value.split_once(':').unwrap_or((value, ""));
            if ICE_ATTRIBUTES.contains(&name) && anchor.is_some() {
                return Keep::Drop;
            }
            match (name, anchor, stream) {
                ("rtcp", Some(a), Some(s)) if s.port != 0 => {
                    let original = arg.split(' ').next().and_then(|p| p.trim().parse::<u16>().ok());
                    let port = if original == Some(s.port) { a.rtp_port } else { a.rtcp_port };
                    if arg.trim().contains(' ') {
                        Keep::New(format!("a=rtcp:{port} IN {} {}", addr_type(a.address), a.address))
                    } else {
                        Keep::New(format!("a=rtcp:{port}"))
                    }
                }
                _ => Keep::Same,
            }
        }
        _ => Keep::Same,
    }
}

/// Attributes that name the endpoint's own transport addresses (RFC 8839).
const ICE_ATTRIBUTES: &[&str] =
    &["candidate", "ice-ufrag", "ice-pwd", "ice-options", "ice-lite", "remote-candidates", "end-of-candidates"];

fn addr_type(a: IpAddr) -> &'static str {
    if a.is_ipv4() { "IP4" } else { "IP6" }
}

/// `IN IP4 192.0.2.1` (a multicast TTL suffix `/127` is tolerated).
fn parse_connection(value: &str) -> Result<IpAddr, SdpError> {
    let mut parts = value.split_ascii_whitespace();
    let (net, _kind, address) = (parts.next(), parts.next(), parts.next());
    if net != Some("IN") {
        return Err(SdpError::Malformed("c="));
    }
    let address = address.ok_or(SdpError::Malformed("c="))?;
    address.split('/').next().unwrap_or_default().parse().map_err(|_| SdpError::Malformed("c="))
}

/// `audio 49170 RTP/AVP 0 8 101`.
fn parse_media(value: &str, session_address: Option<IpAddr>) -> Result<Stream, SdpError> {
    let mut parts = value.split_ascii_whitespace();
    let kind = parts.next().ok_or(SdpError::Malformed("m="))?;
    // A port count (`49170/2`) is allowed by the grammar; the first port is the one that matters.
    let port = parts.next().and_then(|p| p.split('/').next()?.parse::<u16>().ok()).ok_or(SdpError::Malformed("m="))?;
    let proto = parts.next().ok_or(SdpError::Malformed("m="))?;
    let formats = if proto.starts_with("RTP/") { parts.filter_map(|f| f.parse().ok()).collect() } else { Vec::new() };
    Ok(Stream {
        kind: kind.to_owned(),
        port,
        proto: proto.to_owned(),
        formats,
        address: session_address,
        rtcp: None,
        rtcp_mux: false,
        direction: Direction::SendRecv,
        rtpmap: Vec::new(),
        telephone_event: None,
    })
}

/// `53020` or `53020 IN IP4 126.16.64.4` (RFC 3605).
fn parse_rtcp(arg: &str) -> Result<(u16, Option<IpAddr>), SdpError> {
    let mut parts = arg.split_ascii_whitespace();
    let port = parts.next().and_then(|p| p.parse().ok()).ok_or(SdpError::Malformed("a=rtcp"))?;
    let address = match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(a)) => Some(a.parse().map_err(|_| SdpError::Malformed("a=rtcp"))?),
        _ => None,
    };
    Ok((port, address))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARESIP: &str = "v=0\r\no=- 1234 5678 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\n\
        t=0 0\r\nm=audio 30000 RTP/AVP 0 8 101\r\nb=AS:80\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtcp:30001\r\na=sendrecv\r\n\
        a=label:1\r\na=ssrc:4242 cname:x@y\r\n";

    fn anchor() -> Anchor {
        Anchor { address: "192.0.2.10".parse().unwrap(), rtp_port: 10_000, rtcp_port: 10_001 }
    }

    #[test]
    fn what_a_phone_offers_is_read() {
        let sdp = Sdp::parse(BARESIP.as_bytes()).unwrap();
        let s = &sdp.streams()[0];
        assert_eq!((s.kind.as_str(), s.port, s.proto.as_str()), ("audio", 30_000, "RTP/AVP"));
        assert_eq!(s.formats, vec![0, 8, 101]);
        assert_eq!(s.address, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(s.rtcp, Some((30_001, None)));
        assert_eq!(s.telephone_event, Some(101));
        assert_eq!(s.direction, Direction::SendRecv);
        assert!(!s.is_hold());
    }

    #[test]
    fn rewriting_changes_addresses_and_ports_and_keeps_every_other_byte() {
        let sdp = Sdp::parse(BARESIP.as_bytes()).unwrap();
        let out = String::from_utf8(sdp.rewrite(&[Some(anchor())])).unwrap();
        let expected = BARESIP
            .replace("o=- 1234 5678 IN IP4 198.51.100.7", "o=- 1234 5678 IN IP4 192.0.2.10")
            .replace("c=IN IP4 198.51.100.7", "c=IN IP4 192.0.2.10")
            .replace("m=audio 30000", "m=audio 10000")
            .replace("a=rtcp:30001", "a=rtcp:10001");
        assert_eq!(out, expected);
        // Without an anchor the body is returned as it came.
        assert_eq!(sdp.rewrite(&[None]), BARESIP.as_bytes());
    }

    #[test]
    fn bare_newlines_odd_lines_and_a_missing_final_newline_are_kept() {
        let body = "v=0\no=x 1 1 IN IP4 10.0.0.1\ns=\u{e9}t\u{e9}\nc=IN IP4 10.0.0.1\nt=0 0\nx-unknown\n\
                    m=audio 4000 RTP/AVP 8\na=weird attribute: yes";
        let sdp = Sdp::parse(body.as_bytes()).unwrap();
        let out = String::from_utf8(sdp.rewrite(&[Some(anchor())])).unwrap();
        assert_eq!(
            out,
            "v=0\no=x 1 1 IN IP4 192.0.2.10\ns=\u{e9}t\u{e9}\nc=IN IP4 192.0.2.10\nt=0 0\nx-unknown\n\
             m=audio 10000 RTP/AVP 8\na=weird attribute: yes"
        );
    }

    #[test]
    fn hold_in_either_form_is_seen_and_the_old_form_kept() {
        let modern = BARESIP.replace("a=sendrecv", "a=sendonly");
        assert!(Sdp::parse(modern.as_bytes()).unwrap().streams()[0].is_hold());
        let inactive = BARESIP.replace("a=sendrecv", "a=inactive");
        assert!(Sdp::parse(inactive.as_bytes()).unwrap().streams()[0].is_hold());
        let old = BARESIP.replace("c=IN IP4 198.51.100.7", "c=IN IP4 0.0.0.0");
        let sdp = Sdp::parse(old.as_bytes()).unwrap();
        assert!(sdp.streams()[0].is_hold());
        let out = String::from_utf8(sdp.rewrite(&[Some(anchor())])).unwrap();
        assert!(out.contains("c=IN IP4 0.0.0.0\r\n"), "{out}");
        // A session-level direction applies to streams without their own.
        let session = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=recvonly\r\n\
                       m=audio 4000 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 0\r\na=sendrecv\r\n";
        let dirs: Vec<Direction> =
            Sdp::parse(session.as_bytes()).unwrap().streams().iter().map(|s| s.direction).collect();
        assert_eq!(dirs, vec![Direction::RecvOnly, Direction::SendRecv]);
    }

    #[test]
    fn media_level_connections_rtcp_addresses_mux_and_ice() {
        let body = "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nt=0 0\r\n\
                    m=audio 5004 RTP/AVP 0 96\r\nc=IN IP6 2001:db8::1\r\na=rtpmap:96 telephone-event/8000\r\n\
                    a=rtcp:5004 IN IP6 2001:db8::1\r\na=rtcp-mux\r\na=ice-ufrag:abcd\r\n\
                    a=candidate:1 1 UDP 2130706431 2001:db8::1 5004 typ host\r\n\
                    m=video 0 RTP/AVP 31\r\n";
        let sdp = Sdp::parse(body.as_bytes()).unwrap();
        let s = &sdp.streams()[0];
        assert_eq!(s.rtcp, Some((5004, Some("2001:db8::1".parse().unwrap()))));
        assert!(s.rtcp_mux);
        assert_eq!(s.telephone_event, Some(96));
        assert_eq!(sdp.streams()[1].port, 0);
        let out = String::from_utf8(sdp.rewrite(&[Some(anchor()), None])).unwrap();
        assert_eq!(
            out,
            "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\n\
             m=audio 10000 RTP/AVP 0 96\r\nc=IN IP4 192.0.2.10\r\na=rtpmap:96 telephone-event/8000\r\n\
             a=rtcp:10000 IN IP4 192.0.2.10\r\na=rtcp-mux\r\nm=video 0 RTP/AVP 31\r\n"
        );
    }

    #[test]
    fn hostile_bodies_are_refused_not_panicked_on() {
        assert_eq!(Sdp::parse(b"").unwrap_err(), SdpError::NotSdp);
        assert_eq!(Sdp::parse(b"hello").unwrap_err(), SdpError::NotSdp);
        assert_eq!(Sdp::parse(b"v=0\r\nm=audio x RTP/AVP 0\r\n").unwrap_err(), SdpError::Malformed("m="));
        assert_eq!(Sdp::parse(b"v=0\r\nc=IN IP4 nowhere\r\n").unwrap_err(), SdpError::Malformed("c="));
        assert_eq!(
            Sdp::parse(b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtcp:\r\n").unwrap_err(),
            SdpError::Malformed("a=rtcp")
        );
        let many = format!("v=0\r\n{}", "m=audio 1 RTP/AVP 0\r\n".repeat(MAX_STREAMS + 1));
        assert_eq!(Sdp::parse(many.as_bytes()).unwrap_err(), SdpError::TooLarge);
        let long = format!("v=0\r\n{}", "a=x\r\n".repeat(MAX_LINES));
        assert_eq!(Sdp::parse(long.as_bytes()).unwrap_err(), SdpError::TooLarge);
        // Bytes that are not UTF-8 on a line the relay does not read are kept.
        let body = b"v=0\r\ns=\xff\xfe\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n".to_vec();
        let sdp = Sdp::parse(&body).unwrap();
        let out = sdp.rewrite(&[Some(anchor())]);
        assert!(out.starts_with(b"v=0\r\ns=\xff\xfe\r\nc=IN IP4 192.0.2.10\r\n"), "{out:?}");
    }
}
