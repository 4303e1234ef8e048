//! Server INVITE transaction: RFC 3261 Figure 7 with RFC 6026 Accepted.

use super::*;
use crate::transaction::{ServerInviteState as S, TransactionError};

fn invite() -> Message {
    parse(&format!(
        "INVITE sip:bob@example.com SIP/2.0\n\
         Via: {}\n\
         Max-Forwards: 70\n\
         From: Alice <sip:alice@example.com>;tag=1928301774\n\
         To: Bob <sip:bob@example.com>\n\
         Call-ID: a84b4c76e66710@pc33.example.com\n\
         CSeq: 314159 INVITE\n\
         Timestamp: 54\n\
         Content-Length: 0\n\n",
        via(BRANCH)
    ))
}

/// What the TU would answer.
fn answer(code: u16) -> Message {
    response_to(&invite().headers, code, "Reason", Some("bobtag"))
}

fn start(reliable: bool) -> ServerInvite {
    ServerInvite::new(&invite(), reliable, &CFG, 0)
}

#[test]
fn trying_goes_out_after_200ms_when_the_tu_is_silent() {
    let mut tx = start(false);
    assert_eq!(tx.state(), S::Proceeding);
    assert_eq!(tx.timers().iter().collect::<Vec<_>>(), vec![(Timer::Trying, 200)]);
    let fired = run_until(&mut tx, 10_000);
    assert_eq!(fired.len(), 1);
    let trying = wire(fired[0].2.send.as_deref().unwrap());
    assert_eq!(trying.status(), Some(100));
    assert_eq!(header(&trying, HeaderName::Via), via(BRANCH));
    assert_eq!(header(&trying, HeaderName::To), "Bob <sip:bob@example.com>", "no tag on 100");
    assert_eq!(header(&trying, HeaderName::CSeq), "314159 INVITE");
    assert_eq!(header(&trying, HeaderName::Timestamp), "54", "§8.2.6.1");
    assert_eq!(tx.state(), S::Proceeding);
}

#[test]
fn tu_provisional_within_200ms_replaces_trying() {
    let mut tx = start(false);
    let step = tx.on_response(&answer(180), &CFG, 100).unwrap();
    assert_eq!(status_of(step.send.as_deref().unwrap()), Some(180));
    assert_eq!(tx.timers().next_deadline(), None);
    // Request retransmission in Proceeding: the latest provisional again.
    let again = tx.on_request();
    assert_eq!(status_of(again.send.as_deref().unwrap()), Some(180));
    assert!(!again.pass_up);
}

#[test]
fn invite_retransmission_before_200ms_sends_trying_at_once() {
    let mut tx = start(false);
    let step = tx.on_request();
    assert_eq!(status_of(step.send.as_deref().unwrap()), Some(100));
    assert_eq!(tx.timers().next_deadline(), None, "the 100 is not sent twice");
    assert_eq!(status_of(tx.on_request().send.as_deref().unwrap()), Some(100));
}

#[test]
fn non_2xx_final_is_retransmitted_on_timer_g_capped_at_t2_until_timer_h() {
    let mut tx = start(false);
    let step = tx.on_response(&answer(486), &CFG, 1_000).unwrap();
    let sent = step.send.unwrap();
    assert_eq!(status_of(&sent), Some(486));
    assert_eq!(tx.state(), S::Completed);
    let fired = run_until(&mut tx, 100_000);
    assert_eq!(send_times(&fired), vec![1_500, 2_500, 4_500, 8_500, 12_500, 16_500, 20_500, 24_500, 28_500, 32_500]);
    assert!(fired.iter().filter_map(|(_, _, s)| s.send.as_ref()).all(|b| *b == sent));
    // §17.2.1: Timer H means the ACK never came: the TU hears of it.
    let (at, timer, last) = fired.last().unwrap();
    assert_eq!((*at, *timer, last.timeout), (33_000, Timer::H, true));
    assert_eq!(tx.state(), S::Terminated);
}

#[test]
fn invite_retransmission_in_completed_resends_the_final() {
    let mut tx = start(false);
    let sent = tx.on_response(&answer(404), &CFG, 10).unwrap().send.unwrap();
    assert_eq!(tx.on_request(), Step { send: Some(sent), ..Step::default() });
}

