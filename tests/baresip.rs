//! baresip (a real SIP user agent, Debian `baresip-core`) registering with the real daemon.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard_testkit::daemon::{Daemon, free_port};

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
    if !switchboard_testkit::require_program("baresip", "baresip-core") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{port}\nnet_interface 127.0.0.1\naudio_player null\n\
         audio_source null\nrtp_ports 30000-30100\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\n\
         module_app account.so\n"
    );
    std::fs::write(dir.path().join("config"), config).unwrap();
    std::fs::write(
        dir.path().join("accounts"),
        format!("<sip:{user}@{};transport=udp>;auth_pass={password};regint={regint}\n", d.sip),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("baresip.log")).unwrap();
    let child = Command::new("baresip")
        .arg("-f")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start baresip");
    Some(Baresip { child, _dir: dir })
}

fn provision(d: &Daemon, user: &str, password: &str) {
    d.cli_ok(&["customer", "add", "Acme"]);
    d.cli_ok(&["service", "add", "--customer", "Acme", "--name", "acme", "--mode", "direct"]);
    d.cli_ok(&["device", "add", "--service", "acme", "--name", "ata", "--auth-id", user, "--password", password]);
}

/// Polls `registrations --json` until `user` is bound and online, up to `limit`.
fn wait_registered(d: &Daemon, user: &str, limit: Duration) -> Option<serde_json::Value> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(r) = d.registrations().into_iter().find(|r| r["auth_id"] == user && r["online"] == true) {
            return Some(r);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    None
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
