//! Registration end to end: the real `switchboard` binary, provisioned through its CLI, with SIPp and our own
//! test client registering over UDP and TCP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::time::{Duration, Instant};

use switchboard_sip_core::{HeaderName, Message};
use switchboard_testkit::client::{SipClient, contacts};
use switchboard_testkit::daemon::Daemon;
use switchboard_testkit::sipp;
use switchboard_testkit::wait_until;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const SECS: Duration = Duration::from_secs(5);

/// REGISTERs with digest; the client's own Contact is added unless `extra` names contacts itself.
fn register(c: &mut SipClient, user: &str, pw: &str, alg: Option<&str>, extra: &[&str]) -> Message {
    let contact = format!("Contact: <{}>", c.contact(user));
    let mut headers = Vec::new();
    if !extra.iter().any(|e| e.starts_with("Contact:")) {
        headers.push(contact.as_str());
    }
    headers.extend_from_slice(extra);
    let r = c.register(user, &headers);
    c.request_with_auth(r, user, pw, alg)
}

fn registrations_of<'a>(regs: &'a [serde_json::Value], auth_id: &str) -> Vec<&'a serde_json::Value> {
    regs.iter().filter(|r| r["auth_id"] == auth_id).collect()
}

/// A directory holding SIPp's `users.csv` for one user (SIPp takes the whole [authentication] keyword from the
/// CSV: it does not expand fields inside it).
fn sipp_users(user: &str, password: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let line = format!("SEQUENTIAL\n{user};{password};[authentication username={user} password={password}];300\n");
    std::fs::write(dir.path().join("users.csv"), line).unwrap();
    dir
}

const MD5_FIRST: &str = "[auth]\nalgorithms = [\"MD5\", \"SHA-256\"]\n";

#[test]
fn sipp_registers_with_md5_digest_over_udp_and_tcp() {
    let d = Daemon::start_direct(BIN, MD5_FIRST, &[("2001", "correct-horse")]);
    let dir = sipp_users("2001", "correct-horse");
    for transport in ["u1", "t1"] {
        let Some(run) =
            sipp::run(dir.path(), "register_auth.xml", d.sip, &["-inf", "users.csv", "-m", "1", "-t", transport])
        else {
            return;
        };
        assert!(run.success, "SIPp over {transport} failed:\n{}\n{}\n{}", run.stdout, run.errors, run.messages);
        assert!(run.messages.contains("algorithm=MD5"), "SIPp answered with MD5");
        // One binding (Direct Mode replaces), over this transport, once the write-behind has stored it.
        let expected = if transport == "u1" { "udp" } else { "tcp" };
        let stored = wait_until(SECS, || {
            let regs = d.registrations();
            let mine = registrations_of(&regs, "2001");
            mine.len() == 1 && mine[0]["transport"] == expected
        });
        assert!(stored, "binding over {expected}: {:?}", d.registrations());
    }
}

#[test]
fn sipp_with_wrong_password_never_gets_200() {
    let d = Daemon::start_direct(BIN, MD5_FIRST, &[("2002", "right-password")]);
    let dir = sipp_users("2002", "wrong-password");
    let Some(run) = sipp::run(dir.path(), "register_wrong_password.xml", d.sip, &["-inf", "users.csv", "-m", "1"])
    else {
        return;
    };
    assert!(run.success, "expected 401 after the wrong password:\n{}\n{}", run.errors, run.messages);
    assert!(!run.messages.contains("SIP/2.0 200"), "a wrong password got 200");
    assert!(registrations_of(&d.registrations(), "2002").is_empty());
}

