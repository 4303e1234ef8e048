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
    baresip_modules(d, user, password, regint, account_params, commands, &[])
}

/// Starts baresip able to make and take calls: audio from an 8 kHz WAV file (`aufile`), played to ALSA's null
/// device, the account answering calls at once (`answermode=auto`), `commands` run at start (`-e`, e.g. a dial),
/// and `modules` loaded besides (`mwi.so`).
fn baresip_modules(
    d: &Daemon,
    user: &str,
    password: &str,
    regint: u32,
    account_params: &str,
    commands: &[&str],
    modules: &[&str],
) -> Option<Baresip> {
    if !switchboard_testkit::require_program("baresip", "baresip-core") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tone = dir.path().join("tone.wav");
    write_tone(&tone);
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{port}\nnet_interface 127.0.0.1\naudio_player alsa,null\n\
         audio_source aufile,{}\nrtp_ports 30000-30100\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\n\
         module aufile.so\nmodule alsa.so\nmodule menu.so\nmodule_app account.so\n{}",
        tone.display(),
        modules.iter().map(|m| format!("module {m}\n")).collect::<String>()
    );
    std::fs::write(dir.path().join("config"), config).unwrap();
    std::fs::write(
        dir.path().join("accounts"),
        format!("<sip:{user}@{};transport=udp>;auth_pass={password};regint={regint}{account_params}\n", d.sip),
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
    let mut d = Daemon::new(BIN, "[auth]\nalgorithms = [\"MD5\"]\n");
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

#[test]
fn baresip_takes_a_call_from_the_carrier() {
    let d = calls_daemon(free_port());
    let Some(_ua) = baresip_with(&d, "4001", "baresip-pw-1", 600, ";answermode=auto", &[]) else { return };
    wait_registered(&d, "4001", Duration::from_secs(10)).unwrap_or_else(|| panic!("no binding; {}", d.log()));
    let work = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let server = d.sip.to_string();
    let args = ["-p", &port, "-s", "+61299990001", "-key", "caller", "+61400000001", "-m", "1", "-d", "1500", &server];
    let Some(caller) = switchboard_testkit::sipp::spawn(work.path(), "uac_call.xml", "127.0.0.2", &args) else {
        return;
    };
    let run = caller.wait(Duration::from_secs(30));
    assert!(run.success, "the carrier's call failed:\n{}\n{}\n{}\n{}", run.stderr, run.errors, run.messages, d.log());
    let cdr = wait_cdr(&d).expect("a CDR");
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
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
