//! Malformed input of every kind against the real daemon: it must answer what can be answered (with the status
//! RFC 3261 / RFC 4475 / RFC 5118 name), drop what cannot, and keep serving — never crash or wedge.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use switchboard_sip_core::header::top_via;
use switchboard_sip_core::{HeaderName, Limits, Message, StartLine, parse_datagram};
use switchboard_testkit::client::SipClient;
use switchboard_testkit::daemon::Daemon;
use switchboard_testkit::{token, torture_dir};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
/// How long to wait for an answer that must come.
const ANSWER: Duration = Duration::from_secs(2);
/// How long to listen for an answer that must not come.
const SILENCE: Duration = Duration::from_millis(400);
/// How long the daemon may take to close a connection after a framing error (it first lets responses to
/// earlier requests on that connection drain, for up to 2 s).
const CLOSE: Duration = Duration::from_secs(5);

fn daemon() -> Daemon {
    Daemon::start(BIN, "[database]\npoll_ms = 200\n")
}

fn reason(m: &Message) -> &str {
    match &m.start {
        StartLine::Response(s) => &s.reason,
        StartLine::Request(_) => "",
    }
}

fn describe(m: &Message) -> String {
    String::from_utf8_lossy(&m.to_bytes()).into_owned()
}

/// A request from `local` (Via with rport) with extra header lines; Content-Length 0 unless one is given.
fn request(method: &str, server: SocketAddr, local: SocketAddr, extra: &[String]) -> String {
    let mut text = format!(
        "{method} sip:{server} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{b};rport\r\nMax-Forwards: 70\r\n\
         From: <sip:robust@test>;tag={t}\r\nTo: <sip:{server}>\r\nCall-ID: {b}@test\r\nCSeq: 1 {method}\r\n",
        b = token(),
        t = token(),
    );
    for e in extra {
        text.push_str(e);
        text.push_str("\r\n");
    }
    if !extra.iter().any(|e| e.starts_with("Content-Length")) {
        text.push_str("Content-Length: 0\r\n");
    }
    text.push_str("\r\n");
    text
}

/// Sends what `build` makes (given the client's own address, for its Via) from a fresh UDP client and returns
/// the first final response (1xx skipped).
fn udp_exchange(d: &Daemon, build: impl FnOnce(SocketAddr) -> Vec<u8>) -> Option<Message> {
    let mut c = SipClient::udp(d.sip);
    c.send_raw(&build(c.local()));
    final_response(&mut c, ANSWER)
}

/// Sends `bytes` from a fresh UDP client and returns whatever response comes back within [`SILENCE`].
fn udp_unanswered(d: &Daemon, bytes: &[u8]) -> Option<Message> {
    let mut c = SipClient::udp(d.sip);
    c.send_raw(bytes);
    c.recv_response(SILENCE)
}

fn final_response(c: &mut SipClient, timeout: Duration) -> Option<Message> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let m = c.recv_response(left)?;
        if m.status().is_some_and(|s| s >= 200) {
            return Some(m);
        }
    }
}

/// The daemon is still running and answers a fresh OPTIONS with 200.
fn assert_serving(d: &mut Daemon, after: &str) {
    assert!(d.alive(), "daemon died after {after}; log:\n{}", d.log());
    let mut c = SipClient::udp(d.sip);
    let text = request("OPTIONS", d.sip, c.local(), &[]);
    c.send_raw(text.as_bytes());
    let resp = final_response(&mut c, ANSWER);
    assert_eq!(
        resp.as_ref().and_then(Message::status),
        Some(200),
        "no 200 to OPTIONS after {after}; log:\n{}",
        d.log()
    );
}

// --- RFC 4475 / RFC 5118 torture corpus ---

/// What the daemon must do with a torture message: answer with a final status, or send nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Status(u16),
    Silent,
}
use Want::{Silent, Status};

