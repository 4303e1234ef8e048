//! baresip (a real SIP user agent, Debian `baresip-core`) registering with the real daemon.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchboard_testkit::daemon::{Daemon, free_port};
use switchboard_testkit::wait_until;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

struct Baresip {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Baresip {
    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("baresip.log")).unwrap_or_default()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts baresip with one account registering to the daemon every `regint` seconds.
fn baresip(d: &Daemon, user: &str, password: &str, regint: u32) -> Option<Baresip> {
    baresip_with(d, user, password, regint, "", &[])
}

fn baresip_with(
    d: &Daemon,
    user: &str,
    password: &str,
    regint: u32,
    account_params: &str,
    commands: &[&str],
) -> Option<Baresip> {
    baresip_full(d, user, password, regint, account_params, commands, &Extras::default())
}

/// What some tests add to baresip's setup.
#[derive(Default)]
struct Extras<'a> {
    /// The audio source (8 kHz 16-bit mono WAV) instead of ten seconds of tone.
    audio: Option<&'a std::path::Path>,
    /// Lines appended to the configuration (modules and their settings).
    config: String,
    /// Register over TLS to the daemon's TLS port, trusting this certificate (PEM).
    tls_ca: Option<&'a std::path::Path>,
}

/// Starts baresip able to make and take calls: audio from an 8 kHz WAV file (`aufile`: `audio`, else ten
/// seconds of tone), played to ALSA's null device, the account answering calls at once (`answermode=auto`),
/// `commands` run at start (`-e`, e.g. a dial).
fn baresip_full(
    d: &Daemon,
    user: &str,
    password: &str,
    regint: u32,
    account_params: &str,
    commands: &[&str],
    extras: &Extras<'_>,
) -> Option<Baresip> {
    if !switchboard_testkit::require_program("baresip", "baresip-core") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tone = match extras.audio {
        Some(file) => file.to_owned(),
        None => {
            let tone = dir.path().join("tone.wav");
            write_tone(&tone);
            tone
        }
    };
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{port}\nnet_interface 127.0.0.1\naudio_player alsa,null\n\
         audio_source aufile,{}\nrtp_ports 30000-30100\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\n\
         module aufile.so\nmodule alsa.so\nmodule menu.so\nmodule_app account.so\n{}",
        tone.display(),
        extras.config
    );
    let (config, server) = match extras.tls_ca {
        Some(ca) => (format!("{config}\nsip_cafile {}\n", ca.display()), format!("{};transport=tls", d.tls)),
        None => (config, format!("{};transport=udp", d.sip)),
    };
    std::fs::write(dir.path().join("config"), config).unwrap();
    std::fs::write(
        dir.path().join("accounts"),
        format!("<sip:{user}@{server}>;auth_pass={password};regint={regint}{account_params}\n"),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("baresip.log")).unwrap();
    let mut cmd = Command::new("baresip");
    cmd.arg("-f").arg(dir.path());
    for c in commands {
        cmd.arg("-e").arg(c);
    }
    let child = cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().expect("start baresip");
    Some(Baresip { child, _dir: dir })
}

/// Ten seconds of a 440 Hz tone, 8 kHz 16-bit mono PCM WAV: baresip's audio source during calls (it hangs up
/// when the file ends).
fn write_tone(path: &std::path::Path) {
    let samples: Vec<u8> = (0..80_000)
        .flat_map(|i| ((((i as f64) * 440.0 * std::f64::consts::TAU / 8000.0).sin() * 8000.0) as i16).to_le_bytes())
        .collect();
    let mut wav = Vec::with_capacity(44 + samples.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&16000u32.to_le_bytes()); // byte rate
    wav.extend_from_slice(&2u16.to_le_bytes()); // block align
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(&samples);
    std::fs::write(path, wav).unwrap();
}

fn provision(d: &Daemon, user: &str, password: &str) {
    d.provision_direct(&[(user, password, &[])]);
}

/// Polls `registrations --json` until `user` is bound and online, up to `limit`.
fn wait_registered(d: &Daemon, user: &str, limit: Duration) -> Option<serde_json::Value> {
    let mut found = None;
    wait_until(limit, || {
        found = d.registrations().into_iter().find(|r| r["auth_id"] == user && r["online"] == true);
        found.is_some()
    });
    found
}

