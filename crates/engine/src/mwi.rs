//! The message-waiting lamp (RFC 3842 `message-summary` over RFC 6665 events).
//!
//! The voicemail tells the engine each mailbox's counts ([`Engine::on_mailbox`]). A device's lamp shows the sum
//! over the mailboxes it can open with 777 (its numbers). Phones learn it two ways:
//! - **Solicited**: a device SUBSCRIBEs (authenticated like its calls); it gets 200, a NOTIFY at once and one on
//!   every change, until the subscription expires (refreshed by the device) or is ended.
//! - **Unsolicited**: a Direct Mode device that has not subscribed (many ATAs ship with MWI subscription off)
//!   gets an out-of-dialog NOTIFY at each binding after every successful REGISTER and on every change, if one of
//!   its numbers uses our voicemail (diverts there, or has messages). PBX trunks run their own voicemail: they
//!   get NOTIFYs only if they subscribe.
//!
//! Counts given at start ([`Engine::on_mailbox_initial`]) notify nobody (no burst of NOTIFYs after a restart):
//! registered devices get them with their next REGISTER, subscribers with their next refresh.

use std::collections::{BTreeSet, HashMap};

use switchboard_model::records::ServiceMode;
use switchboard_registrar::Binding;
use switchboard_sip_core::header::parse_delta_seconds;
use switchboard_sip_core::transaction::{self, Key};
use switchboard_sip_core::transport::Peer;
use switchboard_sip_core::validate::Essentials;
use switchboard_sip_core::{HeaderName, Message, Method};

use crate::Engine;

/// Subscription lengths granted (RFC 3842 §3.5: one hour by default).
const DEFAULT_EXPIRES: u32 = 3600;
const MIN_EXPIRES: u32 = 60;
const MAX_EXPIRES: u32 = 3600;
const EVENT: &str = "message-summary";
const BODY_TYPE: &str = "application/simple-message-summary";

#[derive(Debug)]
struct Subscription {
    device_id: i64,
    /// Where the SUBSCRIBE came from: NOTIFYs go back there (NAT), over its connection on TCP.
    peer: Peer,
    /// The subscriber's Contact (the NOTIFY's Request-URI).
    target: String,
    /// Our From (its To, with our tag) and To (its From, with its tag).
    local: String,
    remote: String,
    call_id: String,
    cseq: u32,
    expires_at: u64,
}

/// A subscription's identity: its Call-ID and our tag.
type SubKey = (String, String);

#[derive(Debug, Default)]
pub(crate) struct Mwi {
    /// Each mailbox's (new, saved) counts, by number.
    counts: HashMap<String, (u32, u32)>,
    subs: HashMap<SubKey, Subscription>,
    /// Each device's subscriptions, so a REGISTER or a change looks at its own and never scans them all.
    by_device: HashMap<i64, Vec<SubKey>>,
    /// Expiries in order, so the next one is found without a scan (the event loop asks on every turn).
    expiries: BTreeSet<(u64, SubKey)>,
    /// NOTIFYs in flight, to drop a subscription the device has forgotten (481).
    notifies: HashMap<Key, SubKey>,
}

impl Mwi {
    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        self.expiries.first().map(|(at, _)| *at)
    }

    pub(crate) fn subscriptions(&self) -> usize {
        self.subs.len()
    }

    fn insert(&mut self, k: SubKey, sub: Subscription) {
        self.expiries.insert((sub.expires_at, k.clone()));
        self.by_device.entry(sub.device_id).or_default().push(k.clone());
        if let Some(old) = self.subs.insert(k.clone(), sub) {
            self.unindex(&k, &old);
        }
    }

    fn remove(&mut self, k: &SubKey) -> Option<Subscription> {
        let sub = self.subs.remove(k)?;
        self.unindex(k, &sub);
        Some(sub)
    }

    fn unindex(&mut self, k: &SubKey, sub: &Subscription) {
        self.expiries.remove(&(sub.expires_at, k.clone()));
        if let Some(keys) = self.by_device.get_mut(&sub.device_id) {
            keys.retain(|x| x != k);
            if keys.is_empty() {
                self.by_device.remove(&sub.device_id);
            }
        }
    }

    fn set_expiry(&mut self, k: &SubKey, at: u64) {
        if let Some(s) = self.subs.get_mut(k) {
            self.expiries.remove(&(s.expires_at, k.clone()));
            s.expires_at = at;
            self.expiries.insert((at, k.clone()));
        }
    }

    fn of_device(&self, device_id: i64) -> &[SubKey] {
        self.by_device.get(&device_id).map_or(&[], Vec::as_slice)
    }
}

