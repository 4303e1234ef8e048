//! Media, sans-IO: everything the relay and the voicemail decide about packets and session descriptions, with no
//! socket, clock or task (`now` is passed in, in milliseconds).
//!
//! - [`sdp`]: read what each stream offers or answers; rewrite addresses and ports to the relay's, every other
//!   line kept byte for byte.
//! - [`rtp`]: RTP headers (read and built with `rtp-rs`), RTCP told apart on a muxed port.
//! - [`latch`]: symmetric RTP with probation: where a phone's media goes, whose packets are taken.
//! - [`g711`]: µ-law and A-law.
//! - [`dtmf`]: RFC 4733 telephone-events and SIP INFO DTMF.
//! - [`ports`]: the relay's port pairs.
//! - [`relay`]: the commands the engine gives the relay and the events it reports.
//! - [`wav`]: the voicemail file format, and repairing a recording cut short.
//! - [`endpoint`]: the daemon's own side of a call (voicemail): codec choice, answers and offers.
//! - [`player`]: prompts cut into 20 ms frames; [`deposit`]: leaving a message, and [`retrieval`]: listening to
//!   messages (777), as machines.

pub mod deposit;
pub mod dtmf;
pub mod endpoint;
pub mod g711;
pub mod latch;
pub mod player;
pub mod ports;
pub mod relay;
pub mod retrieval;
pub mod rtp;
pub mod sdp;
pub mod wav;
