//! The layer's client side: sending, response matching (§17.1.3), ACK and timeout outputs.

use super::*;
use crate::message::Method;
use crate::transaction::{Incoming, Key, Output, TransactionError, TransactionLayer};

type Layer = TransactionLayer<&'static str>;
type Out = Output<&'static str>;
const PEER: &str = "tcp:198.51.100.7:5060#flow-3";

fn outputs(l: &mut Layer) -> Vec<Out> {
    l.drain_outputs().collect()
}

fn advance(l: &mut Layer, until: u64) -> Vec<(u64, Out)> {
    let mut all = Vec::new();
    while let Some(at) = l.poll_timeout().filter(|&at| at <= until) {
        l.on_timeout(at);
        all.extend(l.drain_outputs().map(|o| (at, o)));
    }
    all
}

fn response_key(incoming: Option<Incoming>) -> Option<Key> {
    match incoming {
        Some(Incoming::Response { key, .. }) => Some(key),
        _ => None,
    }
}

#[test]
fn responses_match_on_branch_and_cseq_method() {
    let mut l = TransactionLayer::new(CFG);
    let reg = req("REGISTER", &via("z9hG4bKreg1"), 1, None);
    let key = l.send_request(reg.clone(), PEER, false, 0).unwrap();
    let outs = outputs(&mut l);
    let [Output::Send { key: k, peer, bytes }] = outs.as_slice() else { panic!("{outs:?}") };
    assert_eq!((*k, *peer, wire(bytes)), (key, PEER, reg.clone()));
    assert_eq!(response_key(l.on_response(resp(&reg, 100, None), 100)), Some(key));
    assert_eq!(response_key(l.on_response(resp(&reg, 200, Some("r")), 200)), Some(key));
    assert_eq!(l.on_response(resp(&reg, 200, Some("r")), 300), None, "retransmission absorbed");
    // Another branch, or the same branch with another CSeq method, is no response of ours.
    let other = req("REGISTER", &via("z9hG4bKreg2"), 1, None);
    assert!(matches!(l.on_response(resp(&other, 200, None), 300), Some(Incoming::StrayResponse(_))));
    let other = req("OPTIONS", &via("z9hG4bKreg1"), 1, None);
    assert!(matches!(l.on_response(resp(&other, 200, None), 300), Some(Incoming::StrayResponse(_))));
    // Timer K (T4) then nothing matches any more.
    assert_eq!(advance(&mut l, 100_000), vec![(5_200, Output::Terminated { key })]);
    assert!(matches!(l.on_response(resp(&reg, 200, Some("r")), 6_000), Some(Incoming::StrayResponse(_))));
}

#[test]
fn timer_f_reports_timeout_then_terminated() {
    let mut l = TransactionLayer::new(CFG);
    let key = l.send_request(req("OPTIONS", &via("z9hG4bKopt"), 1, None), PEER, false, 0).unwrap();
    let mut outs: Vec<Out> = outputs(&mut l);
    outs.extend(advance(&mut l, 100_000).into_iter().map(|(_, o)| o));
    let sends = outs.iter().filter(|o| matches!(o, Output::Send { .. })).count();
    assert_eq!(sends, 11, "RFC 3261 §17.1.2.2 over UDP");
    assert_eq!(outs[sends..], [Output::Timeout { key }, Output::Terminated { key }]);
    assert!(l.is_empty());
}

#[test]
fn reliable_client_sends_once_and_times_out_on_timer_b() {
    let mut l = TransactionLayer::new(CFG);
    let key = l.send_request(req("INVITE", &via("z9hG4bKinv"), 1, None), PEER, true, 0).unwrap();
    assert_eq!(outputs(&mut l).len(), 1);
    assert_eq!(advance(&mut l, 100_000), vec![(32_000, Output::Timeout { key }), (32_000, Output::Terminated { key })]);
}

