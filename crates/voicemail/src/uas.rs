//! The voicemail's SIP side, sans-IO: a user agent server that answers the calls the daemon's call machine sends
//! it, as any other target (RFC 3261 §12-15, RFC 6026 for the 2xx).
//!
//! Only the daemon may call it: a new INVITE from any other address is refused 403. The Request-URI's user part
//! says what the caller wants (the number whose mailbox takes a message). Each call is a dialog with one audio
//! stream ([`endpoint`]); key presses come as SIP INFO here, or as RFC 4733 events on the media (the session's
//! business).
//!
//! Events go out through [`Uas::poll_event`], datagrams through [`Uas::poll_output`]; the driver answers an
//! [`Event::Invite`] with [`Uas::accept`] or [`Uas::reject`], and ends a call with [`Uas::hangup`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use switchboard_media_core::dtmf;
use switchboard_media_core::endpoint::{self, Media, Refusal};
use switchboard_media_core::sdp::Sdp;
use switchboard_sip_core::header::{CSeq, NameAddr};
use switchboard_sip_core::rng::Rng;
use switchboard_sip_core::transaction::{Incoming, Key, Output as TxOutput, TimerConfig, TransactionLayer, new_branch};
use switchboard_sip_core::uri::{Uri, unescape};
use switchboard_sip_core::validate::response_to;
use switchboard_sip_core::{HeaderName, Limits, Message, Method, parse_datagram};

const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, INFO, OPTIONS";
/// The mailboxes a `777` caller may open, as the daemon's call machine names them (numbers, comma-separated).
/// Trusted because only the daemon may call.
pub const MAILBOX_HEADER: &str = "X-Switchboard-Mailbox";

#[derive(Debug, Clone)]
pub struct Config {
    /// Our SIP address (Via, Contact).
    pub local: SocketAddr,
    /// The daemon's SIP address: the only source of new calls. An unspecified IP stands for any loopback one.
    pub trusted: SocketAddr,
    pub timers: TimerConfig,
    pub server_header: String,
}

/// A new call to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub id: u64,
    /// The Request-URI's user part, unescaped (a number in E.164, or a feature code).
    pub user: String,
    /// The caller: From's user part, or its whole URI when it has none.
    pub caller: String,
    pub caller_name: Option<String>,
    /// The mailboxes a `777` caller may open ([`MAILBOX_HEADER`]).
    pub mailboxes: Vec<String>,
}

/// Why a call ended on the far side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    Bye,
    Cancel,
    /// Our 2xx was never acknowledged.
    NoAck,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Invite(Invite),
    /// The far side's media changed (the answer in an ACK, a re-INVITE).
    Media {
        id: u64,
        media: Media,
    },
    /// A key sent as SIP INFO.
    Key {
        id: u64,
        key: char,
    },
    /// The call is over; `id` is dead.
    Ended {
        id: u64,
        gone: Gone,
    },
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// A 2xx we resend until its ACK comes (RFC 6026 §8.1: the TU's job, not the transaction's).
#[derive(Debug)]
struct Unacked {
    bytes: Vec<u8>,
    cseq: u32,
    next: u64,
    interval: u64,
    give_up: u64,
}

#[derive(Debug)]
struct Dialog {
    call_id: String,
    local_tag: String,
    /// The INVITE's To, without tag: our From in requests we send.
    local_uri: String,
    /// The INVITE's From, with its tag: our To.
    remote: String,
    remote_target: String,
    route: Vec<String>,
    peer: SocketAddr,
    local_cseq: u32,
    /// The INVITE waiting for accept/reject, and the offer it carried.
    pending: Option<(Key, Message)>,
    unacked: Option<Unacked>,
    /// We offered in a 2xx; the answer comes in the ACK.
    offered: bool,
    /// Hang up as soon as the 2xx is acknowledged (§15: no BYE before then).
    bye_after_ack: bool,
    local_rtp: Option<SocketAddr>,
    sdp_session: u64,
    sdp_version: u64,
}

