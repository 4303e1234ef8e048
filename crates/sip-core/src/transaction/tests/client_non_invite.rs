//! Client non-INVITE transaction: RFC 3261 Figure 6.

use super::*;
use crate::transaction::ClientNonInviteState as S;

fn register() -> Message {
    req("REGISTER", &via(BRANCH), 7, None)
}

fn start(reliable: bool) -> (ClientNonInvite, Step) {
    ClientNonInvite::new(&register(), reliable, &CFG, 0)
}

#[test]
fn trying_sends_request_and_arms_e_and_f() {
    let (tx, step) = start(false);
    assert_eq!(wire(step.send.as_deref().unwrap()), register());
    assert_eq!(tx.state(), S::Trying);
    assert_eq!(tx.timers().get(Timer::E), Some(500));
    assert_eq!(tx.timers().get(Timer::F), Some(32_000));
}

#[test]
fn timer_e_doubles_capped_at_t2_then_timer_f_times_out() {
    let (mut tx, _) = start(false);
    let fired = run_until(&mut tx, 100_000);
    // §17.1.2.2: 500, 1000, 2000, then 4000 (T2) each time: 11 transmissions in all.
    assert_eq!(send_times(&fired), vec![500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]);
    let (at, timer, last) = fired.last().unwrap();
    assert_eq!((*at, *timer, last.timeout), (32_000, Timer::F, true));
    assert_eq!(tx.state(), S::Terminated);
}

#[test]
fn proceeding_retransmits_every_t2() {
    let (mut tx, _) = start(false);
    let _ = run_until(&mut tx, 500); // one retransmission; E next at 1500
    assert!(tx.on_response(&resp(&register(), 100, None), &CFG, 600).pass_up);
    assert_eq!(tx.state(), S::Proceeding);
    let fired = run_until(&mut tx, 14_000);
    // The pending E fires at 1500, then every T2.
    assert_eq!(send_times(&fired), vec![1_500, 5_500, 9_500, 13_500]);
    // Further provisionals go up.
    assert!(tx.on_response(&resp(&register(), 100, None), &CFG, 14_000).pass_up);
    let fired = run_until(&mut tx, 100_000);
    assert_eq!(fired.last().map(|(at, t, s)| (*at, *t, s.timeout)), Some((32_000, Timer::F, true)));
}

#[test]
fn final_response_completes_and_timer_k_absorbs_retransmissions() {
    for (code, from) in [(200, S::Trying), (401, S::Proceeding)] {
        let (mut tx, _) = start(false);
        if from == S::Proceeding {
            let _ = tx.on_response(&resp(&register(), 100, None), &CFG, 100);
        }
        let step = tx.on_response(&resp(&register(), code, Some("r")), &CFG, 1_000);
        assert_eq!(step, Step { pass_up: true, ..Step::default() });
        assert_eq!(tx.state(), S::Completed);
        assert_eq!(tx.timers().iter().collect::<Vec<_>>(), vec![(Timer::K, 6_000)], "T4 after the response");
        // Retransmitted finals and late provisionals are absorbed.
        assert_eq!(tx.on_response(&resp(&register(), code, Some("r")), &CFG, 2_000), Step::default());
        assert_eq!(tx.on_response(&resp(&register(), 100, None), &CFG, 2_000), Step::default());
        let fired = run_until(&mut tx, 100_000);
        assert_eq!(fired.iter().map(|(at, t, _)| (*at, *t)).collect::<Vec<_>>(), vec![(6_000, Timer::K)]);
        assert_eq!(tx.state(), S::Terminated);
    }
}

#[test]
fn reliable_has_no_timer_e_and_timer_k_is_zero() {
    let (mut tx, _) = start(true);
    assert_eq!(tx.timers().iter().collect::<Vec<_>>(), vec![(Timer::F, 32_000)]);
    assert!(tx.on_response(&resp(&register(), 200, Some("r")), &CFG, 50).pass_up);
    assert_eq!(tx.state(), S::Terminated);
    let (mut tx, _) = start(true);
    let fired = run_until(&mut tx, 100_000);
    assert_eq!(fired.len(), 1);
    assert!(fired[0].2.timeout);
}

#[test]
fn transport_error_terminates() {
    let (mut tx, _) = start(false);
    tx.on_transport_error();
    assert_eq!(tx.state(), S::Terminated);
    assert_eq!(tx.timers().next_deadline(), None);
}
