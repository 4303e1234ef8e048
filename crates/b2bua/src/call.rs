//! The call machine. See the crate documentation for the stages; this file holds the rules.

use std::collections::{HashMap, VecDeque};

use switchboard_model::DivertReason;
use switchboard_sip_core::divert::{self, diversion_value, diverted_history, history_info};
use switchboard_sip_core::transaction::Key;
use switchboard_sip_core::validate::response_to;
use switchboard_sip_core::{HeaderName, Headers, Message, Method};

use crate::dialog::{Dialog, contact_uri, record_route, tag_of};
use crate::{Hop, Mode, Plan, Target};

/// Methods we accept inside a call.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, MESSAGE, NOTIFY";

/// Headers that travel with a relayed request or response besides the body.
const RELAYED: &[&str] = &["Content-Disposition", "Info-Package", "Event", "Subscription-State"];

/// Timers and limits of every call.
#[derive(Debug, Clone)]
pub struct CallConfig {
    /// RFC 3261 T1 and T2, for retransmitting our 2xx to an INVITE over UDP (§13.3.1.4).
    pub t1_ms: u64,
    pub t2_ms: u64,
    /// Longest a call may ring (each stage) before it is given up as unanswered: 480, or the divert.
    pub max_ring_ms: u64,
    /// A hunted target (a gateway) that sends no response at all in this time is skipped for the next.
    pub hunt_timeout_ms: u64,
    /// Longest an answered call may last; both legs are hung up then. 0: no limit.
    pub max_duration_ms: u64,
    /// How often an answered call probes both legs with in-dialog OPTIONS; 481, 408 or no answer ends the
    /// call. 0: never.
    pub check_interval_ms: u64,
    /// How long an ended call stays to acknowledge and hang up late 2xx answers from cancelled legs.
    pub linger_ms: u64,
}

impl Default for CallConfig {
    fn default() -> Self {
        CallConfig {
            t1_ms: 500,
            t2_ms: 4000,
            max_ring_ms: 180_000,
            hunt_timeout_ms: 4000,
            max_duration_ms: 4 * 3600 * 1000,
            check_interval_ms: 120_000,
            linger_ms: 32_000,
        }
    }
}

/// How an attempt ended, for the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Answered,
    Busy,
    NoAnswer,
    Failed,
    Cancelled,
    Rejected,
}

/// Why an answered call ended, or why an attempt stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    CallerHangup,
    CalleeHangup,
    CallerCancelled,
    Unanswered,
    MaxDuration,
    DeadLeg,
    Shutdown,
    /// The relay saw no media from either side for the media timeout.
    MediaTimeout,
}

/// What the records keep of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub started_at: u64,
    pub answered_at: Option<u64>,
    pub ended_at: u64,
    pub disposition: Disposition,
    /// The final status the caller got.
    pub status: u16,
    pub end_reason: EndReason,
    pub divert: Option<DivertReason>,
    pub diverted_to: Option<String>,
    /// The label of the target that answered, or else of the last one tried.
    pub target: Option<String>,
    /// The device that answered.
    pub answered_device: Option<i64>,
}

/// What the driver must do for the call.
#[derive(Debug, Clone)]
pub enum Action<H> {
    /// Answer the server transaction `key` with `msg`.
    Respond { key: Key, msg: Message },
    /// Start a client transaction for `msg` towards `hop`; hand its responses to [`Call::on_response`] as `req`
    /// (a timeout or transport failure to [`Call::on_request_failed`]).
    Request { req: u32, msg: Message, hop: H },
    /// Send `msg` directly (an ACK for a 2xx).
    Send { msg: Message, hop: H },
    /// A side's SDP (offer or answer) says where it receives media: tell the relay.
    Media { side: crate::MediaSide, remote: crate::Remote },
    /// The call was answered.
    Answered { at: u64 },
    /// The call ended; the record is final. The call lingers a while for stray answers: drop it when
    /// [`Call::is_finished`].
    Ended(Record),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ringing,
    Answered,
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegState {
    /// INVITE sent, nothing heard.
    Calling,
    /// A provisional response came: a CANCEL may be sent.
    Proceeding,
    /// The 2xx came and was acknowledged.
    Confirmed,
    /// A final non-2xx came, or the leg was hung up.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B(usize),
}

#[derive(Debug)]
struct Leg<H> {
    target: Target<H>,
    dialog: Dialog,
    /// The INVITE as sent, for building its CANCEL.
    invite: Message,
    state: LegState,
    /// The leg is no longer wanted: CANCEL it once it may be cancelled, hang up any 2xx.
    abandoned: bool,
    cancel_sent: bool,
    /// A hunted leg that hears nothing by then is skipped.
    hunt_deadline: Option<u64>,
    /// The ACK we sent for its 2xx, resent when the 2xx is.
    ack: Option<Message>,
    /// Skipped for silence (a hunt timeout), not cancelled: an answer still wins while the caller waits.
    late_ok: bool,
    /// Started by the divert stage.
    divert_stage: bool,
}

#[derive(Debug)]
enum Pending {
    Invite(usize),
    /// CANCEL, BYE: the response changes nothing.
    Fire,
    Probe,
    /// A request relayed from one side; its response goes back on `key`. An INVITE that hears no final response
    /// by `deadline` is answered 408 to its sender, so a stuck re-INVITE cannot block every later offer.
    Relay {
        key: Key,
        request: Headers,
        method: Method,
        offerless: bool,
        to: Side,
        deadline: Option<u64>,
    },
    /// A relayed re-INVITE whose 2xx came: its retransmissions are acknowledged again (RFC 6026 §8.4).
    Acked {
        to: Side,
        cseq: u32,
    },
}

/// Our 2xx to an INVITE, retransmitted over UDP until its ACK comes (§13.3.1.4).
#[derive(Debug)]
struct Retransmit {
    side: Side,
    key: Key,
    msg: Message,
    next_at: u64,
    interval: u64,
    /// No ACK by then: the session ends.
    until: u64,
    /// Over a stream the 2xx is not resent, but the ACK is still awaited (RFC 3261 §13.3.1.4).
    reliable: bool,
}

/// An ACK held back because the caller's INVITE had no offer: the answer comes in the caller's ACK.
#[derive(Debug)]
struct HeldAck {
    /// Who must ACK us first.
    from: Side,
    /// The leg to ACK then, and its CSeq.
    to: Side,
    cseq: u32,
}

/// One call: the caller's leg and every leg started for it.
#[derive(Debug)]
pub struct Call<H> {
    cfg: CallConfig,
    token: u64,
    next_id: u32,
    phase: Phase,
    a_key: Key,
    a_invite: Message,
    a_hop: H,
    a: Dialog,
    max_forwards: u32,
    legs: Vec<Leg<H>>,
    mode: Mode,
    /// Targets of the current hunt still to try.
    queue: VecDeque<Target<H>>,
    plan: Plan<H>,
    /// Where the relay receives each side's media, when media is anchored.
    media: Option<crate::MediaPlan>,
    in_divert: bool,
    winner: Option<usize>,
    requests: HashMap<u32, Pending>,
    actions: VecDeque<Action<H>>,
    no_answer_at: Option<u64>,
    ring_until: Option<u64>,
    max_duration_at: Option<u64>,
    check_at: Option<u64>,
    probes_out: u8,
    retransmits: Vec<Retransmit>,
    held_ack: Option<HeldAck>,
    linger_until: u64,
    // For the record.
    started_at: u64,
    answered_at: Option<u64>,
    divert: Option<DivertReason>,
    diverted_to: Option<String>,
    last_target: Option<String>,
    /// The most telling failure so far (busy beats the rest), to answer the caller with.
    best_failure: Option<(u16, String)>,
}

fn is_busy(code: u16) -> bool {
    matches!(code, 486 | 600 | 603)
}

/// Failures that send a hunt to its next target: the target did not take the call, rather than refusing it. A
/// challenge from a carrier gateway is our misconfiguration, not something the caller could answer.
fn is_failover(code: u16) -> bool {
    matches!(code, 401 | 407 | 408 | 500 | 502 | 503 | 504)
}

/// What the caller is told of a failure further on: redirections are not followed (their contacts would leak),
/// a challenge for our gateway cannot be answered by the caller, and a 503 would say *we* are overloaded (RFC
/// 3261 §16.7 step 6 turns it into 500 too). Reason phrases are the standard ones, so the far side's product
/// strings do not leak either.
fn for_caller(code: u16, reason: &str) -> (u16, String) {
    let code = match code {
        300..=399 => 480,
        401 | 407 | 503 => 500,
        c => c,
    };
    (code, standard_phrase(code).map_or_else(|| reason.to_owned(), str::to_owned))
}

fn standard_phrase(code: u16) -> Option<&'static str> {
    Some(match code {
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        410 => "Gone",
        480 => "Temporarily Unavailable",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        502 => "Bad Gateway",
        504 => "Server Time-out",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => return None,
    })
}

