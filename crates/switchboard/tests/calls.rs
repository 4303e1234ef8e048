//! Calls end to end: the real `switchboard` binary, provisioned through its CLI, with SIPp playing the carrier
//! gateways (127.0.0.2 and 127.0.0.3, trusted by address), the devices and the PBX (127.0.0.1 when it registers,
//! 127.0.0.4 when it is trusted by address).
//!
//! A device that receives calls is registered by our own client from a port, which SIPp then takes over as a
//! UAS: the daemon sends INVITEs to the address a REGISTER came from.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::path::Path;
use std::time::{Duration, Instant};

use switchboard_testkit::client::SipClient;
use switchboard_testkit::daemon::{Daemon, free_port};
use switchboard_testkit::sipp::{self, Run, Sipp};
use switchboard_testkit::wait_until;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const LIMIT: Duration = Duration::from_secs(40);

/// MD5 first (SIPp answers only the first challenge); gateway health checks out of the way of the scenarios.
const CONFIG: &str = "[auth]\nalgorithms = [\"MD5\", \"SHA-256\"]\n[calls]\ngateway_check_secs = 3600\n";

const ACME_NUMBER: &str = "+61299990001";
const BETA_NUMBER_1: &str = "+61399990001";
const BETA_NUMBER_2: &str = "+61399990002";
const CALLER: &str = "+61400000001";
/// Where the Beta PBX sits when it is trusted by address rather than registered.
const PBX_IP: &str = "127.0.0.4";

/// A daemon with two customers and two carrier gateways:
/// - Acme (Direct Mode): device `phone` (2001, caller ID +61299990001; local, national, mobile) owning
///   +61299990001 (and +61299990009), and device `kiosk` (2002, local only);
/// - Beta (Trunk Mode): device `pbx` (3001) with +61399990001 and +61399990002;
/// - gateways gw1 at 127.0.0.2 (priority 10) and gw2 at 127.0.0.3 (priority 20).
struct World {
    d: Daemon,
    gw1: u16,
    gw2: u16,
    dir: tempfile::TempDir,
}

impl World {
    /// None (after a loud skip line) when SIPp is missing outside CI; in CI a missing SIPp fails the test.
    fn new(extra_config: &str, number_rules: &[&str]) -> Option<World> {
        World::with(extra_config, number_rules, |_| {})
    }

    /// Like [`World::new`], with `before_launch` run on the provisioned daemon before it starts (so its edits are
    /// loaded at start rather than through the change log).
    fn with(extra_config: &str, number_rules: &[&str], before_launch: impl FnOnce(&Daemon)) -> Option<World> {
        if !switchboard_testkit::require_program("sipp", "sip-tester") {
            return None;
        }
        let mut d = Daemon::new(BIN, &format!("{CONFIG}{extra_config}"));
        let (gw1, gw2) = (free_port(), free_port());
        d.cli_ok(&["customer", "add", "Acme"]);
        d.cli_ok(&["service", "add", "--customer", "Acme", "--name", "acme", "--mode", "direct"]);
        d.cli_ok(&[
            "device",
            "add",
            "--service",
            "acme",
            "--name",
            "phone",
            "--auth-id",
            "2001",
            "--password",
            "pass-2001",
            "--caller-id",
            ACME_NUMBER,
            "--call-types",
            "local,national,mobile",
        ]);
        d.cli_ok(&[
            "device",
            "add",
            "--service",
            "acme",
            "--name",
            "kiosk",
            "--auth-id",
            "2002",
            "--password",
            "pass-2002",
            "--caller-id",
            ACME_NUMBER,
            "--call-types",
            "local",
        ]);
        let mut add = vec!["number", "add", "--service", "acme", "--number", ACME_NUMBER, "--device", "phone"];
        add.extend_from_slice(if number_rules.is_empty() { &["--divert-when", "never"] } else { number_rules });
        d.cli_ok(&add);
        d.cli_ok(&["number", "add", "--service", "acme", "--number", "+61299990009", "--divert-when", "never"]);
        d.cli_ok(&["customer", "add", "Beta"]);
        d.cli_ok(&["service", "add", "--customer", "Beta", "--name", "beta", "--mode", "trunk"]);
        d.cli_ok(&[
            "device",
            "add",
            "--service",
            "beta",
            "--name",
            "pbx",
            "--auth-id",
            "3001",
            "--password",
            "pass-3001",
            "--caller-id",
            BETA_NUMBER_1,
            "--call-types",
            "local,national,mobile,international",
        ]);
        for n in [BETA_NUMBER_1, BETA_NUMBER_2] {
            d.cli_ok(&["number", "add", "--service", "beta", "--number", n, "--divert-when", "never"]);
        }
        let a1 = format!("127.0.0.2:{gw1}");
        let a2 = format!("127.0.0.3:{gw2}");
        d.cli_ok(&["gateway", "add", "--name", "gw1", "--address", &a1, "--priority", "10"]);
        d.cli_ok(&["gateway", "add", "--name", "gw2", "--address", &a2, "--priority", "20"]);
        before_launch(&d);
        d.launch();
        Some(World { d, gw1, gw2, dir: tempfile::tempdir().unwrap() })
    }

    fn workdir(&self) -> &Path {
        self.dir.path()
    }

