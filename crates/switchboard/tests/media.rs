//! Anchored media end to end: the real binary, our own SIP client as the carrier (127.0.0.2) and as the phone
//! (127.0.0.1), and real RTP through the relay. Every address, SDP ones included, is on 127.0.0.0/8.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use switchboard_sip_core::{HeaderName, Message};
use switchboard_testkit::client::SipClient;
use switchboard_testkit::daemon::{Daemon, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const NUMBER: &str = "+61299990001";
const WAIT: Duration = Duration::from_secs(5);

fn sdp(ip: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n\
         a=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
}

/// The relay address and port an SDP body names.
fn relay_of(body: &[u8]) -> SocketAddr {
    let text = String::from_utf8_lossy(body);
    let ip = text.lines().find_map(|l| l.strip_prefix("c=IN IP4 ")).expect("c= line").trim();
    let port = text.lines().find_map(|l| l.strip_prefix("m=audio ")).expect("m= line");
    let port: u16 = port.split(' ').next().unwrap().parse().unwrap();
    format!("{ip}:{port}").parse().unwrap()
}

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xFF; 160]);
    p
}

/// Sequence numbers of the RTP packets arriving on `s` until it is quiet, with where they came from.
fn drain(s: &UdpSocket) -> Vec<(u16, u32, SocketAddr)> {
    s.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
    let mut buf = [0u8; 2048];
    let mut got = Vec::new();
    while let Ok((n, from)) = s.recv_from(&mut buf) {
        if n >= 12 {
            let seq = u16::from_be_bytes([buf[2], buf[3]]);
            let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
            got.push((seq, ssrc, from));
        }
    }
    got
}

fn header(m: &Message, name: HeaderName) -> String {
    m.headers.get(&name).unwrap_or_default().to_owned()
}

/// A daemon with device 2001 owning NUMBER, a carrier gateway at 127.0.0.2, and the phone registered.
fn world(extra_config: &str) -> (Daemon, SipClient) {
    let gw_port = free_port();
    let mut d = Daemon::new(
        BIN,
        &format!("[auth]\nalgorithms = [\"MD5\", \"SHA-256\"]\n[calls]\ngateway_check_secs = 3600\n{extra_config}"),
    );
    d.provision_direct(&[("2001", "pass-2001", &[])]);
    d.cli_ok(&["number", "add", "--service", "acme", "--number", NUMBER, "--device", "2001", "--divert-when", "never"]);
    d.cli_ok(&["gateway", "add", "--name", "gw1", "--address", &format!("127.0.0.2:{gw_port}")]);
    d.launch();
    let mut phone = SipClient::udp(d.sip);
    let reg = phone.register("2001", &[&format!("Contact: <{}>", phone.contact("2001"))]);
    let ok = phone.request_with_auth(reg, "2001", "pass-2001", Some("MD5"));
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    (d, phone)
}

/// The carrier gateway (127.0.0.2, trusted by address) placing one call to NUMBER.
struct Carrier {
    client: SipClient,
    sip: SocketAddr,
    /// Call-ID and From tag of its call.
    call: &'static str,
}

impl Carrier {
    /// Sends the INVITE, its SDP naming `media`.
    fn invite(d: &Daemon, call: &'static str, media: SocketAddr) -> Carrier {
        let mut client = SipClient::udp_from("127.0.0.2", d.sip);
        let offer = sdp(&media.ip().to_string(), media.port());
        let invite = format!(
            "INVITE sip:{NUMBER}@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {gw};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\n\
             From: <sip:+61400000001@{gw}>;tag={call}\r\nTo: <sip:{NUMBER}@{sip}>\r\nCall-ID: {call}@gw\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:gw@{gw}>\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{offer}",
            sip = d.sip,
            gw = client.local(),
            len = offer.len()
        );
        client.send_raw(invite.as_bytes());
        Carrier { client, sip: d.sip, call }
    }

    /// Waits for the 200 to the INVITE (provisional responses skipped) and acknowledges it.
    fn answered(&mut self) -> Message {
        let ok = loop {
            let r = self.client.recv_response(WAIT).expect("answer to the carrier");
            if r.status() == Some(200) {
                break r;
            }
        };
        self.send_in_dialog("ACK", 1, &ok);
        ok
    }