#[test]
fn sha256_is_offered_first_and_both_algorithms_register() {
    let d = Daemon::start_direct(BIN, "", &[("2003", "pass-2003-x")]);
    let mut c = SipClient::udp(d.sip);
    let r = c.register("2003", &[]);
    c.send(&r);
    let challenge = c.recv_response(SECS).unwrap();
    assert_eq!(challenge.status(), Some(401));
    let offered: Vec<&str> = challenge.headers.get_all(&HeaderName::WwwAuthenticate).collect();
    assert_eq!(offered.len(), 2);
    assert!(offered[0].contains("algorithm=SHA-256") && offered[1].contains("algorithm=MD5"), "{offered:?}");
    assert!(offered.iter().all(|o| o.contains("qop=\"auth\"")));

    for alg in ["SHA-256", "MD5"] {
        let mut c = SipClient::udp(d.sip);
        let resp = register(&mut c, "2003", "pass-2003-x", Some(alg), &["Expires: 600"]);
        assert_eq!(resp.status(), Some(200), "{alg}: {resp:?}");
        let listed = contacts(&resp);
        assert_eq!(listed.len(), 1, "Direct Mode keeps one binding: {listed:?}");
        assert!(listed[0].contains(&c.local().to_string()) && listed[0].ends_with(";expires=600"), "{listed:?}");
        assert!(resp.header(&HeaderName::Date).is_some(), "200 carries Date (RFC 3261 §10.3 step 8)");
    }
}

/// The response to an unknown Auth ID must be byte-for-byte the response to a wrong password, except for the
/// values that are fresh in every response (nonce, To tag).
#[test]
fn unknown_user_is_indistinguishable_from_wrong_password() {
    let d = Daemon::start_direct(BIN, "", &[("2004", "pass-2004-x")]);
    let normalise = |m: &Message| -> Vec<String> {
        m.headers
            .iter()
            .filter(|h| !matches!(h.name, HeaderName::Via | HeaderName::From | HeaderName::To | HeaderName::CallId))
            .map(|h| {
                let v = h.value.split(", ").filter(|p| !p.starts_with("nonce=")).collect::<Vec<_>>().join(", ");
                let v = v.split(' ').filter(|p| !p.starts_with("nonce=")).collect::<Vec<_>>().join(" ");
                format!("{}: {}", h.name.as_str(), v)
            })
            .collect()
    };
    let mut results = Vec::new();
    for (user, pw) in [("2004", "not-the-password"), ("no-such-user", "not-the-password")] {
        let mut c = SipClient::udp(d.sip);
        let first = {
            let r = c.register(user, &[&format!("Contact: <{}>", c.contact(user))]);
            c.send(&r);
            c.recv_response(SECS).unwrap()
        };
        let mut c2 = SipClient::udp(d.sip);
        let second = register(&mut c2, user, pw, Some("SHA-256"), &[]);
        results.push((first.status(), normalise(&first), second.status(), normalise(&second)));
    }
    assert_eq!(results[0].0, Some(401));
    assert_eq!(results[0].2, Some(401), "a wrong password is challenged again");
    assert_eq!(results[0], results[1], "unknown user and wrong password must look the same");
}

#[test]
fn too_brief_expiry_gets_423_with_min_expires() {
    let d = Daemon::start_direct(BIN, "", &[("2005", "pass-2005-x")]);
    let mut c = SipClient::udp(d.sip);
    let resp = register(&mut c, "2005", "pass-2005-x", None, &["Expires: 10"]);
    assert_eq!(resp.status(), Some(423));
    assert_eq!(resp.header(&HeaderName::MinExpires), Some("60"));
    // Too long is cut to the maximum rather than refused.
    let resp = register(&mut c, "2005", "pass-2005-x", None, &["Expires: 86400"]);
    assert_eq!(resp.status(), Some(200));
    assert!(contacts(&resp)[0].ends_with(";expires=3600"), "{:?}", contacts(&resp));
}

