//! Domain types shared by the engine (decisions), storage (how they are kept) and the CLI and API (how they are
//! written and shown). Pure data with their parsing rules and their JSON form; serde is the one dependency, so
//! every layer can use them without pulling in another's (storage does not depend on routing or the engine, nor
//! the engine on storage).

pub mod date;
mod digest;
mod divert;
pub mod metrics;
mod net;
pub mod records;

pub use digest::DigestMode;
pub use divert::{DivertReason, DivertWhen};
pub use net::{IpNet, IpNetError, parse_networks};
