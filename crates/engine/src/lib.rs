//! The daemon's decisions, sans-IO: events in, decisions out, `now` passed in. Nothing here touches a socket,
//! the clock, a task or the database, so every rule is unit-tested on virtual time.
//!
//! - [`overload`]: when the daemon falls behind, which requests are shed (503 with Retry-After) so that work
//!   already started (authenticated requests, dialogs, responses) still completes.
//! - [`prober`]: keepalive probes in flight, their retransmissions and their deadlines.
//! - [`responses`]: where the responses to a request go (RFC 3261 §18.2.2, RFC 3581).
//! - [`auth`]: digest authentication of devices: challenges, verification, replay protection, brute-force
//!   throttling, the per-device digest choice and the legacy-MD5 detection.

pub mod auth;
pub mod overload;
pub mod prober;
pub mod responses;

pub use overload::{Overload, OverloadConfig, is_new_work};