    /// Registers `auth_id` from a fresh local port and hands the port back for a SIPp UAS to take over.
    fn register_port(&self, auth_id: &str, password: &str) -> u16 {
        let mut c = SipClient::udp(self.d.sip);
        let contact = format!("Contact: <{}>", c.contact(auth_id));
        let r = c.register(auth_id, &[contact.as_str()]);
        let resp = c.request_with_auth(r, auth_id, password, Some("MD5"));
        assert_eq!(resp.status(), Some(200), "registration of {auth_id}");
        let port = c.local().port();
        drop(c);
        self.wait_bound(auth_id);
        port
    }

    fn wait_bound(&self, auth_id: &str) {
        assert!(
            wait_until(Duration::from_secs(5), || self.d.registrations().iter().any(|r| r["auth_id"] == auth_id)),
            "{auth_id} never showed as registered"
        );
    }

    /// A SIPp UAS on 127.0.0.1:`port` (a device or the PBX) or on a gateway's address.
    fn uas(&self, ip: &str, port: u16, scenario: &str, calls: u32, hold_ms: u32) -> Sipp {
        sipp::spawn(
            self.workdir(),
            scenario,
            ip,
            &["-p", &port.to_string(), "-aa", "-m", &calls.to_string(), "-d", &hold_ms.to_string()],
        )
        .expect("sipp")
    }

    /// A carrier gateway (at `ip`, trusted by address) calling `number`.
    fn gateway_calls(&self, ip: &str, scenario: &str, number: &str, hold_ms: u32) -> Sipp {
        let port = free_port().to_string();
        let server = self.d.sip.to_string();
        let hold = hold_ms.to_string();
        let args = ["-p", &port, "-s", number, "-key", "caller", CALLER, "-m", "1", "-d", &hold, &server];
        sipp::spawn(self.workdir(), scenario, ip, &args).expect("sipp")
    }

    /// A device calling `number` with digest auth, presenting `caller`.
    fn device_calls(&self, auth: (&str, &str), caller: &str, scenario: &str, number: &str) -> Sipp {
        self.device_calls_holding(auth, caller, scenario, number, 500)
    }

    /// [`World::device_calls`], holding an answered call for `hold_ms` before hanging up.
    fn device_calls_holding(
        &self,
        auth: (&str, &str),
        caller: &str,
        scenario: &str,
        number: &str,
        hold_ms: u32,
    ) -> Sipp {
        let port = free_port().to_string();
        let server = self.d.sip.to_string();
        let hold = hold_ms.to_string();
        let args = [
            "-p", &port, "-s", number, "-au", auth.0, "-ap", auth.1, "-key", "caller", caller, "-m", "1", "-d", &hold,
            &server,
        ];
        sipp::spawn(self.workdir(), scenario, "127.0.0.1", &args).expect("sipp")
    }

    /// The PBX, trusted at `PBX_IP`:`port`, calling `number` from that address without credentials.
    fn pbx_calls(&self, port: u16, caller: &str, number: &str, hold_ms: u32) -> Sipp {
        let port = port.to_string();
        let server = self.d.sip.to_string();
        let hold = hold_ms.to_string();
        let args = ["-p", &port, "-s", number, "-key", "caller", caller, "-m", "1", "-d", &hold, &server];
        sipp::spawn(self.workdir(), "uac_call.xml", PBX_IP, &args).expect("sipp")
    }

    /// `switchboard calls --json`, parsed.
    fn active_calls(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.d.cli_ok(&["calls", "--json"])).expect("calls --json")
    }

    /// The database id of the device with `auth_id`.
    fn device_id(&self, auth_id: &str) -> i64 {
        let d: serde_json::Value =
            serde_json::from_str(&self.d.cli_ok(&["device", "show", auth_id, "--json"])).expect("device show --json");
        d["id"].as_i64().unwrap_or_else(|| panic!("no id in {d}"))
    }

    fn cdrs(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.d.cli_ok(&["cdr", "--json"])).expect("cdr --json")
    }

    /// Waits for `n` CDRs and returns them, newest first.
    fn wait_cdrs(&self, n: usize) -> Vec<serde_json::Value> {
        let mut last = Vec::new();
        wait_until(Duration::from_secs(5), || {
            last = self.cdrs();
            last.len() >= n
        });
        assert!(last.len() >= n, "expected {n} CDRs, have {last:#?}\n{}", self.d.log());
        last
    }
}

fn ok(name: &str, run: &Run, d: &Daemon) {
    assert!(
        run.success,
        "{name} failed:\n--- stdout\n{}\n--- stderr\n{}\n--- errors\n{}\n--- messages\n{}\n--- daemon log\n{}",
        run.stdout,
        run.stderr,
        run.errors,
        run.messages,
        d.log()
    );
}

/// The messages SIPp received (trace entries headed "received").
fn received(run: &Run) -> Vec<String> {
    run.messages
        .split("----------------------------------------------- ")
        .filter(|block| block.contains("message received"))
        .map(str::to_owned)
        .collect()
}

/// The first received request with `method`.
fn received_request(run: &Run, method: &str) -> String {
    received(run)
        .into_iter()
        .find(|m| m.lines().any(|l| l.starts_with(&format!("{method} "))))
        .unwrap_or_else(|| panic!("no {method} received:\n{}", run.messages))
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn final_status(run: &Run) -> Option<u16> {
    received(run)
        .iter()
        .filter_map(|m| m.lines().find(|l| l.starts_with("SIP/2.0 ")))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u16>().ok())
        .rfind(|&c| c >= 200 && c != 407)
}