    /// Sends `method` inside the call that `answer` (the 200) confirmed.
    fn send_in_dialog(&mut self, method: &str, cseq: u32, answer: &Message) {
        let text = format!(
            "{method} sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {gw};branch=z9hG4bK{call}{method}\r\nMax-Forwards: 70\r\n\
             From: <sip:+61400000001@{gw}>;tag={call}\r\nTo: {to}\r\nCall-ID: {call}@gw\r\nCSeq: {cseq} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            sip = self.sip,
            gw = self.client.local(),
            call = self.call,
            to = header(answer, HeaderName::To),
        );
        self.client.send_raw(text.as_bytes());
    }
}

/// An answered call from the carrier (its SDP at `carrier_sdp`) to the phone (its SDP at `phone_sdp`). Returns
/// the carrier's client, the relay ports each side was told (A: the carrier's, B: the phone's), and the 200 the
/// carrier got (its To tag identifies the call).
fn answered_call(
    d: &Daemon,
    phone: &mut SipClient,
    carrier_sdp: SocketAddr,
    phone_sdp: SocketAddr,
) -> (SipClient, SocketAddr, SocketAddr, Message) {
    let mut carrier = Carrier::invite(d, "media1", carrier_sdp);
    // The phone is offered the relay, not the carrier.
    let ring = phone.recv_request(WAIT).expect("INVITE to the phone");
    let relay_b = relay_of(&ring.body);
    assert_eq!(relay_b.ip().to_string(), "127.0.0.1");
    assert!(!String::from_utf8_lossy(&ring.body).contains("127.0.0.2"), "the carrier's address leaked");
    let answer = sdp(&phone_sdp.ip().to_string(), phone_sdp.port());
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: {from}\r\nTo: {to};tag=phone1\r\nCall-ID: {cid}\r\nCSeq: 1 INVITE\r\n\
         Contact: <{contact}>\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{answer}",
        via = header(&ring, HeaderName::Via),
        from = header(&ring, HeaderName::From),
        to = header(&ring, HeaderName::To),
        cid = header(&ring, HeaderName::CallId),
        contact = phone.contact("2001"),
        len = answer.len()
    );
    phone.send_raw(ok.as_bytes());
    let answered = carrier.answered();
    let relay_a = relay_of(&answered.body);
    assert_ne!(relay_a, phone_sdp, "the phone's address leaked");
    assert_eq!(relay_a.ip().to_string(), "127.0.0.1");
    assert_ne!(relay_a, relay_b);
    let _ = phone.recv_request(Duration::from_millis(300)); // its ACK
    (carrier.client, relay_a, relay_b, answered)
}

