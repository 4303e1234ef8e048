//! The layer: matching (§17.1.3, §17.2.3), deadlines and outputs.

use super::*;
use crate::transaction::{Incoming, Key, MAGIC_COOKIE, Output, TransactionError, TransactionLayer, new_branch};

type Layer = TransactionLayer<&'static str>;
type Out = Output<&'static str>;
const PEER: &str = "udp:192.0.2.10:5060";

fn layer() -> Layer {
    TransactionLayer::new(CFG)
}

fn outputs(l: &mut Layer) -> Vec<Out> {
    l.drain_outputs().collect()
}

/// Status codes (or 0 for requests) of the Send outputs, in order.
fn sent(outs: &[Out]) -> Vec<u16> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { bytes, .. } => Some(status_of(bytes).unwrap_or(0)),
            _ => None,
        })
        .collect()
}

/// Moves virtual time to `until`, firing every deadline on the way; returns the outputs with their instants.
fn advance(l: &mut Layer, until: u64) -> Vec<(u64, Out)> {
    let mut all = Vec::new();
    while let Some(at) = l.poll_timeout().filter(|&at| at <= until) {
        l.on_timeout(at);
        all.extend(outputs(l).into_iter().map(|o| (at, o)));
    }
    all
}

fn new_request(l: &mut Layer, msg: Message, reliable: bool, now: u64) -> Key {
    match l.on_request(msg, PEER, reliable, now) {
        Some(Incoming::Request { key, .. }) => key,
        other => panic!("expected a new request, got {other:?}"),
    }
}

fn answer(msg: &Message, code: u16) -> Message {
    response_to(&msg.headers, code, "Reason", Some("srv"))
}

#[test]
fn retransmissions_are_absorbed_and_answered_until_timer_j() {
    let mut l = layer();
    let reg = req("REGISTER", &via(BRANCH), 1, None);
    let key = match l.on_request(reg.clone(), PEER, false, 0) {
        Some(Incoming::Request { key, msg }) => {
            assert_eq!(msg, reg);
            key
        }
        other => panic!("{other:?}"),
    };
    assert!(outputs(&mut l).is_empty());
    // Trying: absorbed silently.
    assert_eq!(l.on_request(reg.clone(), PEER, false, 100), None);
    assert!(outputs(&mut l).is_empty());
    l.respond(key, answer(&reg, 200), 200).unwrap();
    let outs = outputs(&mut l);
    let Some(Output::Send { key: k, peer, bytes }) = outs.first() else { panic!("{outs:?}") };
    assert_eq!((*k, *peer, outs.len()), (key, PEER, 1));
    // Completed: the stored final goes out again, byte for byte.
    assert_eq!(l.on_request(reg.clone(), PEER, false, 300), None);
    assert_eq!(outputs(&mut l), vec![Output::Send { key, peer: PEER, bytes: bytes.clone() }]);
    assert_eq!(l.poll_timeout(), Some(32_200));
    l.on_timeout(32_199);
    assert!(outputs(&mut l).is_empty());
    l.on_timeout(32_200);
    assert_eq!(outputs(&mut l), vec![Output::Terminated { key }]);
    assert!(l.is_empty() && !l.contains(key));
    assert_eq!(l.poll_timeout(), None);
    // After Timer J the same request is new again.
    let again = new_request(&mut l, reg, false, 40_000);
    assert_ne!(again, key);
}