#[test]
fn baresip_registers_when_offered_md5() {
    let mut d = Daemon::new(BIN, "[auth]\nalgorithms = [\"MD5\"]\n[keepalive]\ninterval_secs = 1\ntimeout_ms = 900\n");
    provision(&d, "4001", "baresip-pw-1");
    d.launch();
    let Some(_ua) = baresip(&d, "4001", "baresip-pw-1", 600) else { return };
    let r = wait_registered(&d, "4001", Duration::from_secs(10)).unwrap_or_else(|| panic!("no binding; {}", d.log()));
    assert_eq!(r["transport"], "udp");
    assert!(r["user_agent"].as_str().unwrap_or_default().starts_with("baresip"), "{r}");
    // baresip answers our OPTIONS keepalives: still online after several probe intervals.
    std::thread::sleep(Duration::from_secs(4));
    let r = d.registrations().into_iter().find(|r| r["auth_id"] == "4001").expect("still bound");
    assert_eq!(r["online"], true, "baresip answers keepalives");
}

/// baresip 1.0 fails on any challenge list holding SHA-256 and retries later without credentials: the default
/// configuration notices and offers that source MD5 alone, so it registers on its own, with no operator action.
#[test]
fn baresip_registers_with_default_config_through_the_md5_fallback() {
    let mut d = Daemon::new(BIN, "");
    provision(&d, "4002", "baresip-pw-2");
    d.launch();
    let Some(_ua) = baresip(&d, "4002", "baresip-pw-2", 600) else { return };
    let r = wait_registered(&d, "4002", Duration::from_secs(120));
    assert!(r.is_some(), "baresip did not register through the fallback; daemon log:\n{}", d.log());
    assert!(d.log().contains("offering it MD5 alone"), "registered through the legacy fallback");
}

/// The operator knows this ATA fails on SHA-256 and sets it to `md5` with its office network: on the default
/// list it registers at the first attempt, without the legacy fallback's lost minute.
#[test]
fn baresip_registers_at_once_as_an_md5_device_on_the_default_list() {
    let mut d = Daemon::new(BIN, "");
    d.provision_direct(&[("4003", "baresip-pw-3", &["--digest", "md5", "--md5-from", "127.0.0.1"])]);
    d.launch();
    let Some(_ua) = baresip(&d, "4003", "baresip-pw-3", 600) else { return };
    let r = wait_registered(&d, "4003", Duration::from_secs(10));
    assert!(r.is_some(), "baresip did not register at once; daemon log:\n{}", d.log());
    assert!(!d.log().contains("offering it MD5 alone"), "not through the legacy fallback");
    let shown = d.cli_ok(&["device", "show", "4003"]);
    assert!(shown.contains("last auth:     MD5 from 127.0.0.1 (baresip"), "{shown}");
}

/// The calls world for baresip: device 4001 on number +61299990001 (national and local calls), a carrier gateway
/// at 127.0.0.2:`gw_port`. baresip 1.0 takes MD5 challenges only.
fn calls_daemon(gw_port: u16) -> Daemon {
    calls_daemon_with(gw_port, "")
}

/// [`calls_daemon`] with more configuration after its `[auth]` table.
fn calls_daemon_with(gw_port: u16, extra: &str) -> Daemon {
    let mut d = Daemon::new(BIN, &format!("[auth]\nalgorithms = [\"MD5\"]\n{extra}"));
    d.cli_ok(&["customer", "add", "Acme"]);
    d.cli_ok(&["service", "add", "--customer", "Acme", "--name", "acme", "--mode", "direct"]);
    d.cli_ok(&[
        "device",
        "add",
        "--service",
        "acme",
        "--name",
        "ata",
        "--auth-id",
        "4001",
        "--password",
        "baresip-pw-1",
        "--caller-id",
        "+61299990001",
        "--call-types",
        "local,national",
    ]);
    d.cli_ok(&[
        "number",
        "add",
        "--service",
        "acme",
        "--number",
        "+61299990001",
        "--device",
        "ata",
        "--divert-when",
        "never",
    ]);
    d.cli_ok(&["gateway", "add", "--name", "carrier", "--address", &format!("127.0.0.2:{gw_port}")]);
    d.launch();
    d
}

fn wait_cdr(d: &Daemon) -> Option<serde_json::Value> {
    let mut newest = None;
    wait_until(Duration::from_secs(10), || {
        let cdrs: Vec<serde_json::Value> = serde_json::from_str(&d.cli_ok(&["cdr", "--json"])).unwrap();
        newest = cdrs.into_iter().next();
        newest.is_some()
    });
    newest
}

