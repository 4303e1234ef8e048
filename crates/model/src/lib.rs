//! Domain types shared by the engine (decisions), storage (how they are kept) and the CLI and API (how they are
//! written and shown). Pure data with their parsing rules; no dependencies, so every layer can use them without
//! pulling in another's.

mod digest;
mod divert;
mod net;

pub use digest::DigestMode;
pub use divert::{DivertReason, DivertWhen};
pub use net::{IpNet, IpNetError, parse_networks};