impl<H: Hop> Call<H> {
    /// A call for `invite`, received on server transaction `key` from `hop`. `token` is a random number that no
    /// other live call has: every tag, branch and Call-ID of the call starts with it (see [`token_of_tag`]).
    pub fn new(cfg: CallConfig, token: u64, key: Key, invite: Message, hop: H, plan: Plan<H>, now: u64) -> Self {
        let h = &invite.headers;
        let local_tag = format!("{token:016x}0");
        let to = h.get(&HeaderName::To).unwrap_or_default();
        let a = Dialog {
            call_id: h.get(&HeaderName::CallId).unwrap_or_default().to_owned(),
            local: format!("{to};tag={local_tag}"),
            local_tag,
            remote: h.get(&HeaderName::From).unwrap_or_default().to_owned(),
            remote_target: contact_uri(h).unwrap_or_else(|| invite.request_uri().unwrap_or_default().to_owned()),
            route: record_route(h),
            local_cseq: 0,
            remote_cseq: cseq_of(h).unwrap_or(0),
        };
        let max_forwards =
            h.get(&HeaderName::MaxForwards).and_then(|v| v.trim().parse::<u32>().ok()).unwrap_or(70).min(70);
        let mut call = Call {
            cfg,
            token,
            next_id: 1,
            phase: Phase::Ringing,
            a_key: key,
            a_invite: invite,
            a_hop: hop,
            a,
            max_forwards: max_forwards.saturating_sub(1),
            legs: Vec::new(),
            mode: plan.mode,
            queue: VecDeque::new(),
            media: plan.media,
            plan,
            in_divert: false,
            winner: None,
            requests: HashMap::new(),
            actions: VecDeque::new(),
            no_answer_at: None,
            ring_until: None,
            max_duration_at: None,
            check_at: None,
            probes_out: 0,
            retransmits: Vec::new(),
            held_ack: None,
            linger_until: 0,
            started_at: now,
            answered_at: None,
            divert: None,
            diverted_to: None,
            last_target: None,
            best_failure: None,
        };
        call.start(now);
        call
    }

    fn start(&mut self, now: u64) {
        self.respond_a(100, "Trying", None, now);
        if let Some(reason) = self.plan.divert_now {
            return self.start_divert(reason, now);
        }
        let targets = std::mem::take(&mut self.plan.ring);
        if targets.is_empty() {
            return match self.plan.divert.is_some() {
                true => self.start_divert(DivertReason::Offline, now),
                false => self.fail(480, "Temporarily Unavailable", EndReason::Unanswered, now),
            };
        }
        self.no_answer_at = self.plan.no_answer_ms.filter(|_| self.plan.divert.is_some()).map(|ms| now + ms);
        self.ring_until = Some(now + self.cfg.max_ring_ms);
        match self.mode {
            Mode::Fork => {
                for t in targets {
                    self.start_leg(t, now);
                }
            }
            Mode::Hunt => {
                self.queue = targets.into();
                self.hunt_next(now);
            }
        }
    }

    pub fn token(&self) -> u64 {
        self.token
    }

    pub fn is_answered(&self) -> bool {
        self.phase == Phase::Answered
    }

    pub fn started_at(&self) -> u64 {
        self.started_at
    }

    /// Ended and done lingering: the driver may drop the call.
    pub fn is_finished(&self, now: u64) -> bool {
        self.phase == Phase::Ended && now >= self.linger_until
    }