/// A SIPp carrier (127.0.0.2) calls +61299990001 for 1.5 s; returns its record once the call is answered and
/// recorded. None when SIPp is missing (a skip outside CI). `log` is shown when it fails.
fn carrier_call_answered(d: &Daemon, log: &dyn Fn() -> String) -> Option<serde_json::Value> {
    let work = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let server = d.sip.to_string();
    let args = ["-p", &port, "-s", "+61299990001", "-key", "caller", "+61400000001", "-m", "1", "-d", "1500", &server];
    let caller = switchboard_testkit::sipp::spawn(work.path(), "uac_call.xml", "127.0.0.2", &args)?;
    let run = caller.wait(Duration::from_secs(30));
    assert!(run.success, "the carrier's call failed:\n{}\n{}\n{}\n{}", run.stderr, run.errors, run.messages, log());
    let cdr = wait_cdr(d).expect("a CDR");
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    Some(cdr)
}

#[test]
fn baresip_takes_a_call_from_the_carrier() {
    let d = calls_daemon(free_port());
    let Some(_ua) = baresip_with(&d, "4001", "baresip-pw-1", 600, ";answermode=auto", &[]) else { return };
    wait_registered(&d, "4001", Duration::from_secs(10)).unwrap_or_else(|| panic!("no binding; {}", d.log()));
    let Some(cdr) = carrier_call_answered(&d, &|| d.log()) else { return };
    assert_eq!(cdr["direction"], "inbound");
}

#[test]
fn baresip_calls_out_through_the_carrier() {
    let gw_port = free_port();
    let d = calls_daemon(gw_port);
    let work = tempfile::tempdir().unwrap();
    let port = gw_port.to_string();
    // The carrier answers, talks for a second and hangs up.
    let args = ["-p", &port, "-aa", "-m", "1", "-d", "1000"];
    let Some(carrier) = switchboard_testkit::sipp::spawn(work.path(), "uas_answer_hang_up.xml", "127.0.0.2", &args)
    else {
        return;
    };
    let Some(_ua) = baresip_with(&d, "4001", "baresip-pw-1", 600, "", &["/dial 0398765432"]) else { return };
    let run = carrier.wait(Duration::from_secs(30));
    assert!(
        run.success,
        "the carrier never got the call:\n{}\n{}\n{}\n{}",
        run.stderr,
        run.errors,
        run.messages,
        d.log()
    );
    let invite = run.messages.split("-----").find(|m| m.contains("INVITE sip:")).unwrap_or_default().to_owned();
    assert!(invite.contains("INVITE sip:+61398765432@"), "{invite}");
    let cdr = wait_cdr(&d).expect("a CDR");
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["direction"], "outbound");
    assert_eq!(cdr["caller"], "+61299990001");
}

/// Spoken test audio: `text` by espeak-ng, 8 kHz 16-bit mono, after `pad_secs` of silence (sox). Returns the
/// file and the speech's length in milliseconds. `None` (after a loud skip line; a failure in CI) without them.
fn speech(dir: &std::path::Path, text: &str, pad_secs: u32) -> Option<(std::path::PathBuf, u64)> {
    if !switchboard_testkit::require_program("espeak-ng", "espeak-ng")
        || !switchboard_testkit::require_program("sox", "sox")
    {
        return None;
    }
    let raw = dir.join("raw.wav");
    let ok = Command::new("espeak-ng").args(["-v", "en-gb", "-w"]).arg(&raw).arg(text).status().unwrap();
    assert!(ok.success());
    let spoken = dir.join("spoken.wav");
    let ok = Command::new("sox").arg(&raw).args(["-r", "8000", "-c", "1", "-b", "16"]).arg(&spoken).status().unwrap();
    assert!(ok.success());
    let speech_ms = (std::fs::metadata(&spoken).unwrap().len() - 44) * 1000 / 16_000;
    let padded = dir.join("message.wav");
    let ok = Command::new("sox").arg(&spoken).arg(&padded).args(["pad", &pad_secs.to_string(), "0"]).status().unwrap();
    assert!(ok.success());
    Some((padded, speech_ms))
}

