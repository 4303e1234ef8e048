//! The daemon as a media endpoint (voicemail): choosing a codec from an offer and describing our side, as an
//! answer (RFC 3264 §6) or as our own offer when the caller sent none (late offer).
//!
//! We speak G.711 only (µ-law or A-law, 20 ms) and receive RFC 4733 telephone-events when offered. An answer has
//! one m= line per offered one, in order; every stream but the first usable audio one is refused (port 0).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use crate::g711::Law;
use crate::sdp::{Direction, Sdp, Stream};

/// The telephone-event payload type of our own offers.
pub const OFFER_TELEPHONE_EVENT: u8 = 101;

/// What both sides use for the one audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Media {
    /// Where the peer receives RTP; `None` while it has not said (late offer before the ACK) or on hold with
    /// c=0.0.0.0.
    pub remote: Option<SocketAddr>,
    pub law: Law,
    /// The payload type of RFC 4733 events, if both sides have them.
    pub telephone_event: Option<u8>,
    /// The peer put us on hold (it sends nothing, or wants nothing).
    pub hold: bool,
}

/// Why an offer cannot be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No audio stream offers PCMU or PCMA over RTP/AVP (488 Not Acceptable Here).
    NoCodec,
}

/// The law a stream offers first among those we speak, honouring the offerer's order.
fn law_of(stream: &Stream) -> Option<Law> {
    stream.formats.iter().find_map(|&pt| match pt {
        0 => Some(Law::Ulaw),
        8 => Some(Law::Alaw),
        96..=127 => stream.rtpmap.iter().find(|(p, _)| *p == pt).and_then(|(_, name)| Law::from_name(name)),
        _ => None,
    })
}

fn usable(stream: &Stream) -> bool {
    stream.kind == "audio" && stream.port != 0 && stream.proto == "RTP/AVP"
}

/// Reads an offer (or, with `answer = true`, the answer to our offer): the first usable audio stream and the
/// codec for it.
pub fn negotiate(sdp: &Sdp<'_>) -> Result<(usize, Media), Refusal> {
    let (index, stream, law) = sdp
        .streams()
        .iter()
        .enumerate()
        .filter(|(_, s)| usable(s))
        .find_map(|(i, s)| law_of(s).map(|law| (i, s, law)))
        .ok_or(Refusal::NoCodec)?;
    let remote = stream.address.filter(|a| !a.is_unspecified()).map(|a| SocketAddr::new(a, stream.port));
    let media = Media { remote, law, telephone_event: stream.telephone_event, hold: stream.is_hold() };
    Ok((index, media))
}

fn origin(out: &mut String, session: u64, version: u64, ip: IpAddr) {
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let _ = write!(out, "v=0\r\no=switchboard {session} {version} IN {family} {ip}\r\ns=switchboard\r\n");
    let _ = write!(out, "c=IN {family} {ip}\r\nt=0 0\r\n");
}

fn audio(out: &mut String, port: u16, law: Law, te: Option<u8>) {
    let pt = law.payload_type();
    let name = if law == Law::Ulaw { "PCMU" } else { "PCMA" };
    match te {
        Some(te) => {
            let _ = write!(out, "m=audio {port} RTP/AVP {pt} {te}\r\na=rtpmap:{pt} {name}/8000\r\n");
            let _ = write!(out, "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n");
        }
        None => {
            let _ = write!(out, "m=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/8000\r\n");
        }
    }
    out.push_str("a=ptime:20\r\n");
}

