//! The registrar rules row by row (RFC 3261 §10.3), with virtual time.

use super::*;
use switchboard_sip_core::header::{Contacts, NameAddr};

const T0: Millis = 1_700_000_000_000;

fn contacts(list: &[&str]) -> Contacts {
    Contacts::List(list.iter().map(|c| NameAddr::parse(c, "Contact").unwrap()).collect())
}

fn req(device_id: i64, max: usize, call_id: &str, cseq: u32, c: Contacts, expires: Option<u32>) -> RegisterRequest {
    RegisterRequest {
        device_id,
        max_contacts: max,
        aor: "sip:100@example.com".into(),
        call_id: call_id.into(),
        cseq,
        contacts: c,
        expires,
        source: "192.0.2.1:5060".into(),
        transport: "udp".into(),
        local: "127.0.0.1:5060".into(),
        path: vec![],
        user_agent: Some("test".into()),
    }
}

fn ok(r: RegisterResult) -> Vec<Binding> {
    match r {
        RegisterResult::Ok(b) => b,
        other => panic!("expected 200, got {other:?}"),
    }
}

fn reg() -> Registrar {
    Registrar::new(Config::default())
}

#[test]
fn first_register_binds_and_brings_device_online() {
    let mut r = reg();
    let b = ok(r.on_register(req(1, 1, "c1", 1, contacts(&["<sip:100@10.0.0.5:5060>"]), Some(600)), T0));
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].expires_at, T0 + 600_000);
    assert_eq!(b[0].contact_value(T0), "<sip:100@10.0.0.5:5060>;expires=600");
    let out = r.drain_outputs();
    assert!(matches!(out[0], Output::Upsert(_)));
    assert_eq!(out[1], Output::DeviceOnline { device_id: 1, at: T0 });
    assert!(r.is_online(1));
}

#[test]
fn expires_param_beats_header_and_default_applies_when_neither() {
    let mut r = reg();
    let b = ok(r.on_register(req(1, 5, "c1", 1, contacts(&["<sip:a@h1>;expires=120", "<sip:b@h2>"]), Some(300)), T0));
    assert_eq!(b[0].expires_at - T0, 120_000);
    assert_eq!(b[1].expires_at - T0, 300_000);
    let b = ok(r.on_register(req(2, 5, "c2", 1, contacts(&["<sip:c@h3>"]), None), T0));
    assert_eq!(b[0].expires_at - T0, 3_600_000);
}

#[test]
fn too_brief_gets_423_and_changes_nothing() {
    let mut r = reg();
    let res = r.on_register(req(1, 5, "c1", 1, contacts(&["<sip:a@h1>", "<sip:b@h2>;expires=30"]), Some(600)), T0);
    assert_eq!(res, RegisterResult::IntervalTooBrief(60));
    assert!(r.bindings(1).is_empty());
    assert!(r.drain_outputs().is_empty());
}

#[test]
fn too_long_is_cut_to_maximum() {
    let mut r = reg();
    let b = ok(r.on_register(req(1, 1, "c1", 1, contacts(&["<sip:a@h1>"]), Some(999_999)), T0));
    assert_eq!(b[0].expires_at - T0, 3_600_000);
}

#[test]
fn refresh_needs_higher_cseq_for_same_call_id() {
    let mut r = reg();
    ok(r.on_register(req(1, 1, "c1", 5, contacts(&["<sip:a@h1>"]), Some(600)), T0));
    r.drain_outputs();
    let res = r.on_register(req(1, 1, "c1", 4, contacts(&["<sip:a@h1>"]), Some(600)), T0 + 1000);
    assert!(matches!(res, RegisterResult::Rejected { code: 400, .. }));
    // The same CSeq again is a retransmission: answered as before, nothing changes (not even the expiry).
    let again = ok(r.on_register(req(1, 1, "c1", 5, contacts(&["<sip:other@h9>"]), Some(60)), T0 + 1000));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].contact, "sip:a@h1");
    assert_eq!(again[0].expires_at, T0 + 600_000);
    assert!(r.drain_outputs().is_empty());
    let b = ok(r.on_register(req(1, 1, "c1", 6, contacts(&["<sip:a@h1>"]), Some(600)), T0 + 1000));
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].expires_at, T0 + 601_000);
    // A different Call-ID (device rebooted) may use any CSeq.
    ok(r.on_register(req(1, 1, "c2", 1, contacts(&["<sip:a@h1>"]), Some(600)), T0 + 2000));
}