/// The summary body.
fn body(new: u32, saved: u32, account: &str) -> String {
    let waiting = if new > 0 { "yes" } else { "no" };
    format!("Messages-Waiting: {waiting}\r\nMessage-Account: {account}\r\nVoice-Message: {new}/{saved} (0/0)\r\n")
}

impl Engine {
    /// A mailbox's counts changed: every device that can open it is told.
    pub fn on_mailbox(&mut self, number: &str, new: u32, saved: u32, now: u64) {
        let before = self.mwi.counts.insert(number.to_owned(), (new, saved));
        if before == Some((new, saved)) {
            return;
        }
        let devices = self.numbers.get(number).map(|n| self.devices.ringing(&n.number)).unwrap_or_default();
        for device_id in devices {
            self.tell(device_id, now);
        }
        self.flush(now);
    }

    /// A mailbox's counts as they stand at start: recorded, nobody told.
    pub fn on_mailbox_initial(&mut self, number: &str, new: u32, saved: u32) {
        self.mwi.counts.insert(number.to_owned(), (new, saved));
    }

    /// A device's lamp: the counts summed over the mailboxes it can open, and the account to name (its first
    /// mailbox). `None`: the device has no mailbox.
    fn summary(&self, device_id: i64) -> Option<(u32, u32, String)> {
        let dev = self.devices.by_id(device_id)?;
        let mut mailboxes: Vec<&str> = self.numbers.ringing(&dev.device).map(|n| n.number.number.as_str()).collect();
        mailboxes.sort_unstable();
        let first = mailboxes.first()?;
        let (new, saved) = mailboxes.iter().fold((0, 0), |(a, b), m| {
            let (n, s) = self.mwi.counts.get(*m).copied().unwrap_or_default();
            (a + n, b + s)
        });
        Some((new, saved, format!("sip:{first}@{}", self.settings.domain)))
    }

    /// Tells a device its lamp: in each of its subscriptions, or unsolicited at each binding when it has none
    /// (Direct Mode only).
    fn tell(&mut self, device_id: i64, now: u64) {
        let keys = self.mwi.of_device(device_id).to_vec();
        if !keys.is_empty() {
            for k in keys {
                self.notify(&k, false, now);
            }
            return;
        }
        if self.devices.by_id(device_id).is_some_and(|d| d.mode == ServiceMode::Direct) {
            for b in self.registrar.bindings(device_id).to_vec() {
                self.notify_binding(&b, now);
            }
        }
    }

    /// After a successful REGISTER: an unsubscribed Direct Mode device with a mailbox is told at that binding.
    pub(crate) fn mwi_on_register(&mut self, b: &Binding, now: u64) {
        let direct = self.devices.by_id(b.device_id).is_some_and(|d| d.mode == ServiceMode::Direct);
        let subscribed = !self.mwi.of_device(b.device_id).is_empty();
        if direct && !subscribed {
            self.notify_binding(b, now);
        }
    }

    /// Whether a device's lamp is worth telling unasked: one of its mailboxes takes messages here (its number
    /// diverts to voicemail) or holds some. A device whose numbers never use our voicemail is left alone.
    fn uses_voicemail(&self, device_id: i64) -> bool {
        let Some(dev) = self.devices.by_id(device_id) else { return false };
        self.numbers.ringing(&dev.device).any(|n| {
            n.number.divert_to.as_deref() == Some("voicemail")
                || self.mwi.counts.get(&n.number.number).is_some_and(|&(new, saved)| new + saved > 0)
        })
    }