/// The daemon's verdict per message over UDP. The parse verdicts follow the table in
/// `crates/sip-core/tests/torture.rs`; for well-formed requests the daemon then answers by method (RFC 3261
/// §8.2.1 comes before §8.2.2/§8.2.3): REGISTER without credentials 401, an INVITE from a source that is neither
/// a carrier gateway nor a trusted trunk 407 (authentication comes before content checks, so invut's 415 and
/// sdp01's 406 are never reached unauthenticated), a request inside a dialog that does not exist 481, OPTIONS 200,
/// other known methods 405, unknown methods 501. Responses are never answered.
#[rustfmt::skip]
const TORTURE: &[(&str, Want)] = &[
    // RFC 4475 §3.1.1: valid.
    ("wsinv", Status(481)), ("intmeth", Status(501)), ("esc01", Status(407)), ("escnull", Status(401)),
    ("esc02", Status(501)), ("lwsdisp", Status(200)), ("longreq", Status(407)), ("dblreq", Status(401)),
    ("semiuri", Status(200)), ("transports", Status(200)), ("mpart01", Status(405)), ("unreason", Silent),
    ("noreason", Silent),
    // §3.1.2: invalid. (baddate is valid for an element that does not use Date.)
    ("badinv01", Status(400)), ("clerr", Status(400)), ("ncl", Status(400)), ("scalar02", Status(400)),
    ("scalarlg", Silent), ("quotbal", Status(400)), ("ltgtruri", Status(400)), ("lwsruri", Status(400)),
    ("lwsstart", Status(400)), ("trws", Status(400)), ("escruri", Status(400)), ("baddate", Status(407)),
    ("regbadct", Status(400)), ("badaspec", Status(400)), ("baddn", Status(400)), ("badvers", Status(505)),
    ("mismatch01", Status(400)), ("mismatch02", Status(400)), ("bigcode", Silent),
    // §3.2, §3.3. invut (415) and sdp01 (406) are INVITEs from an unknown source: challenged first.
    ("badbranch", Status(400)), ("insuf", Status(400)), ("unkscm", Status(416)), ("novelsc", Status(416)),
    ("bext01", Status(420)), ("invut", Status(407)), ("multi01", Status(400)), ("mcl01", Status(400)),
    ("bcast", Silent), ("zeromf", Status(200)), ("cparam01", Status(401)), ("cparam02", Status(401)),
    ("regescrt", Status(401)), ("sdp01", Status(407)), ("inv2543", Status(407)),
    // §3.3.4: "a registrar would reject this request with a 400"; ours authenticates first (RFC 3261 §10.3 step 3
    // comes before the AoR check of step 5), so an unauthenticated sender is challenged.
    ("unksm2", Status(401)),
    // §3.3.7: a registrar that authenticates "will reject this request with a 401, issuing a new challenge".
    ("regaut01", Status(401)),
    // RFC 5118 §4.
    ("ipv6-good", Status(401)), ("ipv6-bad", Status(400)), ("port-ambiguous", Status(401)),
    ("port-unambiguous", Status(401)), ("via-received-param-with-delim", Status(481)),
    ("via-received-param-no-delim", Status(200)), ("ipv6-in-sdp", Status(407)), ("mult-ip-in-header", Status(481)),
    ("mult-ip-in-sdp", Status(407)), ("ipv4-mapped-ipv6", Status(407)), ("ipv6-bug-abnf-3-colons", Status(200)),
    ("ipv6-correct-abnf-2-colons", Status(200)),
];

/// Over a stream the framing differs (RFC 3261 §18.3: Content-Length delimits the body): a Content-Length beyond
/// the bytes sent leaves the message incomplete, so nothing can be answered until more arrives.
/// `baddn` ends without the empty line closing its header block, so on a stream it is incomplete too.
fn tcp_want(tag: &str, udp: Want) -> Want {
    match tag {
        "clerr" | "baddn" => Silent,
        _ => udp,
    }
}

