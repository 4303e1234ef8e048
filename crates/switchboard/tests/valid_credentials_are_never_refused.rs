//! Correct credentials are never refused, whatever the network or the load does: retransmissions, late answers
//! and replaced bindings get the answer the original request got, and misconfigured phones sharing an office's
//! NAT address do not lock out the phones that work. Also: under overload new requests are shed with 503 and
//! Retry-After, never with a refusal that counts against the device.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::time::Duration;

use switchboard_sip_core::HeaderName;
use switchboard_testkit::client::SipClient;
use switchboard_testkit::daemon::Daemon;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const SECS: Duration = Duration::from_secs(5);

/// The interleaving load produced (each step seen on the wire at 15,000 REGISTER/s): the challenge is late so the
/// phone retransmits its first REGISTER; the authenticated REGISTER is answered, but the answer is lost, and
/// before the phone's retransmission of it arrives the device has registered again from elsewhere. Before the
/// memory of stateless answers, the retransmitted first REGISTER got a second challenge with another nonce (SIPp
/// aborts on it) and the retransmitted authenticated one was refused as a replay (401 stale), with correct
/// credentials.
#[test]
fn retransmissions_get_the_answer_the_original_got() {
    let d = Daemon::start_direct(BIN, "", &[("3001", "pass-3001-x")]);
    let mut phone = SipClient::udp(d.sip);
    let contact = format!("Contact: <{}>", phone.contact("3001"));
    let first = phone.register("3001", &[&contact]);
    phone.send(&first);
    let challenge = phone.recv_response(SECS).expect("challenge");
    assert_eq!(challenge.status(), Some(401));
    // The first REGISTER again: the same challenge, byte for byte (same nonce, same To tag).
    phone.send(&first);
    let again = phone.recv_response(SECS).expect("challenge again");
    assert_eq!(again.to_bytes(), challenge.to_bytes(), "a retransmission is answered as the original was");

    let authed = phone.authorize(first, &challenge, "3001", "pass-3001-x", None).expect("usable challenge");
    phone.send(&authed);
    let ok = phone.recv_response(SECS).expect("200");
    assert_eq!(ok.status(), Some(200));

    // The device registers again from another address (a new Call-ID): the binding the first exchange made is
    // replaced.
    let mut other = SipClient::udp(d.sip);
    let contact = format!("Contact: <{}>", other.contact("3001"));
    let r = other.register("3001", &[&contact]);
    assert_eq!(other.request_with_auth(r, "3001", "pass-3001-x", None).status(), Some(200));

    // Now the retransmission of the authenticated REGISTER arrives: it gets the original's 200, not a refusal.
    phone.send(&authed);
    let late = phone.recv_response(SECS).expect("answer to the retransmission");
    assert_eq!(late.status(), Some(200), "{late:?}");
    assert_eq!(late.to_bytes(), ok.to_bytes());
    // And nothing was applied twice: the newer registration is the one bound.
    let again = other.register("3001", &[]);
    let listed = other.request_with_auth(again, "3001", "pass-3001-x", None);
    let contacts = switchboard_testkit::client::contacts(&listed);
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert!(contacts[0].contains(&other.local().to_string()), "{contacts:?}");
}

/// Twenty-five phones behind one NAT address (127.0.0.5, each on its own port): five have wrong passwords and keep
/// retrying, twenty are right. The twenty register, and keep re-registering, throughout; the five are refused.
#[test]
fn misconfigured_phones_behind_one_nat_address_do_not_lock_out_the_others() {
    let mut devices: Vec<(String, String)> = Vec::new();
    for i in 0..25 {
        devices.push((format!("40{i:02}"), format!("pass-40{i:02}-x")));
    }
    let refs: Vec<(&str, &str)> = devices.iter().map(|(a, p)| (a.as_str(), p.as_str())).collect();
    let d = Daemon::start_direct(BIN, "", &refs);
    let mut phones: Vec<SipClient> = (0..25).map(|_| SipClient::udp_from("127.0.0.5", d.sip)).collect();
    for round in 0..4 {
        // The bad phones retry several times a round (a phone that fails often retries at once).
        for (i, phone) in phones.iter_mut().enumerate().skip(20) {
            for _ in 0..5 {
                let r = phone.register(&devices[i].0, &[&format!("Contact: <{}>", phone.contact(&devices[i].0))]);
                let resp = phone.request_with_auth(r, &devices[i].0, "wrong-password", None);
                assert!(matches!(resp.status(), Some(401 | 403)), "round {round}: {resp:?}");
            }
        }
        for (i, phone) in phones.iter_mut().enumerate().take(20) {
            let (user, pw) = &devices[i];
            let r = phone.register(user, &[&format!("Contact: <{}>", phone.contact(user))]);
            let resp = phone.request_with_auth(r, user, pw, None);
            assert_eq!(resp.status(), Some(200), "round {round}, phone {user}: {resp:?}");
        }
    }
    // The bad phones themselves are refused by now.
    let bad = &devices[20].0;
    let r = phones[20].register(bad, &[]);
    assert_eq!(phones[20].request_with_auth(r, bad, "wrong-password", None).status(), Some(403));
}

/// Overload control, wired end to end: with a queueing target of 1 ms and a request stream the daemon cannot
/// drain that fast, new requests get 503 with Retry-After while authenticated ones still complete. Counted
/// against nobody: the same phone registers normally as soon as the load stops.
#[test]
fn under_overload_new_requests_get_503_with_retry_after_and_nobody_is_locked_out() {
    let d = Daemon::start_direct(
        BIN,
        "[sip]\noverload_queue_ms = 1\noverload_retry_after_secs = 7\n",
        &[("3101", "pass-3101-x")],
    );
    let mut flood = SipClient::udp_from("127.0.0.6", d.sip);
    let mut shed = None;
    // Bursts of unauthenticated REGISTERs: each burst queues well past 1 ms in the daemon.
    for _ in 0..200 {
        for _ in 0..200 {
            let r = flood.register("3101", &[]);
            flood.send(&r);
        }
        while let Some(resp) = flood.recv_response(Duration::from_millis(20)) {
            if resp.status() == Some(503) {
                shed = Some(resp);
            }
        }
        if shed.is_some() {
            break;
        }
    }
    let shed = shed.expect("a 503 while the daemon was flooded");
    assert_eq!(shed.headers.get(&HeaderName::RetryAfter), Some("7"));
    // Load over: the phone registers at once, from the very address that flooded.
    std::thread::sleep(Duration::from_millis(500));
    let mut phone = SipClient::udp_from("127.0.0.6", d.sip);
    let r = phone.register("3101", &[&format!("Contact: <{}>", phone.contact("3101"))]);
    assert_eq!(phone.request_with_auth(r, "3101", "pass-3101-x", None).status(), Some(200));
    assert!(d.log().contains("overloaded"), "the overload is logged");
}
