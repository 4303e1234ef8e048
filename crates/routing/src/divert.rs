//! Inbound call handling for a number: its divert rules and the service's presence -> a [`RoutePlan`] the b2bua
//! carries out (ring the devices, start the no-answer timer, divert, or reject).

/// Ring time before a no-answer divert, unless the number says otherwise.
pub const DEFAULT_NO_ANSWER_SECS: u32 = 60;

pub use switchboard_model::DivertWhen;

/// Where a diverted call goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DivertTo {
    /// The number's voicemail box (the deposit IVR).
    Voicemail,
    /// An external number (E.164), reached out through a gateway with Diversion/History-Info.
    External(String),
}

/// A number's inbound rules, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberRules {
    pub divert_when: DivertWhen,
    /// Required by every rule but `Never`; a rule without it behaves as `Never`.
    pub divert_to: Option<DivertTo>,
    /// Ring time before a no-answer divert; 0 diverts at once.
    pub no_answer_secs: u32,
}

impl Default for NumberRules {
    fn default() -> Self {
        Self { divert_when: DivertWhen::Never, divert_to: None, no_answer_secs: DEFAULT_NO_ANSWER_SECS }
    }
}

/// The registration state of the devices behind the number's service, from the registrar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Presence {
    /// At least one device answers its keepalives.
    pub any_device_online: bool,
    /// Unexpired bindings (contacts) to ring, whether or not their keepalives answer.
    pub live_bindings: usize,
}

/// What to do with an inbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutePlan {
    /// Ring every live binding.
    Ring {
        /// Start the no-answer timer: after this many seconds, CANCEL the device legs and divert.
        no_answer: Option<(u32, DivertTo)>,
        /// A busy final answer (486 Busy Here, 600 Busy Everywhere) diverts at once instead of being relayed.
        on_busy: Option<DivertTo>,
    },
    /// Do not ring; divert at once.
    Divert(DivertTo),
    /// Answer the INVITE with this final status.
    Reject { code: u16, reason: &'static str },
}

/// Decide how to route an inbound call to a number with `rules` while its service has `presence`.
///
/// | divert_when | decision |
/// |---|---|
/// | never | ring; no live binding: 480 |
/// | all | divert at once |
/// | no-answer | ring with the timer, busy diverts; no live binding (or a 0 s timer): divert at once |
/// | offline | no device online: divert at once; else ring with no timer |
///
/// A rule whose `divert_to` is missing behaves as `never`. "Online" for `offline` needs both a device answering
/// keepalives and a binding to ring; bindings whose keepalives fail are still rung by `never` and `no-answer`,
/// since the timer (or the caller giving up) covers a dead contact.
pub fn decide(rules: &NumberRules, presence: &Presence) -> RoutePlan {
    let Some(to) = rules.divert_to.clone().filter(|_| rules.divert_when != DivertWhen::Never) else {
        return ring_or_unavailable(presence);
    };
    let has_bindings = presence.live_bindings > 0;
    match rules.divert_when {
        DivertWhen::Never => ring_or_unavailable(presence),
        DivertWhen::All => RoutePlan::Divert(to),
        DivertWhen::NoAnswer if !has_bindings || rules.no_answer_secs == 0 => RoutePlan::Divert(to),
        DivertWhen::NoAnswer => {
            RoutePlan::Ring { no_answer: Some((rules.no_answer_secs, to.clone())), on_busy: Some(to) }
        }
        DivertWhen::Offline if presence.any_device_online && has_bindings => {
            RoutePlan::Ring { no_answer: None, on_busy: None }
        }
        DivertWhen::Offline => RoutePlan::Divert(to),
    }
}

fn ring_or_unavailable(presence: &Presence) -> RoutePlan {
    if presence.live_bindings == 0 {
        return RoutePlan::Reject { code: 480, reason: "Temporarily Unavailable" };
    }
    RoutePlan::Ring { no_answer: None, on_busy: None }
}