#[test]
fn invite_non_2xx_is_acked_to_the_peer_on_every_retransmission() {
    let mut l = TransactionLayer::new(CFG);
    let invite = req("INVITE", &via("z9hG4bKinv"), 1, None);
    let key = l.send_request(invite.clone(), PEER, false, 0).unwrap();
    let _ = outputs(&mut l);
    assert_eq!(response_key(l.on_response(resp(&invite, 486, Some("b")), 100)), Some(key));
    let outs = outputs(&mut l);
    let [Output::Send { peer, bytes, .. }] = outs.as_slice() else { panic!("{outs:?}") };
    let ack = wire(bytes);
    assert_eq!(*peer, PEER);
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(header(&ack, HeaderName::Via), via("z9hG4bKinv"));
    assert_eq!(header(&ack, HeaderName::To), "Bob <sip:bob@example.com>;tag=b");
    assert_eq!(header(&ack, HeaderName::CSeq), "1 ACK");
    assert_eq!(l.on_response(resp(&invite, 486, Some("b")), 600), None);
    assert_eq!(outputs(&mut l), vec![Output::Send { key, peer: PEER, bytes: bytes.clone() }]);
    assert_eq!(advance(&mut l, 100_000), vec![(32_100, Output::Terminated { key })], "Timer D");
}

#[test]
fn invite_2xx_retransmissions_reach_the_tu_in_accepted() {
    let mut l = TransactionLayer::new(CFG);
    let invite = req("INVITE", &via("z9hG4bKinv"), 1, None);
    let key = l.send_request(invite.clone(), PEER, false, 0).unwrap();
    let _ = outputs(&mut l);
    for now in [100, 600, 1_600] {
        assert_eq!(response_key(l.on_response(resp(&invite, 200, Some("b")), now)), Some(key));
    }
    assert!(outputs(&mut l).is_empty(), "no ACK for a 2xx from the transaction");
    assert_eq!(advance(&mut l, 100_000), vec![(32_100, Output::Terminated { key })], "Timer M");
}

#[test]
fn cancel_is_a_separate_client_transaction_on_the_same_branch() {
    let mut l = TransactionLayer::new(CFG);
    let invite = req("INVITE", &via("z9hG4bKinv"), 1, None);
    let cancel = req("CANCEL", &via("z9hG4bKinv"), 1, None);
    let inv = l.send_request(invite.clone(), PEER, false, 0).unwrap();
    let _ = l.on_response(resp(&invite, 180, Some("b")), 50);
    let c = l.send_request(cancel.clone(), PEER, false, 100).unwrap();
    assert_ne!(inv, c);
    assert_eq!(response_key(l.on_response(resp(&cancel, 200, Some("b")), 150)), Some(c));
    assert_eq!(response_key(l.on_response(resp(&invite, 487, Some("b")), 160)), Some(inv));
}

#[test]
fn send_request_refusals() {
    let mut l = TransactionLayer::new(CFG);
    let ack = req("ACK", &via("z9hG4bKa"), 1, Some("t"));
    assert_eq!(l.send_request(ack, PEER, false, 0), Err(TransactionError::AckIsNotATransaction));
    let old = req("OPTIONS", "SIP/2.0/UDP h.example.com;branch=123", 1, None);
    assert_eq!(l.send_request(old, PEER, false, 0), Err(TransactionError::MissingBranch));
    let bare = req("OPTIONS", "SIP/2.0/UDP h.example.com", 1, None);
    assert_eq!(l.send_request(bare, PEER, false, 0), Err(TransactionError::MissingBranch));
    let opts = req("OPTIONS", &via("z9hG4bKa"), 1, None);
    l.send_request(opts.clone(), PEER, false, 0).unwrap();
    assert_eq!(l.send_request(opts.clone(), PEER, false, 0), Err(TransactionError::DuplicateTransaction));
    let response = resp(&opts, 200, None);
    assert_eq!(l.send_request(response, PEER, false, 0), Err(TransactionError::NotARequest));
    assert_eq!(l.len(), 1);
}
