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
use switchboard_testkit::smtp::SmtpSink;
use switchboard_testkit::wait_until;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const NUMBER: &str = "+61299990001";
const WAIT: Duration = Duration::from_secs(5);

/// A daemon whose NUMBER diverts every call to voicemail, with a carrier gateway at 127.0.0.2, and device 2001
/// (NUMBER's) trusted at 127.0.0.3, where it calls from without a password.
fn world() -> Daemon {
    world_with("")
}

/// [`world`] with more configuration (whole tables: `[smtp]`).
fn world_with(extra: &str) -> Daemon {
    let config =
        format!("[calls]\ngateway_check_secs = 3600\n[voicemail]\nsilence_secs = 3\npin_lock_after = 4\n{extra}");
    let mut d = Daemon::new(BIN, &config);
    d.provision_direct(&[("2001", "pass-2001", &["--trusted-address", "127.0.0.3"])]);
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
    /// The carrier (127.0.0.2) calling NUMBER.
    fn call(d: &Daemon, call_id: &str) -> Caller {
        Caller::dial(d, "127.0.0.2", NUMBER, "+61400000001", call_id)
    }

    /// A call from `ip` (its SIP and RTP) to `target` (a number, or 777), From `from_user`.
    fn dial(d: &Daemon, ip: &str, target: &str, from_user: &str, call_id: &str) -> Caller {
        let rtp = UdpSocket::bind((ip, 0)).unwrap();
        rtp.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut sip = SipClient::udp_from(ip, d.sip);
        let port = rtp.local_addr().unwrap().port();
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\n\
             a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
        );
        let invite = format!(
            "INVITE sip:{target}@{s} SIP/2.0\r\nVia: SIP/2.0/UDP {gw};branch=z9hG4bK{call_id}\r\nMax-Forwards: 70\r\n\
             From: \"Alice Smith\" <sip:{from_user}@{gw}>;tag={call_id}\r\nTo: <sip:{target}@{s}>\r\n\
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

    /// Presses `#` as RFC 4733 events.
    fn press_hash(&mut self) {
        self.press("#");
    }

    /// Presses each key as RFC 4733 events: a start with the marker, an update, three end packets, each key
    /// with its own timestamp.
    fn press(&mut self, keys: &str) {
        for key in keys.chars() {
            let code = match key {
                '*' => 10,
                '#' => 11,
                d => d.to_digit(10).unwrap() as u8,
            };
            let packets = [(false, 160u16), (false, 320), (true, 480), (true, 480), (true, 480)];
            for (i, (end, dur)) in packets.into_iter().enumerate() {
                let [d0, d1] = dur.to_be_bytes();
                self.send_rtp(101, i == 0, &[code, if end { 0x80 | 10 } else { 10 }, d0, d1]);
                std::thread::sleep(Duration::from_millis(20));
            }
            self.ts = self.ts.wrapping_add(480 + 800);
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    /// Listens until `ms` of a 440 Hz tone have been heard or `max_ms` passed; returns the tone's length heard.
    fn hear_tone(&self, ms: u64, max_ms: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_millis(max_ms);
        let mut buf = [0u8; 2048];
        let mut heard = 0;
        while Instant::now() < deadline && heard < ms {
            if let Ok((n, _)) = self.rtp.recv_from(&mut buf)
                && n == 12 + 160
            {
                let samples: Vec<i16> = buf[12..n].iter().map(|&c| Law::Ulaw.decode(c)).collect();
                if switchboard_testkit::is_tone(&samples, 440.0) {
                    heard += 20;
                }
            }
        }
        heard
    }

    /// Waits for the daemon to end the call (a BYE).
    fn expect_bye(&mut self, within: Duration) {
        let bye = self.sip.recv_request(within).expect("a BYE from the daemon");
        assert_eq!(bye.method().map(|m| m.as_str().to_owned()).as_deref(), Some("BYE"));
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

/// A message of 1.5 s of tone left in NUMBER's mailbox by the carrier.
fn leave_message(d: &Daemon, call_id: &str) {
    let mut c = Caller::call(d, call_id);
    c.press_hash();
    std::thread::sleep(Duration::from_millis(600));
    c.speak(1_500);
    c.in_dialog("BYE", 2);
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

/// The retrieval walk-through, with our client as the phone: 777, the PIN as RFC 4733 digits, the new
/// message heard (its audio is the tone the caller left), deleted; the mailbox is then empty, file and row.
#[test]
fn the_owner_dials_777_hears_the_message_and_deletes_it() {
    let d = world();
    leave_message(&d, "vm-left");
    let m = wait_for_messages(&d, 1);
    d.cli_ok(&["number", "edit", NUMBER, "--voicemail-pin", "4321"]);
    let mut phone = Caller::dial(&d, "127.0.0.3", "777", "2001", "vm-777");
    let (prompt, _) = phone.listen(800);
    assert!(prompt > 500, "asked for the PIN: level {prompt}");
    phone.press("4321#");
    // Over the counts and the menu, 1: the first new message, announced, then played.
    std::thread::sleep(Duration::from_millis(500));
    phone.press("1");
    let heard = phone.hear_tone(1_000, 20_000);
    assert!(heard >= 1_000, "the message (1.5 s of 440 Hz) was heard: {heard} ms\n{}", d.log());
    phone.press("7");
    std::thread::sleep(Duration::from_millis(500));
    assert!(messages(&d).is_empty(), "deleted: {:?}", messages(&d));
    assert!(!d.dir().join("data/voicemail").join(m[0]["file"].as_str().unwrap()).exists(), "the file went too");
    phone.press("#");
    phone.expect_bye(Duration::from_secs(5));
    let log = d.log();
    assert!(log.contains("777: mailbox opened"), "{log}");
}

/// Wrong PINs: three end a call; with `pin_lock_after = 4` the fourth (in the next call) locks the mailbox, and
/// then even the right PIN is refused. Setting a new PIN with the CLI clears the lock.
#[test]
fn wrong_pins_end_the_call_and_lock_the_mailbox_across_calls() {
    let d = world();
    d.cli_ok(&["number", "edit", NUMBER, "--voicemail-pin", "4321"]);
    let mut phone = Caller::dial(&d, "127.0.0.3", "777", "2001", "vm-wrong1");
    for _ in 0..3 {
        phone.press("0000#");
        std::thread::sleep(Duration::from_millis(300));
    }
    phone.expect_bye(Duration::from_secs(10));
    let mut phone = Caller::dial(&d, "127.0.0.3", "777", "2001", "vm-wrong2");
    phone.press("1111#");
    std::thread::sleep(Duration::from_millis(500));
    phone.press("4321#");
    phone.expect_bye(Duration::from_secs(10));
    let shown = d.cli_ok(&["number", "show", NUMBER]);
    assert!(shown.contains("mailbox locked"), "{shown}");
    assert!(d.log().contains("mailbox locked after wrong PINs"), "the right PIN was refused while locked");
    d.cli_ok(&["number", "edit", NUMBER, "--voicemail-pin", "4321"]);
    assert!(!d.cli_ok(&["number", "show", NUMBER]).contains("mailbox locked"));
    // A PIN the CLI refuses names the option and why.
    let bad = d.cli(&["number", "edit", NUMBER, "--voicemail-pin", "12"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--voicemail-pin: a PIN has 4 to 10 digits"));
}

/// The lamp without a subscription (many ATAs never subscribe): a NOTIFY outside any dialog after the
/// REGISTER, and another when a message is left.
#[test]
fn a_phone_that_does_not_subscribe_is_told_unsolicited() {
    let d = world();
    let mut phone = SipClient::udp(d.sip);
    let reg = phone.register("2001", &[&format!("Contact: <{}>", phone.contact("2001"))]);
    assert_eq!(phone.request_with_auth(reg, "2001", "pass-2001", Some("SHA-256")).status(), Some(200));
    let next_summary = |phone: &mut SipClient| {
        let n = phone.recv_request(WAIT).expect("a NOTIFY");
        assert_eq!(n.method().map(|m| m.as_str().to_owned()).as_deref(), Some("NOTIFY"), "{n:?}");
        assert_eq!(n.headers.get(&HeaderName::Event), Some("message-summary"));
        assert!(!n.headers.get(&HeaderName::To).unwrap().contains("tag="), "outside any dialog");
        phone.send(&switchboard_sip_core::validate::response_to(&n.headers, 200, "OK", Some("p1")));
        String::from_utf8(n.body).unwrap()
    };
    let first = next_summary(&mut phone);
    assert!(first.starts_with("Messages-Waiting: no\r\n"), "{first}");
    assert!(first.contains(&format!("Message-Account: sip:{NUMBER}@")), "{first}");
    leave_message(&d, "vm-unsolicited");
    let lit = next_summary(&mut phone);
    assert!(lit.starts_with("Messages-Waiting: yes\r\n") && lit.contains("Voice-Message: 1/0"), "{lit}");
}

/// The lamp by subscription, with SIPp as the phone (RFC 3842; the device is trusted at 127.0.0.3): a NOTIFY
/// at once saying no messages, one saying 1 new when a message is left, and a last one when it unsubscribes.
#[test]
fn a_subscribed_phone_hears_its_lamp_change() {
    let d = world();
    let work = tempfile::tempdir().unwrap();
    let server = d.sip.to_string();
    let args = ["-s", "2001", "-m", "1", "-p", "0", &server];
    let Some(phone) = switchboard_testkit::sipp::spawn(work.path(), "subscribe_mwi.xml", "127.0.0.3", &args) else {
        return;
    };
    assert!(
        wait_until(Duration::from_secs(5), || d.log().contains("MWI subscription")),
        "no subscription: {}",
        d.log()
    );
    leave_message(&d, "vm-lamp");
    let run = phone.wait(Duration::from_secs(30));
    assert!(
        run.success,
        "the subscriber's scenario failed:\n{}\n{}\n{}\n{}",
        run.stderr,
        run.errors,
        run.messages,
        d.log()
    );
}

/// The outbox as the CLI lists it, newest first.
fn outbox(d: &Daemon) -> Vec<serde_json::Value> {
    serde_json::from_str(&d.cli_ok(&["outbox", "--json"])).unwrap()
}

fn smtp_config(sink: &SmtpSink) -> String {
    format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"Voicemail <vm@carrier.test>\"\nretry_min_secs = 1\nretry_max_secs = 2\n",
        sink.addr.port()
    )
}

/// Voicemail to email through a real SMTP conversation: the message arrives with its audio attached (the tone
/// the caller left), the caller and length in the body; the mailbox keeps no copy, so the message is deleted
/// once sent, file and row.
#[test]
fn a_message_is_emailed_with_its_audio_attached() {
    let sink = SmtpSink::start();
    let d = world_with(&smtp_config(&sink));
    d.cli_ok(&["number", "edit", NUMBER, "--voicemail-email", "owner@customer.test", "--voicemail-email-keep", "no"]);
    leave_message(&d, "vm-email");
    assert!(wait_until(Duration::from_secs(10), || !sink.mails().is_empty()), "no email: {}", d.log());
    let mail = sink.mails().remove(0);
    assert_eq!(mail.to, ["owner@customer.test"]);
    assert_eq!(mail.from, "vm@carrier.test");
    let subject = mail.header("Subject").unwrap();
    assert!(subject.contains("Alice Smith") && subject.contains(NUMBER), "{subject}");
    let parts = mail.parts();
    assert_eq!(parts.len(), 2, "text and attachment: {}", mail.data);
    assert!(parts[0].1.contains("Length: 0:01") || parts[0].1.contains("Length: 0:02"), "{}", parts[0].1);
    assert!(parts[1].0.contains("audio/wav") && parts[1].0.contains("base64"), "{}", parts[1].0);
    let wav_bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, parts[1].1.replace("\r\n", ""))
        .expect("base64 attachment");
    let samples = wav::read_samples(&wav_bytes).expect("an 8 kHz WAV");
    assert!(samples.len() > 8_000 && player::level(&samples) > 2_000, "the caller's tone is in it");
    // Sent, and the message (kept nowhere else) is gone.
    assert!(wait_until(Duration::from_secs(5), || messages(&d).is_empty()), "{:?}", messages(&d));
    assert!(walk(&d.dir().join("data/voicemail")).is_empty());
    assert_eq!(outbox(&d)[0]["status"], "sent");
}

/// A failing SMTP server delays email and loses nothing: the email waits (the outbox shows why), survives a
/// restart, and goes once the server takes mail again; the mailbox keeps its copy.
#[test]
fn email_waits_out_a_failing_server_and_a_restart() {
    let sink = SmtpSink::start();
    sink.refuse(true);
    let mut d = world_with(&smtp_config(&sink));
    d.cli_ok(&["number", "edit", NUMBER, "--voicemail-email", "owner@customer.test"]);
    leave_message(&d, "vm-email-later");
    assert!(
        wait_until(Duration::from_secs(10), || outbox(&d).first().is_some_and(|e| e["attempts"].as_i64() >= Some(1))),
        "{:?}",
        outbox(&d)
    );
    let queued = &outbox(&d)[0];
    assert_eq!(queued["status"], "queued");
    assert!(queued["last_error"].as_str().unwrap_or_default().contains("451"), "{queued}");
    assert!(d.cli_ok(&["outbox"]).contains("Try again later"));
    d.restart();
    sink.refuse(false);
    assert!(wait_until(Duration::from_secs(15), || sink.mails().len() == 1), "{:?}\n{}", outbox(&d), d.log());
    assert!(wait_until(Duration::from_secs(5), || outbox(&d)[0]["status"] == "sent"));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(sink.mails().len(), 1, "sent once");
    assert_eq!(messages(&d).len(), 1, "the mailbox keeps its copy");
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

/// The mailbox over the management API: the message is listed, its recording plays (the same bytes as the file),
/// marking it saved and deleting it relight the phone's lamp, the file goes with it, and another customer's
/// token finds none of it.
#[test]
fn the_api_plays_saves_and_deletes_a_message_and_the_lamp_follows() {
    let d = world();
    let api = d.http(Some(&d.token("ops", None)));
    d.cli_ok(&["customer", "add", "Other"]);
    let stranger = d.http(Some(&d.token("other", Some("Other"))));
    let mut phone = SipClient::udp(d.sip);
    let reg = phone.register("2001", &[&format!("Contact: <{}>", phone.contact("2001"))]);
    assert_eq!(phone.request_with_auth(reg, "2001", "pass-2001", Some("SHA-256")).status(), Some(200));
    let mut next_summary = || {
        let n = phone.recv_request(WAIT).expect("a NOTIFY");
        phone.send(&switchboard_sip_core::validate::response_to(&n.headers, 200, "OK", Some("p1")));
        String::from_utf8(n.body).unwrap()
    };
    assert!(next_summary().starts_with("Messages-Waiting: no\r\n"));
    leave_message(&d, "vm-api");
    assert!(next_summary().contains("Voice-Message: 1/0"));
    let stored = wait_for_messages(&d, 1);

    let service = api.get("/api/v1/services").json()[0]["id"].as_i64().unwrap();
    let number = api.get(&format!("/api/v1/services/{service}/numbers")).json()[0]["id"].as_i64().unwrap();
    let list = api.get(&format!("/api/v1/numbers/{number}/voicemails")).json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!((list[0]["status"].as_str(), list[0]["caller"].as_str()), (Some("new"), Some("+61400000001")));
    assert!(list[0].get("file").is_none(), "the server's file path is not shown");
    let id = list[0]["id"].as_i64().unwrap();
    // The call that left it is on record (written behind the call).
    let cdrs = |api: &switchboard_testkit::http::Http| api.get(&format!("/api/v1/services/{service}/cdrs")).json();
    assert!(wait_until(WAIT, || cdrs(&api).as_array().is_some_and(|a| !a.is_empty())));
    let cdr = &cdrs(&api)[0];
    assert_eq!((cdr["callee"].as_str(), cdr["divert_reason"].as_str()), (Some(NUMBER), Some("all")), "{cdr}");
    assert_eq!((cdr["diverted_to"].as_str(), cdr["direction"].as_str()), (Some("voicemail"), Some("inbound")));
    // The daemon's figures are published once a second.
    let page = || d.http(None).get("/metrics").text();
    let diverts = |p: &str| switchboard_testkit::http::metric(p, "switchboard_diverts_total{reason=\"all\"}");
    assert!(wait_until(WAIT, || diverts(&page()) == Some(1.0)), "{}", page());
    let metrics = page();
    let metric = |series: &str| switchboard_testkit::http::metric(&metrics, series);
    assert_eq!(metric("switchboard_voicemail_messages{status=\"new\"}"), Some(1.0));
    assert_eq!(metric("switchboard_gateway_up{gateway=\"gw1\"}"), Some(1.0));
    assert!(metric("switchboard_media_packets_relayed_total").unwrap() > 50.0, "the message's audio was relayed");

    let path = d.dir().join("data/voicemail").join(stored[0]["file"].as_str().unwrap());
    let audio = api.get(&format!("/api/v1/voicemails/{id}/audio"));
    assert_eq!((audio.status, audio.header("content-type")), (200, Some("audio/wav")));
    assert_eq!(audio.body, std::fs::read(&path).unwrap(), "the recording as stored");
    let download = api.get(&format!("/api/v1/voicemails/{id}/audio?download=true"));
    assert!(download.header("content-disposition").unwrap().starts_with("attachment; filename=\"voicemail-"));

    for (method, p) in [
        ("GET", format!("/api/v1/numbers/{number}/voicemails")),
        ("GET", format!("/api/v1/voicemails/{id}")),
        ("GET", format!("/api/v1/voicemails/{id}/audio")),
        ("PATCH", format!("/api/v1/voicemails/{id}")),
        ("DELETE", format!("/api/v1/voicemails/{id}")),
    ] {
        let body = (method == "PATCH").then(|| serde_json::json!({"status": "saved"}));
        let r = stranger.request(method, &p, body.as_ref());
        assert_eq!(r.status, 404, "{method} {p}: {}", r.text());
    }
    assert_eq!(messages(&d)[0]["status"], "new", "the stranger changed nothing");

    let bad = api.patch(&format!("/api/v1/voicemails/{id}"), &serde_json::json!({"status": "recording"}));
    assert_eq!((bad.status, bad.json()["field"].as_str()), (422, Some("status")));
    let saved = api.patch(&format!("/api/v1/voicemails/{id}"), &serde_json::json!({"status": "saved"}));
    assert_eq!(saved.json()["status"], "saved");
    let lamp = next_summary();
    assert!(lamp.starts_with("Messages-Waiting: no\r\n") && lamp.contains("Voice-Message: 0/1"), "{lamp}");

    assert_eq!(api.delete(&format!("/api/v1/voicemails/{id}")).status, 204);
    let lamp = next_summary();
    assert!(lamp.contains("Voice-Message: 0/0"), "{lamp}");
    assert!(!path.exists(), "the recording went with the message");
    assert!(messages(&d).is_empty());
    assert_eq!(api.get(&format!("/api/v1/voicemails/{id}/audio")).status, 404);
}