#[test]
fn inbound_call_answered_and_the_caller_hangs_up() {
    let Some(w) = World::new("", &[]) else { return };
    let port = w.register_port("2001", "pass-2001");
    let dev = w.uas("127.0.0.1", port, "uas_answer.xml", 1, 300);
    let gw = w.gateway_calls("127.0.0.2", "uac_call.xml", ACME_NUMBER, 1000);
    let gw = gw.wait(LIMIT);
    let dev = dev.wait(LIMIT);
    ok("gateway (caller)", &gw, &w.d);
    ok("device (callee)", &dev, &w.d);
    // The device sees the caller's number, at our domain; nothing of the carrier's addresses.
    let invite = received_request(&dev, "INVITE");
    assert!(header(&invite, "From").unwrap().contains(CALLER), "{invite}");
    // SDP passes through unchanged in this release (media is not anchored), so only the headers are checked.
    let invite = invite.replace('\r', "");
    let start = invite.find("INVITE ").unwrap();
    let headers = invite[start..].split("\n\n").next().unwrap();
    assert!(!headers.contains("127.0.0.2"), "the carrier's address leaks:\n{invite}");
    assert!(header(&invite, "Call-ID").is_some_and(|c| !gw.messages.contains(c)), "one Call-ID per leg");
    let cdr = &w.wait_cdrs(1)[0];
    assert_eq!(cdr["direction"], "inbound");
    assert_eq!(cdr["disposition"], "answered");
    assert_eq!(cdr["callee"], ACME_NUMBER);
    assert_eq!(cdr["caller"], CALLER);
    assert!(cdr["answered_at"].as_i64().is_some());
}

#[test]
fn inbound_call_the_device_hangs_up() {
    let Some(w) = World::new("", &[]) else { return };
    let port = w.register_port("2001", "pass-2001");
    let dev = w.uas("127.0.0.1", port, "uas_answer_hang_up.xml", 1, 800);
    let gw = w.gateway_calls("127.0.0.2", "uac_call_hung_up.xml", ACME_NUMBER, 0).wait(LIMIT);
    let dev = dev.wait(LIMIT);
    ok("gateway (caller)", &gw, &w.d);
    ok("device (callee, hangs up)", &dev, &w.d);
    let cdr = &w.wait_cdrs(1)[0];
    assert_eq!(cdr["disposition"], "answered");
}

#[test]
fn the_caller_cancels_while_the_device_rings() {
    let Some(w) = World::new("", &[]) else { return };
    let port = w.register_port("2001", "pass-2001");
    let dev = w.uas("127.0.0.1", port, "uas_ring.xml", 1, 0);
    let gw = w.gateway_calls("127.0.0.2", "uac_cancel.xml", ACME_NUMBER, 1000).wait(LIMIT);
    let dev = dev.wait(LIMIT);
    ok("gateway (caller, cancels)", &gw, &w.d);
    ok("device (ringing, cancelled)", &dev, &w.d);
    let cdr = &w.wait_cdrs(1)[0];
    assert_eq!(cdr["disposition"], "cancelled");
    assert_eq!(cdr["sip_status"], 487);
}

#[test]
fn a_busy_device_gives_the_caller_486() {
    let Some(w) = World::new("", &[]) else { return };
    let port = w.register_port("2001", "pass-2001");
    let dev = w.uas("127.0.0.1", port, "uas_busy.xml", 1, 0);
    let gw = w.gateway_calls("127.0.0.2", "uac_refused.xml", ACME_NUMBER, 0).wait(LIMIT);
    ok("gateway (caller)", &gw, &w.d);
    ok("device (busy)", &dev.wait(LIMIT), &w.d);
    assert_eq!(final_status(&gw), Some(486));
    assert_eq!(w.wait_cdrs(1)[0]["disposition"], "busy");
}

#[test]
fn an_unregistered_number_gets_480_and_an_unknown_one_404() {
    let Some(w) = World::new("", &[]) else { return };
    let gw = w.gateway_calls("127.0.0.2", "uac_refused.xml", ACME_NUMBER, 0).wait(LIMIT);
    ok("gateway (caller)", &gw, &w.d);
    assert_eq!(final_status(&gw), Some(480));
    let gw = w.gateway_calls("127.0.0.2", "uac_refused.xml", "+61288887777", 0).wait(LIMIT);
    ok("gateway (caller)", &gw, &w.d);
    assert_eq!(final_status(&gw), Some(404));
}

/// The diverted INVITE a gateway received, with its Diversion and History-Info checked for `reason`/`cause`.
fn assert_diverted(run: &Run, to: &str, reason: &str, cause: u16) {
    let invite = received_request(run, "INVITE");
    let ruri = invite.lines().find(|l| l.starts_with("INVITE ")).unwrap();
    assert!(ruri.contains(&format!("sip:{to}@")), "{ruri}");
    let div = header(&invite, "Diversion").unwrap_or_else(|| panic!("no Diversion:\n{invite}"));
    assert!(div.starts_with(&format!("<sip:{ACME_NUMBER}@")), "{div}");
    assert!(div.contains(&format!(";reason={reason};counter=1")), "{div}");
    let hi = header(&invite, "History-Info").unwrap_or_else(|| panic!("no History-Info:\n{invite}"));
    assert!(hi.contains(&format!("<sip:{ACME_NUMBER}@")) && hi.contains(&format!("cause%3D{cause}>;index=1,")), "{hi}");
    assert!(hi.contains(";index=1.1;mp=1"), "{hi}");
    // The original caller's number goes out, not ours.
    assert!(header(&invite, "From").unwrap().contains(CALLER), "{invite}");
}