#[test]
fn trunk_binds_several_contacts_and_wildcard_removes_them() {
    let mut d = Daemon::new(BIN, "");
    d.cli_ok(&["customer", "add", "PbxCo"]);
    d.cli_ok(&["service", "add", "--customer", "PbxCo", "--name", "pbx", "--mode", "trunk"]);
    d.cli_ok(&[
        "device",
        "add",
        "--service",
        "pbx",
        "--name",
        "sl1100",
        "--auth-id",
        "pbx1",
        "--password",
        "pbx-secret-1",
        "--max-contacts",
        "3",
    ]);
    d.launch();
    let mut c = SipClient::udp(d.sip);
    let contact =
        format!("Contact: <sip:pbx1@{l}>;q=0.9, <sip:pbx1@{l};transport=udp;line=2>;expires=120", l = c.local());
    let resp = register(&mut c, "pbx1", "pbx-secret-1", None, &[&contact, "Expires: 300"]);
    assert_eq!(resp.status(), Some(200), "trunk device registers: {resp:?}");
    let third = format!(
        "Contact: <sip:pbx1@{}>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000001>\"",
        c.local().ip()
    );
    let resp = register(&mut c, "pbx1", "pbx-secret-1", None, &[&third, "Expires: 300"]);
    assert_eq!(resp.status(), Some(200));
    let listed = contacts(&resp);
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed.iter().any(|l| l.contains(";q=0.900")), "{listed:?}");
    assert!(listed.iter().any(|l| l.contains(";expires=120")), "{listed:?}");
    // A fourth contact is over the device's limit.
    let fourth = format!("Contact: <sip:pbx1@{}:9>", c.local().ip());
    let resp = register(&mut c, "pbx1", "pbx-secret-1", None, &[&fourth]);
    assert_eq!(resp.status(), Some(403));
    assert!(wait_until(SECS, || registrations_of(&d.registrations(), "pbx1").len() == 3));
    // "*" needs Expires: 0 ...
    let resp = register(&mut c, "pbx1", "pbx-secret-1", None, &["Contact: *", "Expires: 30"]);
    assert_eq!(resp.status(), Some(400));
    // ... and then removes everything.
    let resp = register(&mut c, "pbx1", "pbx-secret-1", None, &["Contact: *", "Expires: 0"]);
    assert_eq!(resp.status(), Some(200));
    assert!(contacts(&resp).is_empty());
    assert!(wait_until(SECS, || registrations_of(&d.registrations(), "pbx1").is_empty()));
}

#[test]
fn direct_mode_new_contact_replaces_the_old_one() {
    let d = Daemon::start_direct(BIN, "", &[("2006", "pass-2006-x")]);
    let mut a = SipClient::udp(d.sip);
    assert_eq!(register(&mut a, "2006", "pass-2006-x", None, &[]).status(), Some(200));
    let mut b = SipClient::tcp(d.sip);
    let resp = register(&mut b, "2006", "pass-2006-x", None, &[]);
    assert_eq!(resp.status(), Some(200));
    let listed = contacts(&resp);
    assert_eq!(listed.len(), 1);
    assert!(listed[0].contains(&b.local().to_string()));
    assert!(wait_until(SECS, || {
        let regs = d.registrations();
        let mine = registrations_of(&regs, "2006");
        mine.len() == 1 && mine[0]["transport"] == "tcp"
    }));
}

#[test]
fn registrations_survive_a_clean_restart() {
    let mut d = Daemon::start_direct(BIN, "", &[("2007", "pass-2007-x")]);
    let mut c = SipClient::udp(d.sip);
    assert_eq!(register(&mut c, "2007", "pass-2007-x", None, &["Expires: 900"]).status(), Some(200));
    d.restart();
    let regs = d.registrations();
    let mine = registrations_of(&regs, "2007");
    assert_eq!(mine.len(), 1, "binding stored across restart: {regs:?}");
    assert_eq!(mine[0]["online"], true);
    // The restarted daemon holds it in memory too: a query REGISTER (no Contact) lists it.
    let r = c.register("2007", &[]);
    let resp = c.request_with_auth(r, "2007", "pass-2007-x", None);
    assert_eq!(resp.status(), Some(200));
    assert_eq!(contacts(&resp).len(), 1, "{resp:?}");
}

