//! The location service's records: a device's bindings (RFC 3261 §10.3) with what is needed to reach them.

use crate::Millis;

/// One contact bound for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub device_id: i64,
    /// The contact URI's comparison key (RFC 3261 §19.1.4): bindings are the same when their keys are.
    pub key: String,
    /// The address-of-record (To URI of the REGISTER).
    pub aor: String,
    /// The contact URI, as sent.
    pub contact: String,
    /// q in thousandths (0..=1000).
    pub q: Option<u16>,
    pub expires_at: Millis,
    pub call_id: String,
    pub cseq: u32,
    /// `ip:port` the REGISTER came from; requests to the device go here (RFC 3581 symmetric response routing and
    /// NAT traversal), not to the Contact host, which is often a private address.
    pub source: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// Our `ip:port` the REGISTER arrived on.
    pub local: String,
    /// Path values (RFC 3327), in order.
    pub path: Vec<String>,
    /// `+sip.instance` without quotes (RFC 5626).
    pub instance_id: Option<String>,
    pub reg_id: Option<u32>,
    pub user_agent: Option<String>,
    pub updated_at: Millis,
    /// Keepalive probes in a row that went unanswered.
    pub misses: u32,
    /// When the next keepalive probe is due.
    pub next_probe: Millis,
    /// When the expiry deadline held for this binding fires. A refresh that pushes `expires_at` out leaves that
    /// deadline in place, and it re-arms itself at `expires_at` when it fires: one deadline per binding, however
    /// often the device refreshes.
    pub expiry_due: Millis,
}

impl Binding {
    /// Seconds left before expiry, rounded up so a live binding never shows 0.
    pub fn remaining_secs(&self, now: Millis) -> u64 {
        self.expires_at.saturating_sub(now).div_ceil(1000)
    }

    /// The Contact value listed in a 200 to REGISTER (RFC 3261 §10.3 step 8): the URI with its remaining expiry.
    pub fn contact_value(&self, now: Millis) -> String {
        let mut v = format!("<{}>;expires={}", self.contact, self.remaining_secs(now));
        if let Some(q) = self.q {
            v.push_str(&format!(";q={}.{:03}", q / 1000, q % 1000));
        }
        if let Some(inst) = &self.instance_id {
            // RFC 5626 §4.1 / RFC 3840 string value: the URN stays in angle brackets inside the quotes.
            v.push_str(&format!(";+sip.instance=\"<{inst}>\""));
        }
        if let Some(r) = self.reg_id {
            v.push_str(&format!(";reg-id={r}"));
        }
        v
    }
}

/// A device's bindings and its liveness.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceBindings {
    pub bindings: Vec<Binding>,
    pub online: bool,
    /// When `online` last changed.
    pub since: Millis,
}