#[test]
fn no_answer_diverts_to_an_external_number_after_the_configured_time() {
    let Some(w) =
        World::new("", &["--divert-when", "no-answer", "--divert-to", "+61255550000", "--no-answer-secs", "5"])
    else {
        return;
    };
    let port = w.register_port("2001", "pass-2001");
    let dev = w.uas("127.0.0.1", port, "uas_ring.xml", 1, 0);
    let target = w.uas("127.0.0.2", w.gw1, "uas_answer.xml", 1, 0);
    let started = Instant::now();
    let gw = w.gateway_calls("127.0.0.2", "uac_call.xml", ACME_NUMBER, 500).wait(LIMIT);
    ok("gateway (caller)", &gw, &w.d);
    ok("device (rings, then cancelled)", &dev.wait(LIMIT), &w.d);
    let target = target.wait(LIMIT);
    ok("gateway (divert target)", &target, &w.d);
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_diverted(&target, "+61255550000", "no-answer", 408);
    let cdr = &w.wait_cdrs(1)[0];
    assert_eq!(cdr["divert_reason"], "no_answer");
    assert_eq!(cdr["diverted_to"], "+61255550000");
    assert_eq!(cdr["gateway"], "gw1");
    let rang_for = cdr["answered_at"].as_i64().unwrap() - cdr["started_at"].as_i64().unwrap();
    assert!((5000..9000).contains(&rang_for), "answered {rang_for} ms after the start");
}

#[test]
fn all_calls_divert_without_ringing_the_device() {
    let Some(w) = World::new("", &["--divert-when", "all", "--divert-to", "+61255550000"]) else { return };
    let target = w.uas("127.0.0.2", w.gw1, "uas_answer.xml", 1, 0);
    let gw = w.gateway_calls("127.0.0.2", "uac_call.xml", ACME_NUMBER, 300).wait(LIMIT);
    ok("gateway (caller)", &gw, &w.d);
    let target = target.wait(LIMIT);
    ok("gateway (divert target)", &target, &w.d);
    assert_diverted(&target, "+61255550000", "unconditional", 302);
    assert_eq!(w.wait_cdrs(1)[0]["divert_reason"], "all");
}

#[test]
fn offline_divert_when_the_device_stopped_answering_keepalives() {
    let keepalive = "[keepalive]\ninterval_secs = 1\ntimeout_ms = 300\nmax_misses = 1\n";
    let Some(w) = World::new(keepalive, &["--divert-when", "offline", "--divert-to", "+61255550000"]) else { return };
    // Registered, then silent: the port is closed, so keepalives go unanswered.
    w.register_port("2001", "pass-2001");
    assert!(
        wait_until(Duration::from_secs(10), || w
            .d
            .registrations()
            .iter()
            .any(|r| r["auth_id"] == "2001" && r["online"] == false)),
        "the device never went offline: {:#?}",
        w.d.registrations()
    );
    let target = w.uas("127.0.0.2", w.gw1, "uas_answer.xml", 1, 0);
    let gw = w.gateway_calls("127.0.0.2", "uac_call.xml", ACME_NUMBER, 300).wait(LIMIT);
    ok("gateway (caller)", &gw, &w.d);
    let target = target.wait(LIMIT);
    ok("gateway (divert target)", &target, &w.d);
    assert_diverted(&target, "+61255550000", "unavailable", 503);
    assert_eq!(w.wait_cdrs(1)[0]["divert_reason"], "offline");
}

#[test]
fn outbound_call_of_an_enabled_type_goes_out_with_the_devices_caller_id() {
    let Some(w) = World::new("", &[]) else { return };
    let gw = w.uas("127.0.0.2", w.gw1, "uas_answer.xml", 1, 0);
    // National dialling; the device presents a number its customer does not own.
    let dev = w.device_calls(("2001", "pass-2001"), "+61733334444", "uac_auth_call.xml", "0398765432").wait(LIMIT);
    ok("device (caller)", &dev, &w.d);
    let gw = gw.wait(LIMIT);
    ok("gateway (callee)", &gw, &w.d);
    let invite = received_request(&gw, "INVITE");
    assert!(invite.contains("INVITE sip:+61398765432@"), "{invite}");
    assert!(header(&invite, "P-Asserted-Identity").unwrap().contains(ACME_NUMBER), "{invite}");
    assert!(header(&invite, "From").unwrap().contains(ACME_NUMBER), "substituted caller ID:\n{invite}");
    assert!(!invite.contains("+61733334444"), "{invite}");
    let cdr = &w.wait_cdrs(1)[0];
    assert_eq!(cdr["direction"], "outbound");
    assert_eq!(cdr["call_type"], "national");
    assert_eq!(cdr["caller"], ACME_NUMBER);
    assert_eq!(cdr["gateway"], "gw1");
}

#[test]
fn a_caller_id_the_customer_owns_is_kept() {
    let Some(w) = World::new("", &[]) else { return };
    let gw = w.uas("127.0.0.2", w.gw1, "uas_answer.xml", 1, 0);
    let dev = w.device_calls(("2001", "pass-2001"), "0299990009", "uac_auth_call.xml", "0412345678").wait(LIMIT);
    ok("device (caller)", &dev, &w.d);
    let gw = gw.wait(LIMIT);
    ok("gateway (callee)", &gw, &w.d);
    let invite = received_request(&gw, "INVITE");
    assert!(header(&invite, "P-Asserted-Identity").unwrap().contains("+61299990009"), "{invite}");
    assert_eq!(w.wait_cdrs(1)[0]["call_type"], "mobile");
}