/// The NAT case, through the whole daemon: the phone's SDP names 127.0.0.9 (nobody listens there) while
/// it sends from 127.0.0.1. Each side is offered only the relay; after probation the carrier hears the phone,
/// the phone hears the carrier at its real address, and a stranger spraying the relay takes nothing.
#[test]
fn a_phone_behind_nat_hears_and_is_heard_through_the_relay() {
    let (d, mut phone) = world("");
    let carrier_rtp = UdpSocket::bind("127.0.0.2:0").unwrap();
    let phone_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let stranger = UdpSocket::bind("127.0.0.66:0").unwrap();
    // The phone's SDP names 127.0.0.9, where nobody listens.
    let behind_nat: SocketAddr = SocketAddr::new([127, 0, 0, 9].into(), phone_rtp.local_addr().unwrap().port());
    let (_carrier, relay_a, relay_b, _) = answered_call(&d, &mut phone, carrier_rtp.local_addr().unwrap(), behind_nat);

    // The phone talks: after probation (3 packets) the carrier hears it, from the relay's A side.
    for seq in 0..20u16 {
        phone_rtp.send_to(&rtp(seq, 1), relay_b).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let heard = drain(&carrier_rtp);
    assert_eq!(heard.iter().map(|h| h.0).collect::<Vec<u16>>(), (3..20).collect::<Vec<u16>>(), "{heard:?}");
    assert!(heard.iter().all(|h| h.2 == relay_a), "{heard:?}");
    // The carrier talks (from its SDP address: taken at once): the phone hears it at its real address.
    for seq in 100..110u16 {
        carrier_rtp.send_to(&rtp(seq, 2), relay_a).unwrap();
    }
    let back = drain(&phone_rtp);
    assert_eq!(back.iter().map(|h| h.0).collect::<Vec<u16>>(), (100..110).collect::<Vec<u16>>(), "{back:?}");
    // A stranger sprays both relay ports: nobody hears it, and the phone still hears the carrier.
    for seq in 0..100u16 {
        stranger.send_to(&rtp(seq, 66), relay_a).unwrap();
        stranger.send_to(&rtp(seq, 66), relay_b).unwrap();
    }
    carrier_rtp.send_to(&rtp(110, 2), relay_a).unwrap();
    let after = drain(&phone_rtp);
    assert_eq!(after.iter().map(|h| (h.0, h.1)).collect::<Vec<_>>(), vec![(110, 2)]);
    assert!(drain(&carrier_rtp).is_empty(), "the stranger was forwarded to the carrier");
}

/// The media timeout, once for real with a short value: an answered call over which no RTP flows is hung up on
/// both sides after `media.timeout_secs`, and its record says why.
#[test]
fn a_call_without_media_is_hung_up_after_the_media_timeout() {
    let (min, max) = switchboard_testkit::daemon::relay_port_block();
    let (d, mut phone) = world(&format!("[media]\ntimeout_secs = 2\nport_min = {min}\nport_max = {max}\n"));
    let silent_carrier = UdpSocket::bind("127.0.0.2:0").unwrap();
    let silent_phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = std::time::Instant::now();
    let (mut carrier, _, _, _) =
        answered_call(&d, &mut phone, silent_carrier.local_addr().unwrap(), silent_phone.local_addr().unwrap());
    let bye_to_phone = phone.recv_request(Duration::from_secs(6)).expect("BYE to the phone");
    assert_eq!(bye_to_phone.method().map(|m| m.as_str()), Some("BYE"));
    let bye_to_carrier = carrier.recv_request(Duration::from_secs(6)).expect("BYE to the carrier");
    assert_eq!(bye_to_carrier.method().map(|m| m.as_str()), Some("BYE"));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(5), "{waited:?}");
    for (client, bye) in [(&mut phone, &bye_to_phone), (&mut carrier, &bye_to_carrier)] {
        client.send(&switchboard_sip_core::validate::response_to(&bye.headers, 200, "OK", None));
    }
    assert!(
        switchboard_testkit::wait_until(Duration::from_secs(5), || {
            let out = d.cli_ok(&["cdr", "--json"]);
            out.contains("\"end_reason\": \"media_timeout\"") || out.contains("\"end_reason\":\"media_timeout\"")
        }),
        "{}",
        d.cli_ok(&["cdr", "--json"])
    );
}