fn torture_message(tag: &str) -> Vec<u8> {
    let path = torture_dir().join(format!("{tag}.dat"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Where the daemon sends a UDP response to a request it could parse (RFC 3261 §18.2.2): the source IP (stamped
/// as `received`) and the Via's sent-by port, or 5060. The sender therefore binds that port on its own loopback
/// address, so both that route and "back to the source" (for unparseable requests) reach it.
fn via_port(data: &[u8]) -> u16 {
    parse_datagram(data, &Limits::default())
        .ok()
        .and_then(|m| top_via(&m.headers).ok())
        .and_then(|v| v.port)
        .unwrap_or(5060)
}

fn recv_final_udp(sock: &UdpSocket, timeout: Duration) -> Option<Message> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65_536];
    loop {
        let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
        sock.set_read_timeout(Some(left)).ok()?;
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        let m = parse_datagram(&buf[..n], &Limits::default()).expect("the daemon sends parseable messages");
        if m.status().is_some_and(|s| s >= 200) {
            return Some(m);
        }
    }
}

fn check_outcome(tag: &str, want: Want, got: Option<&Message>, failures: &mut Vec<String>) {
    let ok = match (want, got) {
        (Status(code), Some(m)) => m.status() == Some(code),
        (Silent, None) => true,
        _ => false,
    };
    if !ok {
        let got = got.map_or("nothing".to_owned(), |m| format!("{} {}", m.status().unwrap_or(0), reason(m)));
        failures.push(format!("{tag}: expected {want:?}, got {got}"));
    }
}

/// The server-transaction key a parseable request would match (RFC 3261 §17.2.3: branch, sent-by, method).
fn transaction_key(data: &[u8]) -> Option<String> {
    let m = parse_datagram(data, &Limits::default()).ok().filter(Message::is_request)?;
    let via = top_via(&m.headers).ok()?;
    Some(format!("{:?} {} {:?} {}", via.branch(), via.host, via.port, m.method()?.as_str()))
}

#[test]
fn every_torture_message_over_udp_is_answered_as_the_rfc_says_and_the_daemon_keeps_serving() {
    let on_disk = std::fs::read_dir(torture_dir()).expect("torture dir").flatten();
    let mut files: Vec<String> = on_disk.map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    files.retain(|f| f.ends_with(".dat"));
    files.sort();
    let mut listed: Vec<String> = TORTURE.iter().map(|(t, _)| format!("{t}.dat")).collect();
    listed.sort();
    assert_eq!((files.len(), &files), (61, &listed), "the table must list the whole corpus once");
    let mut d = daemon();
    let mut failures = Vec::new();
    let mut keys = std::collections::HashSet::new();
    for (i, (tag, want)) in TORTURE.iter().enumerate() {
        let data = torture_message(tag);
        // Many corpus messages share branch and sent-by (e.g. z9hG4bKkdjuw): to a server that has seen one, the
        // next is a retransmission of the same transaction (§17.2.3) and gets the stored response at the first
        // one's address. Each message is meant to stand alone, so a repeated key gets a freshly started daemon.
        if let Some(key) = transaction_key(&data)
            && !keys.insert(key.clone())
        {
            d.restart();
            keys.clear();
            keys.insert(key);
        }
        // A loopback address of its own per message: INVITE responses are retransmitted (Timer G) and must not
        // reach the next message's socket.
        let ip = format!("127.0.3.{}", i + 1);
        let port = via_port(&data);
        let sock = UdpSocket::bind((ip.as_str(), port))
            .unwrap_or_else(|e| panic!("{tag}: cannot bind {ip}:{port} to receive the response: {e}"));
        sock.send_to(&data, d.sip).expect("send");
        let wait = if *want == Silent { SILENCE } else { ANSWER };
        let got = recv_final_udp(&sock, wait);
        check_outcome(tag, *want, got.as_ref(), &mut failures);
        if let Some(m) = &got {
            assert!(m.header(&HeaderName::Via).is_some(), "{tag}: response without Via:\n{}", describe(m));
        }
        assert_serving(&mut d, &format!("torture message {tag} over UDP"));
    }
    assert!(failures.is_empty(), "{} of {} wrong over UDP:\n{}", failures.len(), TORTURE.len(), failures.join("\n"));
}

#[test]
fn every_torture_message_over_tcp_is_answered_as_the_rfc_says_and_the_daemon_keeps_serving() {
    let mut d = daemon();
    let mut failures = Vec::new();
    for (tag, want) in TORTURE {
        let want = tcp_want(tag, *want);
        let mut c = SipClient::tcp(d.sip);
        c.send_raw(&torture_message(tag));
        let got = final_response(&mut c, if want == Silent { SILENCE } else { ANSWER });
        check_outcome(tag, want, got.as_ref(), &mut failures);
        drop(c);
        assert_serving(&mut d, &format!("torture message {tag} over TCP"));
    }
    assert!(failures.is_empty(), "{} of {} wrong over TCP:\n{}", failures.len(), TORTURE.len(), failures.join("\n"));
}

// --- Garbage datagrams and stream framing ---

/// Reproducible garbage (a 64-bit LCG's top bytes).
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let next = |x: &u64| Some(x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
    std::iter::successors(Some(seed), next).skip(1).take(len).map(|x| (x >> 56) as u8).collect()
}

#[test]
fn garbage_datagrams_get_no_answer_and_the_daemon_keeps_serving() {
    let mut d = daemon();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", garbage(7, 1200)),
        ("random bytes (60 KB)", garbage(99, 60_000)),
        ("NUL bytes", vec![0u8; 512]),
        ("NUL in the start line", b"OPTIONS sip:a@b SIP/2.0\0\r\n\r\n".to_vec()),
        ("a header as start line", b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\r\n\r\n".to_vec()),
        ("not UTF-8", [b"OPTIONS sip:a@b SIP/2.0\r\nX: ".as_slice(), &[0xff, 0xfe, 0xc0], b"\r\n\r\n"].concat()),
    ];
    for (what, bytes) in cases {
        let got = udp_unanswered(&d, &bytes);
        assert!(got.is_none(), "{what}: unexpected answer\n{}", describe(got.as_ref().unwrap()));
        assert_serving(&mut d, what);
    }
}

/// RFC 3261 §8.2.6.2/§18.2.2: a response carries the request's Via and is routed by it; a request without one
/// cannot be answered (the transport already drops unparseable ones without a Via for that reason), and a
/// response without a Via is itself malformed (§20: Via is mandatory in responses).
#[test]
fn a_request_without_via_gets_no_answer() {
    let mut d = daemon();
    let cases = [
        ("lone start line", format!("OPTIONS sip:{} SIP/2.0\r\n", d.sip)),
        ("start line and blank line", format!("OPTIONS sip:{} SIP/2.0\r\n\r\n", d.sip)),
        (
            "all headers but Via",
            format!(
                "OPTIONS sip:{s} SIP/2.0\r\nFrom: <sip:a@test>;tag=1\r\nTo: <sip:{s}>\r\nCall-ID: {t}\r\n\
                 CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                s = d.sip,
                t = token()
            ),
        ),
    ];
    let mut answered = Vec::new();
    for (what, text) in cases {
        if let Some(m) = udp_unanswered(&d, text.as_bytes()) {
            answered.push(format!("{what}: answered\n{}", describe(&m)));
        }
        assert_serving(&mut d, what);
    }
    assert!(answered.is_empty(), "{}", answered.join("\n"));
}

#[test]
fn crlf_keepalive_datagrams_get_no_answer() {
    let mut d = daemon();
    for ka in [&b"\r\n"[..], b"\r\n\r\n", b"\n", b"\r\n\r\n\r\n\r\n"] {
        let got = udp_unanswered(&d, ka);
        assert!(got.is_none(), "keepalive {ka:?} was answered");
        assert_serving(&mut d, "a CRLF keepalive");
    }
}

#[test]
fn two_hundred_headers_get_400_too_many_headers() {
    let mut d = daemon();
    let extra: Vec<String> = (0..200).map(|i| format!("X-Filler-{i}: {i}")).collect();
    let resp = udp_exchange(&d, |l| request("OPTIONS", d.sip, l, &extra).into_bytes()).expect("an answer");
    assert_eq!((resp.status(), reason(&resp)), (Some(400), "Too Many Headers"), "{}", describe(&resp));
    assert_serving(&mut d, "200 headers");
}

#[test]
fn a_60_kb_header_block_within_the_limits_is_processed() {
    let mut d = daemon();
    // 100 lines of 600 bytes: under max_headers (128) and max_message_bytes (65535).
    let extra: Vec<String> = (0..100).map(|i| format!("X-Pad-{i:03}: {}", "p".repeat(588))).collect();
    let resp = udp_exchange(&d, |l| {
        let text = request("OPTIONS", d.sip, l, &extra);
        assert!(text.len() > 60_000 && text.len() < 65_000, "{}", text.len());
        text.into_bytes()
    })
    .expect("an answer");
    assert_eq!(resp.status(), Some(200), "{}", describe(&resp));
    assert_serving(&mut d, "a 60 KB header block");
}

#[test]
fn missing_call_id_gets_400_naming_it() {
    let mut d = daemon();
    let resp = udp_exchange(&d, |l| {
        let text = request("OPTIONS", d.sip, l, &[]);
        text.split_inclusive("\r\n").filter(|l| !l.starts_with("Call-ID:")).collect::<String>().into_bytes()
    })
    .expect("an answer");
    assert_eq!(resp.status(), Some(400), "{}", describe(&resp));
    assert!(reason(&resp).contains("Call-ID"), "reason does not name Call-ID: {:?}", reason(&resp));
    assert_serving(&mut d, "a request without Call-ID");
}

#[test]
fn cseq_method_mismatch_gets_400() {
    let mut d = daemon();
    let resp = udp_exchange(&d, |l| {
        request("OPTIONS", d.sip, l, &[]).replace("CSeq: 1 OPTIONS", "CSeq: 1 REGISTER").into_bytes()
    })
    .expect("an answer");
    assert_eq!((resp.status(), reason(&resp)), (Some(400), "CSeq Method Does Not Match Request"));
    assert_serving(&mut d, "a CSeq mismatch");
}

#[test]
fn content_length_beyond_the_datagram_gets_400() {
    let mut d = daemon();
    let resp = udp_exchange(&d, |l| {
        (request("OPTIONS", d.sip, l, &["Content-Length: 500".to_owned()]) + "short body").into_bytes()
    })
    .expect("an answer");
    assert_eq!((resp.status(), reason(&resp)), (Some(400), "Body Shorter Than Content-Length"));
    assert_serving(&mut d, "a short body");
}

#[test]
fn tcp_stream_written_one_byte_at_a_time_still_parses() {
    let mut d = daemon();
    let mut s = TcpStream::connect(d.sip).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let local = s.local_addr().expect("local");
    let text = request("OPTIONS", d.sip, local, &[]).replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    for b in text.as_bytes() {
        s.write_all(&[*b]).expect("write one byte");
        s.flush().expect("flush");
    }
    let resp = read_tcp_message(&mut s, ANSWER).expect("a response on the stream");
    assert_eq!(resp.status(), Some(200), "{}", describe(&resp));
    assert_serving(&mut d, "a 1-byte-write TCP stream");
}

#[test]
fn tcp_framing_error_gets_400_and_the_connection_closed() {
    let mut d = daemon();
    let mut s = TcpStream::connect(d.sip).expect("connect");
    let local = s.local_addr().expect("local");
    let text = request("OPTIONS", d.sip, local, &["Content-Length: twelve".to_owned()]).replace("UDP", "TCP");
    s.write_all(text.as_bytes()).expect("write");
    let resp = read_tcp_message(&mut s, ANSWER).expect("a 400 before the close");
    assert_eq!(resp.status(), Some(400), "{}", describe(&resp));
    assert!(reason(&resp).contains("Content-Length"), "{:?}", reason(&resp));
    assert!(tcp_closed_by_peer(&mut s, CLOSE), "the connection stayed open after a framing error");
    assert_serving(&mut d, "a TCP framing error");
}

#[test]
fn tcp_crlfcrlf_ping_gets_a_crlf_pong_and_the_flow_stays_usable() {
    let mut d = daemon();
    let mut s = TcpStream::connect(d.sip).expect("connect");
    s.write_all(b"\r\n\r\n").expect("ping");
    s.set_read_timeout(Some(ANSWER)).expect("timeout");
    let mut pong = [0u8; 2];
    s.read_exact(&mut pong).expect("a pong");
    assert_eq!(&pong, b"\r\n");
    // Nothing more than the pong, and the same connection still carries requests.
    s.set_read_timeout(Some(SILENCE)).expect("timeout");
    let mut more = [0u8; 1];
    assert!(s.read(&mut more).is_err(), "more than a CRLF came back");
    let local = s.local_addr().expect("local");
    s.write_all(request("OPTIONS", d.sip, local, &[]).replace("UDP", "TCP").as_bytes()).expect("write");
    assert_eq!(read_tcp_message(&mut s, ANSWER).and_then(|m| m.status()), Some(200));
    assert_serving(&mut d, "a TCP ping");
}

#[test]
fn tcp_framing_error_after_a_valid_request_still_delivers_that_requests_response() {
    let mut d = daemon();
    let mut s = TcpStream::connect(d.sip).expect("connect");
    let local = s.local_addr().expect("local");
    let good = request("OPTIONS", d.sip, local, &[]).replace("UDP", "TCP");
    let bad = request("OPTIONS", d.sip, local, &["Content-Length: -1".to_owned()]).replace("UDP", "TCP");
    // One write: the valid request is framed before the broken one ends the stream.
    s.write_all(format!("{good}{bad}").as_bytes()).expect("write");
    // Two transactions: their responses may come in either order (the 400 is written by the transport at once,
    // the 200 comes from the registrar), but both must come before the connection closes.
    // Both may arrive in one segment, so they are read with one framer.
    let mut codes: Vec<Option<u16>> = read_tcp_messages(&mut s, 2, ANSWER).iter().map(|m| m.status()).collect();
    codes.resize(2, None);
    codes.sort();
    assert_eq!(codes, vec![Some(200), Some(400)], "the valid request's answer was lost");
    assert!(tcp_closed_by_peer(&mut s, CLOSE), "the connection stayed open after a framing error");
    assert_serving(&mut d, "a TCP framing error after a valid request");
}

/// config/switchboard.toml: "Largest SIP message accepted, bytes (1024..65535). Larger requests get 513."
const SMALL_MESSAGES: &str = "[sip]\nmax_message_bytes = 2048\n";

#[test]
fn an_oversized_udp_request_gets_513() {
    let mut d = Daemon::start(BIN, SMALL_MESSAGES);
    let extra: Vec<String> = (0..10).map(|i| format!("X-Pad-{i}: {}", "p".repeat(300))).collect();
    let resp = udp_exchange(&d, |l| request("OPTIONS", d.sip, l, &extra).into_bytes());
    assert_eq!(resp.as_ref().map(|m| (m.status(), reason(m))), Some((Some(513), "Message Too Large")));
    assert_serving(&mut d, "an oversized datagram");
}

#[test]
fn an_oversized_tcp_request_gets_513_and_the_connection_closed() {
    let mut d = Daemon::start(BIN, SMALL_MESSAGES);
    let mut s = TcpStream::connect(d.sip).expect("connect");
    let local = s.local_addr().expect("local");
    let text = request("OPTIONS", d.sip, local, &["Content-Length: 4000".to_owned()]).replace("UDP", "TCP");
    s.write_all(text.as_bytes()).expect("write");
    let resp = read_tcp_message(&mut s, ANSWER).expect("an answer before the close");
    assert_eq!((resp.status(), reason(&resp)), (Some(513), "Message Too Large"));
    assert!(tcp_closed_by_peer(&mut s, CLOSE), "the connection stayed open");
    assert_serving(&mut d, "an oversized stream message");
}

/// Reads one SIP message from a raw stream (framed on Content-Length, which the daemon always sends).
fn read_tcp_message(s: &mut TcpStream, timeout: Duration) -> Option<Message> {
    read_tcp_messages(s, 1, timeout).pop()
}

/// Reads up to `n` messages from the stream with one framer (several may arrive in one segment), stopping at
/// the deadline or when the stream ends.
fn read_tcp_messages(s: &mut TcpStream, n: usize, timeout: Duration) -> Vec<Message> {
    let mut framer = switchboard_sip_core::StreamFramer::new(Limits::default());
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    let mut out = Vec::new();
    while out.len() < n {
        if let Some(f) = framer.next_frame() {
            match f {
                Ok(switchboard_sip_core::Frame::Message(m)) => out.push(m),
                Ok(_) => {}
                Err(e) => panic!("the daemon sent an unframeable message: {e}"),
            }
            continue;
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else { break };
        if s.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => framer.push(&buf[..k]),
        }
    }
    out
}

/// True when the peer closes the stream (EOF or reset) within `timeout`.
fn tcp_closed_by_peer(s: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1024];
    while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
    false
}

// --- Transactions, floods, and what the UAS core refuses ---

#[test]
fn a_retransmitted_request_gets_the_stored_response_not_a_new_one() {
    let mut d = daemon();
    let mut c = SipClient::udp(d.sip);
    let req = request("OPTIONS", d.sip, c.local(), &[]);
    c.send_raw(req.as_bytes());
    let first = final_response(&mut c, ANSWER).expect("first response");
    assert_eq!(first.status(), Some(200), "{}", describe(&first));
    c.send_raw(req.as_bytes());
    let second = final_response(&mut c, ANSWER).expect("the retransmission is answered");
    // A reprocessed request would carry a fresh To tag.
    assert_eq!(describe(&first), describe(&second));
    // A new transaction (new branch) is processed afresh.
    c.send_raw(request("OPTIONS", d.sip, c.local(), &[]).as_bytes());
    let third = final_response(&mut c, ANSWER).expect("new transaction answered");
    assert_ne!(first.header(&HeaderName::To), third.header(&HeaderName::To), "a new transaction got an old tag");
    assert_serving(&mut d, "a retransmitted OPTIONS");
}

/// REGISTER is answered without transaction state: a retransmitted authenticated REGISTER (same Call-ID, CSeq
/// and credentials) is recognised by the registrar and answered 200 again without being applied twice, although
/// its nonce count has been seen; a changed Contact in it is not applied either.
#[test]
fn a_retransmitted_register_is_answered_again_without_being_applied_twice() {
    let mut d = daemon();
    let auth_id = provision(&d, "retransmit-pw-1");
    let mut c = SipClient::udp(d.sip);
    let contact = format!("Contact: <{}>", c.contact(&auth_id));
    let deadline = Instant::now() + Duration::from_secs(5);
    let (authed, first) = loop {
        let req = c.register(&auth_id, &[&contact, "Expires: 600"]);
        let resp = c.request_with_auth(req.clone(), &auth_id, "retransmit-pw-1", Some("SHA-256"));
        if resp.status() == Some(200) || Instant::now() > deadline {
            let mut sent = req;
            sent.headers.push(HeaderName::Authorization, c.last_authorization.clone().unwrap_or_default());
            break (sent, resp);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(first.status(), Some(200), "{}", describe(&first));
    // request_with_auth bumped CSeq and branch before sending the authenticated copy: rebuild exactly that.
    let mut again = authed.clone();
    let cseq = c.cseq;
    again.headers.set(HeaderName::CSeq, format!("{cseq} REGISTER"));
    again.headers.set(HeaderName::Via, first.header(&HeaderName::Via).unwrap_or_default().to_owned());
    c.send(&again);
    let second = final_response(&mut c, ANSWER).expect("the retransmission is answered");
    assert_eq!(second.status(), Some(200), "{}", describe(&second));
    assert_eq!(first.header(&HeaderName::Contact), second.header(&HeaderName::Contact));
    // The same request with another Contact smuggled in is still that request: nothing new is bound.
    let mut smuggled = again.clone();
    smuggled.headers.set(HeaderName::Contact, format!("<sip:{auth_id}@192.0.2.66:5060>"));
    c.send(&smuggled);
    let third = final_response(&mut c, ANSWER).expect("answered");
    assert_eq!(third.status(), Some(200));
    assert!(!describe(&third).contains("192.0.2.66"), "{}", describe(&third));
    // A lower CSeq on the same Call-ID is an old request: refused.
    let mut old = again.clone();
    old.headers.set(HeaderName::CSeq, format!("{} REGISTER", cseq - 1));
    c.send(&old);
    let fourth = final_response(&mut c, ANSWER).expect("answered");
    assert_ne!(fourth.status(), Some(200), "{}", describe(&fourth));
    assert_serving(&mut d, "a retransmitted REGISTER");
}

/// Adds customer, service and a device with `password`; returns the auth id.
fn provision(d: &Daemon, password: &str) -> String {
    let auth_id = format!("dev{}", &token()[..8]);
    d.cli_ok(&["customer", "add", "Robust Ltd"]);
    d.cli_ok(&["service", "add", "--customer", "Robust Ltd", "--name", "robust", "--mode", "direct"]);
    let add = format!("device add --service robust --name desk --auth-id {auth_id} --password {password}");
    d.cli_ok(&add.split(' ').collect::<Vec<_>>());
    auth_id
}

/// REGISTERs with credentials until a 200 or the deadline (the daemon loads devices by polling).
fn register_until_ok(d: &Daemon, auth_id: &str, password: &str, within: Duration) -> Message {
    let deadline = Instant::now() + within;
    loop {
        let mut c = SipClient::udp(d.sip);
        let req = c.register(auth_id, &[&format!("Contact: <{}>", c.contact(auth_id))]);
        let resp = c.request_with_auth(req, auth_id, password, Some("SHA-256"));
        if resp.status() == Some(200) || Instant::now() > deadline {
            return resp;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_burst_of_2000_malformed_datagrams_does_not_stop_registration() {
    let mut d = daemon();
    let auth_id = provision(&d, "burst-password-1");
    let sock = UdpSocket::bind("127.0.0.2:0").expect("bind");
    let local = sock.local_addr().expect("local");
    let kinds: Vec<Vec<u8>> = vec![
        request("OPTIONS", d.sip, local, &["Content-Length: 9999".to_owned()]).into_bytes(),
        request("OPTIONS", d.sip, local, &[]).replace("CSeq: 1 OPTIONS", "CSeq: x").into_bytes(),
        format!("OPTIONS sip:{} SIP/9.9\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKv\r\n\r\n", d.sip).into_bytes(),
        vec![0u8; 64],
    ];
    for i in 0..2000u64 {
        let bytes = if i % 5 == 4 { garbage(i + 1, 300) } else { kinds[(i % 5) as usize].clone() };
        // Loopback only; an occasional ENOBUFS under load is not what is being tested.
        let _ = sock.send_to(&bytes, d.sip);
    }
    assert!(d.alive(), "daemon died during the burst; log:\n{}", d.log());
    // Datagrams beyond the socket buffer are dropped, our probe possibly among them: like any UA over UDP it
    // retransmits (Timer E, from T1 = 500 ms) until answered.
    let mut c = SipClient::udp(d.sip);
    let opts = request("OPTIONS", d.sip, c.local(), &[]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut answered = None;
    while answered.is_none() && Instant::now() < deadline {
        c.send_raw(opts.as_bytes());
        answered = final_response(&mut c, Duration::from_millis(500));
    }
    assert_eq!(answered.and_then(|m| m.status()), Some(200), "no answer within 5 s of the burst");
    let resp = register_until_ok(&d, &auth_id, "burst-password-1", Duration::from_secs(5));
    assert_eq!(resp.status(), Some(200), "REGISTER after the burst:\n{}", describe(&resp));
    assert_serving(&mut d, "a burst of 2,000 malformed datagrams");
}

#[test]
fn unsupported_require_gets_420_listing_the_tags() {
    let mut d = daemon();
    let extra = ["Require: path, x-teleport, 100rel".to_owned()];
    let resp = udp_exchange(&d, |l| request("OPTIONS", d.sip, l, &extra).into_bytes()).expect("an answer");
    assert_eq!(resp.status(), Some(420), "{}", describe(&resp));
    let unsupported: Vec<&str> = resp.headers.get_list(&HeaderName::Unsupported).collect();
    assert_eq!(unsupported, ["x-teleport", "100rel"], "path is supported; the others are not");
    // A supported tag alone is fine.
    let ok = udp_exchange(&d, |l| request("OPTIONS", d.sip, l, &["Require: path".to_owned()]).into_bytes());
    assert_eq!(ok.and_then(|m| m.status()), Some(200));
    assert_serving(&mut d, "Require");
}

#[test]
fn invite_from_an_unknown_source_is_challenged_and_options_lists_invite() {
    let mut d = daemon();
    let resp = udp_exchange(&d, |l| request("INVITE", d.sip, l, &[]).into_bytes()).expect("an answer");
    assert_eq!(resp.status(), Some(407), "{}", describe(&resp));
    assert!(resp.headers.get(&HeaderName::ProxyAuthenticate).is_some(), "{}", describe(&resp));
    let resp = udp_exchange(&d, |l| request("OPTIONS", d.sip, l, &[]).into_bytes()).expect("an answer");
    let allow: Vec<&str> = resp.headers.get_list(&HeaderName::Allow).collect();
    for m in ["REGISTER", "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"] {
        assert!(allow.contains(&m), "{m} missing from {allow:?}");
    }
    assert_serving(&mut d, "INVITE");
}

#[test]
fn bye_outside_any_dialog_gets_481() {
    let mut d = daemon();
    let resp = udp_exchange(&d, |l| request("BYE", d.sip, l, &[]).into_bytes()).expect("an answer");
    assert_eq!(resp.status(), Some(481), "{}", describe(&resp));
    assert_serving(&mut d, "BYE");
}

#[test]
fn extension_method_gets_501() {
    let mut d = daemon();
    let resp = udp_exchange(&d, |l| request("FROBNICATE", d.sip, l, &[]).into_bytes()).expect("an answer");
    assert_eq!(resp.status(), Some(501), "{}", describe(&resp));
    assert_serving(&mut d, "an extension method");
}

#[test]
fn cancel_of_nothing_gets_481() {
    let mut d = daemon();
    let resp = udp_exchange(&d, |l| request("CANCEL", d.sip, l, &[]).into_bytes()).expect("an answer");
    assert_eq!(resp.status(), Some(481), "{}", describe(&resp));
    assert_serving(&mut d, "CANCEL");
}