#[test]
fn ack_in_completed_confirms_and_timer_i_absorbs() {
    let mut tx = start(false);
    let _ = tx.on_response(&answer(486), &CFG, 1_000).unwrap();
    assert_eq!(tx.on_ack(&CFG, 1_200), Step::default());
    assert_eq!(tx.state(), S::Confirmed);
    assert_eq!(tx.timers().iter().collect::<Vec<_>>(), vec![(Timer::I, 6_200)], "G and H stop; I = T4");
    // Confirmed absorbs ACKs and INVITE retransmissions.
    assert_eq!(tx.on_ack(&CFG, 1_300), Step::default());
    assert_eq!(tx.on_request(), Step::default());
    let fired = run_until(&mut tx, 100_000);
    assert_eq!(fired.iter().map(|(at, t, _)| (*at, *t)).collect::<Vec<_>>(), vec![(6_200, Timer::I)]);
    assert_eq!(tx.state(), S::Terminated);
}

#[test]
fn reliable_has_no_timer_g_and_timer_i_is_zero() {
    let mut tx = start(true);
    let _ = tx.on_response(&answer(486), &CFG, 1_000).unwrap();
    assert_eq!(tx.timers().iter().collect::<Vec<_>>(), vec![(Timer::H, 33_000)]);
    let _ = tx.on_ack(&CFG, 1_100);
    assert_eq!(tx.state(), S::Terminated);
}

#[test]
fn two_xx_moves_to_accepted_where_acks_go_up_until_timer_l() {
    let mut tx = start(false);
    let step = tx.on_response(&answer(200), &CFG, 1_000).unwrap();
    assert_eq!(status_of(step.send.as_deref().unwrap()), Some(200));
    assert_eq!(tx.state(), S::Accepted);
    assert_eq!(tx.timers().iter().collect::<Vec<_>>(), vec![(Timer::L, 33_000)]);
    // RFC 6026: INVITE retransmissions are absorbed (the TU resends the 2xx), 2xx from the TU pass, ACKs go up.
    assert_eq!(tx.on_request(), Step::default());
    let again = tx.on_response(&answer(200), &CFG, 1_500).unwrap();
    assert_eq!(status_of(again.send.as_deref().unwrap()), Some(200));
    assert_eq!(tx.on_ack(&CFG, 1_600), Step { pass_up: true, ..Step::default() });
    assert_eq!(tx.on_ack(&CFG, 1_700), Step { pass_up: true, ..Step::default() });
    assert_eq!(tx.state(), S::Accepted);
    assert_eq!(tx.on_response(&answer(486), &CFG, 1_800), Err(TransactionError::InvalidState));
    assert_eq!(tx.on_response(&answer(180), &CFG, 1_800), Err(TransactionError::InvalidState));
    let fired = run_until(&mut tx, 100_000);
    assert_eq!(fired.iter().map(|(at, t, _)| (*at, *t)).collect::<Vec<_>>(), vec![(33_000, Timer::L)]);
    assert_eq!(tx.state(), S::Terminated);
}

#[test]
fn no_response_after_a_non_2xx_final() {
    let mut tx = start(false);
    let _ = tx.on_response(&answer(486), &CFG, 1_000).unwrap();
    assert_eq!(tx.on_response(&answer(200), &CFG, 1_100), Err(TransactionError::InvalidState));
    assert_eq!(tx.on_response(&answer(500), &CFG, 1_100), Err(TransactionError::InvalidState));
    assert_eq!(tx.on_response(&invite(), &CFG, 1_100), Err(TransactionError::NotAResponse));
    let _ = tx.on_ack(&CFG, 1_200);
    assert_eq!(tx.on_response(&answer(200), &CFG, 1_300), Err(TransactionError::InvalidState));
}

#[test]
fn ack_in_proceeding_is_absorbed_and_transport_error_terminates() {
    let mut tx = start(false);
    assert_eq!(tx.on_ack(&CFG, 10), Step::default());
    assert_eq!(tx.state(), S::Proceeding);
    tx.on_transport_error();
    assert_eq!(tx.state(), S::Terminated);
    assert_eq!(tx.timers().next_deadline(), None);
}