/// Keepalives for real with short timers: a device that stops answering OPTIONS is reported offline within
/// interval × misses + timeout; one that answers stays online.
#[test]
fn silent_device_is_reported_offline_and_live_one_stays_online() {
    let cfg = "[keepalive]\ninterval_secs = 1\nmax_misses = 2\ntimeout_ms = 900\n";
    let d = Daemon::start_direct(BIN, cfg, &[("2008", "pass-2008-x"), ("2009", "pass-2009-x")]);
    let mut live = SipClient::udp(d.sip);
    let mut silent = SipClient::udp(d.sip);
    silent.answer_options = false;
    assert_eq!(register(&mut live, "2008", "pass-2008-x", None, &[]).status(), Some(200));
    let registered = Instant::now();
    assert_eq!(register(&mut silent, "2009", "pass-2009-x", None, &[]).status(), Some(200));
    // The live device answers keepalives on its own thread, however slow the CLI polling below is.
    let answering = live.answer_in_background();
    // Both stored (write-behind) before watching their states.
    assert!(wait_until(SECS, || {
        let regs = d.registrations();
        registrations_of(&regs, "2008").len() == 1 && registrations_of(&regs, "2009").len() == 1
    }));
    let started = Instant::now();
    let mut went_offline = None;
    while started.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(200));
        let regs = d.registrations();
        let s = registrations_of(&regs, "2009");
        if went_offline.is_none() && s.first().is_some_and(|r| r["online"] == false) {
            went_offline = Some(registered.elapsed());
        }
        let l = registrations_of(&regs, "2008");
        assert_eq!(
            l.first().map(|r| r["online"].clone()),
            Some(serde_json::Value::Bool(true)),
            "live device stays online"
        );
    }
    let live = answering.stop();
    let at = went_offline.expect("silent device reported offline");
    // Probes at 1 s and 2 s, each failing 0.9 s later.
    assert!(at >= Duration::from_millis(2500), "not before two probes have failed: {at:?}");
    assert!(live.requests.len() >= 4, "the live device was probed: {}", live.requests.len());
    assert!(d.log().contains("device state changed"), "state change logged");
}

/// Registration expiry for real, with a short value.
#[test]
fn registration_expires_on_time() {
    let d = Daemon::start_direct(BIN, "[registrar]\nmin_expires = 1\n", &[("2010", "pass-2010-x")]);
    let mut c = SipClient::udp(d.sip);
    let registered = Instant::now();
    assert_eq!(register(&mut c, "2010", "pass-2010-x", None, &["Expires: 4"]).status(), Some(200));
    // Listed once the write-behind has stored it (the CLI reads the database) ...
    assert!(wait_until(Duration::from_secs(3), || registrations_of(&d.registrations(), "2010").len() == 1));
    // ... and gone once it expires, not before.
    let gone = wait_until(Duration::from_secs(10), || registrations_of(&d.registrations(), "2010").is_empty());
    assert!(gone, "expired binding removed");
    assert!(registered.elapsed() >= Duration::from_millis(3900), "removed early: {:?}", registered.elapsed());
}

#[test]
fn brute_force_is_throttled_without_locking_out_the_real_device() {
    let cfg = "[auth]\nmax_failures = 3\n";
    let d = Daemon::start_direct(BIN, cfg, &[("2011", "pass-2011-x")]);
    let mut attacker = SipClient::udp_from("127.0.0.2", d.sip);
    for i in 0..3 {
        let resp = register(&mut attacker, "2011", &format!("guess-{i}"), None, &[]);
        assert_eq!(resp.status(), Some(401));
    }
    // The fourth attempt, even with the right password, is refused for the cool-down.
    let resp = register(&mut attacker, "2011", "pass-2011-x", None, &[]);
    assert_eq!(resp.status(), Some(403), "{resp:?}");
    // The device itself, from its own address, is unaffected.
    let mut device = SipClient::udp_from("127.0.0.1", d.sip);
    assert_eq!(register(&mut device, "2011", "pass-2011-x", None, &[]).status(), Some(200));
}

