//! The daemon's decisions, sans-IO: events in, outputs out, `now` passed in. Nothing here touches a socket,
//! the clock, a task or the database, so every rule is unit-tested on virtual time.
//!
//! - [`Engine`] (`dispatch`): method dispatch, REGISTER handling, the stateless answers and their memory,
//!   keepalive probes, and what the registrar's bindings and liveness turn into (records, device events).
//! - `calls`: INVITE admission, plans, the call table and its deadlines, call records (CDRs, active calls),
//!   gateway health and the concurrency limits.
//! - `media`: which relay ports a call gets, what the relay is told, what its reports mean for calls.
//! - [`directory`]: the devices and numbers in memory, and the changes that keep them current.
//! - [`overload`]: when the daemon falls behind, which requests are shed (503 with Retry-After) so that work
//!   already started (authenticated requests, dialogs, responses) still completes.
//! - [`prober`]: keepalive probes in flight, their retransmissions and their deadlines.
//! - [`responses`]: where the responses to a request go (RFC 3261 §18.2.2, RFC 3581).
//! - [`auth`]: digest authentication of devices: challenges, verification, replay protection, brute-force
//!   throttling, the per-device digest choice and the legacy-MD5 detection.
//! - [`records`]: what the engine asks the store to keep.
//! - [`cluster`]: calls relayed to the node that holds the device's binding, and relayed calls taken in.

pub mod alerts;
pub mod auth;
mod calls;
pub mod cluster;
pub mod counters;
pub use switchboard_model::date;
pub mod directory;
mod dispatch;
mod media;
mod mwi;
pub mod overload;
pub mod prober;
pub mod records;
pub mod responses;

#[cfg(test)]
mod tests;

pub use calls::CallLimits;
pub use dispatch::{DeviceEvent, Engine, Loaded, Network, Output, Settings, Stats};
pub use media::MediaSettings;
pub use overload::{Overload, OverloadConfig, is_new_work};
pub use records::Persist;