#[test]
fn a_barred_call_type_gets_403_naming_it() {
    let Some(w) = World::new("", &[]) else { return };
    let dev =
        w.device_calls(("2001", "pass-2001"), ACME_NUMBER, "uac_auth_refused.xml", "0011442079460000").wait(LIMIT);
    ok("device (caller)", &dev, &w.d);
    let resp = received(&dev).into_iter().find(|m| m.contains("SIP/2.0 403")).expect("a 403");
    let status_line = resp.lines().find(|l| l.starts_with("SIP/2.0 403")).unwrap();
    assert!(status_line.to_lowercase().contains("international"), "{status_line}");
    let cdr = &w.wait_cdrs(1)[0];
    assert_eq!(cdr["disposition"], "rejected");
    assert_eq!(cdr["call_type"], "international");
}

#[test]
fn emergency_calls_go_out_from_a_device_with_every_other_type_barred() {
    let Some(w) = World::new("", &[]) else { return };
    w.d.cli_ok(&["device", "edit", "2002", "--call-types", "local"]);
    let gw = w.uas("127.0.0.2", w.gw1, "uas_answer.xml", 1, 0);
    let national = w.device_calls(("2002", "pass-2002"), ACME_NUMBER, "uac_auth_refused.xml", "0398765432").wait(LIMIT);
    ok("kiosk (national, barred)", &national, &w.d);
    assert_eq!(final_status(&national), Some(403));
    let dev = w.device_calls(("2002", "pass-2002"), ACME_NUMBER, "uac_auth_call.xml", "000").wait(LIMIT);
    ok("kiosk (emergency)", &dev, &w.d);
    let gw = gw.wait(LIMIT);
    ok("gateway (callee)", &gw, &w.d);
    assert!(received_request(&gw, "INVITE").contains("INVITE sip:000@"));
}

#[test]
fn an_on_net_call_between_two_customers_stays_inside() {
    let Some(w) = World::new("", &[]) else { return };
    let port = w.register_port("3001", "pass-3001");
    let pbx = w.uas("127.0.0.1", port, "uas_answer.xml", 1, 0);
    let dev = w.device_calls(("2001", "pass-2001"), ACME_NUMBER, "uac_auth_call.xml", "0399990001").wait(LIMIT);
    ok("device (caller)", &dev, &w.d);
    let pbx = pbx.wait(LIMIT);
    ok("pbx (callee)", &pbx, &w.d);
    let invite = received_request(&pbx, "INVITE");
    assert!(invite.contains(&format!("INVITE sip:{BETA_NUMBER_1}@")), "the trunk gets the dialled number:\n{invite}");
    assert!(header(&invite, "From").unwrap().contains(ACME_NUMBER), "{invite}");
    let cdr = &w.wait_cdrs(1)[0];
    assert_eq!(cdr["direction"], "on_net");
    assert_eq!(cdr["call_type"], "on-net");
}

#[test]
fn a_trunk_pbx_receives_each_of_its_numbers() {
    let Some(w) = World::new("", &[]) else { return };
    let port = w.register_port("3001", "pass-3001");
    let pbx = w.uas("127.0.0.1", port, "uas_answer.xml", 2, 0);
    for n in [BETA_NUMBER_1, BETA_NUMBER_2] {
        let gw = w.gateway_calls("127.0.0.2", "uac_call.xml", n, 200).wait(LIMIT);
        ok("gateway (caller)", &gw, &w.d);
    }
    let pbx = pbx.wait(LIMIT);
    ok("pbx (callee)", &pbx, &w.d);
    let uris: Vec<String> =
        received(&pbx).iter().filter_map(|m| m.lines().find(|l| l.starts_with("INVITE ")).map(str::to_owned)).collect();
    assert_eq!(uris.len(), 2, "{uris:?}");
    assert!(uris[0].contains(&format!("sip:{BETA_NUMBER_1}@")), "{uris:?}");
    assert!(uris[1].contains(&format!("sip:{BETA_NUMBER_2}@")), "{uris:?}");
}

#[test]
fn a_gateway_answering_503_fails_over_to_the_next() {
    let Some(w) = World::new("", &[]) else { return };
    let gw1 = w.uas("127.0.0.2", w.gw1, "uas_unavailable.xml", 1, 0);
    let gw2 = w.uas("127.0.0.3", w.gw2, "uas_answer.xml", 1, 0);
    let dev = w.device_calls(("2001", "pass-2001"), ACME_NUMBER, "uac_auth_call.xml", "0398765432").wait(LIMIT);
    ok("device (caller)", &dev, &w.d);
    ok("gw1 (503)", &gw1.wait(LIMIT), &w.d);
    ok("gw2 (answers)", &gw2.wait(LIMIT), &w.d);
    assert_eq!(w.wait_cdrs(1)[0]["gateway"], "gw2");
}

#[test]
fn a_silent_gateway_is_skipped_after_the_gateway_timeout() {
    // The base configuration ends in its [calls] table, so these keys land there.
    let Some(w) = World::new("gateway_timeout_ms = 1000\n", &[]) else { return };
    // Nothing listens on gw1.
    let gw2 = w.uas("127.0.0.3", w.gw2, "uas_answer.xml", 1, 0);
    let dev = w.device_calls(("2001", "pass-2001"), ACME_NUMBER, "uac_auth_call.xml", "0398765432").wait(LIMIT);
    ok("device (caller)", &dev, &w.d);
    ok("gw2 (answers)", &gw2.wait(LIMIT), &w.d);
    assert_eq!(w.wait_cdrs(1)[0]["gateway"], "gw2");
}