#[test]
fn replayed_credentials_are_refused() {
    let d = Daemon::start_direct(BIN, "", &[("2012", "pass-2012-x")]);
    let mut c = SipClient::udp(d.sip);
    assert_eq!(register(&mut c, "2012", "pass-2012-x", None, &[]).status(), Some(200));
    // The same Authorization (same nonce, same nc) on a new transaction is a replay.
    let used = c.last_authorization.clone().expect("client kept its Authorization");
    let mut again = c.register("2012", &[&format!("Contact: <{}>", c.contact("2012"))]);
    again.headers.push(HeaderName::Authorization, used);
    c.send(&again);
    let resp = c.recv_response(SECS).unwrap();
    assert_eq!(resp.status(), Some(401), "a reused nonce count is challenged again");
    assert!(resp.headers.get_all(&HeaderName::WwwAuthenticate).any(|v| v.contains("stale=true")));
}

/// The same restart guarantee on PostgreSQL, the multi-node store.
#[test]
fn registrations_survive_a_clean_restart_on_postgresql() {
    let Some(db) = switchboard_testkit::daemon::PgDatabase::create() else { return };
    let mut d = Daemon::with_database(BIN, "", &db.url);
    d.cli_ok(&["customer", "add", "Acme"]);
    d.cli_ok(&["service", "add", "--customer", "Acme", "--name", "acme", "--mode", "direct"]);
    d.cli_ok(&["device", "add", "--service", "acme", "--name", "pg", "--auth-id", "2020", "--password", "pass-2020-x"]);
    d.launch();
    let mut c = SipClient::udp(d.sip);
    assert_eq!(register(&mut c, "2020", "pass-2020-x", None, &["Expires: 900"]).status(), Some(200));
    assert!(wait_until(SECS, || registrations_of(&d.registrations(), "2020").len() == 1));
    d.restart();
    let regs = d.registrations();
    let mine = registrations_of(&regs, "2020");
    assert_eq!(mine.len(), 1, "binding stored across restart: {regs:?}");
    let r = c.register("2020", &[]);
    let resp = c.request_with_auth(r, "2020", "pass-2020-x", None);
    assert_eq!(contacts(&resp).len(), 1, "{resp:?}");
    d.stop();
}

/// Over TCP the keepalive is an OPTIONS on the device's own connection: a device that stops answering, or whose
/// connection closes, goes offline; one that answers stays online.
#[test]
fn tcp_keepalives_find_silent_and_disconnected_devices() {
    let cfg = "[keepalive]\ninterval_secs = 1\nmax_misses = 2\ntimeout_ms = 900\n";
    let d =
        Daemon::start_direct(BIN, cfg, &[("2030", "pass-2030-x"), ("2031", "pass-2031-x"), ("2032", "pass-2032-x")]);
    let mut live = SipClient::tcp(d.sip);
    let mut silent = SipClient::tcp(d.sip);
    silent.answer_options = false;
    let mut gone = SipClient::tcp(d.sip);
    for (c, user) in [(&mut live, "2030"), (&mut silent, "2031"), (&mut gone, "2032")] {
        assert_eq!(register(c, user, &format!("pass-{user}-x"), None, &[]).status(), Some(200));
    }
    drop(gone);
    let answering = live.answer_in_background();
    let state = |user: &str| registrations_of(&d.registrations(), user).first().map(|r| r["online"] == true);
    let both_offline =
        wait_until(Duration::from_secs(8), || state("2031") == Some(false) && state("2032") == Some(false));
    let live = answering.stop();
    assert!(both_offline, "silent and disconnected TCP devices reported offline; log:\n{}", d.log());
    assert_eq!(state("2030"), Some(true), "the answering TCP device stays online");
    assert!(
        live.requests.iter().any(|r| r.header(&HeaderName::Via).is_some_and(|v| v.starts_with("SIP/2.0/TCP"))),
        "keepalives came over the device's TCP connection"
    );
}