#[derive(Debug)]
pub struct Uas {
    cfg: Config,
    limits: Limits,
    layer: TransactionLayer<SocketAddr>,
    rng: Rng,
    next_id: u64,
    dialogs: HashMap<u64, Dialog>,
    /// (Call-ID, our tag) -> dialog.
    index: HashMap<(String, String), u64>,
    events: VecDeque<Event>,
    out: VecDeque<Datagram>,
}

impl Uas {
    pub fn new(cfg: Config, seed: u64) -> Uas {
        Uas {
            layer: TransactionLayer::new(cfg.timers),
            cfg,
            limits: Limits::default(),
            rng: Rng::new(seed),
            next_id: 1,
            dialogs: HashMap::new(),
            index: HashMap::new(),
            events: VecDeque::new(),
            out: VecDeque::new(),
        }
    }

    pub fn calls(&self) -> usize {
        self.dialogs.len()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn poll_output(&mut self) -> Option<Datagram> {
        self.flush_layer();
        self.out.pop_front()
    }

    /// When [`Uas::on_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<u64> {
        let resend = self.dialogs.values().filter_map(|d| d.unacked.as_ref().map(|u| u.next.min(u.give_up))).min();
        match (resend, self.layer.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn on_timeout(&mut self, now: u64) {
        self.layer.on_timeout(now);
        let t2 = self.cfg.timers.t2;
        let mut expired = Vec::new();
        for (&id, d) in &mut self.dialogs {
            let Some(u) = d.unacked.as_mut() else { continue };
            if now >= u.give_up {
                expired.push(id);
            } else if now >= u.next {
                self.out.push_back(Datagram { to: d.peer, bytes: u.bytes.clone() });
                u.interval = (u.interval * 2).min(t2);
                u.next = now + u.interval;
            }
        }
        for id in expired {
            // RFC 3261 §13.3.1.4: no ACK in 64*T1: end the dialog with a BYE.
            if let Some(d) = self.dialogs.get_mut(&id) {
                d.unacked = None;
            }
            self.send_bye(id, now);
            self.forget(id);
            self.events.push_back(Event::Ended { id, gone: Gone::NoAck });
        }
    }

    /// A datagram from `from`.
    pub fn on_datagram(&mut self, bytes: &[u8], from: SocketAddr, now: u64) {
        let Ok(msg) = parse_datagram(bytes, &self.limits) else {
            tracing::debug!(%from, "voicemail: unreadable SIP datagram dropped");
            return;
        };
        match self.layer.on_message(msg, from, false, now) {
            Some(Incoming::Request { key, msg }) => self.on_request(key, msg, from, now),
            Some(Incoming::Cancel { key, invite, msg }) => self.on_cancel(key, invite, &msg, now),
            Some(Incoming::StrayAck(ack)) => self.on_ack(&ack, now),
            Some(Incoming::Unmatchable(_) | Incoming::Response { .. } | Incoming::StrayResponse(_)) | None => {}
        }
    }

    /// Answers call `id`, receiving media at `local_rtp`. Refused (488 sent, the call ended) when the offer has
    /// no codec we speak.
    pub fn accept(&mut self, id: u64, local_rtp: SocketAddr, now: u64) -> Result<Media, Refusal> {
        let Some(d) = self.dialogs.get_mut(&id) else { return Err(Refusal::NoCodec) };
        let Some((_, invite)) = d.pending.as_ref() else { return Err(Refusal::NoCodec) };
        let (body, media) = match describe(invite, local_rtp, d.sdp_session, d.sdp_version) {
            Ok(v) => v,
            Err(refusal) => {
                self.reject(id, 488, "Not Acceptable Here", now);
                return Err(refusal);
            }
        };
        d.local_rtp = Some(local_rtp);
        let Some((key, invite)) = d.pending.take() else { return Err(Refusal::NoCodec) };
        let offered = invite.body.is_empty();
        let cseq = cseq_of(&invite);
        self.send_2xx(id, key, &invite, body, cseq, now);
        if let Some(d) = self.dialogs.get_mut(&id) {
            d.offered = offered;
        }
        Ok(media)
    }

    /// Refuses call `id` (it has not been accepted), with our dialog's tag, and forgets it.
    pub fn reject(&mut self, id: u64, code: u16, reason: &str, now: u64) {
        if let Some(d) = self.dialogs.get_mut(&id)
            && let Some((key, invite)) = d.pending.take()
        {
            let tag = d.local_tag.clone();
            self.respond(key, &invite, code, reason, Some(&tag), now);
        }
        self.forget(id);
    }

    /// Ends call `id` from our side.
    pub fn hangup(&mut self, id: u64, now: u64) {
        let Some(d) = self.dialogs.get_mut(&id) else { return };
        if d.pending.is_some() {
            self.reject(id, 480, "Temporarily Unavailable", now);
        } else if d.unacked.is_some() {
            d.bye_after_ack = true;
        } else {
            self.send_bye(id, now);
            self.forget(id);
        }
    }

    fn flush_layer(&mut self) {
        for o in self.layer.drain_outputs() {
            if let TxOutput::Send { peer, bytes, .. } = o {
                self.out.push_back(Datagram { to: peer, bytes });
            }
        }
    }

    fn on_request(&mut self, key: Key, msg: Message, from: SocketAddr, now: u64) {
        let Some(method) = msg.method().cloned() else { return };
        let to_tag = tag_of(&msg, &HeaderName::To);
        if to_tag.is_none() {
            return match method {
                Method::Invite => self.on_new_invite(key, msg, from, now),
                Method::Options => self.respond(key, &msg, 200, "OK", None, now),
                _ => self.respond(key, &msg, 481, "Call/Transaction Does Not Exist", None, now),
            };
        }
        let Some(id) = self.find(&msg) else {
            return self.respond(key, &msg, 481, "Call/Transaction Does Not Exist", None, now);
        };
        match method {
            Method::Bye => {
                self.respond(key, &msg, 200, "OK", None, now);
                self.forget(id);
                self.events.push_back(Event::Ended { id, gone: Gone::Bye });
            }
            Method::Info => {
                let ct = msg.header(&HeaderName::ContentType).unwrap_or_default();
                match dtmf::from_info(ct, &msg.body) {
                    Some(key_pressed) => {
                        self.respond(key, &msg, 200, "OK", None, now);
                        self.events.push_back(Event::Key { id, key: key_pressed });
                    }
                    None if msg.body.is_empty() => self.respond(key, &msg, 200, "OK", None, now),
                    None => self.respond(key, &msg, 415, "Unsupported Media Type", None, now),
                }
            }
            Method::Invite => self.on_reinvite(id, key, &msg, now),
            Method::Options => self.respond(key, &msg, 200, "OK", None, now),
            _ => self.respond(key, &msg, 501, "Not Implemented", None, now),
        }
    }

    fn on_new_invite(&mut self, key: Key, msg: Message, from: SocketAddr, now: u64) {
        if !self.trusted(from) {
            tracing::warn!(%from, "voicemail: call from an address other than the daemon's refused");
            return self.respond(key, &msg, 403, "Forbidden", None, now);
        }
        if !msg.body.is_empty() && Sdp::parse(&msg.body).is_err() {
            return self.respond(key, &msg, 488, "Not Acceptable Here", None, now);
        }
        let parsed = (|| {
            let uri = Uri::parse(msg.request_uri()?).ok()?;
            let from_na = NameAddr::parse(msg.header(&HeaderName::From)?, "From").ok()?;
            let to = msg.header(&HeaderName::To)?.to_owned();
            let call_id = msg.call_id()?.to_owned();
            Some((uri, from_na, to, call_id))
        })();
        let Some((uri, from_na, to, call_id)) = parsed else {
            return self.respond(key, &msg, 400, "Bad Request", None, now);
        };
        let caller_uri = Uri::parse(&from_na.uri).ok();
        let caller = caller_uri.as_ref().and_then(|u| u.user.as_deref()).map_or_else(|| from_na.uri.clone(), unescape);
        let caller_name =
            from_na.display.as_deref().map(|d| d.trim().trim_matches('"').to_owned()).filter(|d| !d.is_empty());
        let remote_target = contact_uri(&msg).unwrap_or_else(|| from_na.uri.clone());
        let route = msg.headers.get_list(&HeaderName::RecordRoute).map(str::to_owned).collect();
        let id = self.next_id;
        self.next_id += 1;
        let local_tag = format!("{:016x}", self.rng.next_u64());
        let dialog = Dialog {
            call_id: call_id.clone(),
            local_tag: local_tag.clone(),
            local_uri: to,
            remote: msg.header(&HeaderName::From).unwrap_or_default().to_owned(),
            remote_target,
            route,
            peer: from,
            local_cseq: 1,
            pending: None,
            unacked: None,
            offered: false,
            bye_after_ack: false,
            local_rtp: None,
            sdp_session: self.rng.next_u64() >> 1,
            sdp_version: 1,
        };
        self.index.insert((call_id, local_tag), id);
        self.dialogs.insert(id, dialog);
        let user = uri.user.as_deref().map(unescape).unwrap_or_default();
        let mailbox_header = HeaderName::Other(MAILBOX_HEADER.into());
        let mailboxes = msg.headers.get_list(&mailbox_header).map(|m| m.trim().to_owned()).filter(|m| !m.is_empty());
        let mailboxes = mailboxes.collect();
        let mut trying = response_to(&msg.headers, 100, "Trying", None);
        trying.headers.push(HeaderName::Server, self.cfg.server_header.clone());
        let _ = self.layer.respond(key, trying, now);
        if let Some(d) = self.dialogs.get_mut(&id) {
            d.pending = Some((key, msg));
        }
        self.events.push_back(Event::Invite(Invite { id, user, caller, caller_name, mailboxes }));
    }

    fn on_reinvite(&mut self, id: u64, key: Key, msg: &Message, now: u64) {
        let Some(d) = self.dialogs.get_mut(&id) else { return };
        if d.unacked.is_some() || d.pending.is_some() {
            // §14.2: a re-INVITE while ours is unfinished.
            return self.respond(key, msg, 500, "Server Internal Error", None, now);
        }
        let Some(local_rtp) = d.local_rtp else { return };
        d.sdp_version += 1;
        match describe(msg, local_rtp, d.sdp_session, d.sdp_version) {
            Ok((body, media)) => {
                let offered = msg.body.is_empty();
                if let Some(d) = self.dialogs.get_mut(&id) {
                    d.offered = offered;
                }
                self.send_2xx(id, key, msg, body, cseq_of(msg), now);
                if !offered {
                    self.events.push_back(Event::Media { id, media });
                }
            }
            Err(_) => self.respond(key, msg, 488, "Not Acceptable Here", None, now),
        }
    }

    fn on_cancel(&mut self, key: Key, invite: Option<Key>, msg: &Message, now: u64) {
        let pending = invite.and_then(|ik| {
            self.dialogs.iter().find_map(|(&id, d)| d.pending.as_ref().filter(|(k, _)| *k == ik).map(|_| id))
        });
        let Some(id) = pending else {
            return self.respond(key, msg, 481, "Call/Transaction Does Not Exist", None, now);
        };
        self.respond(key, msg, 200, "OK", None, now);
        self.reject(id, 487, "Request Terminated", now);
        self.events.push_back(Event::Ended { id, gone: Gone::Cancel });
    }

    fn on_ack(&mut self, ack: &Message, now: u64) {
        let Some(id) = self.find(ack) else { return };
        let Some(d) = self.dialogs.get_mut(&id) else { return };
        let acked = d.unacked.as_ref().is_some_and(|u| u.cseq == cseq_of(ack));
        if !acked {
            return;
        }
        d.unacked = None;
        if std::mem::take(&mut d.offered) && !ack.body.is_empty() {
            match Sdp::parse(&ack.body).map(|sdp| endpoint::negotiate(&sdp)) {
                Ok(Ok((_, media))) => self.events.push_back(Event::Media { id, media }),
                _ => tracing::info!(id, "voicemail: the answer in the ACK is unusable; keeping our first codec"),
            }
        }
        if d.bye_after_ack {
            self.send_bye(id, now);
            self.forget(id);
        }
    }

    fn trusted(&self, from: SocketAddr) -> bool {
        let t = self.cfg.trusted;
        from.port() == t.port() && (from.ip() == t.ip() || (t.ip().is_unspecified() && from.ip().is_loopback()))
    }

    fn find(&self, msg: &Message) -> Option<u64> {
        let tag = tag_of(msg, &HeaderName::To)?;
        self.index.get(&(msg.call_id()?.to_owned(), tag)).copied()
    }

    fn forget(&mut self, id: u64) {
        if let Some(d) = self.dialogs.remove(&id) {
            self.index.remove(&(d.call_id, d.local_tag));
        }
    }

    fn respond(&mut self, key: Key, req: &Message, code: u16, reason: &str, tag: Option<&str>, now: u64) {
        let fresh;
        let tag = match tag {
            Some(t) => t,
            None => {
                fresh = format!("{:016x}", self.rng.next_u64());
                &fresh
            }
        };
        let mut r = response_to(&req.headers, code, reason, Some(tag));
        r.headers.push(HeaderName::Server, self.cfg.server_header.clone());
        if code == 200 || code == 405 || code == 501 {
            r.headers.push(HeaderName::Allow, ALLOW);
        }
        let _ = self.layer.respond(key, r, now);
    }

    fn send_2xx(&mut self, id: u64, key: Key, req: &Message, body: String, cseq: u32, now: u64) {
        let Some(d) = self.dialogs.get(&id) else { return };
        let mut ok = response_to(&req.headers, 200, "OK", Some(&d.local_tag));
        for rr in req.headers.get_all(&HeaderName::RecordRoute) {
            ok.headers.push(HeaderName::RecordRoute, rr);
        }
        ok.headers.push(HeaderName::Contact, format!("<sip:voicemail@{}>", self.cfg.local));
        ok.headers.push(HeaderName::Allow, ALLOW);
        ok.headers.push(HeaderName::Server, self.cfg.server_header.clone());
        ok.headers.push(HeaderName::ContentType, "application/sdp");
        ok.body = body.into_bytes();
        let bytes = ok.to_bytes();
        let _ = self.layer.respond(key, ok, now);
        let t1 = self.cfg.timers.t1;
        if let Some(d) = self.dialogs.get_mut(&id) {
            d.unacked = Some(Unacked { bytes, cseq, next: now + t1, interval: t1, give_up: now + 64 * t1 });
        }
    }

    fn send_bye(&mut self, id: u64, now: u64) {
        let branch = new_branch(self.rng.next_u64());
        let Some(d) = self.dialogs.get_mut(&id) else { return };
        d.local_cseq += 1;
        let mut bye = Message::request(Method::Bye, d.remote_target.clone());
        bye.headers.push(HeaderName::Via, format!("SIP/2.0/UDP {};branch={branch};rport", self.cfg.local));
        bye.headers.push(HeaderName::MaxForwards, "70");
        for r in &d.route {
            bye.headers.push(HeaderName::Route, r.clone());
        }
        bye.headers.push(HeaderName::From, format!("{};tag={}", d.local_uri, d.local_tag));
        bye.headers.push(HeaderName::To, d.remote.clone());
        bye.headers.push(HeaderName::CallId, d.call_id.clone());
        bye.headers.push(HeaderName::CSeq, format!("{} BYE", d.local_cseq));
        bye.headers.push(HeaderName::UserAgent, self.cfg.server_header.clone());
        let peer = d.peer;
        if self.layer.send_request(bye, peer, false, now).is_err() {
            tracing::warn!(id, "voicemail: could not send BYE");
        }
    }
}

/// Our session description for `req`: the answer to its offer, or our offer when it has none.
fn describe(req: &Message, local_rtp: SocketAddr, session: u64, version: u64) -> Result<(String, Media), Refusal> {
    if req.body.is_empty() {
        let media = Media {
            remote: None,
            law: switchboard_media_core::g711::Law::Ulaw,
            telephone_event: Some(endpoint::OFFER_TELEPHONE_EVENT),
            hold: false,
        };
        return Ok((endpoint::offer(local_rtp, session, version), media));
    }
    let sdp = Sdp::parse(&req.body).map_err(|_| Refusal::NoCodec)?;
    endpoint::answer(&sdp, local_rtp, session, version)
}

fn tag_of(msg: &Message, name: &HeaderName) -> Option<String> {
    NameAddr::parse(msg.header(name)?, "tag").ok()?.tag().map(str::to_owned)
}

fn cseq_of(msg: &Message) -> u32 {
    msg.header(&HeaderName::CSeq).and_then(|c| CSeq::parse(c).ok()).map_or(0, |c| c.seq)
}

fn contact_uri(msg: &Message) -> Option<String> {
    let c = msg.header(&HeaderName::Contact)?;
    Some(NameAddr::parse(c, "Contact").ok()?.uri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_media_core::g711::Law;

    const DAEMON: &str = "127.0.0.1:5060";
    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                         m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

    fn uas() -> Uas {
        let cfg = Config {
            local: "127.0.0.1:5070".parse().unwrap(),
            trusted: "0.0.0.0:5060".parse().unwrap(),
            timers: TimerConfig::default(),
            server_header: "test".into(),
        };
        Uas::new(cfg, 7)
    }

    fn request(method: &str, to_tag: &str, cseq: u32, branch: &str, body: &str, extra: &str) -> Vec<u8> {
        let ct = if body.is_empty() { String::new() } else { "Content-Type: application/sdp\r\n".to_owned() };
        format!(
            "{method} sip:%2B61299990001@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{branch}\r\n\
             From: \"Alice\" <sip:+61400000001@example.com>;tag=abc\r\nTo: <sip:+61299990001@example.com>{to_tag}\r\n\
             Call-ID: call-1\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContact: <sip:b2b@127.0.0.1:5060>\r\n\
             {ct}{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn sent(u: &mut Uas) -> Vec<Message> {
        std::iter::from_fn(|| u.poll_output()).map(|d| parse_datagram(&d.bytes, &Limits::default()).unwrap()).collect()
    }

    fn statuses(msgs: &[Message]) -> Vec<u16> {
        msgs.iter().filter_map(Message::status).collect()
    }

    /// A call answered: returns its id and our To tag.
    fn answered(u: &mut Uas) -> (u64, String) {
        u.on_datagram(&request("INVITE", "", 1, "inv", OFFER, ""), DAEMON.parse().unwrap(), 0);
        let Some(Event::Invite(inv)) = u.poll_event() else { panic!("no invite event") };
        assert_eq!(
            (inv.user.as_str(), inv.caller.as_str(), inv.caller_name.as_deref()),
            ("+61299990001", "+61400000001", Some("Alice"))
        );
        let media = u.accept(inv.id, "127.0.0.1:40000".parse().unwrap(), 0).unwrap();
        assert_eq!(
            (media.law, media.telephone_event, media.remote),
            (Law::Ulaw, Some(101), Some("127.0.0.1:30000".parse().unwrap()))
        );
        let out = sent(u);
        assert_eq!(statuses(&out), [100, 200]);
        let ok = &out[1];
        assert!(String::from_utf8_lossy(&ok.body).contains("m=audio 40000 RTP/AVP 0 101"));
        let tag = tag_of(ok, &HeaderName::To).unwrap();
        (inv.id, format!(";tag={tag}"))
    }

    #[test]
    fn only_the_daemon_may_call() {
        let mut u = uas();
        u.on_datagram(&request("INVITE", "", 1, "x", OFFER, ""), "127.0.0.1:5061".parse().unwrap(), 0);
        assert_eq!(statuses(&sent(&mut u)), [403]);
        assert_eq!(u.poll_event(), None);
        assert_eq!(u.calls(), 0);
    }

    #[test]
    fn answer_resend_until_ack_then_bye_from_the_caller() {
        let mut u = uas();
        let (id, tag) = answered(&mut u);
        u.on_timeout(500);
        assert_eq!(statuses(&sent(&mut u)), [200], "the 2xx is resent after T1");
        u.on_datagram(&request("ACK", &tag, 1, "ack", "", ""), DAEMON.parse().unwrap(), 600);
        u.on_timeout(1_500);
        u.on_timeout(40_000);
        assert!(sent(&mut u).is_empty(), "acknowledged: no more resends, no BYE");
        let info = request("INFO", &tag, 2, "info", "", "");
        let info = String::from_utf8(info).unwrap().replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Type: application/dtmf-relay\r\nContent-Length: 24\r\n\r\nSignal=#\r\nDuration=160\r\n",
        );
        u.on_datagram(info.as_bytes(), DAEMON.parse().unwrap(), 41_000);
        assert_eq!(statuses(&sent(&mut u)), [200]);
        assert_eq!(u.poll_event(), Some(Event::Key { id, key: '#' }));
        u.on_datagram(&request("BYE", &tag, 3, "bye", "", ""), DAEMON.parse().unwrap(), 42_000);
        assert_eq!(statuses(&sent(&mut u)), [200]);
        assert_eq!(u.poll_event(), Some(Event::Ended { id, gone: Gone::Bye }));
        assert_eq!(u.calls(), 0);
        u.on_datagram(&request("BYE", &tag, 3, "bye2", "", ""), DAEMON.parse().unwrap(), 42_100);
        assert_eq!(statuses(&sent(&mut u)), [481]);
    }

    #[test]
    fn our_hangup_waits_for_the_ack() {
        let mut u = uas();
        let (id, tag) = answered(&mut u);
        u.hangup(id, 10);
        assert!(sent(&mut u).is_empty(), "no BYE before the ACK (RFC 3261 §15)");
        u.on_datagram(&request("ACK", &tag, 1, "ack", "", ""), DAEMON.parse().unwrap(), 20);
        let out = sent(&mut u);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].method(), Some(&Method::Bye));
        assert_eq!(out[0].request_uri(), Some("sip:b2b@127.0.0.1:5060"));
        assert!(out[0].header(&HeaderName::From).unwrap().ends_with(&tag));
        assert_eq!(out[0].header(&HeaderName::To), Some("\"Alice\" <sip:+61400000001@example.com>;tag=abc"));
        assert_eq!(u.calls(), 0);
    }

    #[test]
    fn no_ack_ends_the_call_with_a_bye() {
        let mut u = uas();
        let (id, _) = answered(&mut u);
        let mut resends = 0;
        let mut now = 0;
        while let Some(t) = u.poll_timeout() {
            now = t;
            u.on_timeout(now);
            resends += sent(&mut u).iter().filter(|m| m.status() == Some(200)).count();
            if u.calls() == 0 {
                break;
            }
        }
        assert_eq!(now, 32_000, "64*T1");
        assert_eq!(resends, 10, "T1 doubling to T2, then every T2");
        assert_eq!(u.poll_event(), Some(Event::Ended { id, gone: Gone::NoAck }));
    }

    #[test]
    fn cancel_before_answer_and_refusals() {
        let mut u = uas();
        u.on_datagram(&request("INVITE", "", 1, "inv", OFFER, ""), DAEMON.parse().unwrap(), 0);
        let Some(Event::Invite(inv)) = u.poll_event() else { panic!() };
        u.on_datagram(&request("CANCEL", "", 1, "inv", "", ""), DAEMON.parse().unwrap(), 5);
        assert_eq!(statuses(&sent(&mut u)), [100, 200, 487]);
        assert_eq!(u.poll_event(), Some(Event::Ended { id: inv.id, gone: Gone::Cancel }));
        // No codec we speak: 488.
        let g729 = OFFER.replace("RTP/AVP 0 101", "RTP/AVP 18");
        u.on_datagram(&request("INVITE", "", 1, "inv2", &g729, ""), DAEMON.parse().unwrap(), 0);
        let Some(Event::Invite(inv)) = u.poll_event() else { panic!() };
        assert!(u.accept(inv.id, "127.0.0.1:40000".parse().unwrap(), 0).is_err());
        assert_eq!(statuses(&sent(&mut u)), [100, 488]);
        assert_eq!(u.calls(), 0);
        // The driver refuses (no such mailbox).
        u.on_datagram(&request("INVITE", "", 1, "inv3", OFFER, ""), DAEMON.parse().unwrap(), 0);
        let Some(Event::Invite(inv)) = u.poll_event() else { panic!() };
        u.reject(inv.id, 404, "Not Found", 0);
        assert_eq!(statuses(&sent(&mut u)), [100, 404]);
        assert_eq!(u.calls(), 0);
    }

    #[test]
    fn late_offer_takes_the_answer_from_the_ack() {
        let mut u = uas();
        u.on_datagram(&request("INVITE", "", 1, "inv", "", ""), DAEMON.parse().unwrap(), 0);
        let Some(Event::Invite(inv)) = u.poll_event() else { panic!() };
        let media = u.accept(inv.id, "127.0.0.1:40000".parse().unwrap(), 0).unwrap();
        assert_eq!(media.remote, None);
        let out = sent(&mut u);
        assert!(String::from_utf8_lossy(&out[1].body).contains("m=audio 40000 RTP/AVP 0 8 101"));
        let tag = format!(";tag={}", tag_of(&out[1], &HeaderName::To).unwrap());
        let answer = OFFER.replace("RTP/AVP 0 101", "RTP/AVP 8");
        u.on_datagram(&request("ACK", &tag, 1, "ack", &answer, ""), DAEMON.parse().unwrap(), 10);
        let Some(Event::Media { id, media }) = u.poll_event() else { panic!() };
        assert_eq!((id, media.law, media.remote), (inv.id, Law::Alaw, Some("127.0.0.1:30000".parse().unwrap())));
    }

    #[test]
    fn reinvite_is_answered_with_a_newer_version() {
        let mut u = uas();
        let (id, tag) = answered(&mut u);
        u.on_datagram(&request("ACK", &tag, 1, "ack", "", ""), DAEMON.parse().unwrap(), 10);
        let moved = OFFER.replace("30000", "30002").replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
        u.on_datagram(&request("INVITE", &tag, 2, "re", &moved, ""), DAEMON.parse().unwrap(), 20);
        let out = sent(&mut u);
        assert_eq!(statuses(&out), [200]);
        let body = String::from_utf8_lossy(&out[0].body).into_owned();
        assert!(body.contains(" 2 IN IP4") && body.contains("a=recvonly"), "{body}");
        let Some(Event::Media { id: got, media }) = u.poll_event() else { panic!() };
        assert_eq!((got, media.remote, media.hold), (id, Some("127.0.0.1:30002".parse().unwrap()), true));
    }

    #[test]
    fn garbage_and_strangers_do_not_disturb() {
        let mut u = uas();
        for junk in [&b""[..], b"\r\n\r\n", b"INVITE", b"SIP/2.0 200 OK\r\n\r\n", &[0xff; 300]] {
            u.on_datagram(junk, DAEMON.parse().unwrap(), 0);
        }
        u.on_datagram(&request("BYE", ";tag=nope", 2, "b", "", ""), DAEMON.parse().unwrap(), 0);
        u.on_datagram(&request("OPTIONS", "", 1, "o", "", ""), "10.0.0.1:5060".parse().unwrap(), 0);
        assert_eq!(statuses(&sent(&mut u)), [481, 200]);
        assert_eq!((u.calls(), u.poll_event()), (0, None));
    }
}