#[test]
fn cancel_is_its_own_transaction_reported_with_the_invite_key() {
    let mut l = layer();
    let invite = req("INVITE", &via(BRANCH), 5, None);
    let inv = new_request(&mut l, invite.clone(), false, 0);
    let cancel = req("CANCEL", &via(BRANCH), 5, None);
    let Some(Incoming::Cancel { key: c, invite: Some(target), .. }) = l.on_request(cancel.clone(), PEER, false, 50)
    else {
        panic!("CANCEL not reported with its INVITE");
    };
    assert_eq!(target, inv);
    assert_ne!(c, inv);
    assert_eq!(l.len(), 2);
    assert_eq!(l.on_request(cancel.clone(), PEER, false, 60), None, "CANCEL retransmission");
    l.respond(c, answer(&cancel, 200), 70).unwrap();
    l.respond(inv, answer(&invite, 487), 70).unwrap();
    assert_eq!(sent(&outputs(&mut l)), vec![200, 487]);
    // A CANCEL for no INVITE we know.
    let stray = req("CANCEL", &via("z9hG4bKother"), 5, None);
    assert!(matches!(l.on_request(stray, PEER, false, 80), Some(Incoming::Cancel { invite: None, .. })));
}

#[test]
fn ack_matches_the_invite_transaction_after_a_non_2xx() {
    let mut l = layer();
    let invite = req("INVITE", &via(BRANCH), 5, None);
    let inv = new_request(&mut l, invite.clone(), false, 0);
    l.respond(inv, answer(&invite, 486), 0).unwrap();
    l.on_timeout(500); // Timer G
    assert_eq!(sent(&outputs(&mut l)), vec![486, 486]);
    let ack = req("ACK", &via(BRANCH), 5, Some("srv"));
    assert_eq!(l.on_request(ack.clone(), PEER, false, 600), None, "absorbed: Confirmed");
    assert!(outputs(&mut l).is_empty());
    assert_eq!(l.poll_timeout(), Some(5_600), "only Timer I is left");
    assert_eq!(l.on_request(ack.clone(), PEER, false, 700), None);
    assert_eq!(advance(&mut l, 100_000), vec![(5_600, Output::Terminated { key: inv })]);
    assert!(matches!(l.on_request(ack, PEER, false, 6_000), Some(Incoming::StrayAck(_))));
}

#[test]
fn ack_for_a_2xx_goes_up_as_stray_whether_or_not_it_matches() {
    let mut l = layer();
    let invite = req("INVITE", &via(BRANCH), 5, None);
    let inv = new_request(&mut l, invite.clone(), false, 0);
    l.respond(inv, answer(&invite, 200), 10).unwrap();
    assert_eq!(sent(&outputs(&mut l)), vec![200]);
    // The ACK for a 2xx is a transaction of its own (new branch): it matches nothing.
    let ack = req("ACK", &via("z9hG4bKack2xx"), 5, Some("srv"));
    assert!(matches!(l.on_request(ack, PEER, false, 20), Some(Incoming::StrayAck(_))));
    // Reusing the INVITE's branch, it matches the Accepted transaction, which passes it up (RFC 6026).
    let ack = req("ACK", &via(BRANCH), 5, Some("srv"));
    assert!(matches!(l.on_request(ack, PEER, false, 30), Some(Incoming::StrayAck(_))));
    // Accepted absorbs INVITE retransmissions; the TU's 2xx retransmissions pass.
    assert_eq!(l.on_request(invite.clone(), PEER, false, 40), None);
    assert!(outputs(&mut l).is_empty());
    l.respond(inv, answer(&invite, 200), 500).unwrap();
    assert_eq!(sent(&outputs(&mut l)), vec![200]);
    assert_eq!(advance(&mut l, 100_000), vec![(32_010, Output::Terminated { key: inv })], "Timer L");
}

#[test]
fn method_and_sent_by_are_part_of_the_key() {
    let mut l = layer();
    let a = new_request(&mut l, req("OPTIONS", &via(BRANCH), 1, None), false, 0);
    let b = new_request(&mut l, req("INFO", &via(BRANCH), 1, None), false, 0);
    let other_host = format!("SIP/2.0/UDP other.example.com:5060;branch={BRANCH}");
    let c = new_request(&mut l, req("OPTIONS", &other_host, 1, None), false, 0);
    assert!(a != b && b != c && a != c);
    assert_eq!(l.len(), 3);
}

