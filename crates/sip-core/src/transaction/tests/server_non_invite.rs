//! Server non-INVITE transaction: RFC 3261 Figure 8.

use super::*;
use crate::transaction::{ServerNonInviteState as S, TransactionError};

fn answer(code: u16) -> Message {
    response_to(&req("REGISTER", &via(BRANCH), 7, None).headers, code, "Reason", Some("reg"))
}

#[test]
fn trying_absorbs_retransmissions() {
    let mut tx = ServerNonInvite::new(false);
    assert_eq!(tx.state(), S::Trying);
    assert_eq!(tx.on_request(), Step::default());
    assert_eq!(tx.timers().next_deadline(), None);
}

#[test]
fn proceeding_resends_the_latest_provisional() {
    let mut tx = ServerNonInvite::new(false);
    let step = tx.on_response(&answer(100), &CFG, 10).unwrap();
    assert_eq!(status_of(step.send.as_deref().unwrap()), Some(100));
    assert_eq!(tx.state(), S::Proceeding);
    let _ = tx.on_response(&answer(183), &CFG, 20).unwrap();
    assert_eq!(status_of(tx.on_request().send.as_deref().unwrap()), Some(183));
}

#[test]
fn completed_resends_the_final_until_timer_j() {
    for provisional_first in [false, true] {
        let mut tx = ServerNonInvite::new(false);
        if provisional_first {
            let _ = tx.on_response(&answer(100), &CFG, 10).unwrap();
        }
        let sent = tx.on_response(&answer(200), &CFG, 1_000).unwrap().send.unwrap();
        assert_eq!(tx.state(), S::Completed);
        assert_eq!(tx.timers().iter().collect::<Vec<_>>(), vec![(Timer::J, 33_000)], "64*T1 over UDP");
        assert_eq!(tx.on_request(), Step { send: Some(sent.clone()), ..Step::default() });
        assert_eq!(tx.on_request(), Step { send: Some(sent), ..Step::default() });
        // Nothing is retransmitted on a timer; J ends it.
        let fired = run_until(&mut tx, 100_000);
        assert_eq!(
            fired.iter().map(|(at, t, s)| (*at, *t, s.clone())).collect::<Vec<_>>(),
            vec![(33_000, Timer::J, Step::default())]
        );
        assert_eq!(tx.state(), S::Terminated);
    }
}

#[test]
fn reliable_final_terminates_at_once_timer_j_zero() {
    let mut tx = ServerNonInvite::new(true);
    let step = tx.on_response(&answer(401), &CFG, 10).unwrap();
    assert_eq!(status_of(step.send.as_deref().unwrap()), Some(401));
    assert_eq!(tx.state(), S::Terminated);
}

#[test]
fn a_second_final_is_refused() {
    let mut tx = ServerNonInvite::new(false);
    let _ = tx.on_response(&answer(200), &CFG, 10).unwrap();
    assert_eq!(tx.on_response(&answer(500), &CFG, 20), Err(TransactionError::InvalidState));
    assert_eq!(tx.on_response(&answer(100), &CFG, 20), Err(TransactionError::InvalidState));
}

#[test]
fn transport_error_terminates() {
    let mut tx = ServerNonInvite::new(false);
    let _ = tx.on_response(&answer(200), &CFG, 10).unwrap();
    tx.on_transport_error();
    assert_eq!(tx.state(), S::Terminated);
    assert_eq!(tx.timers().next_deadline(), None);
}

#[test]
fn state_stays_small() {
    // Held for 32 s per UDP REGISTER at up to 20k/s: the machine is a few words plus the response bytes.
    assert!(std::mem::size_of::<ServerNonInvite>() <= 64, "{}", std::mem::size_of::<ServerNonInvite>());
}
