//! One call's signalling, as a carrier gateway and as a phone: an INVITE with an SDP offer, its answer, the ACK
//! and in-dialog requests. Used by the media tests and by the media load generator (`rtp-load`).

use std::net::SocketAddr;
use std::time::Duration;

use switchboard_sip_core::{HeaderName, Message};

use crate::client::SipClient;

/// The caller number every carrier call presents.
pub const CALLER: &str = "+61400000001";

/// A G.711 µ-law audio SDP (offer or answer) naming `ip:port`.
pub fn sdp(ip: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n\
         a=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
}

/// The address and port an SDP body names for its audio (the relay's, once the daemon has rewritten it).
pub fn relay_of(body: &[u8]) -> SocketAddr {
    let text = String::from_utf8_lossy(body);
    let ip = text.lines().find_map(|l| l.strip_prefix("c=IN IP4 ")).expect("c= line").trim();
    let port = text.lines().find_map(|l| l.strip_prefix("m=audio ")).expect("m= line");
    let port: u16 = port.split(' ').next().unwrap().parse().unwrap();
    format!("{ip}:{port}").parse().unwrap()
}

/// A header's value, empty when absent.
pub fn header(m: &Message, name: HeaderName) -> String {
    m.headers.get(&name).unwrap_or_default().to_owned()
}

/// A carrier gateway (its own socket on 127.0.0.2, trusted by address) placing one call.
#[derive(Debug)]
pub struct Carrier {
    pub client: SipClient,
    sip: SocketAddr,
    number: String,
    /// Call-ID and From tag of its call.
    call: String,
}

impl Carrier {
    /// Sends an INVITE for `number` to the daemon at `sip`, its SDP naming `media`.
    pub fn invite(sip: SocketAddr, number: &str, call: &str, media: SocketAddr) -> Carrier {
        let mut client = SipClient::udp_from("127.0.0.2", sip);
        let offer = sdp(&media.ip().to_string(), media.port());
        let invite = format!(
            "INVITE sip:{number}@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {gw};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\n\
             From: <sip:{CALLER}@{gw}>;tag={call}\r\nTo: <sip:{number}@{sip}>\r\nCall-ID: {call}@gw\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:gw@{gw}>\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{offer}",
            gw = client.local(),
            len = offer.len()
        );
        client.send_raw(invite.as_bytes());
        Carrier { client, sip, number: number.to_owned(), call: call.to_owned() }
    }

    /// Waits for the INVITE's final response (provisional responses skipped), whatever it is.
    pub fn final_response(&mut self, wait: Duration) -> Message {
        loop {
            let r = self.client.recv_response(wait).unwrap_or_else(|| panic!("no final answer to {}", self.number));
            if r.status().is_some_and(|s| s >= 200) {
                return r;
            }
        }
    }

    /// Waits for the 200 to the INVITE (provisional responses skipped) and acknowledges it.
    pub fn answered(&mut self, wait: Duration) -> Message {
        let ok = loop {
            let r = self.client.recv_response(wait).unwrap_or_else(|| panic!("no answer to {}", self.number));
            if r.status() == Some(200) {
                break r;
            }
        };
        self.send_in_dialog("ACK", 1, &ok);
        ok
    }

    /// Sends `method` inside the call that `answer` (the 200) confirmed.
    pub fn send_in_dialog(&mut self, method: &str, cseq: u32, answer: &Message) {
        let text = format!(
            "{method} sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {gw};branch=z9hG4bK{call}{method}\r\nMax-Forwards: 70\r\n\
             From: <sip:{CALLER}@{gw}>;tag={call}\r\nTo: {to}\r\nCall-ID: {call}@gw\r\nCSeq: {cseq} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            sip = self.sip,
            gw = self.client.local(),
            call = self.call,
            to = header(answer, HeaderName::To),
        );
        self.client.send_raw(text.as_bytes());
    }
}