/// The status line of the first `code` response `run` received.
fn status_line(run: &Run, code: u16) -> String {
    let prefix = format!("SIP/2.0 {code} ");
    received(run)
        .iter()
        .find_map(|m| m.lines().find(|l| l.starts_with(&prefix)).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {code} received:\n{}", run.messages))
}

#[test]
fn a_pbx_trusted_by_address_calls_out_without_a_password() {
    let pbx_port = free_port();
    let trusted = format!("{PBX_IP}:{pbx_port}");
    let Some(w) = World::with("", &[], |d| {
        d.cli_ok(&["device", "edit", "3001", "--trusted-address", &trusted]);
    }) else {
        return;
    };
    let gw = w.uas("127.0.0.2", w.gw1, "uas_answer.xml", 1, 0);
    // National dialling from the PBX's 03 area, presenting one of its customer's own numbers.
    let pbx = w.pbx_calls(pbx_port, BETA_NUMBER_2, "0298765432", 300).wait(LIMIT);
    ok("pbx (caller, trusted by address)", &pbx, &w.d);
    assert!(!received(&pbx).iter().any(|m| m.contains("SIP/2.0 407")), "challenged:\n{}", pbx.messages);
    let gw = gw.wait(LIMIT);
    ok("gw1 (callee)", &gw, &w.d);
    let invite = received_request(&gw, "INVITE");
    assert!(invite.contains("INVITE sip:+61298765432@"), "{invite}");
    assert!(header(&invite, "P-Asserted-Identity").unwrap().contains(BETA_NUMBER_2), "{invite}");
    let cdr = &w.wait_cdrs(1)[0];
    assert_eq!(cdr["direction"], "outbound");
    assert_eq!(cdr["disposition"], "answered");
    assert_eq!(cdr["call_type"], "national");
    assert_eq!(cdr["device_id"], w.device_id("3001"));
    assert_eq!(cdr["caller"], BETA_NUMBER_2);
    assert_eq!(cdr["gateway"], "gw1");
}

#[test]
fn a_trusted_pbx_that_does_not_register_is_called_at_its_trusted_address() {
    let pbx_port = free_port();
    let trusted = format!("{PBX_IP}:{pbx_port}");
    let Some(w) = World::with("", &[], |d| {
        d.cli_ok(&["device", "edit", "3001", "--trusted-address", &trusted]);
    }) else {
        return;
    };
    assert!(w.d.registrations().is_empty(), "{:#?}", w.d.registrations());
    let pbx = w.uas(PBX_IP, pbx_port, "uas_answer.xml", 1, 0);
    let gw = w.gateway_calls("127.0.0.2", "uac_call.xml", BETA_NUMBER_2, 300).wait(LIMIT);
    ok("gateway (caller)", &gw, &w.d);
    let pbx = pbx.wait(LIMIT);
    ok("pbx (callee, at its trusted address)", &pbx, &w.d);
    let invite = received_request(&pbx, "INVITE");
    let ruri = invite.lines().find(|l| l.starts_with("INVITE ")).unwrap();
    assert!(ruri.starts_with(&format!("INVITE sip:{BETA_NUMBER_2}@{trusted}")), "{ruri}");
    assert!(header(&invite, "From").unwrap().contains(CALLER), "{invite}");
    let cdr = &w.wait_cdrs(1)[0];
    assert_eq!(cdr["direction"], "inbound");
    assert_eq!(cdr["disposition"], "answered");
    assert_eq!(cdr["callee"], BETA_NUMBER_2);
    assert_eq!(cdr["device_id"], w.device_id("3001"));
}

#[test]
fn the_per_device_call_limit_refuses_a_second_call_but_never_an_emergency_call() {
    let Some(w) = World::new("max_per_device = 1\n", &[]) else { return };
    // gw1 takes the first call and, while it is up, the emergency call.
    let gw = w.uas("127.0.0.2", w.gw1, "uas_answer.xml", 2, 0);
    let first = w.device_calls_holding(("2001", "pass-2001"), ACME_NUMBER, "uac_auth_call.xml", "0398765432", 5000);
    let mut up = Vec::new();
    let answered = wait_until(Duration::from_secs(5), || {
        up = w.active_calls();
        up.iter().any(|c| c["state"] == "answered")
    });
    assert!(answered, "the first call never showed as answered: {up:#?}\n{}", w.d.log());
    assert_eq!(up.len(), 1, "{up:#?}");
    assert_eq!(up[0]["caller"], ACME_NUMBER, "{up:#?}");
    assert_eq!(up[0]["callee"], "+61398765432", "{up:#?}");
    assert_eq!(up[0]["direction"], "outbound", "{up:#?}");
    let first_id = up[0]["call_id"].clone();

    let second = w.device_calls(("2001", "pass-2001"), ACME_NUMBER, "uac_auth_refused.xml", "0398765433").wait(LIMIT);
    ok("device (second call, over the limit)", &second, &w.d);
    assert_eq!(final_status(&second), Some(403));
    let line = status_line(&second, 403);
    assert!(line.to_lowercase().contains("limit"), "{line}");

    let emergency = w.device_calls(("2001", "pass-2001"), ACME_NUMBER, "uac_auth_call.xml", "000").wait(LIMIT);
    ok("device (emergency call, over the limit)", &emergency, &w.d);
    // Both refusal and emergency call happened while the first call was up.
    let still = w.active_calls();
    assert!(still.iter().any(|c| c["call_id"] == first_id), "the first call ended too early: {still:#?}");

    ok("device (first call)", &first.wait(LIMIT), &w.d);
    let gw = gw.wait(LIMIT);
    ok("gw1 (callee of both calls)", &gw, &w.d);
    let uris: Vec<String> =
        received(&gw).iter().filter_map(|m| m.lines().find(|l| l.starts_with("INVITE ")).map(str::to_owned)).collect();
    assert_eq!(uris.len(), 2, "{uris:?}");
    assert!(uris[1].starts_with("INVITE sip:000@"), "{uris:?}");

    let mut left = Vec::new();
    let gone = wait_until(Duration::from_secs(5), || {
        left = w.active_calls();
        left.is_empty()
    });
    assert!(gone, "calls still listed after they ended: {left:#?}");
    let cdrs = w.wait_cdrs(3);
    let refused: Vec<_> = cdrs.iter().filter(|c| c["disposition"] == "rejected").collect();
    assert_eq!(refused.len(), 1, "{cdrs:#?}");
    assert_eq!(refused[0]["sip_status"], 403);
    assert_eq!(refused[0]["call_type"], "national");
    assert_eq!(refused[0]["device_id"], w.device_id("2001"));
    assert_eq!(cdrs.iter().filter(|c| c["disposition"] == "answered").count(), 2, "{cdrs:#?}");
}

#[test]
fn a_divert_rule_edited_while_running_applies_to_the_next_call() {
    let Some(w) = World::new("", &[]) else { return };
    // The default rule, with nothing registered: nobody to ring.
    let before = w.gateway_calls("127.0.0.2", "uac_refused.xml", ACME_NUMBER, 0).wait(LIMIT);
    ok("gateway (caller, before the edit)", &before, &w.d);
    assert_eq!(final_status(&before), Some(480));
    w.d.cli_ok(&["number", "edit", ACME_NUMBER, "--divert-when", "all", "--divert-to", "+61255550000"]);
    // The change log is polled every second.
    std::thread::sleep(Duration::from_secs(2));
    let target = w.uas("127.0.0.2", w.gw1, "uas_answer.xml", 1, 0);
    let gw = w.gateway_calls("127.0.0.2", "uac_call.xml", ACME_NUMBER, 300).wait(LIMIT);
    ok("gateway (caller, after the edit)", &gw, &w.d);
    let target = target.wait(LIMIT);
    ok("gw1 (divert target)", &target, &w.d);
    assert_diverted(&target, "+61255550000", "unconditional", 302);
    let cdr = &w.wait_cdrs(2)[0];
    assert_eq!(cdr["divert_reason"], "all");
    assert_eq!(cdr["diverted_to"], "+61255550000");
}

#[test]
fn an_answered_call_is_cut_at_the_maximum_duration() {
    let Some(w) = World::new("max_duration_secs = 2\n", &[]) else { return };
    let port = w.register_port("2001", "pass-2001");
    let dev = w.uas("127.0.0.1", port, "uas_answer.xml", 1, 0);
    // Neither side hangs up: both wait for our BYE.
    let gw = w.gateway_calls("127.0.0.2", "uac_call_hung_up.xml", ACME_NUMBER, 0).wait(LIMIT);
    ok("gateway (caller, hung up)", &gw, &w.d);
    let dev = dev.wait(LIMIT);
    ok("device (callee, hung up)", &dev, &w.d);
    received_request(&gw, "BYE");
    received_request(&dev, "BYE");
    let cdr = &w.wait_cdrs(1)[0];
    assert_eq!(cdr["disposition"], "answered");
    let answered = cdr["answered_at"].as_i64().expect("answered_at");
    let lasted = cdr["ended_at"].as_i64().expect("ended_at") - answered;
    assert!((2000..4000).contains(&lasted), "cut {lasted} ms after the answer:\n{cdr:#}");
}

#[test]
fn a_call_whose_device_vanishes_is_ended_by_the_dead_call_check() {
    // Probe both legs every second; with T1 = 50 ms an unanswered probe times out (Timer F) after 3.2 s.
    let extra = "check_interval_secs = 1\n[sip]\nt1_ms = 50\n";
    let Some(w) = World::new(extra, &[]) else { return };
    let port = w.register_port("2001", "pass-2001");
    let dev = w.uas("127.0.0.1", port, "uas_answer.xml", 1, 0);
    // The carrier waits for a BYE: it never hangs up itself (and answers the in-dialog probes, -aa).
    let caller_port = free_port().to_string();
    let server = w.d.sip.to_string();
    let args = ["-p", &caller_port, "-aa", "-s", ACME_NUMBER, "-key", "caller", CALLER, "-m", "1", &server];
    let caller = sipp::spawn(w.workdir(), "uac_call_hung_up.xml", "127.0.0.2", &args).expect("sipp");
    assert!(
        wait_until(Duration::from_secs(10), || w.active_calls().iter().any(|c| c["state"] == "answered")),
        "the call was never answered:\n{}",
        w.d.log()
    );
    // The device disappears mid-call without a BYE.
    let _ = dev.stop();
    let started = Instant::now();
    let caller = caller.wait(LIMIT);
    ok("carrier (hung up by the dead-call check)", &caller, &w.d);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "the dead call lasted {took:?}");
    assert!(w.d.log().contains("DeadLeg"), "ended as a dead leg:\n{}", w.d.log());
    assert_eq!(w.wait_cdrs(1)[0]["disposition"], "answered");
}