    pub fn drain_actions(&mut self) -> impl Iterator<Item = Action<H>> + '_ {
        self.actions.drain(..)
    }

    /// The earliest deadline of the call.
    pub fn poll_timeout(&self) -> Option<u64> {
        let hunt = self.legs.iter().filter_map(|l| l.hunt_deadline);
        let relays = self.requests.values().filter_map(|p| match p {
            Pending::Relay { deadline, .. } => *deadline,
            _ => None,
        });
        let retx = self.retransmits.iter().map(|r| r.next_at);
        let linger = (self.phase == Phase::Ended).then_some(self.linger_until);
        [self.no_answer_at, self.ring_until, self.max_duration_at, self.check_at, linger]
            .into_iter()
            .flatten()
            .chain(hunt)
            .chain(retx)
            .chain(relays)
            .min()
    }

    pub fn on_timeout(&mut self, now: u64) {
        for r in &mut self.retransmits {
            if r.next_at <= now && !r.reliable {
                self.actions.push_back(Action::Respond { key: r.key, msg: r.msg.clone() });
                r.interval = (r.interval * 2).min(self.cfg.t2_ms);
                r.next_at = (now + r.interval).min(r.until);
            }
        }
        let stuck: Vec<u32> = self
            .requests
            .iter()
            .filter(|(_, p)| matches!(p, Pending::Relay { deadline: Some(d), .. } if *d <= now))
            .map(|(&r, _)| r)
            .collect();
        for req in stuck {
            if let Some(Pending::Relay { key, request, .. }) = self.requests.remove(&req) {
                self.respond(key, &request, 408, "Request Timeout", None);
            }
        }
        if let Some(r) = self.retransmits.iter().position(|r| r.until <= now) {
            // §13.3.1.4: no ACK for 64*T1: the session ends.
            self.retransmits.swap_remove(r);
            if self.phase == Phase::Answered {
                return self.hang_up(EndReason::DeadLeg, None, now);
            }
        }
        if self.phase == Phase::Ringing {
            if self.no_answer_at.is_some_and(|t| t <= now) {
                self.no_answer_at = None;
                return self.start_divert(DivertReason::NoAnswer, now);
            }
            if self.ring_until.is_some_and(|t| t <= now) {
                self.ring_until = None;
                if !self.in_divert && self.plan.divert.is_some() {
                    return self.start_divert(DivertReason::NoAnswer, now);
                }
                return self.fail(480, "Temporarily Unavailable", EndReason::Unanswered, now);
            }
            let expired: Vec<usize> = (0..self.legs.len())
                .filter(|&i| self.legs.get(i).and_then(|l| l.hunt_deadline).is_some_and(|t| t <= now))
                .collect();
            for i in expired {
                if let Some(leg) = self.legs.get_mut(i) {
                    leg.hunt_deadline = None;
                    leg.abandoned = true;
                    leg.late_ok = true;
                }
                self.note_failure(408, "Request Timeout");
                self.hunt_next(now);
            }
        }
        if self.phase == Phase::Answered {
            if self.max_duration_at.is_some_and(|t| t <= now) {
                return self.hang_up(EndReason::MaxDuration, None, now);
            }
            if self.check_at.is_some_and(|t| t <= now) {
                self.check_at = Some(now + self.cfg.check_interval_ms);
                self.probe(now);
            }
        }
    }

    /// A CANCEL for the caller's INVITE, on its own server transaction `key` (§9.2).
    pub fn on_cancel(&mut self, key: Key, cancel: &Message, now: u64) {
        let ok = response_to(&cancel.headers, 200, "OK", Some(&self.a.local_tag));
        self.actions.push_back(Action::Respond { key, msg: ok });
        if self.phase == Phase::Ringing {
            self.cancel_legs(None);
            self.finish_unanswered(487, "Request Terminated", Disposition::Cancelled, EndReason::CallerCancelled, now);
        }
    }

    /// A response on request `req`.
    pub fn on_response(&mut self, req: u32, msg: Message, now: u64) {
        let Some(code) = msg.status() else { return };
        let Some(p) = self.requests.get(&req) else { return };
        match p {
            // Kept after a 2xx, so that its retransmissions are acknowledged again.
            &Pending::Invite(i) => {
                if code >= 300 {
                    self.requests.remove(&req);
                }
                self.on_invite_response(i, code, msg, now);
            }
            Pending::Relay { .. } if code < 200 => {}
            Pending::Relay { .. } => {
                if let Some(Pending::Relay { key, request, method, offerless, to, .. }) = self.requests.remove(&req) {
                    if code < 300 && method == Method::Invite {
                        let cseq = cseq_of(&msg.headers).unwrap_or(0);
                        self.requests.insert(req, Pending::Acked { to, cseq });
                    }
                    self.on_relay_response(key, &request, &method, offerless, to, &msg, now);
                }
            }
            &Pending::Acked { to, cseq } => {
                let held = self.held_ack.as_ref().is_some_and(|h| h.to == to && h.cseq == cseq);
                if (200..300).contains(&code) && !held {
                    self.send_ack(to, cseq, None, now);
                }
            }
            Pending::Probe if code >= 200 => {
                self.requests.remove(&req);
                self.probes_out = self.probes_out.saturating_sub(1);
                if matches!(code, 408 | 481) && self.phase == Phase::Answered {
                    self.hang_up(EndReason::DeadLeg, None, now);
                }
            }
            Pending::Probe | Pending::Fire => {
                if code >= 200 {
                    self.requests.remove(&req);
                }
            }
        }
    }

    /// Request `req` got no response (Timer B or F) or could not be sent: a 408 (§8.1.3.1).
    pub fn on_request_failed(&mut self, req: u32, now: u64) {
        if self.requests.contains_key(&req) {
            self.on_response(req, Message::response(408, "Request Timeout"), now);
        }
    }

    /// The transaction of request `req` ended: nothing more will come for it.
    pub fn on_request_ended(&mut self, req: u32) {
        self.requests.remove(&req);
    }

    /// A request inside one of the call's dialogs (the driver found the call by the To tag).
    pub fn on_request(&mut self, key: Key, msg: Message, now: u64) {
        let Some(method) = msg.method().cloned() else { return };
        let side = self.side_of(&msg);
        let answered_side = match side {
            Some(Side::A) => true,
            Some(Side::B(i)) => self.winner == Some(i),
            None => false,
        };
        if self.phase == Phase::Ringing && side == Some(Side::A) {
            // The caller's early dialog (our 18x had a tag): a BYE ends the attempt like a CANCEL (RFC 3261 §15);
            // anything else waits for the answer.
            if method == Method::Bye {
                self.respond(key, &msg.headers, 200, "OK", None);
                self.cancel_legs(None);
                return self.finish_unanswered(
                    487,
                    "Request Terminated",
                    Disposition::Cancelled,
                    EndReason::CallerCancelled,
                    now,
                );
            }
            return self.respond(key, &msg.headers, 491, "Request Pending", None);
        }
        if self.phase != Phase::Answered || !answered_side {
            // A leg that lost the race, or a dialog not yet (or no longer) confirmed.
            if method == Method::Bye
                && let Some(Side::B(i)) = side
                && let Some(leg) = self.legs.get_mut(i)
            {
                leg.state = LegState::Done;
                return self.respond(key, &msg.headers, 200, "OK", None);
            }
            return self.respond(key, &msg.headers, 481, "Call/Transaction Does Not Exist", None);
        }
        let Some(side) = side else { return };
        let cseq = cseq_of(&msg.headers).unwrap_or(0);
        let refresh = matches!(method, Method::Invite | Method::Update).then(|| contact_uri(&msg.headers)).flatten();
        if let Some(d) = self.dialog_mut(side) {
            d.remote_cseq = d.remote_cseq.max(cseq);
            // A target refresh request updates the remote target (RFC 3261 §12.2.2).
            if let Some(c) = refresh {
                d.remote_target = c;
            }
        }
        match method {
            Method::Bye => {
                self.respond(key, &msg.headers, 200, "OK", None);
                let reason = if side == Side::A { EndReason::CallerHangup } else { EndReason::CalleeHangup };
                self.hang_up(reason, Some(side), now);
            }
            Method::Options => {
                let mut ok = self.response(&msg.headers, 200, "OK", Some(side));
                ok.headers.push(HeaderName::Allow, ALLOW);
                self.actions.push_back(Action::Respond { key, msg: ok });
            }
            Method::Invite | Method::Update | Method::Info | Method::Message | Method::Notify => {
                let offer_method = matches!(method, Method::Invite | Method::Update);
                if offer_method
                    && self.requests.values().any(
                        |p| matches!(p, Pending::Relay { method, .. } if matches!(method, Method::Invite | Method::Update)),
                    )
                {
                    // §14.1: an offer while one is outstanding.
                    return self.respond(key, &msg.headers, 491, "Request Pending", None);
                }
                self.relay(key, msg, method, side, now);
            }
            _ => {
                let mut resp = self.response(&msg.headers, 405, "Method Not Allowed", Some(side));
                resp.headers.push(HeaderName::Allow, ALLOW);
                self.actions.push_back(Action::Respond { key, msg: resp });
            }
        }
    }

    /// An ACK for a 2xx of ours (the driver found the call by the To tag).
    pub fn on_ack(&mut self, msg: &Message, now: u64) {
        let Some(side) = self.side_of(msg) else { return };
        self.retransmits.retain(|r| r.side != side);
        let Some(held) = self.held_ack.take_if(|h| h.from == side) else { return };
        self.send_ack(held.to, held.cseq, Some(msg), now);
    }

    /// Ends the call at once (the daemon is stopping, or an operator hung it up).
    pub fn terminate(&mut self, now: u64) {
        match self.phase {
            Phase::Ringing => {
                self.cancel_legs(None);
                self.finish_unanswered(503, "Service Unavailable", Disposition::Failed, EndReason::Shutdown, now);
            }
            Phase::Answered => self.hang_up(EndReason::Shutdown, None, now),
            Phase::Ended => {}
        }
    }

    // ---- ringing -------------------------------------------------------------------------------------------

    /// The relay saw no media for the media timeout: an answered call is hung up on both sides.
    pub fn media_timeout(&mut self, now: u64) {
        if self.phase == Phase::Answered {
            self.hang_up(EndReason::MediaTimeout, None, now);
        }
    }

    fn next_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn branch(&mut self) -> String {
        let n = self.next_id();
        format!("z9hG4bK{:016x}{n:x}", self.token)
    }

    fn start_leg(&mut self, target: Target<H>, now: u64) {
        let n = self.next_id();
        let local_tag = format!("{:016x}{n:x}", self.token);
        let call_id = format!("{:016x}-{n:x}", self.token);
        let branch = self.branch();
        let mut m = Message::request(Method::Invite, target.request_uri.clone());
        let h = &mut m.headers;
        h.push(HeaderName::Via, target.hop.via(&branch));
        h.push(HeaderName::MaxForwards, self.max_forwards.to_string());
        for r in &target.route {
            h.push(HeaderName::Route, r.clone());
        }
        let from = format!("{};tag={local_tag}", target.from);
        h.push(HeaderName::From, from.clone());
        h.push(HeaderName::To, target.to.clone());
        h.push(HeaderName::CallId, call_id.clone());
        h.push(HeaderName::CSeq, "1 INVITE");
        h.push(HeaderName::Contact, format!("<{}>", target.hop.contact()));
        h.push(HeaderName::Allow, ALLOW);
        for (name, value) in &target.extra {
            h.push(name.clone(), value.clone());
        }
        carry_body(&mut self.actions, self.media.as_ref(), &self.a_invite, true, &mut m);
        let req = self.next_id();
        let dialog = Dialog {
            call_id,
            local_tag,
            local: from,
            remote: target.to.clone(),
            remote_target: target.request_uri.clone(),
            route: target.route.clone(),
            local_cseq: 1,
            remote_cseq: 0,
        };
        let hunt_deadline = (self.mode == Mode::Hunt || self.in_divert).then_some(now + self.cfg.hunt_timeout_ms);
        self.last_target = Some(target.label.clone());
        let hop = target.hop.clone();
        self.legs.push(Leg {
            target,
            dialog,
            invite: m.clone(),
            state: LegState::Calling,
            abandoned: false,
            cancel_sent: false,
            hunt_deadline,
            ack: None,
            late_ok: false,
            divert_stage: self.in_divert,
        });
        self.requests.insert(req, Pending::Invite(self.legs.len() - 1));
        self.actions.push_back(Action::Request { req, msg: m, hop });
    }

    /// Tries the next target of the hunt, or gives up with the most telling failure.
    fn hunt_next(&mut self, now: u64) {
        if self.phase != Phase::Ringing {
            return;
        }
        match self.queue.pop_front() {
            Some(t) => self.start_leg(t, now),
            None => {
                if self.live_legs() > 0 {
                    return;
                }
                self.ring_exhausted(now);
            }
        }
    }

    fn live_legs(&self) -> usize {
        self.legs.iter().filter(|l| !l.abandoned && matches!(l.state, LegState::Calling | LegState::Proceeding)).count()
    }

    /// Every leg of the stage failed.
    fn ring_exhausted(&mut self, now: u64) {
        if !self.in_divert && self.plan.divert.is_some() {
            let busy = self.best_failure.as_ref().is_some_and(|(c, _)| is_busy(*c));
            let reason = if busy { DivertReason::Busy } else { DivertReason::Offline };
            return self.start_divert(reason, now);
        }
        let (code, reason) = self.best_failure.clone().unwrap_or((480, "Temporarily Unavailable".into()));
        let (code, reason) = for_caller(code, &reason);
        self.fail(code, &reason, EndReason::Unanswered, now);
    }

    fn note_failure(&mut self, code: u16, reason: &str) {
        let rank = |c: u16| match c {
            c if is_busy(c) => 4,
            600..=699 => 3,
            400..=499 if c != 408 && c != 480 => 2,
            _ => 1,
        };
        if self.best_failure.as_ref().is_none_or(|(c, _)| rank(code) > rank(*c)) {
            self.best_failure = Some((code, reason.to_owned()));
        }
    }

    fn start_divert(&mut self, reason: DivertReason, now: u64) {
        self.cancel_legs(None);
        self.queue.clear();
        self.no_answer_at = None;
        let Some(plan) = self.plan.divert.take() else {
            return self.fail(480, "Temporarily Unavailable", EndReason::Unanswered, now);
        };
        self.in_divert = true;
        self.divert = Some(reason);
        self.diverted_to = Some(plan.label.clone());
        if plan.targets.is_empty() {
            return self.fail(480, "Temporarily Unavailable", EndReason::Unanswered, now);
        }
        let mut targets = VecDeque::with_capacity(plan.targets.len());
        for mut t in plan.targets {
            if let Ok(v) = diversion_value(&plan.diverting_uri, wire(reason), plan.counter, false) {
                t.extra.push((HeaderName::Diversion, v));
            }
            for p in &plan.previous {
                t.extra.push((HeaderName::Diversion, p.clone()));
            }
            if let Ok(v) = history_info(&diverted_history(&plan.diverting_uri, &t.request_uri, wire(reason))) {
                t.extra.push((HeaderName::HistoryInfo, v));
            }
            targets.push_back(t);
        }
        self.queue = targets;
        self.ring_until = Some(now + self.cfg.max_ring_ms);
        self.hunt_next(now);
    }

    /// CANCELs every leg still ringing but `keep`, or marks it so the CANCEL goes once it may (§9.1).
    fn cancel_legs(&mut self, keep: Option<usize>) {
        for i in 0..self.legs.len() {
            if Some(i) == keep {
                continue;
            }
            let Some(leg) = self.legs.get_mut(i) else { continue };
            if matches!(leg.state, LegState::Calling | LegState::Proceeding) {
                leg.abandoned = true;
                leg.hunt_deadline = None;
            }
            if leg.state == LegState::Proceeding && !leg.cancel_sent {
                self.send_cancel(i);
            }
        }
    }

    fn send_cancel(&mut self, i: usize) {
        let Some(leg) = self.legs.get_mut(i) else { return };
        leg.cancel_sent = true;
        let inv = &leg.invite;
        let mut m = Message::request(Method::Cancel, inv.request_uri().unwrap_or_default().to_owned());
        for name in [HeaderName::Via, HeaderName::MaxForwards] {
            if let Some(v) = inv.headers.get(&name) {
                m.headers.push(name, v);
            }
        }
        for r in inv.headers.get_all(&HeaderName::Route) {
            m.headers.push(HeaderName::Route, r);
        }
        for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
            if let Some(v) = inv.headers.get(&name) {
                m.headers.push(name, v);
            }
        }
        m.headers.push(HeaderName::CSeq, "1 CANCEL");
        let hop = leg.target.hop.clone();
        let req = self.next_id();
        self.requests.insert(req, Pending::Fire);
        self.actions.push_back(Action::Request { req, msg: m, hop });
    }

    fn on_invite_response(&mut self, i: usize, code: u16, msg: Message, now: u64) {
        let Some(leg) = self.legs.get_mut(i) else { return };
        if code < 200 {
            leg.hunt_deadline = None;
            if leg.state == LegState::Calling {
                leg.state = LegState::Proceeding;
            }
            if leg.abandoned && !leg.cancel_sent {
                return self.send_cancel(i);
            }
            if code > 100 && !leg.abandoned && self.phase == Phase::Ringing {
                let body = (!msg.body.is_empty()).then_some(&msg);
                let reason = standard_phrase(code).map_or_else(|| reason_of(&msg), str::to_owned);
                self.respond_a(code, &reason, body, now);
            }
            return;
        }
        if code < 300 {
            return self.on_invite_2xx(i, msg, now);
        }
        leg.state = LegState::Done;
        leg.hunt_deadline = None;
        if leg.abandoned || self.phase != Phase::Ringing {
            return;
        }
        let reason = reason_of(&msg);
        self.note_failure(code, &reason);
        let hunting = self.mode == Mode::Hunt || self.in_divert;
        if !self.in_divert && self.plan.divert_on_busy && is_busy(code) && self.plan.divert.is_some() {
            return self.start_divert(DivertReason::Busy, now);
        }
        if hunting {
            if is_failover(code) {
                return self.hunt_next(now);
            }
            // The destination refused the call itself: the caller hears why.
            self.queue.clear();
            let (code, reason) = for_caller(code, &reason);
            return self.fail(code, &reason, EndReason::Unanswered, now);
        }
        if code >= 600 {
            // A global failure from one fork ends the search (RFC 3261 §16.7 step 5).
            self.cancel_legs(None);
            let (code, reason) = for_caller(code, &reason);
            return self.fail(code, &reason, EndReason::Unanswered, now);
        }
        if self.live_legs() == 0 {
            self.ring_exhausted(now);
        }
    }

    fn on_invite_2xx(&mut self, i: usize, msg: Message, now: u64) {
        let Some(leg) = self.legs.get_mut(i) else { return };
        if leg.state == LegState::Confirmed || leg.ack.is_some() || leg.state == LegState::Done {
            let to = msg.headers.get(&HeaderName::To).unwrap_or_default();
            if tag_of(to, "To") == tag_of(&leg.dialog.remote, "To") {
                // A retransmitted 2xx: its ACK again (§13.2.2.4).
                if let Some(ack) = leg.ack.clone() {
                    self.actions.push_back(Action::Send { msg: ack, hop: leg.target.hop.clone() });
                }
            } else {
                // A second dialog from a fork further on (RFC 6026 §8.4): acknowledge it and hang it up.
                let mut stray = leg.dialog.clone();
                stray.remote = to.to_owned();
                if let Some(c) = contact_uri(&msg.headers) {
                    stray.remote_target = c;
                }
                let mut route = record_route(&msg.headers);
                route.reverse();
                stray.route = route;
                let hop = leg.target.hop.clone();
                let ack = stray.ack(&hop, &self.branch(), 1);
                self.actions.push_back(Action::Send { msg: ack, hop: hop.clone() });
                let bye = stray.request(Method::Bye, &hop, &self.branch());
                let req = self.next_id();
                self.requests.insert(req, Pending::Fire);
                self.actions.push_back(Action::Request { req, msg: bye, hop });
            }
            return;
        }
        let h = &msg.headers;
        leg.dialog.remote = h.get(&HeaderName::To).unwrap_or_default().to_owned();
        if let Some(c) = contact_uri(h) {
            leg.dialog.remote_target = c;
        }
        let mut route = record_route(h);
        route.reverse();
        if !route.is_empty() {
            leg.dialog.route = route;
        }
        leg.hunt_deadline = None;
        let current = !leg.abandoned || (leg.late_ok && leg.divert_stage == self.in_divert);
        let won = current && self.phase == Phase::Ringing;
        leg.state = LegState::Confirmed;
        if !won {
            // Answered after it was cancelled, or after another leg won: acknowledge and hang up.
            self.send_ack(Side::B(i), 1, None, now);
            self.bye(Side::B(i));
            return;
        }
        self.winner = Some(i);
        self.phase = Phase::Answered;
        self.answered_at = Some(now);
        self.no_answer_at = None;
        self.ring_until = None;
        self.queue.clear();
        self.last_target = Some(leg.target.label.clone());
        self.cancel_legs(Some(i));
        if self.a_invite.body.is_empty() && !msg.body.is_empty() {
            // Late offer: the 2xx carries the offer, the caller's ACK the answer (§13.2.1).
            self.held_ack = Some(HeldAck { from: Side::A, to: Side::B(i), cseq: 1 });
        } else {
            self.send_ack(Side::B(i), 1, None, now);
        }
        let mut ok = self.a_dialog_response(200, "OK");
        ok.headers.push(HeaderName::Allow, ALLOW);
        carry_body(&mut self.actions, self.media.as_ref(), &msg, false, &mut ok);
        self.send_2xx(Side::A, self.a_key, ok, now);
        if self.cfg.max_duration_ms > 0 {
            self.max_duration_at = Some(now + self.cfg.max_duration_ms);
        }
        if self.cfg.check_interval_ms > 0 {
            self.check_at = Some(now + self.cfg.check_interval_ms);
        }
        self.actions.push_back(Action::Answered { at: now });
    }

    /// ACKs the 2xx to the INVITE with `cseq` on `side` (a B leg, or A for a re-INVITE we relayed to it), with
    /// the body of `answer` if it carries one.
    fn send_ack(&mut self, side: Side, cseq: u32, answer: Option<&Message>, _now: u64) {
        let branch = self.branch();
        let (dialog, hop) = match side {
            Side::A => (&self.a, self.a_hop.clone()),
            Side::B(i) => match self.legs.get(i) {
                Some(l) => (&l.dialog, l.target.hop.clone()),
                None => return,
            },
        };
        let mut ack = dialog.ack(&hop, &branch, cseq);
        if let Some(a) = answer {
            carry_body(&mut self.actions, self.media.as_ref(), a, matches!(side, Side::B(_)), &mut ack);
        }
        if let Side::B(i) = side
            && let Some(leg) = self.legs.get_mut(i)
            && cseq == 1
        {
            leg.ack = Some(ack.clone());
        }
        self.actions.push_back(Action::Send { msg: ack, hop });
    }

    // ---- answered ------------------------------------------------------------------------------------------

    fn relay(&mut self, key: Key, msg: Message, method: Method, from: Side, now: u64) {
        let to = match from {
            Side::A => match self.winner {
                Some(i) => Side::B(i),
                None => return,
            },
            Side::B(_) => Side::A,
        };
        let branch = self.branch();
        let hop = self.hop_of(to);
        let Some(dialog) = self.dialog_mut(to) else { return };
        let mut out = dialog.request(method.clone(), &hop, &branch);
        carry_body(&mut self.actions, self.media.as_ref(), &msg, from == Side::A, &mut out);
        for name in RELAYED {
            let name = HeaderName::parse(name);
            for v in msg.headers.get_all(&name) {
                out.headers.push(name.clone(), v);
            }
        }
        let req = self.next_id();
        let offerless = method == Method::Invite && msg.body.is_empty();
        let deadline = (method == Method::Invite).then_some(now + 64 * self.cfg.t1_ms);
        self.requests.insert(req, Pending::Relay { key, request: msg.headers, method, offerless, to, deadline });
        self.actions.push_back(Action::Request { req, msg: out, hop });
    }

    #[allow(clippy::too_many_arguments)]
    fn on_relay_response(
        &mut self,
        key: Key,
        request: &Headers,
        method: &Method,
        offerless: bool,
        to: Side,
        msg: &Message,
        now: u64,
    ) {
        let Some(code) = msg.status() else { return };
        if code == 100 {
            return;
        }
        let from = if to == Side::A { self.winner.map(Side::B) } else { Some(Side::A) };
        let mut resp = self.response(request, code, &reason_of(msg), from);
        carry_body(&mut self.actions, self.media.as_ref(), msg, to == Side::A, &mut resp);
        for name in RELAYED {
            let name = HeaderName::parse(name);
            for v in msg.headers.get_all(&name) {
                resp.headers.push(name.clone(), v);
            }
        }
        let success = (200..300).contains(&code);
        if success
            && matches!(method, Method::Invite | Method::Update)
            && let Some(c) = contact_uri(&msg.headers)
            && let Some(d) = self.dialog_mut(to)
        {
            // The 2xx to a target refresh updates the remote target too (RFC 3261 §12.2.1.2).
            d.remote_target = c;
        }
        if success && matches!(method, Method::Invite | Method::Update) {
            let contact = from.map(|s| self.hop_of(s).contact()).unwrap_or_default();
            resp.headers.push(HeaderName::Contact, format!("<{contact}>"));
        }
        if success && *method == Method::Invite {
            let cseq = cseq_of(&msg.headers).unwrap_or(0);
            match (offerless, from) {
                (true, Some(f)) if !msg.body.is_empty() => self.held_ack = Some(HeldAck { from: f, to, cseq }),
                _ => self.send_ack(to, cseq, None, now),
            }
            if let Some(f) = from {
                return self.send_2xx(f, key, resp, now);
            }
        }
        self.actions.push_back(Action::Respond { key, msg: resp });
        if matches!(code, 408 | 481) && self.phase == Phase::Answered {
            // The far side lost the dialog: the call is dead (RFC 5057 §5.1).
            self.hang_up(EndReason::DeadLeg, None, now);
        }
    }

    /// Sends a 2xx to an INVITE, retransmitted over UDP until its ACK comes.
    fn send_2xx(&mut self, side: Side, key: Key, msg: Message, now: u64) {
        let reliable = self.hop_of(side).reliable();
        let until = now + 64 * self.cfg.t1_ms;
        self.retransmits.retain(|r| r.side != side);
        self.retransmits.push(Retransmit {
            side,
            key,
            msg: msg.clone(),
            next_at: if reliable { until } else { now + self.cfg.t1_ms },
            interval: self.cfg.t1_ms,
            until,
            reliable,
        });
        self.actions.push_back(Action::Respond { key, msg });
    }

    fn probe(&mut self, _now: u64) {
        if self.probes_out > 0 {
            return; // the previous round is still out; its timeout ends the call
        }
        let sides: Vec<Side> = std::iter::once(Side::A).chain(self.winner.map(Side::B)).collect();
        for side in sides {
            let branch = self.branch();
            let hop = self.hop_of(side);
            let Some(d) = self.dialog_mut(side) else { continue };
            let m = d.request(Method::Options, &hop, &branch);
            let req = self.next_id();
            self.requests.insert(req, Pending::Probe);
            self.probes_out += 1;
            self.actions.push_back(Action::Request { req, msg: m, hop });
        }
    }

    /// Hangs up every confirmed leg but `except` (which hung up itself) and ends the call.
    fn hang_up(&mut self, reason: EndReason, except: Option<Side>, now: u64) {
        if self.phase == Phase::Ended {
            return;
        }
        if let Some(held) = self.held_ack.take() {
            // The answer never came (late offer): the 2xx is still acknowledged, so that its sender stops
            // retransmitting, before the BYE.
            self.send_ack(held.to, held.cseq, None, now);
        }
        if except != Some(Side::A) && self.phase == Phase::Answered {
            self.bye(Side::A);
        }
        for i in 0..self.legs.len() {
            if except == Some(Side::B(i)) {
                if let Some(l) = self.legs.get_mut(i) {
                    l.state = LegState::Done;
                }
                continue;
            }
            if self.legs.get(i).is_some_and(|l| l.state == LegState::Confirmed) {
                self.bye(Side::B(i));
            }
        }
        self.cancel_legs(None);
        self.end(200, Disposition::Answered, reason, now);
    }

    fn bye(&mut self, side: Side) {
        let branch = self.branch();
        let hop = self.hop_of(side);
        if let Side::B(i) = side
            && let Some(l) = self.legs.get_mut(i)
        {
            l.state = LegState::Done;
        }
        let Some(d) = self.dialog_mut(side) else { return };
        let m = d.request(Method::Bye, &hop, &branch);
        let req = self.next_id();
        self.requests.insert(req, Pending::Fire);
        self.actions.push_back(Action::Request { req, msg: m, hop });
    }

    // ---- endings -------------------------------------------------------------------------------------------

    fn fail(&mut self, code: u16, reason: &str, end: EndReason, now: u64) {
        let disposition = match code {
            c if is_busy(c) => Disposition::Busy,
            408 | 480 => Disposition::NoAnswer,
            487 => Disposition::Cancelled,
            400..=499 | 600..=699 => Disposition::Rejected,
            _ => Disposition::Failed,
        };
        self.finish_unanswered(code, reason, disposition, end, now);
    }

    fn finish_unanswered(&mut self, code: u16, reason: &str, disposition: Disposition, end: EndReason, now: u64) {
        if self.phase != Phase::Ringing {
            return;
        }
        let resp = response_to(&self.a_invite.headers, code, reason, Some(&self.a.local_tag));
        self.actions.push_back(Action::Respond { key: self.a_key, msg: resp });
        self.end(code, disposition, end, now);
    }

    fn end(&mut self, status: u16, disposition: Disposition, end_reason: EndReason, now: u64) {
        self.phase = Phase::Ended;
        self.no_answer_at = None;
        self.ring_until = None;
        self.max_duration_at = None;
        self.check_at = None;
        self.queue.clear();
        self.retransmits.clear();
        for l in &mut self.legs {
            l.hunt_deadline = None;
        }
        // Only a leg still ringing can answer late (a CANCEL crossing its 2xx): the call stays to acknowledge
        // and hang that up. Otherwise every leg has its final answer or our BYE, and the transaction layer
        // absorbs whatever is still in flight.
        let ringing = self.legs.iter().any(|l| matches!(l.state, LegState::Calling | LegState::Proceeding));
        self.linger_until = if ringing { now + self.cfg.linger_ms } else { now };
        let answered_device = self.winner.and_then(|i| self.legs.get(i)).and_then(|l| l.target.device_id);
        self.actions.push_back(Action::Ended(Record {
            started_at: self.started_at,
            answered_at: self.answered_at,
            ended_at: now,
            disposition,
            status,
            end_reason,
            divert: self.divert,
            diverted_to: self.diverted_to.clone(),
            target: self.last_target.clone(),
            answered_device,
        }));
    }

    // ---- helpers -------------------------------------------------------------------------------------------

    fn respond_a(&mut self, code: u16, reason: &str, body: Option<&Message>, _now: u64) {
        let mut resp = if code > 100 && code < 300 {
            self.a_dialog_response(code, reason)
        } else {
            let tag = (code > 100).then_some(self.a.local_tag.as_str());
            response_to(&self.a_invite.headers, code, reason, tag)
        };
        if let Some(b) = body {
            carry_body(&mut self.actions, self.media.as_ref(), b, false, &mut resp);
        }
        self.actions.push_back(Action::Respond { key: self.a_key, msg: resp });
    }

    /// A dialog-creating response to the caller's INVITE (18x, 2xx): our tag and Contact, and the INVITE's
    /// Record-Route copied in order (RFC 3261 §12.1.1), so the caller's route set matches the Route we use.
    fn a_dialog_response(&self, code: u16, reason: &str) -> Message {
        let mut resp = response_to(&self.a_invite.headers, code, reason, Some(&self.a.local_tag));
        for rr in self.a_invite.headers.get_all(&HeaderName::RecordRoute) {
            resp.headers.push(HeaderName::RecordRoute, rr);
        }
        resp.headers.push(HeaderName::Contact, format!("<{}>", self.a_hop.contact()));
        resp
    }

    fn respond(&mut self, key: Key, req: &Headers, code: u16, reason: &str, side: Option<Side>) {
        let resp = self.response(req, code, reason, side);
        self.actions.push_back(Action::Respond { key, msg: resp });
    }

    /// A response to `req` (a request from `side`), carrying our tag for that side when the request had none.
    fn response(&self, req: &Headers, code: u16, reason: &str, side: Option<Side>) -> Message {
        let tag = side.and_then(|s| self.dialog(s)).map(|d| d.local_tag.as_str());
        response_to(req, code, reason, tag)
    }

    fn side_of(&self, msg: &Message) -> Option<Side> {
        let tag = tag_of(msg.headers.get(&HeaderName::To)?, "To")?;
        let call_id = msg.headers.get(&HeaderName::CallId)?;
        if tag == self.a.local_tag && call_id == self.a.call_id {
            return Some(Side::A);
        }
        self.legs.iter().position(|l| l.dialog.local_tag == tag && l.dialog.call_id == call_id).map(Side::B)
    }

    fn dialog(&self, side: Side) -> Option<&Dialog> {
        match side {
            Side::A => Some(&self.a),
            Side::B(i) => self.legs.get(i).map(|l| &l.dialog),
        }
    }

    fn dialog_mut(&mut self, side: Side) -> Option<&mut Dialog> {
        match side {
            Side::A => Some(&mut self.a),
            Side::B(i) => self.legs.get_mut(i).map(|l| &mut l.dialog),
        }
    }

    fn hop_of(&self, side: Side) -> H {
        match side {
            Side::B(i) => self.legs.get(i).map_or_else(|| self.a_hop.clone(), |l| l.target.hop.clone()),
            Side::A => self.a_hop.clone(),
        }
    }
}

