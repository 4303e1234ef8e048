//! The per-device digest setting (`device add|edit --digest md5 [--md5-from CIDR]`) end to end, on the default
//! algorithm list (SHA-256 first): an `md5` device registers at once from its office network or its last
//! address, strangers see the same challenges for every Auth ID, and `device show` / `registrations` tell the
//! operator what each device actually authenticates with.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::time::Duration;

use switchboard_sip_core::HeaderName;
use switchboard_testkit::client::SipClient;
use switchboard_testkit::daemon::Daemon;
use switchboard_testkit::sipp;
use switchboard_testkit::wait_until;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const SECS: Duration = Duration::from_secs(5);

fn daemon(devices: &[(&str, &str, &[&str])]) -> Daemon {
    let mut d = Daemon::new(BIN, "");
    d.provision_direct(devices);
    d.launch();
    d
}

/// The algorithms a first REGISTER naming `user` from `client` is challenged with, in order.
fn offered(client: &mut SipClient, user: &str) -> Vec<String> {
    let r = client.register(user, &[&format!("Contact: <{}>", client.contact(user))]);
    client.send(&r);
    let resp = client.recv_response(SECS).expect("challenge");
    assert_eq!(resp.status(), Some(401), "{resp:?}");
    resp.headers
        .get_all(&HeaderName::WwwAuthenticate)
        .map(|v| if v.contains("SHA-256") { "SHA-256".to_owned() } else { "MD5".to_owned() })
        .collect()
}

fn sipp_users(user: &str, password: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let line = format!("SEQUENTIAL\n{user};{password};[authentication username={user} password={password}];300\n");
    std::fs::write(dir.path().join("users.csv"), line).unwrap();
    dir
}

/// SIPp reads only the first challenge and knows only MD5: on the default list it cannot register a modern
/// device, and registers an `md5` device from its office network at the first attempt.
#[test]
fn sipp_registers_an_md5_device_at_once_on_the_default_list() {
    let d = daemon(&[
        ("5001", "pass-5001-x", &["--digest", "md5", "--md5-from", "127.0.0.0/8"]),
        ("5002", "pass-5002-x", &[]),
    ]);
    let dir = sipp_users("5001", "pass-5001-x");
    let Some(run) = sipp::run(dir.path(), "register_auth.xml", d.sip, &["-inf", "users.csv", "-m", "1"]) else {
        return;
    };
    assert!(run.success, "SIPp failed:\n{}\n{}\n{}", run.stdout, run.errors, run.messages);
    assert!(!run.messages.contains("SHA-256"), "offered MD5 alone:\n{}", run.messages);
    // The same SIPp against the modern device fails: SHA-256 comes first.
    let dir = sipp_users("5002", "pass-5002-x");
    let run = sipp::run(dir.path(), "register_auth.xml", d.sip, &["-inf", "users.csv", "-m", "1"]).unwrap();
    assert!(!run.success, "a modern device is offered SHA-256 first, which SIPp cannot answer");
    // What the device used is recorded and shown.
    assert!(wait_until(SECS, || d.cli_ok(&["device", "show", "5001"]).contains("last auth:     MD5 from 127.0.0.1")));
    let shown = d.cli_ok(&["device", "show", "5001"]);
    assert!(shown.contains("digest:        md5 (MD5 alone from its last address and 127.0.0.0/8)"), "{shown}");
    assert!(shown.contains("(SIPp)"), "the User-Agent: {shown}");
    let regs = d.registrations();
    let r = regs.iter().find(|r| r["auth_id"] == "5001").expect("bound");
    assert_eq!(r["auth_algorithm"], "MD5", "{r}");
    let table = d.cli_ok(&["registrations"]);
    assert!(table.contains("DIGEST") && table.lines().any(|l| l.starts_with("5001") && l.contains(" MD5 ")), "{table}");
}