/// The issue's deposit walk-through with a real phone: baresip calls its own number, which sends every call to
/// voicemail; it waits out the greeting and speaks (espeak-ng), then hangs up when its audio ends. The stored
/// message is speech about as long as what was said, and it arrives by email with the WAV attached.
#[test]
fn baresip_leaves_a_spoken_message_and_it_is_emailed() {
    let work = tempfile::tempdir().unwrap();
    let text = "Hello, this is a test message for the voicemail of Switchboard. Please call me back.";
    let Some((audio, speech_ms)) = speech(work.path(), text, 13) else { return };
    let sink = switchboard_testkit::smtp::SmtpSink::start();
    let mut d = Daemon::new(
        BIN,
        &format!(
            "[auth]\nalgorithms = [\"MD5\"]\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"vm@carrier.test\"\n",
            sink.addr.port()
        ),
    );
    d.provision_direct(&[("4001", "baresip-pw-1", &["--caller-id", "+61299990001", "--call-types", "local,national"])]);
    let add = ["number", "add", "--service", "acme", "--number", "+61299990001", "--device", "4001"];
    let vm = ["--divert-when", "all", "--divert-to", "voicemail", "--voicemail-email", "owner@customer.test"];
    d.cli_ok(&[&add[..], &vm[..]].concat());
    d.launch();
    let extras = Extras { audio: Some(&audio), ..Extras::default() };
    let Some(_ua) = baresip_full(&d, "4001", "baresip-pw-1", 600, "", &["/dial 0299990001"], &extras) else {
        return;
    };
    let mut kept = None;
    wait_until(Duration::from_secs(60), || {
        let m: Vec<serde_json::Value> =
            serde_json::from_str(&d.cli_ok(&["voicemail", "list", "--number", "+61299990001", "--json"])).unwrap();
        kept = m.into_iter().find(|m| m["status"] == "new");
        kept.is_some()
    });
    let m = kept.unwrap_or_else(|| panic!("no message stored:\n{}", d.log()));
    let ms = m["duration_ms"].as_i64().unwrap() as u64;
    assert!(ms + 500 >= speech_ms && ms <= speech_ms + 3_000, "stored {ms} ms of {speech_ms} ms spoken");
    let file = d.dir().join("data/voicemail").join(m["file"].as_str().unwrap());
    let samples = switchboard_media_core::wav::read_samples(&std::fs::read(file).unwrap()).unwrap();
    assert!(switchboard_media_core::player::level(&samples) > 300, "the message is speech, not silence");
    assert!(wait_until(Duration::from_secs(10), || !sink.mails().is_empty()), "no email:\n{}", d.log());
    let mail = sink.mails().remove(0);
    let parts = mail.parts();
    assert!(parts.len() == 2 && parts[1].0.contains("audio/wav"), "{}", mail.data);
    d.stop();
}

/// 8 kHz 16-bit mono WAV: `silent_secs` of silence, `tone_secs` of 440 Hz, then `after_secs` of silence.
fn write_padded_tone(path: &std::path::Path, silent_secs: u32, tone_secs: u32, after_secs: u32) {
    let mut samples: Vec<i16> = vec![0; (silent_secs * 8000) as usize];
    samples.extend(
        (0..tone_secs * 8000).map(|i| ((i as f64 * 440.0 * std::f64::consts::TAU / 8000.0).sin() * 8000.0) as i16),
    );
    samples.extend(std::iter::repeat_n(0, (after_secs * 8000) as usize));
    let mut wav = switchboard_media_core::wav::header((samples.len() * 2) as u32).to_vec();
    switchboard_media_core::wav::samples_to_bytes(&samples, &mut wav);
    std::fs::write(path, wav).unwrap();
}