/// The carrier puts the call on hold, then takes it off: a re-INVITE (`a=sendonly`, then `a=sendrecv`) relayed to
/// the phone and answered. On hold, a silent call is not hung up however long it stays quiet; off hold, the media
/// timeout (2 s here, for real) counts afresh from the resume and then ends it.
#[test]
fn a_call_on_hold_stays_up_in_silence_until_it_is_taken_off_hold() {
    let (min, max) = switchboard_testkit::daemon::relay_port_block();
    let (d, mut phone) = world(&format!("[media]\ntimeout_secs = 2\nport_min = {min}\nport_max = {max}\n"));
    let carrier_rtp = UdpSocket::bind("127.0.0.2:0").unwrap().local_addr().unwrap();
    let phone_rtp = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (mut carrier, _, _, ok) = answered_call(&d, &mut phone, carrier_rtp, phone_rtp);
    let reinvite = |carrier: &mut SipClient, phone: &mut SipClient, cseq: u32, direction: &str| {
        let offer = sdp("127.0.0.2", carrier_rtp.port()).replace("a=sendrecv", direction);
        let text = format!(
            "INVITE sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {gw};branch=z9hG4bKre{cseq}\r\nMax-Forwards: 70\r\n\
             From: {from}\r\nTo: {to}\r\nCall-ID: media1@gw\r\nCSeq: {cseq} INVITE\r\nContact: <sip:gw@{gw}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{offer}",
            sip = d.sip,
            gw = carrier.local(),
            from = header(&ok, HeaderName::From),
            to = header(&ok, HeaderName::To),
            len = offer.len()
        );
        carrier.send_raw(text.as_bytes());
        let relayed = phone.recv_request(WAIT).expect("the re-INVITE reaches the phone");
        let body = String::from_utf8_lossy(&relayed.body).into_owned();
        assert!(body.contains(direction), "the phone is told the direction: {body}");
        let answer = sdp("127.0.0.1", phone_rtp.port())
            .replace("a=sendrecv", if direction == "a=sendonly" { "a=recvonly" } else { "a=sendrecv" });
        let reply = format!(
            "SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: {cs}\r\n\
             Contact: <{contact}>\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{answer}",
            via = header(&relayed, HeaderName::Via),
            from = header(&relayed, HeaderName::From),
            to = header(&relayed, HeaderName::To),
            cid = header(&relayed, HeaderName::CallId),
            cs = header(&relayed, HeaderName::CSeq),
            contact = phone.contact("2001"),
            len = answer.len()
        );
        phone.send_raw(reply.as_bytes());
        let answered = loop {
            let r = carrier.recv_response(WAIT).expect("the re-INVITE is answered");
            if r.status() == Some(200) {
                break r;
            }
        };
        let ack = format!(
            "ACK sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {gw};branch=z9hG4bKack{cseq}\r\nMax-Forwards: 70\r\n\
             From: {from}\r\nTo: {to}\r\nCall-ID: media1@gw\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
            sip = d.sip,
            gw = carrier.local(),
            from = header(&answered, HeaderName::From),
            to = header(&answered, HeaderName::To),
        );
        carrier.send_raw(ack.as_bytes());
    };
    reinvite(&mut carrier, &mut phone, 2, "a=sendonly");
    // Twice the media timeout in silence, on hold: nobody is hung up.
    let held = std::time::Instant::now();
    while held.elapsed() < Duration::from_secs(4) {
        if let Some(m) = phone.recv_request(Duration::from_millis(200)) {
            assert_ne!(m.method().map(|x| x.as_str()), Some("BYE"), "the phone was hung up while on hold");
        }
    }
    assert!(carrier.recv_request(Duration::from_millis(100)).is_none(), "the carrier was hung up while on hold");
    reinvite(&mut carrier, &mut phone, 3, "a=sendrecv");
    let resumed = std::time::Instant::now();
    let bye = carrier.recv_request(Duration::from_secs(6)).expect("a BYE once off hold and silent");
    assert_eq!(bye.method().map(|m| m.as_str()), Some("BYE"));
    let after = resumed.elapsed();
    assert!(after >= Duration::from_millis(1_500) && after < Duration::from_secs(5), "a fresh timeout: {after:?}");
}

/// SIPp as the phone, echoing the RTP it receives (`-rtp_echo`): SIPp reads the SDP the daemon rewrote, and the
/// carrier's audio goes through the relay to SIPp and back.
#[test]
fn audio_goes_through_the_relay_to_sipp_and_back() {
    if !switchboard_testkit::require_program("sipp", "sip-tester") {
        return;
    }
    let (d, phone) = world("");
    let phone_port = phone.local().port();
    drop(phone);
    let workdir = tempfile::tempdir().unwrap();
    let media_port = free_port().to_string();
    let port = phone_port.to_string();
    let args = ["-p", &port, "-aa", "-m", "1", "-d", "0", "-rtp_echo", "-mp", &media_port];
    let sipp = switchboard_testkit::sipp::spawn(workdir.path(), "uas_answer.xml", "127.0.0.1", &args).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let carrier_rtp = UdpSocket::bind("127.0.0.2:0").unwrap();
    let mut carrier = Carrier::invite(&d, "sipp1", carrier_rtp.local_addr().unwrap());
    let answered = carrier.answered();
    let relay_a = relay_of(&answered.body);
    assert_ne!(relay_a.port().to_string(), media_port, "SIPp's media address leaked to the carrier");
    for seq in 0..20u16 {
        carrier_rtp.send_to(&rtp(seq, 7), relay_a).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    let echoed = drain(&carrier_rtp);
    assert!(echoed.len() >= 15, "the carrier heard {} of 20 packets back: {echoed:?}", echoed.len());
    assert!(echoed.iter().all(|e| e.2 == relay_a && e.1 == 7), "{echoed:?}");
    carrier.send_in_dialog("BYE", 2, &answered);
    let bye_ok = carrier.client.recv_response(WAIT).expect("200 to BYE");
    assert_eq!(bye_ok.status(), Some(200));
    let run = sipp.wait(Duration::from_secs(10));
    assert!(run.success, "SIPp failed:\n{}\n{}\n{}", run.stdout, run.stderr, run.errors);
}