#[test]
fn equal_uris_are_one_binding() {
    let mut r = reg();
    ok(r.on_register(req(1, 5, "c1", 1, contacts(&["<sip:a@HOST1;transport=UDP>"]), Some(600)), T0));
    let b = ok(r.on_register(req(1, 5, "c1", 2, contacts(&["<sip:a@host1;transport=udp;x=y>"]), Some(600)), T0));
    assert_eq!(b.len(), 1);
}

#[test]
fn zero_expires_removes_and_last_removal_is_offline() {
    let mut r = reg();
    ok(r.on_register(req(1, 5, "c1", 1, contacts(&["<sip:a@h1>", "<sip:b@h2>"]), Some(600)), T0));
    r.drain_outputs();
    let b = ok(r.on_register(req(1, 5, "c1", 2, contacts(&["<sip:a@h1>;expires=0"]), Some(600)), T0));
    assert_eq!(b.len(), 1);
    assert!(r.is_online(1));
    ok(r.on_register(req(1, 5, "c1", 3, contacts(&["<sip:b@h2>"]), Some(0)), T0 + 5));
    let out = r.drain_outputs();
    assert!(out.contains(&Output::DeviceOffline { device_id: 1, at: T0 + 5, reason: OfflineReason::Unregistered }));
    assert!(!r.is_online(1));
}

#[test]
fn wildcard_needs_expires_zero_and_removes_all() {
    let mut r = reg();
    ok(r.on_register(req(1, 5, "c1", 1, contacts(&["<sip:a@h1>", "<sip:b@h2>"]), Some(600)), T0));
    r.drain_outputs();
    let res = r.on_register(req(1, 5, "c9", 1, Contacts::Wildcard, Some(60)), T0);
    assert!(matches!(res, RegisterResult::Rejected { code: 400, .. }));
    let res = r.on_register(req(1, 5, "c9", 1, Contacts::Wildcard, None), T0);
    assert!(matches!(res, RegisterResult::Rejected { code: 400, .. }));
    ok(r.on_register(req(1, 5, "c9", 1, Contacts::Wildcard, Some(0)), T0));
    assert!(r.bindings(1).is_empty());
    let removes = r.drain_outputs().iter().filter(|o| matches!(o, Output::Remove { .. })).count();
    assert_eq!(removes, 2);
}

#[test]
fn query_lists_without_changing() {
    let mut r = reg();
    ok(r.on_register(req(1, 5, "c1", 1, contacts(&["<sip:a@h1>"]), Some(600)), T0));
    r.drain_outputs();
    let b = ok(r.on_register(req(1, 5, "c1", 2, Contacts::List(vec![]), None), T0 + 10_000));
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].remaining_secs(T0 + 10_000), 590);
    assert!(r.drain_outputs().is_empty());
}

#[test]
fn direct_mode_new_contact_replaces_old() {
    let mut r = reg();
    ok(r.on_register(req(1, 1, "c1", 1, contacts(&["<sip:a@h1>"]), Some(600)), T0));
    r.drain_outputs();
    let b = ok(r.on_register(req(1, 1, "c2", 1, contacts(&["<sip:a@h2>"]), Some(600)), T0 + 1));
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].contact, "sip:a@h2");
    let out = r.drain_outputs();
    assert!(out.contains(&Output::Remove { device_id: 1, contact: "sip:a@h1".into() }));
}

