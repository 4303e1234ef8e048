//! Processing of an authenticated REGISTER (RFC 3261 §10.3 steps 6-8, RFC 5626 §6 instance/reg-id).

use switchboard_sip_core::header::{Contacts, NameAddr, parse_delta_seconds};
use switchboard_sip_core::uri::{Scheme, Uri};

use crate::location::Binding;
use crate::{Millis, OfflineReason, Output, Registrar, TimerKind};

/// A REGISTER reduced to what the registrar rules need. The caller has authenticated it and found the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest {
    pub device_id: i64,
    /// Most bindings the device may hold. With 1, a new contact replaces the old one (Direct Mode).
    pub max_contacts: usize,
    pub aor: String,
    pub call_id: String,
    pub cseq: u32,
    pub contacts: Contacts,
    /// The Expires header, if present and well formed.
    pub expires: Option<u32>,
    pub source: String,
    pub transport: String,
    pub local: String,
    pub path: Vec<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterResult {
    /// 200: the device's bindings after the update, to be listed in the response.
    Ok(Vec<Binding>),
    /// 423 Interval Too Brief, with this Min-Expires.
    IntervalTooBrief(u32),
    /// Any other refusal; nothing was changed.
    Rejected { code: u16, reason: &'static str },
}

/// A contact of the request after its expiry and identity are worked out.
struct Wanted<'a> {
    addr: &'a NameAddr,
    uri: Uri,
    key: String,
    expires: u32,
    q: Option<u16>,
    instance_id: Option<String>,
    reg_id: Option<u32>,
}