/// The phone answers `ring` (an INVITE it received) with 200 and an SDP naming `media`; `tag` is its To tag.
pub fn answer(phone: &mut SipClient, ring: &Message, user: &str, tag: &str, media: SocketAddr) {
    answer_with(phone, ring, user, Some(tag), &sdp(&media.ip().to_string(), media.port()));
}

/// The phone answers `request` (an INVITE or a re-INVITE it received) with 200 and `body` as its SDP. `tag`
/// becomes its To tag on a new call; `None` inside a call, whose To already carries it.
pub fn answer_with(phone: &mut SipClient, request: &Message, user: &str, tag: Option<&str>, body: &str) {
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: {from}\r\nTo: {to}{tag}\r\nCall-ID: {cid}\r\nCSeq: {cseq}\r\n\
         Contact: <{contact}>\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{body}",
        via = header(request, HeaderName::Via),
        from = header(request, HeaderName::From),
        to = header(request, HeaderName::To),
        tag = tag.map(|t| format!(";tag={t}")).unwrap_or_default(),
        cid = header(request, HeaderName::CallId),
        cseq = header(request, HeaderName::CSeq),
        contact = phone.contact(user),
        len = body.len()
    );
    phone.send_raw(ok.as_bytes());
}

/// A G.711 µ-law RTP packet: sequence `seq`, timestamp `seq * 160`, `ssrc`, and `payload` (160 bytes of
/// silence when empty).
pub fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(172);
    p.extend_from_slice(&[0x80, 0x00]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq).wrapping_mul(160)).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    if payload.is_empty() {
        p.extend_from_slice(&[0xFF; 160]);
    } else {
        p.extend_from_slice(payload);
    }
    p
}

/// A call [`place`]d and answered: the carrier with the 200 it got, the INVITE the phone got, and the relay
/// address each side was given (A: the carrier's, B: the phone's).
#[derive(Debug)]
pub struct Placed {
    pub carrier: Carrier,
    pub ok: Message,
    pub ring: Message,
    pub relay_a: SocketAddr,
    pub relay_b: SocketAddr,
}

/// Places a carrier call to `number` (Call-ID `call`) that `phone`, registered as `user`, answers with To tag
/// `call`: the carrier's SDP names `a_media`, the phone's `b_media`. Requests other than the INVITE reaching the
/// phone meanwhile are skipped.
pub fn place(
    sip: SocketAddr,
    number: &str,
    call: &str,
    phone: &mut SipClient,
    user: &str,
    media: (SocketAddr, SocketAddr),
    wait: Duration,
) -> Placed {
    let mut carrier = Carrier::invite(sip, number, call, media.0);
    let ring = loop {
        let m = phone.recv_request(wait).unwrap_or_else(|| panic!("call {call} never reached the phone"));
        if m.method().map(|m| m.as_str()) == Some("INVITE") {
            break m;
        }
    };
    let relay_b = relay_of(&ring.body);
    answer(phone, &ring, user, call, media.1);
    let ok = carrier.answered(wait);
    let relay_a = relay_of(&ok.body);
    Placed { carrier, ok, ring, relay_a, relay_b }
}

/// Hangs a placed call up from the carrier's side: BYE, the phone answers the BYE relayed to it, the carrier
/// hears 200. Tried three times (UDP without retransmission). `true`: the carrier heard its 200.
pub fn hang_up(placed: &mut Placed, phone: &mut SipClient) -> bool {
    for _ in 0..3 {
        placed.carrier.send_in_dialog("BYE", 2, &placed.ok);
        if let Some(bye) = phone.recv_request(Duration::from_millis(500)) {
            phone.send(&switchboard_sip_core::validate::response_to(&bye.headers, 200, "OK", None));
        }
        if placed.carrier.client.recv_response(Duration::from_millis(500)).is_some_and(|r| r.status() == Some(200)) {
            return true;
        }
    }
    false
}