#[test]
fn trunk_limit_refuses_excess() {
    let mut r = reg();
    ok(r.on_register(req(1, 2, "c1", 1, contacts(&["<sip:a@h1>", "<sip:a@h2>"]), Some(600)), T0));
    let res = r.on_register(req(1, 2, "c1", 2, contacts(&["<sip:a@h3>"]), Some(600)), T0);
    assert_eq!(res, RegisterResult::Rejected { code: 403, reason: "Too Many Contacts" });
    assert_eq!(r.bindings(1).len(), 2);
}

#[test]
fn a_restarted_trunk_displaces_its_previous_boots_contacts() {
    let mut r = reg();
    ok(r.on_register(req(1, 2, "boot1", 1, contacts(&["<sip:a@h1>", "<sip:a@h2>"]), Some(600)), T0));
    r.drain_outputs();
    let b = ok(r.on_register(req(1, 2, "boot2", 1, contacts(&["<sip:a@h3>", "<sip:a@h4>"]), Some(600)), T0 + 5));
    let mut now: Vec<_> = b.iter().map(|b| b.contact.as_str()).collect();
    now.sort();
    assert_eq!(now, ["sip:a@h3", "sip:a@h4"]);
    assert_eq!(r.drain_outputs().iter().filter(|o| matches!(o, Output::Remove { .. })).count(), 2);
}

#[test]
fn changed_contact_text_with_the_same_identity_replaces_the_stored_row() {
    let mut r = reg();
    ok(r.on_register(req(1, 1, "c1", 1, contacts(&["<sip:a@h1;rinstance=1>"]), Some(600)), T0));
    r.drain_outputs();
    ok(r.on_register(req(1, 1, "c1", 2, contacts(&["<sip:a@h1;rinstance=2>"]), Some(600)), T0 + 1));
    let out = r.drain_outputs();
    assert!(out.contains(&Output::Remove { device_id: 1, contact: "sip:a@h1;rinstance=1".into() }), "{out:?}");
    assert!(out.iter().any(|o| matches!(o, Output::Upsert(b) if b.contact == "sip:a@h1;rinstance=2")));
}

#[test]
fn wildcard_retransmission_removes_nothing_new() {
    let mut r = reg();
    ok(r.on_register(req(1, 5, "c1", 7, contacts(&["<sip:a@h1>"]), Some(600)), T0));
    r.drain_outputs();
    // "*" with the Call-ID and CSeq of the live binding is that REGISTER replayed, not a removal.
    let b = ok(r.on_register(req(1, 5, "c1", 7, Contacts::Wildcard, Some(0)), T0 + 1));
    assert_eq!(b.len(), 1);
    assert!(r.drain_outputs().is_empty());
}

#[test]
fn min_expires_above_an_hour_never_refuses_an_hour() {
    let mut r =
        Registrar::new(Config { min_expires: 7200, max_expires: 7200, default_expires: 7200, ..Config::default() });
    ok(r.on_register(req(1, 1, "c1", 1, contacts(&["<sip:a@h1>"]), Some(3600)), T0));
}

#[test]
fn q_and_instance_are_kept_and_instance_replaces() {
    let mut r = reg();
    let c = r#"<sip:a@h1>;q=0.7;+sip.instance="<urn:uuid:1>";reg-id=1"#;
    let b = ok(r.on_register(req(1, 5, "c1", 1, contacts(&[c]), Some(600)), T0));
    assert_eq!(b[0].q, Some(700));
    assert_eq!(b[0].instance_id.as_deref(), Some("urn:uuid:1"));
    assert_eq!(b[0].contact_value(T0), r#"<sip:a@h1>;expires=600;q=0.700;+sip.instance="<urn:uuid:1>";reg-id=1"#);
    let c2 = r#"<sip:a@h9>;+sip.instance="<urn:uuid:1>";reg-id=1"#;
    let b = ok(r.on_register(req(1, 5, "c2", 1, contacts(&[c2]), Some(600)), T0));
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].contact, "sip:a@h9");
}