impl Registrar {
    /// Applies an authenticated REGISTER. On success the device's bindings are updated (outputs carry the
    /// persistence and liveness consequences); on any refusal nothing changes.
    pub fn on_register(&mut self, req: RegisterRequest, now: Millis) -> RegisterResult {
        let existing = self.bindings(req.device_id).to_vec();
        let list = match &req.contacts {
            Contacts::Wildcard => {
                // RFC 3261 §10.3 step 6: "*" is only valid with Expires: 0.
                if req.expires != Some(0) {
                    return RegisterResult::Rejected { code: 400, reason: "Wildcard Contact Requires Expires: 0" };
                }
                if existing.iter().any(|b| b.call_id == req.call_id && req.cseq < b.cseq) {
                    return RegisterResult::Rejected { code: 400, reason: "CSeq Out Of Order" };
                }
                // The same Call-ID and CSeq as a live binding: that REGISTER again, not a removal.
                if existing.iter().any(|b| b.call_id == req.call_id && b.cseq == req.cseq) {
                    return RegisterResult::Ok(existing);
                }
                for b in existing {
                    self.outputs.push(Output::Remove { device_id: req.device_id, contact: b.contact });
                }
                self.devices.entry(req.device_id).or_default().bindings.clear();
                self.update_online(req.device_id, now, OfflineReason::Unregistered);
                return RegisterResult::Ok(Vec::new());
            }
            Contacts::List(list) => list,
        };
        let mut wanted = Vec::with_capacity(list.len());
        for addr in list {
            match self.wanted(addr, req.expires) {
                Ok(w) => wanted.push(w),
                Err(result) => return result,
            }
        }
        // 423 before any change (step 7): one too-brief contact fails the whole request.
        // RFC 3261 §10.3 step 7 allows 423 only for intervals under one hour, whatever min_expires says.
        let min = self.config.min_expires.min(3600);
        if wanted.iter().any(|w| w.expires != 0 && w.expires < min) {
            return RegisterResult::IntervalTooBrief(min);
        }
        // The same binding: an equal contact URI (RFC 3261 §19.1.4), or the same instance and reg-id (RFC 5626).
        let same = |b: &Binding, w: &Wanted<'_>| {
            Uri::parse(&b.contact).is_ok_and(|u| u.rfc_eq(&w.uri))
                || (w.instance_id.is_some() && b.instance_id == w.instance_id && b.reg_id == w.reg_id)
        };
        // Step 7: for a binding that exists, the same Call-ID needs a higher CSeq, or this is an old request
        // arriving late. Checked against the bindings as they were, so a contact listed twice in one request
        // simply takes its last listing.
        for w in &wanted {
            if existing.iter().any(|b| same(b, w) && b.call_id == req.call_id && req.cseq < b.cseq) {
                return RegisterResult::Rejected { code: 400, reason: "CSeq Out Of Order" };
            }
        }
        // The same Call-ID and CSeq as a binding already made is that request again: a retransmission (REGISTER is
        // answered without transaction state, RFC 3261 §8.2.7). Answer as before, change nothing.
        if existing.iter().any(|b| b.call_id == req.call_id && b.cseq == req.cseq) {
            return RegisterResult::Ok(existing);
        }
        let mut next = existing.clone();
        for w in &wanted {
            let pos = next.iter().position(|b| same(b, w));
            // A binding that matches keeps its identity (the key its deadlines are filed under).
            let key = match pos {
                Some(p) => next.remove(p).key,
                None => w.key.clone(),
            };
            if w.expires > 0 {
                let expires = w.expires.min(self.config.max_expires);
                next.push(Binding {
                    device_id: req.device_id,
                    key,
                    aor: req.aor.clone(),
                    contact: w.addr.uri.clone(),
                    q: w.q,
                    expires_at: now + u64::from(expires) * 1000,
                    call_id: req.call_id.clone(),
                    cseq: req.cseq,
                    source: req.source.clone(),
                    transport: req.transport.clone(),
                    local: req.local.clone(),
                    path: req.path.clone(),
                    instance_id: w.instance_id.clone(),
                    reg_id: w.reg_id,
                    user_agent: req.user_agent.clone(),
                    updated_at: now,
                    misses: 0,
                    next_probe: now + self.config.keepalive_interval_ms,
                    expiry_due: 0,
                });
            }
        }
        if next.len() > req.max_contacts {
            let added = wanted.iter().filter(|w| w.expires > 0).count();
            if req.max_contacts == 1 && added == 1 {
                // Direct Mode: the contact just registered replaces whatever was bound before.
                let keep = next.len() - 1;
                next.drain(..keep);
            } else {
                // A PBX that restarted registers with a new Call-ID while its old contacts linger: those from
                // another Call-ID go first, oldest first, before the request is refused.
                while next.len() > req.max_contacts {
                    match next.iter().position(|b| b.call_id != req.call_id) {
                        Some(i) => {
                            next.remove(i);
                        }
                        None => return RegisterResult::Rejected { code: 403, reason: "Too Many Contacts" },
                    }
                }
            }
        }
        self.commit(req.device_id, existing, &mut next, now);
        RegisterResult::Ok(next)
    }

    fn wanted<'a>(&self, addr: &'a NameAddr, header_expires: Option<u32>) -> Result<Wanted<'a>, RegisterResult> {
        let bad = |reason| RegisterResult::Rejected { code: 400, reason };
        let uri = Uri::parse(&addr.uri).map_err(|_| bad("Malformed Contact URI"))?;
        if uri.scheme == Scheme::Tel {
            return Err(bad("Contact Must Be A SIP URI"));
        }
        let expires = match addr.param("expires") {
            Some(v) => parse_delta_seconds(v).ok_or_else(|| bad("Malformed Contact Expires"))?,
            None => header_expires.unwrap_or(self.config.default_expires),
        };
        let q = match addr.param("q") {
            Some(v) => Some(parse_q(v).ok_or_else(|| bad("Malformed Contact q-value"))?),
            None => None,
        };
        let instance_id = addr.param("+sip.instance").map(|v| v.trim_matches(['<', '>']).to_owned());
        let reg_id = match addr.param("reg-id") {
            Some(v) => Some(v.parse::<u32>().map_err(|_| bad("Malformed Contact reg-id"))?),
            None => None,
        };
        Ok(Wanted { addr, key: uri.comparison_key(), uri, expires, q, instance_id, reg_id })
    }

    /// Installs the new binding list and reports the differences. A binding made now gets its deadlines; a
    /// refreshed one keeps its probe schedule and its expiry deadline (unless it now expires sooner).
    fn commit(&mut self, device_id: i64, old: Vec<Binding>, next: &mut [Binding], now: Millis) {
        for b in &old {
            if !next.iter().any(|n| n.key == b.key) {
                self.outputs.push(Output::Remove { device_id, contact: b.contact.clone() });
                self.drop_deadlines(device_id, b);
            }
        }
        for b in next.iter_mut().filter(|b| b.updated_at == now) {
            match old.iter().find(|o| o.key == b.key) {
                Some(prev) => {
                    // Storage keys bindings by the contact as written: if the text changed (a parameter the URI
                    // comparison ignores), the old row must go.
                    if prev.contact != b.contact {
                        self.outputs.push(Output::Remove { device_id, contact: prev.contact.clone() });
                    }
                    b.next_probe = prev.next_probe;
                    b.expiry_due = prev.expiry_due;
                    if b.expires_at < b.expiry_due {
                        self.deadlines.remove(&(b.expiry_due, TimerKind::Expiry, device_id, b.key.clone()));
                        b.expiry_due = b.expires_at;
                        self.deadlines.insert((b.expires_at, TimerKind::Expiry, device_id, b.key.clone()));
                    }
                }
                None => {
                    b.expiry_due = b.expires_at;
                    self.deadlines.insert((b.expires_at, TimerKind::Expiry, device_id, b.key.clone()));
                    self.deadlines.insert((b.next_probe, TimerKind::Probe, device_id, b.key.clone()));
                }
            }
            self.outputs.push(Output::Upsert(b.clone()));
        }
        let dev = self.devices.entry(device_id).or_default();
        dev.bindings = next.to_vec();
        self.update_online(device_id, now, OfflineReason::Unregistered);
    }
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` in thousandths.
fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_val: u16 = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(frac_val),
        "1" if frac_val == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod q_tests {
    #[test]
    fn q_values() {
        assert_eq!(super::parse_q("0.5"), Some(500));
        assert_eq!(super::parse_q("1"), Some(1000));
        assert_eq!(super::parse_q("0.125"), Some(125));
        assert_eq!(super::parse_q("1.5"), None);
        assert_eq!(super::parse_q("0.1234"), None);
    }
}