/// A prober that never authenticated from a device's address sees, for an `md5` device, a modern device and an
/// Auth ID that does not exist, exactly the same challenges. The device itself, once it has authenticated from
/// an address, is offered MD5 alone there, also after a restart.
#[test]
fn md5_alone_is_offered_only_where_it_reveals_nothing() {
    let mut d = daemon(&[("5101", "pass-5101-x", &["--digest", "md5"]), ("5102", "pass-5102-x", &[])]);
    // Each probe a fresh client (its own port and Call-ID): a client that comes back without credentials on the
    // same registration is taken for a legacy stack and offered MD5 alone, whatever the Auth ID.
    let probe = |user: &str| offered(&mut SipClient::udp_from("127.0.0.7", d.sip), user);
    let for_md5 = probe("5101");
    assert_eq!(for_md5, ["SHA-256", "MD5"]);
    assert_eq!(probe("5102"), for_md5);
    assert_eq!(probe("no-such-device"), for_md5);

    // The device registers from 127.0.0.8 (choosing MD5 from the list), and from then on gets MD5 alone there.
    let mut ata = SipClient::udp_from("127.0.0.8", d.sip);
    let r = ata.register("5101", &[&format!("Contact: <{}>", ata.contact("5101"))]);
    assert_eq!(ata.request_with_auth(r, "5101", "pass-5101-x", Some("MD5")).status(), Some(200));
    let mut ata2 = SipClient::udp_from("127.0.0.8", d.sip);
    assert_eq!(offered(&mut ata2, "5101"), ["MD5"]);
    // Not from elsewhere, and never for the modern device.
    assert_eq!(probe("5101"), ["SHA-256", "MD5"]);
    assert_eq!(offered(&mut SipClient::udp_from("127.0.0.8", d.sip), "5102"), ["SHA-256", "MD5"]);
    // The address survives a restart (the write-behind has stored it by then).
    assert!(wait_until(SECS, || d.cli_ok(&["device", "show", "5101"]).contains("from 127.0.0.8")));
    d.restart();
    let mut ata3 = SipClient::udp_from("127.0.0.8", d.sip);
    assert_eq!(offered(&mut ata3, "5101"), ["MD5"]);
}

#[test]
fn digest_settings_are_validated_and_edited() {
    let d = daemon(&[("5201", "pass-5201-x", &[])]);
    let add = |extra: &[&str]| {
        let mut args = vec!["device", "add", "--service", "acme", "--name", "x", "--auth-id", "5299"];
        args.extend_from_slice(extra);
        d.cli(&args)
    };
    for (extra, field) in [
        (&["--digest", "sha1"][..], "--digest"),
        (&["--digest", "md5", "--md5-from", "10.0.0.1/8"][..], "--md5-from"),
        (&["--digest", "md5", "--md5-from", "not-a-network"][..], "--md5-from"),
        (&["--md5-from", "10.0.0.0/8"][..], "--md5-from"),
    ] {
        let out = add(extra);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field), "{extra:?}: {err}");
    }
    d.cli_ok(&["device", "edit", "5201", "--digest", "md5", "--md5-from", "192.0.2.0/24,198.51.100.7"]);
    let shown = d.cli_ok(&["device", "show", "5201"]);
    assert!(shown.contains("md5 (MD5 alone from its last address and 192.0.2.0/24, 198.51.100.7)"), "{shown}");
    assert!(shown.contains("last auth:     never"), "{shown}");
    let json: serde_json::Value = serde_json::from_str(&d.cli_ok(&["device", "show", "5201", "--json"])).unwrap();
    assert_eq!(json["digest"], "md5");
    assert_eq!(json["md5_from"], serde_json::json!(["192.0.2.0/24", "198.51.100.7"]));
    // Back to modern: the networks go with it.
    d.cli_ok(&["device", "edit", "5201", "--digest", "modern"]);
    let json: serde_json::Value = serde_json::from_str(&d.cli_ok(&["device", "show", "5201", "--json"])).unwrap();
    assert_eq!((json["digest"].as_str(), json["md5_from"].as_array().map(Vec::len)), (Some("modern"), Some(0)));
}
