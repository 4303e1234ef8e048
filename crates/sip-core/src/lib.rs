//! Sans-IO SIP core: framing with explicit limits, the message model, typed header views, the RFC 3261 §17
//! transaction machines and digest authentication. Nothing here touches sockets, clocks or tasks: callers pass
//! `now` in and act on what comes back.
//!
//! The wire parser is our own rather than `rsip`'s: measured against the RFC 4475/5118 torture corpus, rsip 0.4
//! rejects a dozen valid messages (extension methods, escaped methods, IPv6 references, compact forms) and cannot
//! represent unknown methods at all, and these are exactly the inputs a registrar must answer correctly. The
//! corpus test (`tests/torture.rs`) holds this choice.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod digest;
pub mod divert;
pub mod header;
pub mod message;
pub mod parse;
pub mod rng;
pub mod transaction;
pub mod transport;
pub mod uri;
pub mod validate;

pub use message::{Header, HeaderName, Headers, Message, Method, StartLine};
pub use parse::{Frame, Limits, ParseError, ParseErrorKind, StreamFramer, parse_datagram};
