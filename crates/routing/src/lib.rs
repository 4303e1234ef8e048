//! Pure routing decisions for calls: the Australian numbering plan (dialled string -> E.164 and call type), call
//! barring by enabled call types, the caller ID policy, and the divert rules of a number -> [`RoutePlan`].
//!
//! Everything here is a function over data: no IO, no clock, no store. The b2bua asks, then acts on the answer.
//!
//! Invariants:
//! - Every E.164 string produced here is `+` followed by 7 to 15 digits, the first not `0`.
//! - Emergency calls (`000`, `112`, `106`) have no E.164 form and are never barred.
//! - Each error and refusal names its SIP status in one place: [`NumberError::status`], [`Barred::STATUS`],
//!   [`RoutePlan::Reject`].

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

mod barring;
mod caller_id;
mod divert;
mod numbering;

pub use barring::{Barred, check_allowed};
pub use caller_id::{CallerId, caller_id, normalise_cli};
pub use divert::{DEFAULT_NO_ANSWER_SECS, DivertTo, DivertWhen, NumberRules, Presence, RoutePlan, decide};
pub use numbering::{CallType, Classified, DialContext, NumberError, classify, classify_on_net};
