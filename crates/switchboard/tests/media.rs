//! Anchored media end to end: the real binary, our own SIP client as the carrier (127.0.0.2) and as the phone
//! (127.0.0.1), and real RTP through the relay. Every address, SDP ones included, is on 127.0.0.0/8.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use switchboard_sip_core::{HeaderName, Message};
use switchboard_testkit::call::{Carrier, answer_with, hang_up, header, place, relay_of, rtp, sdp};
use switchboard_testkit::client::SipClient;
use switchboard_testkit::daemon::{Daemon, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const NUMBER: &str = "+61299990001";
const WAIT: Duration = Duration::from_secs(5);

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

/// A daemon with device 2001 owning NUMBER, a carrier gateway at 127.0.0.2, and the phone registered.
/// `extra_config` follows the `[calls]` table: its first lines are `[calls]` settings.
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

/// An answered call from the carrier (its SDP at `carrier_sdp`) to the phone (its SDP at `phone_sdp`). Returns
/// the carrier's client, the relay ports each side was told (A: the carrier's, B: the phone's), and the 200 the
/// carrier got (its To tag identifies the call).
fn answered_call(
    d: &Daemon,
    phone: &mut SipClient,
    carrier_sdp: SocketAddr,
    phone_sdp: SocketAddr,
) -> (SipClient, SocketAddr, SocketAddr, Message) {
    let call = place(d.sip, NUMBER, "media1", phone, "2001", (carrier_sdp, phone_sdp), WAIT);
    let (relay_a, relay_b) = (call.relay_a, call.relay_b);
    // Each side is offered only the relay.
    assert_eq!(relay_b.ip().to_string(), "127.0.0.1");
    assert!(!String::from_utf8_lossy(&call.ring.body).contains("127.0.0.2"), "the carrier's address leaked");
    assert_ne!(relay_a, phone_sdp, "the phone's address leaked");
    assert_eq!(relay_a.ip().to_string(), "127.0.0.1");
    assert_ne!(relay_a, relay_b);
    let _ = phone.recv_request(Duration::from_millis(300)); // its ACK
    (call.carrier.client, relay_a, relay_b, call.ok)
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
        phone_rtp.send_to(&rtp(seq, 1, &[]), relay_b).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let heard = drain(&carrier_rtp);
    assert_eq!(heard.iter().map(|h| h.0).collect::<Vec<u16>>(), (3..20).collect::<Vec<u16>>(), "{heard:?}");
    assert!(heard.iter().all(|h| h.2 == relay_a), "{heard:?}");
    // The carrier talks (from its SDP address: taken at once): the phone hears it at its real address.
    for seq in 100..110u16 {
        carrier_rtp.send_to(&rtp(seq, 2, &[]), relay_a).unwrap();
    }
    let back = drain(&phone_rtp);
    assert_eq!(back.iter().map(|h| h.0).collect::<Vec<u16>>(), (100..110).collect::<Vec<u16>>(), "{back:?}");
    // A stranger sprays both relay ports: nobody hears it, and the phone still hears the carrier.
    for seq in 0..100u16 {
        stranger.send_to(&rtp(seq, 66, &[]), relay_a).unwrap();
        stranger.send_to(&rtp(seq, 66, &[]), relay_b).unwrap();
    }
    carrier_rtp.send_to(&rtp(110, 2, &[]), relay_a).unwrap();
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
        answer_with(phone, &relayed, "2001", None, &answer);
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
    let mut carrier = Carrier::invite(d.sip, NUMBER, "sipp1", carrier_rtp.local_addr().unwrap());
    let answered = carrier.answered(WAIT);
    let relay_a = relay_of(&answered.body);
    assert_ne!(relay_a.port().to_string(), media_port, "SIPp's media address leaked to the carrier");
    for seq in 0..20u16 {
        carrier_rtp.send_to(&rtp(seq, 7, &[]), relay_a).unwrap();
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

/// Ports are released when calls end, and never leaked: 1,000 anchored calls, 20 up at a time, through a relay
/// range of 100 ports (25 calls' worth, so every port pair is used some 40 times). Each call carries a packet
/// each way through the relay before it is hung up; the daemon's open sockets are counted before and after.
#[test]
fn a_thousand_calls_leave_no_socket_open() {
    let (min, max) = switchboard_testkit::daemon::relay_port_block();
    let (d, mut phone) = world(&format!(
        "max_per_device = 100\nmax_inbound_per_service = 100\n[media]\nport_min = {min}\nport_max = {max}\n"
    ));
    let sockets = || {
        std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("socket:"))
            .count()
    };
    let before = sockets();
    let carrier_rtp = UdpSocket::bind("127.0.0.2:0").unwrap();
    let phone_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let media = (carrier_rtp.local_addr().unwrap(), phone_rtp.local_addr().unwrap());
    let mut buf = [0u8; 512];
    for round in 0..50u16 {
        let mut up: Vec<_> = (0..20u16)
            .map(|i| place(d.sip, NUMBER, &format!("many{round}x{i}"), &mut phone, "2001", media, WAIT))
            .collect();
        // The relay binds a call's sockets on its own thread, moments after the SDP naming them went out.
        let bound = switchboard_testkit::wait_until(WAIT, || sockets() >= before + 20 * 4);
        assert!(bound, "each call up holds its four relay sockets: {} open, {before} before", sockets());
        for (i, call) in up.iter().enumerate() {
            let ssrc = u32::from(round) * 100 + u32::try_from(i).unwrap();
            for (from, to, relay) in
                [(&carrier_rtp, &phone_rtp, call.relay_a), (&phone_rtp, &carrier_rtp, call.relay_b)]
            {
                from.send_to(&rtp(round, ssrc, &[]), relay).unwrap();
                to.set_read_timeout(Some(WAIT)).unwrap();
                let n = to.recv(&mut buf).expect("the packet crosses the relay");
                assert_eq!(&buf[8..12], &ssrc.to_be_bytes(), "round {round} call {i}: {n} bytes of another call");
            }
        }
        for call in &mut up {
            assert!(hang_up(call, &mut phone), "round {round}: a call did not end cleanly");
        }
    }
    let released = switchboard_testkit::wait_until(Duration::from_secs(5), || sockets() == before);
    assert!(released, "{} sockets open before the calls, {} after", before, sockets());
    // Records are written behind the calls: the last round's arrive moments after its BYEs.
    let cdrs =
        || serde_json::from_str::<Vec<serde_json::Value>>(&d.cli_ok(&["cdr", "--json", "--limit", "2000"])).unwrap();
    let all = switchboard_testkit::wait_until(WAIT, || cdrs().len() == 1000);
    assert!(all, "{} call records of 1000", cdrs().len());
}