#[test]
fn incomplete_and_invalid_numbers_get_484_and_404_at_once() {
    let Some(w) = World::new("", &[]) else { return };
    for (dialled, want) in [("0291", 484), ("02987654321", 404)] {
        let started = Instant::now();
        let dev = w.device_calls(("2001", "pass-2001"), ACME_NUMBER, "uac_auth_refused.xml", dialled).wait(LIMIT);
        ok("device (caller)", &dev, &w.d);
        assert_eq!(final_status(&dev), Some(want), "{dialled}");
        assert!(started.elapsed() < Duration::from_secs(5), "{dialled} took {:?}", started.elapsed());
    }
}

#[test]
fn a_gateway_from_the_configuration_file_is_used_beside_the_stored_ones() {
    let port = free_port();
    let extra = format!("[[gateway]]\nname = \"gw-file\"\naddress = \"127.0.0.5:{port}\"\npriority = 1\n");
    let Some(w) = World::new(&extra, &[]) else { return };
    // Priority 1 comes before the stored gw1 (10) and gw2 (20).
    let gw = w.uas("127.0.0.5", port, "uas_answer.xml", 1, 0);
    let dev = w.device_calls(("2001", "pass-2001"), ACME_NUMBER, "uac_auth_call.xml", "0398765432").wait(LIMIT);
    ok("device (caller)", &dev, &w.d);
    ok("file gateway (callee)", &gw.wait(LIMIT), &w.d);
    assert_eq!(w.wait_cdrs(1)[0]["gateway"], "gw-file");
    // It is trusted for inbound calls too.
    let port = w.register_port("2001", "pass-2001");
    let dev = w.uas("127.0.0.1", port, "uas_answer.xml", 1, 0);
    ok(
        "carrier via the file gateway",
        &w.gateway_calls("127.0.0.5", "uac_call.xml", ACME_NUMBER, 200).wait(LIMIT),
        &w.d,
    );
    ok("device (callee)", &dev.wait(LIMIT), &w.d);
}

