//! Client INVITE transaction: RFC 3261 Figure 5 with RFC 6026 Accepted.

use super::*;
use crate::message::Method;
use crate::transaction::ClientInviteState as S;

/// An INVITE as a proxy would forward it: two Vias and a Route set, so the ACK's single Via and Route can be seen.
fn invite() -> Message {
    parse(&format!(
        "INVITE sip:bob@example.com SIP/2.0\n\
         Via: {}\n\
         Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bKupstream\n\
         Route: <sip:edge1.example.com;lr>\n\
         Route: <sip:edge2.example.com;lr>\n\
         Max-Forwards: 69\n\
         From: Alice <sip:alice@example.com>;tag=1928301774\n\
         To: Bob <sip:bob@example.com>\n\
         Call-ID: a84b4c76e66710@pc33.example.com\n\
         CSeq: 314159 INVITE\n\
         Contact: <sip:alice@pc33.example.com>\n\
         Content-Type: application/sdp\n\
         Content-Length: 5\n\nv=0\n",
        via(BRANCH)
    ))
}

fn start(reliable: bool) -> (ClientInvite, Step) {
    ClientInvite::new(&invite(), reliable, &CFG, 0)
}

#[test]
fn calling_sends_invite_and_arms_a_and_b() {
    let (tx, step) = start(false);
    assert_eq!(wire(step.send.as_deref().unwrap()), invite());
    assert_eq!(tx.state(), S::Calling);
    assert_eq!(tx.timers().get(Timer::A), Some(500));
    assert_eq!(tx.timers().get(Timer::B), Some(32_000));
}

#[test]
fn timer_a_doubles_without_cap_until_timer_b_times_out() {
    let (mut tx, first) = start(false);
    let fired = run_until(&mut tx, 100_000);
    // §17.1.1.2: intervals 500, 1000, 2000, ... (no T2 cap for INVITE): 7 transmissions in all.
    assert_eq!(send_times(&fired), vec![500, 1_500, 3_500, 7_500, 15_500, 31_500]);
    for (_, _, s) in &fired {
        if let Some(b) = &s.send {
            assert_eq!(b, first.send.as_ref().unwrap());
        }
    }
    let (at, timer, last) = fired.last().unwrap();
    assert_eq!((*at, *timer), (32_000, Timer::B));
    assert!(last.timeout);
    assert_eq!(tx.state(), S::Terminated);
    assert_eq!(tx.timers().next_deadline(), None);
}

#[test]
fn reliable_calling_has_no_retransmissions() {
    let (mut tx, _) = start(true);
    assert_eq!(tx.timers().get(Timer::A), None);
    let fired = run_until(&mut tx, 100_000);
    assert_eq!(fired.len(), 1);
    assert_eq!((fired[0].0, fired[0].1, fired[0].2.timeout), (32_000, Timer::B, true));
}

#[test]
fn provisional_moves_to_proceeding_and_stops_timers() {
    let (mut tx, _) = start(false);
    let _ = run_until(&mut tx, 500);
    let step = tx.on_response(&resp(&invite(), 100, None), &CFG, 600);
    assert_eq!(step, Step { pass_up: true, ..Step::default() });
    assert_eq!(tx.state(), S::Proceeding);
    assert_eq!(tx.timers().next_deadline(), None, "no A, and B only guards Calling");
    // Proceeding: further provisionals go up.
    assert!(tx.on_response(&resp(&invite(), 180, Some("bob1")), &CFG, 700).pass_up);
    assert_eq!(tx.state(), S::Proceeding);
}

#[test]
fn non_2xx_final_sends_ack_built_per_17_1_1_3() {
    let (mut tx, _) = start(false);
    let step = tx.on_response(&resp(&invite(), 486, Some("bobtag")), &CFG, 1_000);
    assert!(step.pass_up);
    assert_eq!(tx.state(), S::Completed);
    assert_eq!(tx.timers().get(Timer::D), Some(33_000));
    assert_eq!(tx.timers().get(Timer::A), None);
    let ack = wire(step.send.as_deref().unwrap());
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(ack.request_uri(), Some("sip:bob@example.com"));
    assert_eq!(ack.headers.get_all(&HeaderName::Via).collect::<Vec<_>>(), vec![via(BRANCH).as_str()]);
    assert_eq!(header(&ack, HeaderName::To), "Bob <sip:bob@example.com>;tag=bobtag");
    assert_eq!(header(&ack, HeaderName::From), "Alice <sip:alice@example.com>;tag=1928301774");
    assert_eq!(header(&ack, HeaderName::CallId), "a84b4c76e66710@pc33.example.com");
    assert_eq!(header(&ack, HeaderName::CSeq), "314159 ACK");
    assert_eq!(header(&ack, HeaderName::MaxForwards), "69");
    assert_eq!(
        ack.headers.get_all(&HeaderName::Route).collect::<Vec<_>>(),
        vec!["<sip:edge1.example.com;lr>", "<sip:edge2.example.com;lr>"]
    );
    assert!(ack.body.is_empty());
    assert_eq!(ack.header(&HeaderName::Contact), None);
}

