//! Voicemail: an in-process SIP user agent that the call machine reaches like any other target. It answers calls
//! diverted to a mailbox (greeting, beep, the message recorded as a WAV file with a database row), and `777`
//! calls from devices (PIN, menus, listening, greeting and PIN changes).
//!
//! - [`uas`]: the SIP side, sans-IO (dialogs, 2xx retransmission, INFO keys, re-INVITE, CANCEL, BYE).
//! - [`prompts`]: the spoken prompts, embedded in the binary.
//! - [`recorder`]: WAV files whose header stays valid while they grow, and recovery of those cut short.
//! - [`pin`]: mailbox PINs, hashed.
//! - [`service`]: the driver: the SIP socket, one task per call with its RTP socket, the store; `session` is a
//!   call's media, `listen` drives the 777 menus.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

mod listen;
pub mod pin;
pub mod prompts;
pub mod recorder;
pub mod service;
mod session;
pub mod uas;