/// A service takes no more inbound calls at once than its channels (`calls.max_inbound_per_service`): the next
/// carrier call is answered 486, other services are unaffected, and the channel is free again once the call ends.
#[test]
fn a_service_receives_no_more_inbound_calls_at_once_than_its_channels() {
    let Some(w) = World::new("max_inbound_per_service = 1\n", &[]) else { return };
    let port = w.register_port("2001", "pass-2001");
    let dev = w.uas("127.0.0.1", port, "uas_answer.xml", 2, 0);
    let first = w.gateway_calls("127.0.0.2", "uac_call.xml", ACME_NUMBER, 4000);
    let mut up = Vec::new();
    let answered = wait_until(Duration::from_secs(5), || {
        up = w.active_calls();
        up.iter().any(|c| c["state"] == "answered")
    });
    assert!(answered, "the first call never showed as answered: {up:#?}\n{}", w.d.log());
    let second = w.gateway_calls("127.0.0.3", "uac_refused.xml", ACME_NUMBER, 0).wait(LIMIT);
    ok("gateway (second call, over the channels)", &second, &w.d);
    assert_eq!(final_status(&second), Some(486));
    // Another customer's number is not held back (nothing registered there: 480, not 486).
    let other = w.gateway_calls("127.0.0.3", "uac_refused.xml", BETA_NUMBER_1, 0).wait(LIMIT);
    assert_eq!(final_status(&other), Some(480));
    ok("gateway (first call)", &first.wait(LIMIT), &w.d);
    // The channel is released with the call.
    let third = w.gateway_calls("127.0.0.2", "uac_call.xml", ACME_NUMBER, 200).wait(LIMIT);
    ok("gateway (third call, after the first ended)", &third, &w.d);
    ok("device (callee of the first and third calls)", &dev.wait(LIMIT), &w.d);
    let cdrs = w.wait_cdrs(4);
    assert_eq!(cdrs.iter().filter(|c| c["sip_status"] == 486).count(), 1, "{cdrs:#?}");
}

/// The node's own limit (`calls.max_calls`): past it new calls get 503 with Retry-After, emergency calls excepted.
#[test]
fn past_the_node_call_limit_new_calls_get_503_and_emergency_calls_still_go_through() {
    let Some(w) = World::new("max_calls = 1\n", &[]) else { return };
    let port = w.register_port("2001", "pass-2001");
    let dev = w.uas("127.0.0.1", port, "uas_answer.xml", 1, 0);
    let gw = w.uas("127.0.0.2", w.gw1, "uas_answer.xml", 1, 0);
    let first = w.gateway_calls("127.0.0.3", "uac_call.xml", ACME_NUMBER, 4000);
    assert!(wait_until(Duration::from_secs(5), || w.active_calls().iter().any(|c| c["state"] == "answered")));
    let second = w.device_calls(("2001", "pass-2001"), ACME_NUMBER, "uac_auth_refused.xml", "0398765433").wait(LIMIT);
    ok("device (second call, over the node limit)", &second, &w.d);
    assert_eq!(final_status(&second), Some(503));
    assert!(second.messages.contains("Retry-After:"), "{}", second.messages);
    let emergency = w.device_calls(("2001", "pass-2001"), ACME_NUMBER, "uac_auth_call.xml", "000").wait(LIMIT);
    ok("device (emergency call, over the node limit)", &emergency, &w.d);
    ok("gateway (first call)", &first.wait(LIMIT), &w.d);
    ok("device (callee)", &dev.wait(LIMIT), &w.d);
    ok("gw1 (emergency callee)", &gw.wait(LIMIT), &w.d);
}