    /// An out-of-dialog NOTIFY to a binding (no answer is awaited beyond the transaction).
    fn notify_binding(&mut self, b: &Binding, now: u64) {
        if !self.uses_voicemail(b.device_id) {
            return;
        }
        let Some((new, saved, account)) = self.summary(b.device_id) else { return };
        let Some(peer) = self.binding_peer(b) else { return };
        let addr = peer.addr;
        let domain = self.settings.domain.clone();
        let mut m = Message::request(Method::Notify, b.contact.clone());
        let sent_by = self.net.sent_by(addr.ip(), peer.proto);
        let proto = peer.proto.via_name();
        let branch = transaction::new_branch(self.rng.next_u64());
        let h = &mut m.headers;
        h.push(HeaderName::Via, format!("SIP/2.0/{proto} {sent_by};branch={branch};rport"));
        h.push(HeaderName::MaxForwards, "70");
        for p in &b.path {
            h.push(HeaderName::Route, p.clone());
        }
        h.push(HeaderName::From, format!("<sip:voicemail@{domain}>;tag={}", self.rng.token()));
        h.push(HeaderName::To, format!("<{}>", b.aor));
        h.push(HeaderName::CallId, format!("{}@{domain}", self.rng.token()));
        h.push(HeaderName::CSeq, "1 NOTIFY");
        h.push(HeaderName::Contact, format!("<sip:voicemail@{sent_by}>"));
        h.push(HeaderName::Event, EVENT);
        h.push(HeaderName::Other("Subscription-State".into()), "active");
        h.push(HeaderName::ContentType, BODY_TYPE);
        h.push(HeaderName::UserAgent, self.settings.server_header.clone());
        m.body = body(new, saved, &account).into_bytes();
        let reliable = peer.proto.is_reliable();
        if self.tx.send_request(m, peer, reliable, now).is_err() {
            tracing::debug!(device = b.device_id, "MWI NOTIFY not sent");
        }
    }

    /// A NOTIFY in subscription `k`; `last`: the subscription ends with it.
    fn notify(&mut self, k: &SubKey, last: bool, now: u64) {
        let Some(device_id) = self.mwi.subs.get(k).map(|s| s.device_id) else { return };
        let summary = self.summary(device_id);
        let branch = transaction::new_branch(self.rng.next_u64());
        let Some(s) = self.mwi.subs.get_mut(k) else { return };
        s.cseq += 1;
        let sent_by = self.net.sent_by(s.peer.addr.ip(), s.peer.proto);
        let proto = s.peer.proto.via_name();
        let mut m = Message::request(Method::Notify, s.target.clone());
        let h = &mut m.headers;
        h.push(HeaderName::Via, format!("SIP/2.0/{proto} {sent_by};branch={branch};rport"));
        h.push(HeaderName::MaxForwards, "70");
        h.push(HeaderName::From, s.local.clone());
        h.push(HeaderName::To, s.remote.clone());
        h.push(HeaderName::CallId, s.call_id.clone());
        h.push(HeaderName::CSeq, format!("{} NOTIFY", s.cseq));
        h.push(HeaderName::Contact, format!("<sip:voicemail@{sent_by}>"));
        h.push(HeaderName::Event, EVENT);
        let state = if last {
            "terminated;reason=timeout".to_owned()
        } else {
            format!("active;expires={}", s.expires_at.saturating_sub(now) / 1000)
        };
        h.push(HeaderName::Other("Subscription-State".into()), state);
        h.push(HeaderName::UserAgent, self.settings.server_header.clone());
        if let Some((new, saved, account)) = summary {
            h.push(HeaderName::ContentType, BODY_TYPE);
            m.body = body(new, saved, &account).into_bytes();
        }
        let peer = s.peer;
        match self.tx.send_request(m, peer, peer.proto.is_reliable(), now) {
            Ok(key) => {
                self.mwi.notifies.insert(key, k.clone());
            }
            Err(e) => tracing::debug!(error = %e, "MWI NOTIFY not sent"),
        }
    }