#[test]
fn non_2xx_in_proceeding_also_acks() {
    let (mut tx, _) = start(false);
    let _ = tx.on_response(&resp(&invite(), 180, Some("t")), &CFG, 100);
    let step = tx.on_response(&resp(&invite(), 603, Some("t")), &CFG, 200);
    assert!(step.pass_up);
    assert_eq!(wire(step.send.as_deref().unwrap()).method(), Some(&Method::Ack));
    assert_eq!(tx.state(), S::Completed);
}

#[test]
fn completed_resends_ack_on_each_retransmitted_final_and_absorbs_it() {
    let (mut tx, _) = start(false);
    let first = tx.on_response(&resp(&invite(), 486, Some("bobtag")), &CFG, 1_000).send.unwrap();
    for now in [2_000, 4_000] {
        let step = tx.on_response(&resp(&invite(), 486, Some("bobtag")), &CFG, now);
        assert_eq!(step, Step { send: Some(first.clone()), ..Step::default() });
    }
    // Provisionals and 2xx are nothing to Completed.
    assert_eq!(tx.on_response(&resp(&invite(), 180, None), &CFG, 5_000), Step::default());
    assert_eq!(tx.on_response(&resp(&invite(), 200, Some("x")), &CFG, 5_000), Step::default());
    // Timer D ends it; D does not move with retransmissions.
    let fired = run_until(&mut tx, 100_000);
    assert_eq!(fired.iter().map(|(at, t, _)| (*at, *t)).collect::<Vec<_>>(), vec![(33_000, Timer::D)]);
    assert_eq!(tx.state(), S::Terminated);
}

#[test]
fn reliable_non_2xx_terminates_at_once_timer_d_zero() {
    let (mut tx, _) = start(true);
    let step = tx.on_response(&resp(&invite(), 404, Some("t")), &CFG, 10);
    assert!(step.pass_up && step.send.is_some());
    assert_eq!(tx.state(), S::Terminated);
    assert_eq!(tx.timers().next_deadline(), None);
}

#[test]
fn two_xx_moves_to_accepted_and_passes_every_2xx_up_until_timer_m() {
    let (mut tx, _) = start(false);
    let step = tx.on_response(&resp(&invite(), 200, Some("bob1")), &CFG, 1_000);
    // The TU ACKs a 2xx itself: nothing is sent here.
    assert_eq!(step, Step { pass_up: true, ..Step::default() });
    assert_eq!(tx.state(), S::Accepted);
    assert_eq!(tx.timers().iter().collect::<Vec<_>>(), vec![(Timer::M, 33_000)]);
    // RFC 6026 §8.4: retransmissions and other forks' 2xx go up too.
    assert!(tx.on_response(&resp(&invite(), 200, Some("bob1")), &CFG, 1_500).pass_up);
    assert!(tx.on_response(&resp(&invite(), 200, Some("bob2")), &CFG, 1_600).pass_up);
    // Other responses are absorbed.
    assert_eq!(tx.on_response(&resp(&invite(), 180, Some("bob3")), &CFG, 1_700), Step::default());
    assert_eq!(tx.on_response(&resp(&invite(), 486, Some("bob3")), &CFG, 1_800), Step::default());
    let fired = run_until(&mut tx, 100_000);
    assert_eq!(fired.iter().map(|(at, t, _)| (*at, *t)).collect::<Vec<_>>(), vec![(33_000, Timer::M)]);
    assert_eq!(tx.state(), S::Terminated);
}

#[test]
fn two_xx_from_proceeding_and_over_reliable_transport_keeps_timer_m() {
    let (mut tx, _) = start(true);
    let _ = tx.on_response(&resp(&invite(), 183, Some("a")), &CFG, 10);
    assert!(tx.on_response(&resp(&invite(), 200, Some("a")), &CFG, 20).pass_up);
    assert_eq!(tx.state(), S::Accepted);
    assert_eq!(tx.timers().get(Timer::M), Some(32_020));
}

#[test]
fn stale_timers_and_transport_errors() {
    let (mut tx, _) = start(false);
    // A timer that is not armed does nothing.
    assert_eq!(tx.on_timer(Timer::D, &CFG, 600), Step::default());
    assert_eq!(tx.state(), S::Calling);
    tx.on_transport_error();
    assert_eq!(tx.state(), S::Terminated);
    assert_eq!(tx.timers().next_deadline(), None);
}