#[test]
fn malformed_contact_values_are_400() {
    let mut r = reg();
    for c in ["<sip:a@h1>;q=2", "<sip:a@h1>;expires=soon", "<tel:+61255501234>", "<sip:a@h1>;reg-id=x"] {
        let res = r.on_register(req(1, 5, "c1", 1, contacts(&[c]), Some(600)), T0);
        assert!(matches!(res, RegisterResult::Rejected { code: 400, .. }), "{c}: {res:?}");
    }
}

#[test]
fn binding_expires_on_time() {
    let mut r = reg();
    ok(r.on_register(req(1, 1, "c1", 1, contacts(&["<sip:a@h1>"]), Some(60)), T0));
    r.drain_outputs();
    // Probes are due every 30 s; answer them so only expiry matters here.
    let mut now = T0;
    while let Some(t) = r.poll_timeout() {
        if t > T0 + 60_000 {
            break;
        }
        now = t;
        r.on_timeout(now);
        for o in r.drain_outputs() {
            match o {
                Output::Probe(b) => r.on_probe_result(b.device_id, &b.key, true, now),
                Output::Remove { .. } | Output::DeviceOffline { .. } => {
                    assert_eq!(now, T0 + 60_000, "removed early");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(now, T0 + 60_000);
    assert!(r.bindings(1).is_empty());
    assert!(!r.is_online(1));
}

#[test]
fn silent_device_goes_offline_after_max_misses_and_returns() {
    let mut r = reg();
    ok(r.on_register(req(1, 1, "c1", 1, contacts(&["<sip:a@h1>"]), Some(3600)), T0));
    r.drain_outputs();
    let mut offline_at = None;
    for _ in 0..3 {
        let t = r.poll_timeout().unwrap();
        r.on_timeout(t);
        for o in r.drain_outputs() {
            match o {
                Output::Probe(b) => r.on_probe_result(b.device_id, &b.key, false, t),
                other => panic!("unexpected {other:?}"),
            }
        }
        for o in r.drain_outputs() {
            if let Output::DeviceOffline { at, reason, .. } = o {
                assert_eq!(reason, OfflineReason::NoKeepalive);
                offline_at.get_or_insert(at);
            }
        }
    }
    // Probes at 30 s and 60 s both fail: offline at the second miss.
    assert_eq!(offline_at, Some(T0 + 60_000));
    let b = r.bindings(1)[0].clone();
    r.on_probe_result(1, &b.key, true, T0 + 95_000);
    assert_eq!(r.drain_outputs(), vec![Output::DeviceOnline { device_id: 1, at: T0 + 95_000 }]);
}

#[test]
fn restore_drops_expired_and_probes_soon() {
    let mut r = reg();
    ok(r.on_register(req(1, 2, "c1", 1, contacts(&["<sip:a@h1>;expires=100", "<sip:b@h2>"]), Some(3600)), T0));
    let saved = r.bindings(1).to_vec();
    let mut r2 = reg();
    r2.restore(saved, T0 + 200_000);
    assert_eq!(r2.bindings(1).len(), 1);
    assert!(r2.is_online(1));
    assert_eq!(r2.drain_outputs(), vec![Output::Remove { device_id: 1, contact: "sip:a@h1".into() }]);
    assert_eq!(r2.poll_timeout(), Some(T0 + 205_000));
}

#[test]
fn a_contact_listed_twice_takes_its_last_listing() {
    let mut r = reg();
    let b = ok(r.on_register(req(1, 5, "c1", 1, contacts(&["<sip:a@h1>", "<sip:a@h1>;expires=120"]), Some(600)), T0));
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].expires_at - T0, 120_000);
}

/// Runs the clock forward, answering every probe, until a binding is removed; returns when.
fn run_until_removed(r: &mut Registrar) -> Option<Millis> {
    while let Some(t) = r.poll_timeout() {
        r.on_timeout(t);
        let mut removed = false;
        for o in r.drain_outputs() {
            match o {
                Output::Probe(b) => r.on_probe_result(b.device_id, &b.key, true, t),
                Output::Remove { .. } => removed = true,
                _ => {}
            }
        }
        if removed {
            return Some(t);
        }
    }
    None
}

#[test]
fn frequent_refreshes_hold_one_deadline_per_binding_and_still_expire_on_time() {
    let mut r = reg();
    ok(r.on_register(req(1, 1, "c1", 1, contacts(&["<sip:a@h1>"]), Some(600)), T0));
    let after_first = r.deadlines.len();
    // A NAT-bound ATA refreshing every 20 s for an hour.
    let mut now = T0;
    for i in 2..=180u32 {
        now = T0 + u64::from(i - 1) * 20_000;
        r.on_timeout(now);
        for o in r.drain_outputs() {
            if let Output::Probe(b) = o {
                r.on_probe_result(b.device_id, &b.key, true, now);
            }
        }
        ok(r.on_register(req(1, 1, "c1", i, contacts(&["<sip:a@h1>"]), Some(600)), now));
        assert!(r.deadlines.len() <= after_first + 1, "deadlines pile up: {}", r.deadlines.len());
    }
    r.drain_outputs();
    // The last refresh at `now` grants 600 s: nothing before, removal exactly then.
    let removed_at = run_until_removed(&mut r);
    assert_eq!(removed_at, Some(now + 600_000));
}

#[test]
fn a_refresh_with_a_shorter_expiry_expires_sooner() {
    let mut r = reg();
    ok(r.on_register(req(1, 1, "c1", 1, contacts(&["<sip:a@h1>"]), Some(3600)), T0));
    ok(r.on_register(req(1, 1, "c1", 2, contacts(&["<sip:a@h1>"]), Some(60)), T0 + 1000));
    r.drain_outputs();
    let removed_at = run_until_removed(&mut r);
    assert_eq!(removed_at, Some(T0 + 61_000));
}

#[test]
fn contacts_differing_in_a_parameter_both_carry_are_two_bindings() {
    let mut r = reg();
    let b =
        ok(r.on_register(req(1, 5, "c1", 1, contacts(&["<sip:pbx@h1;line=1>", "<sip:pbx@h1;line=2>"]), Some(600)), T0));
    assert_eq!(b.len(), 2);
    // And a parameter present in only one of them does not make a new binding (RFC 3261 §19.1.4).
    let b = ok(r.on_register(req(1, 5, "c1", 2, contacts(&["<sip:pbx@h1;line=1;x=y>"]), Some(600)), T0));
    assert_eq!(b.len(), 2);
}

/// A device registering from a new contact each time (a new source port, a new TCP connection) leaves no
/// deadlines behind for the contacts it left: the registrar holds one expiry and one probe per live binding.
#[test]
fn replaced_bindings_leave_no_deadlines_behind() {
    let mut r = reg();
    for i in 0..1000u32 {
        let contact = format!("<sip:100@10.0.0.5:{}>", 10_000 + i);
        ok(r.on_register(req(1, 1, "c1", i + 1, contacts(&[&contact]), Some(3600)), T0 + u64::from(i)));
    }
    assert_eq!(r.binding_count(), 1);
    assert_eq!(r.deadline_count(), 2, "one expiry and one probe");
    // A refresh that shortens the expiry keeps one expiry deadline.
    ok(r.on_register(req(1, 1, "c1", 2000, contacts(&["<sip:100@10.0.0.5:10999>"]), Some(60)), T0 + 2000));
    assert_eq!(r.deadline_count(), 2);
    // Unregistered: nothing left.
    ok(r.on_register(req(1, 1, "c1", 2001, contacts(&["<sip:100@10.0.0.5:10999>"]), Some(0)), T0 + 2001));
    assert_eq!(r.deadline_count(), 0);
}