#[test]
fn rfc2543_requests_match_on_the_composite_key() {
    let mut l = layer();
    let old_via = "SIP/2.0/UDP old.example.com:5060";
    let invite = req("INVITE", old_via, 9, None);
    let inv = new_request(&mut l, invite.clone(), false, 0);
    // A retransmission before the TU answered: the transaction's 100 goes out at once.
    assert_eq!(l.on_request(invite.clone(), PEER, false, 50), None);
    assert_eq!(sent(&outputs(&mut l)), vec![100]);
    // Another CSeq is another transaction.
    let other = new_request(&mut l, req("INVITE", old_via, 10, None), false, 60);
    assert_ne!(other, inv);
    l.respond(inv, answer(&invite, 486), 100).unwrap();
    assert_eq!(sent(&outputs(&mut l)), vec![486]);
    // The ACK must carry the To tag of our response.
    let wrong = req("ACK", old_via, 9, Some("someone-else"));
    assert!(matches!(l.on_request(wrong, PEER, false, 150), Some(Incoming::StrayAck(_))));
    let ack = req("ACK", old_via, 9, Some("srv"));
    assert_eq!(l.on_request(ack, PEER, false, 200), None);
    let later = advance(&mut l, 3_000);
    assert!(
        !later.iter().any(|(_, o)| matches!(o, Output::Send { key, .. } if *key == inv)),
        "no Timer G after the ACK"
    );
    assert_eq!(sent(&later.into_iter().map(|(_, o)| o).collect::<Vec<_>>()), vec![100], "the other INVITE's 100");
    // Non-INVITE: retransmissions are matched and answered.
    let opts = req("OPTIONS", old_via, 3, None);
    let k = new_request(&mut l, opts.clone(), false, 300);
    l.respond(k, answer(&opts, 200), 310).unwrap();
    assert_eq!(l.on_request(opts.clone(), PEER, false, 320), None);
    assert_eq!(sent(&outputs(&mut l)), vec![200, 200]);
    let mut other_from = opts;
    other_from.headers.set(HeaderName::From, "<sip:carol@example.com>;tag=9");
    assert_ne!(new_request(&mut l, other_from, false, 330), k);
    // A branch without the magic cookie is RFC 2543 too: the composite key decides.
    let odd = req("MESSAGE", "SIP/2.0/UDP old.example.com;branch=1234", 1, None);
    let m = new_request(&mut l, odd.clone(), false, 400);
    assert_eq!(l.on_request(odd, PEER, false, 410), None);
    assert!(l.contains(m));
}

#[test]
fn requests_without_a_usable_via_are_unmatchable() {
    let mut l = layer();
    let no_via = parse(
        "OPTIONS sip:a@example.com SIP/2.0\nFrom: <sip:b@example.com>;tag=1\nTo: <sip:a@example.com>\nCall-ID: x\nCSeq: 1 OPTIONS\n\n",
    );
    assert!(matches!(l.on_request(no_via, PEER, false, 0), Some(Incoming::Unmatchable(_))));
    let bad_via = req("OPTIONS", "SIP/2.0/UDP ;;", 1, None);
    assert!(matches!(l.on_request(bad_via, PEER, false, 0), Some(Incoming::Unmatchable(_))));
    assert!(l.is_empty());
}

#[test]
fn reliable_server_transactions_end_with_their_final_response() {
    let mut l = layer();
    let reg = req("REGISTER", &via(BRANCH), 1, None);
    let key = new_request(&mut l, reg.clone(), true, 0);
    l.respond(key, answer(&reg, 401), 5).unwrap();
    let outs = outputs(&mut l);
    assert_eq!(sent(&outs), vec![401]);
    assert_eq!(outs.last(), Some(&Output::Terminated { key }));
    assert!(l.is_empty());
    assert_eq!(l.poll_timeout(), None);
    assert_eq!(l.respond(key, answer(&reg, 200), 6), Err(TransactionError::UnknownTransaction));
}

