//! Voicemail deposit end to end: the real binary, a carrier (our SIP client at 127.0.0.2) calling a number that
//! diverts every call to voicemail, real RTP through the relay to the built-in voicemail and back. Every
//! address, SDP ones included, is on 127.0.0.0/8.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchboard_media_core::g711::Law;
use switchboard_media_core::{player, wav};
use switchboard_sip_core::{HeaderName, Message};
use switchboard_testkit::client::SipClient;
use switchboard_testkit::daemon::{Daemon, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const NUMBER: &str = "+61299990001";
const WAIT: Duration = Duration::from_secs(5);

/// A daemon whose NUMBER diverts every call to voicemail, with a carrier gateway at 127.0.0.2.
fn world() -> Daemon {
    let mut d = Daemon::new(BIN, "[calls]\ngateway_check_secs = 3600\n[voicemail]\nsilence_secs = 3\n");
    d.provision_direct(&[("2001", "pass-2001", &[])]);
    let add = ["number", "add", "--service", "acme", "--number", NUMBER, "--device", "2001"];
    d.cli_ok(&[&add[..], &["--divert-when", "all", "--divert-to", "voicemail"]].concat());
    d.cli_ok(&["gateway", "add", "--name", "gw1", "--address", &format!("127.0.0.2:{}", free_port())]);
    d.launch();
    d
}

/// A call from the carrier, answered by the voicemail, with its RTP socket.
struct Caller {
    sip: SipClient,
    rtp: UdpSocket,
    /// Where the relay takes our RTP.
    relay: SocketAddr,
    ok: Message,
    daemon: SocketAddr,
    seq: u16,
    ts: u32,
}

impl Caller {
    fn call(d: &Daemon, call_id: &str) -> Caller {
        let rtp = UdpSocket::bind("127.0.0.2:0").unwrap();
        rtp.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut sip = SipClient::udp_from("127.0.0.2", d.sip);
        let port = rtp.local_addr().unwrap().port();
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\n\
             a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
        );
        let invite = format!(
            "INVITE sip:{NUMBER}@{s} SIP/2.0\r\nVia: SIP/2.0/UDP {gw};branch=z9hG4bK{call_id}\r\nMax-Forwards: 70\r\n\
             From: \"Alice Smith\" <sip:+61400000001@{gw}>;tag={call_id}\r\nTo: <sip:{NUMBER}@{s}>\r\n\
             Call-ID: {call_id}@gw\r\nCSeq: 1 INVITE\r\nContact: <sip:gw@{gw}>\r\nContent-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{offer}",
            s = d.sip,
            gw = sip.local(),
            len = offer.len()
        );
        sip.send_raw(invite.as_bytes());
        let ok = loop {
            let r = sip.recv_response(WAIT).expect("an answer from voicemail");
            match r.status() {
                Some(200) => break r,
                Some(s) if s >= 300 => panic!("the call was refused: {r:?}\n{}", d.log()),
                _ => {}
            }
        };
        let body = String::from_utf8_lossy(&ok.body).into_owned();
        let ip = body.lines().find_map(|l| l.strip_prefix("c=IN IP4 ")).expect("c=").trim().to_owned();
        let port: u16 =
            body.lines().find_map(|l| l.strip_prefix("m=audio ")).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!(body.contains("telephone-event"), "events are answered: {body}");
        let mut c =
            Caller { sip, rtp, relay: format!("{ip}:{port}").parse().unwrap(), ok, daemon: d.sip, seq: 1, ts: 0 };
        c.in_dialog("ACK", 1);
        c
    }

    fn in_dialog(&mut self, method: &str, cseq: u32) {
        let call = self.ok.call_id().unwrap().trim_end_matches("@gw").to_owned();
        let text = format!(
            "{method} sip:{s} SIP/2.0\r\nVia: SIP/2.0/UDP {gw};branch=z9hG4bK{call}{method}\r\nMax-Forwards: 70\r\n\
             From: {from}\r\nTo: {to}\r\nCall-ID: {call}@gw\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            s = self.daemon,
            gw = self.sip.local(),
            from = self.ok.headers.get(&HeaderName::From).unwrap(),
            to = self.ok.headers.get(&HeaderName::To).unwrap(),
        );
        self.sip.send_raw(text.as_bytes());
    }

    fn send_rtp(&mut self, pt: u8, marker: bool, payload: &[u8]) {
        let mut p = vec![0x80, pt | if marker { 0x80 } else { 0 }];
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.ts.to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(payload);
        self.rtp.send_to(&p, self.relay).unwrap();
        self.seq = self.seq.wrapping_add(1);
    }

    /// Presses `#` as RFC 4733 events: a start with the marker, an update, three end packets.
    fn press_hash(&mut self) {
        for (i, (end, dur)) in
            [(false, 160u16), (false, 320), (true, 480), (true, 480), (true, 480)].into_iter().enumerate()
        {
            let [d0, d1] = dur.to_be_bytes();
            self.send_rtp(101, i == 0, &[11, if end { 0x80 | 10 } else { 10 }, d0, d1]);
            std::thread::sleep(Duration::from_millis(20));
        }
        self.ts = self.ts.wrapping_add(480);
    }

    /// Speaks a 440 Hz tone for `ms`, in real time (20 ms packets).
    fn speak(&mut self, ms: u64) {
        let start = Instant::now();
        for i in 0..ms / 20 {
            let payload: Vec<u8> = (0..160)
                .map(|n| {
                    let t = (i * 160 + n) as f32 / 8000.0;
                    Law::Ulaw.encode((8000.0 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()) as i16)
                })
                .collect();
            self.send_rtp(0, false, &payload);
            self.ts = self.ts.wrapping_add(160);
            let due = start + Duration::from_millis((i + 1) * 20);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    }

    /// Mean level of what arrives for `ms` (decoded µ-law), and how many packets came.
    fn listen(&self, ms: u64) -> (u16, usize) {
        let deadline = Instant::now() + Duration::from_millis(ms);
        let mut buf = [0u8; 2048];
        let mut samples = Vec::new();
        let mut packets = 0;
        while Instant::now() < deadline {
            if let Ok((n, _)) = self.rtp.recv_from(&mut buf)
                && n > 12
            {
                packets += 1;
                samples.extend(buf[12..n].iter().map(|&c| Law::Ulaw.decode(c)));
            }
        }
        (player::level(&samples), packets)
    }
}

/// The mailbox as the CLI lists it.
fn messages(d: &Daemon) -> Vec<serde_json::Value> {
    serde_json::from_str(&d.cli_ok(&["voicemail", "list", "--number", NUMBER, "--json"])).unwrap()
}

/// Waits until the mailbox holds `n` messages none of which is still recording.
fn wait_for_messages(d: &Daemon, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = messages(d);
        if m.len() == n && m.iter().all(|v| v["status"] == "new") {
            return m;
        }
        assert!(Instant::now() < deadline, "mailbox: {m:?}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wav_of(d: &Daemon, message: &serde_json::Value) -> (wav::Info, Vec<i16>) {
    let path: PathBuf = d.dir().join("data/voicemail").join(message["file"].as_str().unwrap());
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (wav::parse(&bytes).expect("a valid WAV header"), wav::read_samples(&bytes).expect("8 kHz 16-bit mono"))
}

#[test]
fn a_caller_hears_the_greeting_and_leaves_a_message() {
    let mut d = world();
    let mut c = Caller::call(&d, "vm-deposit");
    let (greeting, packets) = c.listen(1_000);
    assert!(packets >= 40, "the greeting streams at 50 packets a second: {packets}");
    assert!(greeting > 500, "the greeting is speech, not silence: level {greeting}");
    c.press_hash();
    std::thread::sleep(Duration::from_millis(600)); // the beep
    c.speak(2_000);
    c.in_dialog("BYE", 2);
    let m = wait_for_messages(&d, 1);
    assert_eq!(m[0]["caller"], "+61400000001");
    assert_eq!(m[0]["caller_name"], "Alice Smith");
    let ms = m[0]["duration_ms"].as_i64().unwrap();
    assert!((1_700..=2_300).contains(&ms), "about the 2 s spoken: {ms} ms");
    let (info, samples) = wav_of(&d, &m[0]);
    assert_eq!(u64::from(info.data_len) * 1000 / 16_000, ms as u64, "the row and the file agree");
    assert!(player::level(&samples) > 2_000, "the message holds the tone: level {}", player::level(&samples));
    // A CDR names the divert to voicemail.
    let cdrs: Vec<serde_json::Value> = serde_json::from_str(&d.cli_ok(&["cdr", "--json"])).unwrap();
    assert_eq!(
        (cdrs.len(), &cdrs[0]["diverted_to"], &cdrs[0]["disposition"]),
        (1, &"voicemail".into(), &"answered".into())
    );
    // The messages survive a restart as they are.
    d.restart();
    assert_eq!(messages(&d), m);
}

#[test]
fn hanging_up_during_the_greeting_leaves_nothing() {
    let d = world();
    let mut c = Caller::call(&d, "vm-early");
    c.listen(500);
    c.in_dialog("BYE", 2);
    std::thread::sleep(Duration::from_millis(500));
    assert!(messages(&d).is_empty(), "{:?}", messages(&d));
    let files: Vec<_> = walk(&d.dir().join("data/voicemail"));
    assert!(files.is_empty(), "no file is left behind: {files:?}");
}

#[test]
fn silence_ends_the_message_and_the_voicemail_hangs_up() {
    let d = world();
    let mut c = Caller::call(&d, "vm-silent");
    c.press_hash();
    std::thread::sleep(Duration::from_millis(600));
    c.speak(1_500);
    // Nothing more is said: after silence_secs (3 s here) the voicemail ends the call itself.
    let bye = c.sip.recv_request(Duration::from_secs(6)).expect("a BYE from the daemon");
    assert_eq!(bye.method().map(|m| m.as_str().to_owned()).as_deref(), Some("BYE"));
    let m = wait_for_messages(&d, 1);
    let ms = m[0]["duration_ms"].as_i64().unwrap();
    assert!((1_400..=2_100).contains(&ms), "the speech and a short tail, the silence trimmed: {ms} ms");
}

/// The severity-one case: the daemon is killed mid-message. What was said up to the last flush is kept, and
/// the next start puts it in the mailbox as a playable message.
#[test]
fn a_message_survives_kill_9_mid_recording() {
    let mut d = world();
    let mut c = Caller::call(&d, "vm-kill");
    c.press_hash();
    std::thread::sleep(Duration::from_millis(600));
    c.speak(3_000);
    let recording = messages(&d);
    assert_eq!(recording.len(), 1);
    assert_eq!(recording[0]["status"], "recording");
    d.kill();
    let (info, _) = wav_of(&d, &recording[0]);
    assert!(info.data_len >= 2 * 16_000, "at least 2 of the 3 s were on disk at the kill: {}", info.data_len);
    d.launch();
    let m = wait_for_messages(&d, 1);
    let ms = m[0]["duration_ms"].as_i64().unwrap();
    assert!((2_400..=3_100).contains(&ms), "{ms} ms recovered of 3,000 spoken");
    let (info, samples) = wav_of(&d, &m[0]);
    assert_eq!(u64::from(info.data_len) * 1000 / 16_000, ms as u64);
    assert!(player::level(&samples) > 2_000);
    assert!(d.log().contains("recovered a message"), "{}", d.log());
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}