    /// A SUBSCRIBE for message-summary: a new subscription, a refresh, or its end (`Expires: 0`).
    pub(crate) fn on_subscribe(&mut self, key: Key, msg: Message, ess: Essentials, peer: Peer, now: u64) {
        let event = msg.headers.get(&HeaderName::Event).unwrap_or_default();
        tracing::debug!(
            event,
            source = %peer.addr,
            in_dialog = ess.to.tag().is_some(),
            call_id = %ess.call_id,
            authorization = msg.headers.get(&HeaderName::Authorization).is_some(),
            proxy_authorization = msg.headers.get(&HeaderName::ProxyAuthorization).is_some(),
            "SUBSCRIBE"
        );
        let package = event.split(';').next().unwrap_or_default().trim();
        if !package.eq_ignore_ascii_case(EVENT) {
            let extra = vec![(HeaderName::AllowEvents, EVENT.to_owned())];
            return self.call_reply(key, &msg, 489, "Bad Event", extra, now);
        }
        let expires = match msg.headers.get(&HeaderName::Expires) {
            None => DEFAULT_EXPIRES,
            Some(v) => match parse_delta_seconds(v) {
                Some(0) => 0,
                Some(e) => e.clamp(MIN_EXPIRES, MAX_EXPIRES),
                None => return self.call_reply(key, &msg, 400, "Bad Expires", Vec::new(), now),
            },
        };
        if let Some(tag) = ess.to.tag() {
            return self.resubscribe(key, &msg, (ess.call_id.clone(), tag.to_owned()), expires, now);
        }
        let Some(device) = self.device_asking(key, &msg, &ess, peer, "SUBSCRIBE", now) else { return };
        let device_id = device.device.id;
        if self.summary(device_id).is_none() {
            return self.call_reply(key, &msg, 404, "No Mailbox", Vec::new(), now);
        }
        let Some(target) = msg
            .headers
            .get(&HeaderName::Contact)
            .and_then(|c| switchboard_sip_core::header::NameAddr::parse(c, "Contact").ok())
            .map(|c| c.uri)
        else {
            return self.call_reply(key, &msg, 400, "Missing Contact", Vec::new(), now);
        };
        let tag = self.rng.token();
        let local = format!("{};tag={tag}", msg.headers.get(&HeaderName::To).unwrap_or_default());
        let remote = msg.headers.get(&HeaderName::From).unwrap_or_default().to_owned();
        let k = (ess.call_id.clone(), tag.clone());
        self.ok_subscribe(key, &msg, &tag, expires, peer, now);
        let sub = Subscription {
            device_id,
            peer,
            target,
            local,
            remote,
            call_id: ess.call_id.clone(),
            cseq: 0,
            expires_at: now + u64::from(expires) * 1000,
        };
        self.mwi.insert(k.clone(), sub);
        tracing::info!(device = %device.device.name, expires, "MWI subscription");
        self.notify(&k, expires == 0, now);
        if expires == 0 {
            self.mwi.remove(&k);
        }
    }

    fn resubscribe(&mut self, key: Key, msg: &Message, k: SubKey, expires: u32, now: u64) {
        let Some(peer) = self.mwi.subs.get(&k).map(|s| s.peer) else {
            return self.call_reply(key, msg, 481, "Subscription Does Not Exist", Vec::new(), now);
        };
        self.mwi.set_expiry(&k, now + u64::from(expires) * 1000);
        self.ok_subscribe(key, msg, &k.1, expires, peer, now);
        self.notify(&k, expires == 0, now);
        if expires == 0 {
            self.mwi.remove(&k);
        }
    }

    fn ok_subscribe(&mut self, key: Key, msg: &Message, tag: &str, expires: u32, peer: Peer, now: u64) {
        let mut ok = switchboard_sip_core::validate::response_to(&msg.headers, 200, "OK", Some(tag));
        let sent_by = self.net.sent_by(peer.addr.ip(), peer.proto);
        ok.headers.push(HeaderName::Expires, expires.to_string());
        ok.headers.push(HeaderName::Contact, format!("<sip:voicemail@{sent_by}>"));
        ok.headers.push(HeaderName::Server, self.settings.server_header.clone());
        let _ = self.tx.respond(key, ok, now);
    }

    /// Whether a response (or a timeout) belongs to an MWI NOTIFY; a refusal ends its subscription.
    pub(crate) fn mwi_response(&mut self, key: Key, status: Option<u16>) -> bool {
        let Some(k) = self.mwi.notifies.get(&key).cloned() else { return false };
        if status.is_none_or(|s| s >= 300) {
            self.mwi.notifies.remove(&key);
            if self.mwi.remove(&k).is_some() {
                tracing::info!(?status, "MWI subscription dropped: the device refused or ignored a NOTIFY");
            }
        } else if status.is_some_and(|s| s >= 200) {
            self.mwi.notifies.remove(&key);
        }
        true
    }

    /// Whether an in-dialog request belongs to one of our subscriptions.
    pub(crate) fn is_mwi_dialog(&self, ess: &Essentials) -> bool {
        ess.to.tag().is_some_and(|t| self.mwi.subs.contains_key(&(ess.call_id.clone(), t.to_owned())))
    }

    pub(crate) fn mwi_transaction_ended(&mut self, key: Key) {
        self.mwi.notifies.remove(&key);
    }

    /// Subscriptions past their expiry end, with a last NOTIFY.
    pub(crate) fn mwi_timeouts(&mut self, now: u64) {
        while self.mwi.expiries.first().is_some_and(|(at, _)| *at <= now) {
            let Some((_, k)) = self.mwi.expiries.pop_first() else { break };
            self.notify(&k, true, now);
            self.mwi.remove(&k);
        }
    }
}