#[test]
fn server_invite_timer_h_reports_a_timeout() {
    let mut l = layer();
    let invite = req("INVITE", &via(BRANCH), 5, None);
    let inv = new_request(&mut l, invite.clone(), false, 0);
    let tail: Vec<_> = advance(&mut l, 1_000);
    assert_eq!(
        tail.iter().map(|(at, o)| (*at, sent(std::slice::from_ref(o)))).collect::<Vec<_>>(),
        vec![(200, vec![100])]
    );
    l.respond(inv, answer(&invite, 500), 1_000).unwrap();
    let _ = outputs(&mut l);
    let outs = advance(&mut l, 100_000);
    let n = outs.len();
    assert_eq!(outs[n - 2..], [(33_000, Output::Timeout { key: inv }), (33_000, Output::Terminated { key: inv })]);
    assert_eq!(sent(&outs.into_iter().map(|(_, o)| o).collect::<Vec<_>>()).len(), 10, "Timer G resends");
}

#[test]
fn respond_errors() {
    let mut l = layer();
    let reg = req("REGISTER", &via(BRANCH), 1, None);
    let key = new_request(&mut l, reg.clone(), false, 0);
    assert_eq!(l.respond(key, reg.clone(), 1), Err(TransactionError::NotAResponse));
    l.respond(key, answer(&reg, 200), 1).unwrap();
    assert_eq!(l.respond(key, answer(&reg, 200), 2), Err(TransactionError::InvalidState));
    let client = l.send_request(req("OPTIONS", &via("z9hG4bKc1"), 1, None), PEER, false, 0).unwrap();
    assert_eq!(l.respond(client, answer(&reg, 200), 2), Err(TransactionError::NotAServerTransaction));
}

#[test]
fn new_branch_carries_the_magic_cookie() {
    let b = new_branch(0xdead_beef);
    assert!(b.starts_with(MAGIC_COOKIE));
    assert_eq!(b, "z9hG4bK00000000deadbeef");
    assert_ne!(new_branch(1), new_branch(2));
}

#[test]
fn transport_errors_end_transactions() {
    let mut l = layer();
    let key = new_request(&mut l, req("OPTIONS", &via(BRANCH), 1, None), false, 0);
    l.on_transport_error(key).unwrap();
    assert_eq!(outputs(&mut l), vec![Output::Terminated { key }]);
    assert_eq!(l.on_transport_error(key), Err(TransactionError::UnknownTransaction));
}

#[test]
fn deadlines_follow_live_transactions_only() {
    let mut l = layer();
    let mut keys = Vec::new();
    for i in 0..100u64 {
        let msg = req("REGISTER", &via(&new_branch(i)), 1, None);
        let key = new_request(&mut l, msg.clone(), false, i);
        l.respond(key, answer(&msg, 200), i * 10).unwrap();
        keys.push(key);
    }
    let _ = outputs(&mut l);
    assert_eq!(l.len(), 100);
    assert_eq!(l.poll_timeout(), Some(32_000));
    let outs = advance(&mut l, 100_000);
    let ended: Vec<Key> = outs
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Terminated { key } => Some(*key),
            _ => None,
        })
        .collect();
    assert_eq!(ended, keys, "in deadline order, each once");
    assert!(l.is_empty());
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn on_message_dispatches_both_kinds() {
    let mut l = layer();
    let opts = req("OPTIONS", &via(BRANCH), 1, None);
    assert!(matches!(l.on_message(opts.clone(), PEER, false, 0), Some(Incoming::Request { .. })));
    assert!(matches!(l.on_message(resp(&opts, 200, None), PEER, false, 0), Some(Incoming::StrayResponse(_))));
    assert!(matches!(l.on_response(opts, 0), Some(Incoming::Unmatchable(_))));
}
