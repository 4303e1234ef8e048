//! Event counters for the operator's metrics: how registrations ended, authentication failures and throttling,
//! and calls by direction and disposition with their diverts. Plain integers: the engine is one task, and the
//! daemon copies them out with [`crate::Engine::stats`].

use std::collections::BTreeMap;

use switchboard_model::records::NewCdr;

use crate::auth::{AuthOutcome, Why};

/// Counts since the daemon started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// REGISTER answers by outcome: `ok`, `challenged` (no, stale or replayed credentials), `failed` (wrong
    /// credentials), `throttled`, `refused` (malformed, too brief, too many contacts).
    pub registrations: BTreeMap<&'static str, u64>,
    /// Requests of any method whose credentials were wrong.
    pub auth_failures: u64,
    /// Requests refused because their source or account failed too often.
    pub auth_throttled: u64,
    /// Finished calls by (direction, disposition).
    pub calls: BTreeMap<(&'static str, &'static str), u64>,
    /// Calls diverted, by reason.
    pub diverts: BTreeMap<&'static str, u64>,
}

impl Counters {
    /// Counts an authentication outcome (any method); `register` also counts it as a registration outcome.
    pub(crate) fn on_auth<D>(&mut self, outcome: &AuthOutcome<D>, register: bool) {
        let kind = match outcome {
            AuthOutcome::Authenticated(..) | AuthOutcome::Retransmission(_) => None,
            AuthOutcome::Challenge { why: Why::WrongCredentials, .. } => {
                self.auth_failures += 1;
                Some("failed")
            }
            AuthOutcome::Challenge { .. } => Some("challenged"),
            AuthOutcome::Throttled => {
                self.auth_throttled += 1;
                Some("throttled")
            }
            AuthOutcome::Malformed(_) => Some("refused"),
        };
        if register && let Some(kind) = kind {
            self.registration(kind);
        }
    }

    pub(crate) fn registration(&mut self, outcome: &'static str) {
        *self.registrations.entry(outcome).or_default() += 1;
    }

    pub(crate) fn on_cdr(&mut self, cdr: &NewCdr) {
        *self.calls.entry((cdr.direction.as_str(), cdr.disposition.as_str())).or_default() += 1;
        if let Some(reason) = cdr.divert_reason {
            *self.diverts.entry(reason.as_str()).or_default() += 1;
        }
    }
}
