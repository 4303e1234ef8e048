//! The offline alert end to end: the real binary, our client as the phone, a real SMTP server (the testkit sink)
//! receiving the emails. The grace period is one second here, for real.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::time::Duration;

use switchboard_testkit::client::SipClient;
use switchboard_testkit::daemon::Daemon;
use switchboard_testkit::smtp::SmtpSink;
use switchboard_testkit::wait_until;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const NUMBER: &str = "+61299990001";

fn register(d: &Daemon, phone: &mut SipClient, expires: u32) {
    let contact = format!("Contact: <{}>", phone.contact("3001"));
    let reg = phone.register("3001", &[&contact, &format!("Expires: {expires}")]);
    assert_eq!(phone.request_with_auth(reg, "3001", "pass-3001", Some("SHA-256")).status(), Some(200), "{}", d.log());
}

/// The phone unregisters: after the grace its owner is emailed (why, from where, what callers get); it comes
/// back: a second email says so; a restart sends neither again.
#[test]
fn the_owner_hears_when_the_phone_goes_offline_and_comes_back() {
    let sink = SmtpSink::start();
    let config = format!(
        "[alerts]\ngrace_secs = 1\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"alerts@carrier.test\"\n",
        sink.addr.port()
    );
    let mut d = Daemon::new(BIN, &config);
    d.provision_direct(&[("3001", "pass-3001", &[])]);
    let add = ["number", "add", "--service", "acme", "--number", NUMBER, "--device", "3001"];
    d.cli_ok(
        &[
            &add[..],
            &["--divert-when", "offline", "--divert-to", "voicemail", "--offline-alert", "owner@customer.test"],
        ]
        .concat(),
    );
    d.launch();
    let mut phone = SipClient::udp(d.sip);
    register(&d, &mut phone, 3600);
    register(&d, &mut phone, 0);
    assert!(wait_until(Duration::from_secs(10), || sink.mails().len() == 1), "no alert: {}", d.log());
    let down = sink.mails().remove(0);
    assert_eq!(down.to, ["owner@customer.test"]);
    assert!(down.header("Subject").unwrap().contains("all devices offline"), "{}", down.data);
    for words in ["3001", "unregistered", "127.0.0.1 (switchboard-testkit)", "calls go to voicemail"] {
        assert!(down.data.contains(words), "{words:?} in:\n{}", down.data);
    }
    register(&d, &mut phone, 3600);
    assert!(wait_until(Duration::from_secs(10), || sink.mails().len() == 2), "no back-online email: {}", d.log());
    assert!(sink.mails()[1].header("Subject").unwrap().contains("back online"));
    d.restart();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(sink.mails().len(), 2, "a restart sends nothing again");
}