/// The call token a tag of ours starts with (its first 16 hex digits), to find the call a request or ACK is for.
pub fn token_of_tag(tag: &str) -> Option<u64> {
    u64::from_str_radix(tag.get(..16)?, 16).ok()
}

fn cseq_of(h: &Headers) -> Option<u32> {
    h.get(&HeaderName::CSeq)?.split_whitespace().next()?.parse().ok()
}

fn reason_of(msg: &Message) -> String {
    match &msg.start {
        switchboard_sip_core::StartLine::Response(s) => s.reason.clone(),
        switchboard_sip_core::StartLine::Request(_) => String::new(),
    }
}

/// Copies the body and its Content-Type to a message for the other side. With media anchored, an SDP body's
/// first active audio stream is pointed at the relay's address for the side the message goes to, and what the
/// SDP says of the side it came from is queued for the relay ([`Action::Media`]). A body that is not SDP (INFO,
/// MESSAGE) or SDP we cannot read passes unchanged.
fn carry_body<H>(
    actions: &mut VecDeque<Action<H>>,
    media: Option<&crate::MediaPlan>,
    from: &Message,
    from_a: bool,
    to: &mut Message,
) {
    match media.and_then(|m| anchored(m, from, from_a)) {
        Some((body, side, remote)) => {
            copy_content_type(from, to);
            to.body = body;
            actions.push_back(Action::Media { side, remote });
        }
        None => copy_body(from, to),
    }
}