/// A command to baresip's TCP control interface (a netstring holding JSON, as ctrl_tcp reads it).
fn control(port: u16, command: &str, params: &str) {
    use std::io::Write;
    let json = format!(r#"{{"command":"{command}","params":"{params}","token":"t"}}"#);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("baresip's control port");
    s.write_all(format!("{}:{json},", json.len()).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
}

/// The issue's retrieval walk-through with a real phone: baresip leaves a message (a tone after the greeting),
/// then dials 777, enters the PIN as RFC 4733 digits, presses 1 and hears the message (its own recording of the
/// call holds the tone), deletes it with 7 and leaves with #; the mailbox is then empty.
#[test]
fn baresip_dials_777_hears_its_message_and_deletes_it() {
    let work = tempfile::tempdir().unwrap();
    let audio = work.path().join("say.wav");
    // baresip hangs up when its audio ends: long enough for the whole 777 call; the deposit ends on silence.
    write_padded_tone(&audio, 13, 3, 22);
    let dumps = work.path().join("dumps");
    std::fs::create_dir_all(&dumps).unwrap();
    let ctrl = free_port();
    let mut d = Daemon::new(BIN, "[auth]\nalgorithms = [\"MD5\"]\n[voicemail]\nsilence_secs = 2\n");
    d.provision_direct(&[("4001", "baresip-pw-1", &["--caller-id", "+61299990001", "--call-types", "local,national"])]);
    let add = ["number", "add", "--service", "acme", "--number", "+61299990001", "--device", "4001"];
    d.cli_ok(&[&add[..], &["--divert-when", "all", "--divert-to", "voicemail", "--voicemail-pin", "4321"]].concat());
    d.launch();
    let extras = Extras {
        audio: Some(&audio),
        config: format!(
            "module_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl}\nmodule sndfile.so\nsnd_path {}\n",
            dumps.display()
        ),
        tls_ca: None,
    };
    let Some(ua) = baresip_full(&d, "4001", "baresip-pw-1", 600, "", &[], &extras) else { return };
    wait_registered(&d, "4001", Duration::from_secs(10)).unwrap_or_else(|| panic!("no binding; {}", d.log()));
    control(ctrl, "dial", "0299990001");
    let list = || -> Vec<serde_json::Value> {
        serde_json::from_str(&d.cli_ok(&["voicemail", "list", "--number", "+61299990001", "--json"])).unwrap()
    };
    assert!(
        wait_until(Duration::from_secs(40), || list().iter().any(|m| m["status"] == "new")),
        "no message:\n{}\n{}",
        ua.log(),
        d.log()
    );
    for f in std::fs::read_dir(&dumps).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    control(ctrl, "dial", "777");
    std::thread::sleep(Duration::from_secs(2));
    control(ctrl, "sndcode", "4321#");
    std::thread::sleep(Duration::from_secs(2));
    control(ctrl, "sndcode", "1");
    // The announcement ("Message 1, from ..., received today at ...") and then the message.
    std::thread::sleep(Duration::from_secs(16));
    control(ctrl, "sndcode", "7");
    assert!(wait_until(Duration::from_secs(5), || list().is_empty()), "not deleted: {:?}\n{}", list(), d.log());
    control(ctrl, "sndcode", "#");
    std::thread::sleep(Duration::from_secs(2));
    // What baresip heard: sndfile's dump of the decoded stream of the 777 call.
    let heard: Vec<i16> = std::fs::read_dir(&dumps)
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("dec"))
        .filter_map(|p| switchboard_media_core::wav::read_samples(&std::fs::read(p).unwrap()))
        .flatten()
        .collect();
    let tone_ms = heard.chunks_exact(160).filter(|f| switchboard_testkit::is_tone(f, 440.0)).count() * 20;
    assert!(
        tone_ms >= 1_500,
        "baresip heard {tone_ms} ms of the message's tone (of {} ms heard)\n{}",
        heard.len() / 8,
        ua.log()
    );
    assert!(d.log().contains("777: mailbox opened"));
}

/// baresip over TLS (`;transport=tls`, trusting the certificate the test made): it registers on the TLS port,
/// its binding says tls, and a carrier's call reaches it over that connection and is answered.
#[test]
fn baresip_registers_and_takes_a_call_over_tls() {
    let certs = tempfile::tempdir().unwrap();
    let Some((cert, key)) = switchboard_testkit::tls::self_signed(certs.path(), "sip", "127.0.0.1") else { return };
    let tls = format!("[tls]\ncert = \"{}\"\nkey = \"{}\"\n", cert.display(), key.display());
    let d = calls_daemon_with(free_port(), &tls);
    let extras = Extras { tls_ca: Some(&cert), ..Extras::default() };
    let Some(ua) = baresip_full(&d, "4001", "baresip-pw-1", 600, ";answermode=auto", &[], &extras) else { return };
    let r = wait_registered(&d, "4001", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no binding; baresip:\n{}\ndaemon:\n{}", ua.log(), d.log()));
    assert_eq!(r["transport"], "tls", "{r}");
    carrier_call_answered(&d, &|| ua.log());
}