/// Our answer to `offer`, receiving at `local`. `session`/`version`: the o= line's (RFC 3264 §8: the version
/// grows with each new description of the same session).
pub fn answer(offer: &Sdp<'_>, local: SocketAddr, session: u64, version: u64) -> Result<(String, Media), Refusal> {
    let (chosen, media) = negotiate(offer)?;
    let mut out = String::with_capacity(320);
    origin(&mut out, session, version, local.ip());
    for (i, s) in offer.streams().iter().enumerate() {
        if i == chosen {
            audio(&mut out, local.port(), media.law, media.telephone_event);
            // RFC 3264 §6.1: the answer's direction mirrors the offer's.
            out.push_str(match s.direction {
                Direction::SendRecv => "a=sendrecv\r\n",
                Direction::SendOnly => "a=recvonly\r\n",
                Direction::RecvOnly => "a=sendonly\r\n",
                Direction::Inactive => "a=inactive\r\n",
            });
        } else {
            let fmt = s.formats.first().map_or_else(|| "0".to_owned(), u8::to_string);
            let _ = write!(out, "m={} 0 {} {fmt}\r\n", s.kind, s.proto);
        }
    }
    Ok((out, media))
}

/// Our offer, when the INVITE had none: PCMU, PCMA and telephone-events, receiving at `local`.
pub fn offer(local: SocketAddr, session: u64, version: u64) -> String {
    let te = OFFER_TELEPHONE_EVENT;
    let mut out = String::with_capacity(320);
    origin(&mut out, session, version, local.ip());
    let _ =
        write!(out, "m=audio {} RTP/AVP 0 8 {te}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n", local.port());
    let _ = write!(out, "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\na=ptime:20\r\na=sendrecv\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    #[test]
    fn answers_the_offerers_first_g711_with_events_and_refuses_the_rest() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
                     m=audio 5004 RTP/AVP 9 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\na=sendrecv\r\n\
                     m=video 5006 RTP/AVP 97\r\n";
        let sdp = Sdp::parse(offer.as_bytes()).unwrap();
        let (text, media) = answer(&sdp, local(), 7, 2).unwrap();
        assert_eq!(
            media,
            Media {
                remote: Some("10.0.0.5:5004".parse().unwrap()),
                law: Law::Alaw,
                telephone_event: Some(96),
                hold: false
            }
        );
        assert_eq!(
            text,
            "v=0\r\no=switchboard 7 2 IN IP4 127.0.0.1\r\ns=switchboard\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 8 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\n\
             a=fmtp:96 0-16\r\na=ptime:20\r\na=sendrecv\r\nm=video 0 RTP/AVP 97\r\n"
        );
        // What we answered reads back as the same media.
        let back = Sdp::parse(text.as_bytes()).unwrap();
        let (i, m) = negotiate(&back).unwrap();
        assert_eq!((i, m.law, m.telephone_event, m.remote), (0, Law::Alaw, Some(96), Some(local())));
    }

    #[test]
    fn dynamic_g711_hold_and_refusals() {
        let hold = "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 5004 RTP/AVP 110\r\na=rtpmap:110 pcmu/8000\r\na=sendonly\r\n";
        let sdp = Sdp::parse(hold.as_bytes()).unwrap();
        let (text, media) = answer(&sdp, local(), 1, 1).unwrap();
        assert_eq!((media.law, media.remote, media.hold), (Law::Ulaw, None, true));
        assert!(text.contains("a=recvonly\r\n"), "{text}");
        for refused in [
            "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5004 RTP/AVP 9 18\r\n",
            "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5004 RTP/SAVP 0\r\n",
            "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n",
            "v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 5004 RTP/AVP 0\r\n",
        ] {
            let sdp = Sdp::parse(refused.as_bytes()).unwrap();
            assert_eq!(answer(&sdp, local(), 1, 1).map(|_| ()), Err(Refusal::NoCodec), "{refused}");
        }
    }

    #[test]
    fn our_offer_reads_back() {
        let text = offer("[::1]:40002".parse().unwrap(), 3, 1);
        assert!(text.contains("c=IN IP6 ::1\r\n"), "{text}");
        let sdp = Sdp::parse(text.as_bytes()).unwrap();
        let (_, m) = negotiate(&sdp).unwrap();
        assert_eq!((m.law, m.telephone_event), (Law::Ulaw, Some(OFFER_TELEPHONE_EVENT)));
    }
}