/// An SDP body rewritten for the relay side facing its receiver, with the side it came from and what it says of
/// that side. `None`: not SDP, or no active audio stream in it.
fn anchored(
    media: &crate::MediaPlan,
    from: &Message,
    from_a: bool,
) -> Option<(Vec<u8>, crate::MediaSide, crate::Remote)> {
    let is_sdp = from
        .headers
        .get(&HeaderName::ContentType)
        .is_some_and(|ct| ct.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp")));
    if !is_sdp {
        return None;
    }
    let sdp = switchboard_media_core::sdp::Sdp::parse(&from.body).ok()?;
    let audio = sdp.streams().iter().position(|s| s.kind == "audio" && s.port != 0)?;
    let stream = sdp.streams().get(audio)?;
    let (anchor, side) = if from_a { (media.b, crate::MediaSide::A) } else { (media.a, crate::MediaSide::B) };
    let anchors: Vec<Option<crate::Anchor>> =
        (0..sdp.streams().len()).map(|i| (i == audio).then_some(anchor)).collect();
    let rtp = stream.address.map(|ip| std::net::SocketAddr::new(ip, stream.port));
    let rtcp = match stream.rtcp {
        Some((port, address)) => address.or(stream.address).map(|ip| std::net::SocketAddr::new(ip, port)),
        None => None,
    };
    Some((sdp.rewrite(&anchors), side, crate::Remote { rtp, rtcp, hold: stream.is_hold() }))
}

/// Copies the body and its Content-Type unchanged.
fn copy_body(from: &Message, to: &mut Message) {
    if from.body.is_empty() {
        return;
    }
    copy_content_type(from, to);
    to.body = from.body.clone();
}

fn copy_content_type(from: &Message, to: &mut Message) {
    if let Some(ct) = from.headers.get(&HeaderName::ContentType) {
        to.headers.set(HeaderName::ContentType, ct);
    }
}

/// The reason on the wire (RFC 5806 `reason`, and through it the RFC 7044 cause) for why we divert.
fn wire(reason: DivertReason) -> divert::DivertReason {
    match reason {
        DivertReason::NoAnswer => divert::DivertReason::NoAnswer,
        DivertReason::Busy => divert::DivertReason::UserBusy,
        DivertReason::All => divert::DivertReason::Unconditional,
        DivertReason::Offline => divert::DivertReason::Unavailable,
    }
}
